//! Cleaning of tar entry names into safe relative paths.

use std::path::{Component, Path, PathBuf};

/// Turns a tar entry name into a clean relative path; `None` when it names the root itself. As Docker cleans names
/// (Go's `filepath.Clean`): `.` goes, `a/../b` is `b`, absolute names are made relative (and `..` cannot climb above
/// their `/`); a relative name whose `..` would climb out of the root is refused with `Err`.
pub fn clean_entry_path(name: &Path) -> Result<Option<PathBuf>, String> {
    let absolute = name.has_root();
    let mut clean = PathBuf::new();
    for component in name.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                if !clean.pop() && !absolute {
                    return Err(format!("entry {:?} climbs out of the root with '..'", name));
                }
            }
            Component::Prefix(_) => return Err(format!("entry {:?} has a path prefix", name)),
        }
    }
    Ok((!clean.as_os_str().is_empty()).then_some(clean))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_names() {
        assert_eq!(
            clean_entry_path(Path::new("./a/b/")).unwrap(),
            Some(PathBuf::from("a/b"))
        );
        assert_eq!(
            clean_entry_path(Path::new("/etc/passwd")).unwrap(),
            Some(PathBuf::from("etc/passwd"))
        );
        assert_eq!(clean_entry_path(Path::new("./")).unwrap(), None);
        assert_eq!(
            clean_entry_path(Path::new("rel/../up")).unwrap(),
            Some(PathBuf::from("up"))
        );
        assert_eq!(
            clean_entry_path(Path::new("/../x")).unwrap(),
            Some(PathBuf::from("x"))
        );
        assert!(clean_entry_path(Path::new("a/../../b")).is_err());
        assert!(clean_entry_path(Path::new("../b")).is_err());
    }
}
