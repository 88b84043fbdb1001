//! The SIZE Docker shows for a layer (`docker images`, `docker history`): the bytes of content the layer adds once
//! unpacked, that is its regular files' sizes and its symlinks' target lengths (hard links once, directories and
//! whiteouts nothing), as moby's `directory.Size` counts a layer's diff directory. Not the tar's size (headers and
//! padding) nor the compressed blob's. Computed once per layer blob by reading it through, then remembered in the
//! store under `sizes/<algorithm>/<hex>` (a decimal number, written atomically).

use std::fs;
use std::io;
use std::path::PathBuf;

use crate::fsutil;
use crate::layer::compress::auto_decompress;
use crate::layer::tar_guard;
use crate::store::IoContext;
use crate::{Descriptor, Digest, Image, Store, StoreError};

impl Store {
    /// The content size of the layer blob `digest` (compressed or not), from the remembered figure or by reading
    /// the layer.
    pub fn layer_content_size(&self, digest: &Digest) -> Result<u64, StoreError> {
        let remembered = self.size_path(digest);
        if let Some(size) = fs::read_to_string(&remembered)
            .ok()
            .and_then(|text| text.trim().parse().ok())
        {
            return Ok(size);
        }
        let blob = self.open_blob(digest)?;
        let size = tar_content_size(blob).context(|| format!("reading layer {digest}"))?;
        if let Some(dir) = remembered.parent() {
            // A cache: a failure to remember costs a re-read next time, nothing more.
            let _ = fs::create_dir_all(dir)
                .and_then(|()| fsutil::write_atomic(&remembered, size.to_string().as_bytes()));
        }
        Ok(size)
    }

    /// Docker's SIZE of an image: the content sizes of its layers, summed. A layer the store cannot read (a sparse
    /// image) counts its descriptor's size.
    pub fn image_content_size(&self, image: &Image) -> u64 {
        image
            .manifest
            .layers
            .iter()
            .map(|layer| self.descriptor_content_size(layer))
            .sum()
    }

    /// [`Store::layer_content_size`] of a layer descriptor, or its size where the layer cannot be read.
    pub fn descriptor_content_size(&self, layer: &Descriptor) -> u64 {
        self.layer_content_size(&layer.digest).unwrap_or(layer.size)
    }

    /// Drops the remembered size of a blob being removed.
    pub(crate) fn forget_content_size(&self, digest: &Digest) {
        let _ = fs::remove_file(self.size_path(digest));
    }

    fn size_path(&self, digest: &Digest) -> PathBuf {
        self.root()
            .join("sizes")
            .join(digest.algorithm().name())
            .join(digest.hex())
    }
}

/// Sums the content of a (possibly gzip- or zstd-compressed) layer tar.
pub fn tar_content_size(reader: impl io::Read) -> io::Result<u64> {
    let (_, plain) = auto_decompress(reader)?;
    let mut archive = tar_guard::archive(plain);
    let mut size = 0u64;
    for entry in archive.entries()? {
        let entry = entry?;
        let kind = entry.header().entry_type();
        size += if kind.is_file() || kind.is_contiguous() {
            entry.size()
        } else if kind.is_symlink() {
            entry
                .link_name_bytes()
                .map_or(0, |target| target.len() as u64)
        } else {
            0
        };
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer() -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut dir = tar::Header::new_gnu();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_size(0);
        builder.append_data(&mut dir, "etc/", io::empty()).unwrap();
        let mut file = tar::Header::new_gnu();
        file.set_size(5);
        builder
            .append_data(&mut file, "etc/hostname", &b"hello"[..])
            .unwrap();
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        builder
            .append_link(&mut link, "etc/name", "hostname")
            .unwrap();
        let mut hard = tar::Header::new_gnu();
        hard.set_entry_type(tar::EntryType::Link);
        hard.set_size(0);
        builder
            .append_link(&mut hard, "etc/again", "etc/hostname")
            .unwrap();
        builder.into_inner().unwrap()
    }

    #[test]
    fn counts_file_content_and_symlink_targets_not_tar_bytes() {
        let tar = layer();
        assert_eq!(
            tar_content_size(&tar[..]).unwrap(),
            5 + "hostname".len() as u64
        );
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gzip, &tar).unwrap();
        let gzip = gzip.finish().unwrap();
        assert_eq!(tar_content_size(&gzip[..]).unwrap(), 13);
    }

    #[test]
    fn the_store_remembers_a_layers_size() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let digest = store.write_blob(&layer()).unwrap();
        assert_eq!(store.layer_content_size(&digest).unwrap(), 13);
        let remembered = store.size_path(&digest);
        assert_eq!(fs::read_to_string(&remembered).unwrap(), "13");
        fs::write(&remembered, "7").unwrap();
        assert_eq!(
            store.layer_content_size(&digest).unwrap(),
            7,
            "read back, not recomputed"
        );
    }
}
