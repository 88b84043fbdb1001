//! Cleaning of tar entry names into safe relative paths.

use std::path::{Component, Path, PathBuf};

/// Turns a tar entry name into a relative path without `.`; `None` when it names the root itself.
/// Absolute names are made relative (as Docker does); a `..` component is refused with `Err`.
pub fn clean_entry_path(name: &Path) -> Result<Option<PathBuf>, String> {
    let mut clean = PathBuf::new();
    for component in name.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => return Err(format!("entry {:?} contains '..'", name)),
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
        assert!(clean_entry_path(Path::new("a/../../b")).is_err());
    }
}
