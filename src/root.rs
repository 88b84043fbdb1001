//! Where the store lives: `--root`, else `$LADE_ROOT`, else `/var/lib/lade` for root, else `$XDG_DATA_HOME/lade`.

use std::path::PathBuf;

/// The store root chosen by flag, environment or default.
pub fn store_root(flag: Option<PathBuf>) -> PathBuf {
    if let Some(root) = flag {
        return root;
    }
    if let Some(root) = std::env::var_os("LADE_ROOT").filter(|v| !v.is_empty()) {
        return root.into();
    }
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/lade");
    }
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data_home.join("lade")
}
