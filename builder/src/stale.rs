//! Leftovers of builds that died mid-step (killed, crashed): entries named by [`layerstore::fsutil::unique_name`],
//! which embeds the creating process id, are stale once that process is gone.

use std::path::Path;

/// The entries of `dir` whose name starts with one of `prefixes` and whose creating process no longer exists.
pub fn dead_entries(dir: &Path, prefixes: &[&str]) -> Vec<(String, std::path::PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rest = prefixes.iter().find_map(|p| name.strip_prefix(p))?;
            let pid: u32 = rest.split('-').next()?.parse().ok()?;
            let alive = Path::new("/proc").join(pid.to_string()).exists();
            (!alive).then(|| (name, entry.path()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_entries_of_dead_processes_are_stale() {
        let dir = tempfile::tempdir().unwrap();
        let mine = layerstore::fsutil::unique_name("step-");
        for name in [
            mine.as_str(),
            "step-999999999-1-0",
            "other-999999999-1-0",
            "step-x",
        ] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        let stale: Vec<String> = dead_entries(dir.path(), &["step-"])
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(stale, ["step-999999999-1-0"]);
    }
}
