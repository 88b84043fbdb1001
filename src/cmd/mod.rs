//! One module per `lade` verb; each has clap `Args` and a `run` function.

pub mod build;
pub mod build_cache;
mod build_display;
pub mod builder;
pub mod completion;
pub mod copy;
pub mod dockerfile;
pub mod export;
pub mod history;
pub mod image;
mod image_filter;
pub mod images;
pub mod import;
pub mod info;
pub mod inspect;
pub mod load;
pub mod login;
pub mod logout;
pub mod man;
pub mod prune;
pub mod pull;
pub mod push;
pub mod registry;
pub mod remote;
pub mod rmi;
pub mod run;
pub mod save;
pub mod system;
pub mod tag;
pub mod version;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::output::{ProgressMode, StderrProgress};

/// What every command gets from the global flags.
pub struct Context {
    pub root: Option<PathBuf>,
    pub progress: ProgressMode,
}

impl Context {
    /// Opens (creating when needed) the local store.
    pub fn store(&self) -> anyhow::Result<layerstore::Store> {
        let root = crate::root::store_root(self.root.clone());
        let store = layerstore::Store::open(&root)
            .with_context(|| format!("opening the store at {}", root.display()))?;
        store
            .migrate_ref_names()
            .with_context(|| format!("updating the index of the store at {}", root.display()))?;
        Ok(store)
    }

    pub fn progress(&self) -> StderrProgress {
        StderrProgress::new(self.progress)
    }
}

/// Where a command writes an archive: a file (written atomically) or stdout (refused when it is a terminal).
pub enum ArchiveOutput {
    File { path: PathBuf, temp: PathBuf },
    Stdout,
}

impl ArchiveOutput {
    pub fn new(output: Option<&Path>) -> anyhow::Result<ArchiveOutput> {
        match output {
            Some(path) if path != Path::new("-") => {
                let name = path
                    .file_name()
                    .context("the output path has no file name")?;
                let temp = path.with_file_name(format!(".{}.lade-tmp", name.to_string_lossy()));
                Ok(ArchiveOutput::File {
                    path: path.to_path_buf(),
                    temp,
                })
            }
            _ if std::io::stdout().is_terminal() => {
                anyhow::bail!("cowardly refusing to write an archive to a terminal. Use the -o flag or redirect")
            }
            _ => Ok(ArchiveOutput::Stdout),
        }
    }

    /// Runs `write` with the output stream; a file output is renamed into place only on success.
    pub fn write_with(
        &self,
        write: impl FnOnce(&mut dyn std::io::Write) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        match self {
            ArchiveOutput::Stdout => {
                let stdout = std::io::stdout();
                let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
                write(&mut out)?;
                std::io::Write::flush(&mut out).context("writing to stdout")
            }
            ArchiveOutput::File { path, temp } => {
                let file = std::fs::File::create(temp)
                    .with_context(|| format!("creating {}", temp.display()))?;
                let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
                let result = write(&mut out).and_then(|()| {
                    let file = out.into_inner().map_err(|e| e.into_error())?;
                    file.sync_all()?;
                    std::fs::rename(temp, path)
                        .with_context(|| format!("writing {}", path.display()))
                });
                if result.is_err() {
                    let _ = std::fs::remove_file(temp);
                }
                result
            }
        }
    }
}

/// Opens an input archive: a file, or stdin for `-` or no path.
pub fn open_input(input: Option<&Path>) -> anyhow::Result<Box<dyn std::io::Read>> {
    match input {
        Some(path) if path != Path::new("-") => {
            let file =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            Ok(Box::new(file))
        }
        _ => {
            if std::io::stdin().is_terminal() {
                anyhow::bail!("requested load from stdin, but stdin is empty (a terminal). Use -i FILE or pipe an archive");
            }
            Ok(Box::new(std::io::stdin()))
        }
    }
}
