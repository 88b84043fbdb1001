//! The build's exporters (`lade build -o`, BuildKit's `--output`): the built image as a `docker save`-style archive
//! in OCI or Docker media types, its merged filesystem as one tarball, or that filesystem written into a directory.
//!
//! [`Exporter::parse`] reads BuildKit's syntax (`type=oci|docker|tar|local,dest=…` and the shorthands `-o DIR` and
//! `-o -`); the caller opens the destination of a stream exporter (a file written atomically, or stdout) and hands
//! it to [`Exporter::write_stream`], or lets [`Exporter::write_directory`] fill a `local` one.

use std::io::Write;
use std::path::{Path, PathBuf};

use layerstore::archive::save::{save, SaveItem};
use layerstore::layer::apply::{apply_layer, ApplyError};
use layerstore::layer::compress::auto_decompress;
use layerstore::manifest::Flavour;
use layerstore::mutate::MutateError;
use layerstore::progress::NoProgress;
use layerstore::transport::StoreSource;
use layerstore::{Image, Reference, Store, StoreError};

/// Why an output could not be parsed or written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The `--output` text is not one BuildKit accepts.
    #[error("--output {text:?}: {reason}")]
    Syntax {
        /// The flag's value.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The store could not give the image's content, or the archive could not be written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The image could not be read from the store while the archive was written, or a blob did not verify.
    #[error(transparent)]
    Transport(#[from] layerstore::transport::TransportError),
    /// The image's manifest could not be rewritten in the requested media types.
    #[error(transparent)]
    Mutate(#[from] MutateError),
    /// The merged filesystem could not be written.
    #[error(transparent)]
    Import(#[from] layerstore::import::ImportError),
    /// A layer could not be unpacked into the destination directory.
    #[error("unpacking into {dir}: {source}")]
    Unpack {
        /// The `local` destination.
        dir: PathBuf,
        /// Why the layer was refused.
        source: ApplyError,
    },
    /// The destination directory could not be made, or a layer not read.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The failure.
        source: std::io::Error,
    },
}

/// Where and how the built image goes instead of being tagged in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exporter {
    /// A tarball with the image in this manifest flavour (`type=docker` or `type=oci`); `-` is stdout.
    Archive {
        /// The file, or `-`.
        dest: PathBuf,
        /// OCI or Docker media types.
        flavour: Flavour,
    },
    /// The image's merged filesystem as one tarball (`type=tar`); `-` is stdout.
    Tar {
        /// The file, or `-`.
        dest: PathBuf,
    },
    /// The merged filesystem written into a directory (`type=local`).
    Local {
        /// The directory, made when missing.
        dest: PathBuf,
    },
}

impl Exporter {
    /// Parses `-o`'s value: `type=…,dest=…`, a directory (`type=local`) or `-` (`type=tar` to stdout).
    pub fn parse(text: &str) -> Result<Exporter, ExportError> {
        let syntax = |reason: String| ExportError::Syntax {
            text: text.to_string(),
            reason,
        };
        if text == "-" {
            return Ok(Exporter::Tar {
                dest: PathBuf::from("-"),
            });
        }
        if !text.contains('=') {
            return Ok(Exporter::Local {
                dest: PathBuf::from(text),
            });
        }
        let mut kind = None;
        let mut dest = None;
        for field in text.split(',') {
            match field.split_once('=') {
                Some(("type", value)) => kind = Some(value),
                Some(("dest", value)) => dest = Some(PathBuf::from(value)),
                // Other attributes (BuildKit's `name=`, `compression=`, …) are accepted and ignored.
                Some((key, _)) if !key.is_empty() => {}
                _ => return Err(syntax(format!("{field:?}: expected KEY=VALUE"))),
            }
        }
        let dest = dest.ok_or_else(|| syntax("missing dest=".to_string()))?;
        match kind {
            Some("oci") => Ok(Exporter::Archive {
                dest,
                flavour: Flavour::Oci,
            }),
            Some("docker") => Ok(Exporter::Archive {
                dest,
                flavour: Flavour::Docker,
            }),
            Some("tar") => Ok(Exporter::Tar { dest }),
            Some("local") => Ok(Exporter::Local { dest }),
            other => Err(syntax(format!(
                "unsupported type {other:?} (oci, docker, tar or local)"
            ))),
        }
    }

    /// The file (or `-` for stdout) a stream exporter writes; `None` for a directory.
    pub fn stream_destination(&self) -> Option<&Path> {
        match self {
            Exporter::Archive { dest, .. } | Exporter::Tar { dest } => Some(dest),
            Exporter::Local { .. } => None,
        }
    }

    /// Whether the output goes to stdout, which then carries nothing else.
    pub fn is_stdout(&self) -> bool {
        self.stream_destination()
            .is_some_and(|dest| dest.as_os_str() == "-")
    }

    /// Writes the archive or tarball of `image` (tagged `names` in an archive) to `out`. A `local` exporter writes
    /// nothing here: use [`Exporter::write_directory`].
    pub fn write_stream(
        &self,
        store: &Store,
        image: &Image,
        names: &[Reference],
        out: &mut dyn Write,
    ) -> Result<(), ExportError> {
        match self {
            Exporter::Archive { flavour, .. } => {
                let image = in_flavour(store, image, *flavour)?;
                let item = SaveItem {
                    source: &StoreSource::new(store, &image),
                    index: None,
                    names: names.to_vec(),
                };
                save(std::slice::from_ref(&item), out, &NoProgress)?;
            }
            Exporter::Tar { .. } => {
                layerstore::import::export_flattened(store, image, out)?;
            }
            Exporter::Local { .. } => {}
        }
        Ok(())
    }

    /// Unpacks `image`'s layers, in order, into a `local` exporter's directory; other exporters write nothing here.
    pub fn write_directory(&self, store: &Store, image: &Image) -> Result<(), ExportError> {
        let Exporter::Local { dest } = self else {
            return Ok(());
        };
        std::fs::create_dir_all(dest).map_err(|source| ExportError::Io {
            context: format!("creating {}", dest.display()),
            source,
        })?;
        for layer in &image.manifest.layers {
            let (_, reader) =
                auto_decompress(store.open_blob(&layer.digest)?).map_err(|source| {
                    ExportError::Io {
                        context: format!("reading layer {}", layer.digest),
                        source,
                    }
                })?;
            apply_layer(reader, dest).map_err(|source| ExportError::Unpack {
                dir: dest.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

/// The image with its manifest rewritten in `flavour` (media types only; the image ID stays), stored.
fn in_flavour(store: &Store, image: &Image, flavour: Flavour) -> Result<Image, ExportError> {
    let image = layerstore::mutate::set_flavour(image, flavour)?;
    store.write_blob(&image.manifest_bytes)?;
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Exporter {
        Exporter::parse(text).expect("valid")
    }

    #[test]
    fn buildkit_shorthands_and_types_parse() {
        assert_eq!(
            parse("-"),
            Exporter::Tar {
                dest: PathBuf::from("-")
            }
        );
        assert_eq!(
            parse("out/dir"),
            Exporter::Local {
                dest: PathBuf::from("out/dir")
            }
        );
        assert_eq!(
            parse("type=docker,dest=a.tar"),
            Exporter::Archive {
                dest: PathBuf::from("a.tar"),
                flavour: Flavour::Docker
            }
        );
        assert_eq!(
            parse("dest=-,type=oci"),
            Exporter::Archive {
                dest: PathBuf::from("-"),
                flavour: Flavour::Oci
            }
        );
        assert!(parse("type=tar,dest=-").is_stdout());
        assert!(!parse("type=local,dest=x").is_stdout());
        assert_eq!(parse("type=local,dest=x").stream_destination(), None);
    }

    #[test]
    fn bad_outputs_say_what_is_wrong() {
        let message = |text: &str| Exporter::parse(text).unwrap_err().to_string();
        assert_eq!(message("type=oci"), "--output \"type=oci\": missing dest=");
        assert!(message("type=image,dest=x").contains("unsupported type Some(\"image\")"));
        assert_eq!(
            parse("type=oci,dest=x,name=app:1"),
            Exporter::Archive {
                dest: PathBuf::from("x"),
                flavour: Flavour::Oci
            }
        );
        assert!(message("type=oci,,dest=x").contains("expected KEY=VALUE"));
    }
}
