//! WORKDIR's layer: the directory, and missing parents, created at the cleaned path as the current USER (BuildKit's
//! `mkdir -p`); a RUN's working directory is then made as written, by the runtime.

use std::path::Path;

use super::config_edit;
use super::StepError;
use crate::copy;
use crate::snapshot::Snapshot;
use crate::users::resolve_chown;

/// Creates `path` in the snapshot, owned by `user` (resolved in the snapshot) or root.
pub(super) fn execute(
    snapshot: &mut Snapshot,
    path: &str,
    user: Option<&str>,
) -> Result<(), StepError> {
    let cleaned = config_edit::normalize(Path::new(path));
    let relative = cleaned.trim_start_matches('/');
    if !relative.is_empty() {
        let owner = match user {
            Some(user) => resolve_chown(snapshot.rootfs(), user).map_err(copy::CopyError::from)?,
            None => (0, 0),
        };
        copy::ensure_dir(snapshot.rootfs(), Path::new(relative), owner)?;
    }
    Ok(())
}
