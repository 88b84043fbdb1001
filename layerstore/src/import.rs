//! Making images from outside content: a root filesystem tarball becomes a one-layer image (`docker import`), and an
//! image's layers flatten into one filesystem tarball (`docker export` of an image).

use std::io::{self, Read, Write};

use crate::config::{ContainerConfig, History, ImageConfig};
use crate::digest::Digest;
use crate::image::Image;
use crate::layer::apply::{apply_layer, ApplyError};
use crate::layer::compress::auto_decompress;
use crate::layer::create::{write_directory, LayerOptions};
use crate::layer::path::clean_entry_path;
use crate::manifest::{Descriptor, Flavour, Platform};
use crate::media_types;
use crate::mutate;
use crate::reference::Reference;
use crate::store::{IoContext, Store, StoreError};

/// Why an import or export failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Writing the blobs or the tag to the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The input could not be read as a tar archive.
    #[error("the input is not a valid tar archive: {0}")]
    Tar(io::Error),
    /// An entry's name climbs out of the root with `..` or has a path prefix; says which entry.
    #[error("unsafe entry in the input: {0}")]
    Unsafe(String),
    /// Applying an image's layers into one root filesystem, to export it flattened, failed.
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

/// What to record in the config of an imported image.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The container config of the new image (entrypoint, command, environment, ...).
    pub config: ContainerConfig,
    /// The `created` time, RFC 3339.
    pub created: String,
    /// The history comment (Docker: `Imported from <source>`, or the `--message`).
    pub comment: String,
}

/// Imports the (optionally compressed) tarball from `reader` as a one-layer image named `names`.
pub fn import_rootfs(
    store: &Store,
    reader: impl Read,
    options: ImportOptions,
    names: &[Reference],
) -> Result<(Descriptor, Digest), ImportError> {
    let _writer = store.writer_lock()?;
    let (_, reader) = auto_decompress(reader).map_err(ImportError::Tar)?;
    let mut blob = store.blob_writer(crate::digest::Algorithm::Sha256)?;
    {
        // Parse the tar while copying it, so that malformed or hostile input is refused.
        let mut tee = TeeReader {
            inner: reader,
            copy: &mut blob,
        };
        let mut archive = crate::layer::tar_guard::archive(&mut tee);
        for entry in archive.entries().map_err(ImportError::Tar)? {
            let entry = entry.map_err(ImportError::Tar)?;
            let path = entry.path().map_err(ImportError::Tar)?;
            clean_entry_path(&path).map_err(ImportError::Unsafe)?;
        }
        io::copy(&mut tee, &mut io::sink()).map_err(ImportError::Tar)?;
    }
    let (layer_digest, layer_size) = blob.commit(None)?;
    let platform = Platform::host();
    let mut config = ImageConfig {
        created: Some(options.created.clone()),
        architecture: platform.architecture,
        os: platform.os,
        variant: platform.variant,
        config: Some(options.config),
        ..ImageConfig::default()
    };
    let mut layers = Vec::new();
    mutate::append_layer(
        &mut config,
        &mut layers,
        Descriptor::new(media_types::OCI_LAYER, layer_digest.clone(), layer_size),
        layer_digest,
        History {
            created: Some(options.created),
            comment: Some(options.comment),
            ..History::default()
        },
    );
    let (descriptor, id) = store_image(store, &config, layers)?;
    store.add_image(&descriptor, names)?;
    Ok((descriptor, id))
}

/// Writes `config` and an OCI manifest over it and `layers` (made by [`mutate::make_image`]); returns the
/// manifest's descriptor and the image ID.
pub fn store_image(
    store: &Store,
    config: &ImageConfig,
    layers: Vec<Descriptor>,
) -> Result<(Descriptor, Digest), StoreError> {
    let (config, manifest) = mutate::make_image(config, layers, Flavour::Oci);
    store.write_blob(&config.bytes)?;
    store.write_blob(&manifest.bytes)?;
    Ok((manifest.descriptor, config.descriptor.digest))
}

/// Writes the merged filesystem of `image` as one tarball to `out`.
pub fn export_flattened<W: Write>(store: &Store, image: &Image, out: W) -> Result<W, ImportError> {
    let scratch = store.temp_dir("export-")?;
    let rootfs = scratch.path().join("rootfs");
    std::fs::create_dir(&rootfs).context(|| "creating the export directory".into())?;
    for layer in &image.manifest.layers {
        let (_, reader) =
            auto_decompress(store.open_blob(&layer.digest)?).map_err(ImportError::Tar)?;
        apply_layer(reader, &rootfs)?;
    }
    write_directory(&rootfs, out, LayerOptions::default()).map_err(ImportError::Tar)
}

/// A reader that copies everything it reads into a writer.
struct TeeReader<'a, R, W> {
    inner: R,
    copy: &'a mut W,
}

impl<R: Read, W: Write> Read for TeeReader<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}
