//! Small images written into a store, for the crate's unit tests.

use crate::config::{History, ImageConfig};
use crate::image::Image;
use crate::manifest::{Descriptor, Flavour, Platform};
use crate::media_types;
use crate::mutate;
use crate::store::Store;

/// A layer tar holding one file, `file`, with `content`.
pub fn layer_tar(content: &[u8]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    tar.append_data(&mut header, "file", content).unwrap();
    tar.into_inner().unwrap()
}

/// Writes an OCI image for the host's platform, with a layer per item of `layers` (a file of that content), into
/// `store` and reads it back.
pub fn write_image(store: &Store, layers: &[&[u8]]) -> Image {
    let mut config = ImageConfig {
        architecture: Platform::host().architecture,
        os: "linux".into(),
        ..ImageConfig::default()
    };
    let mut descriptors = Vec::new();
    for content in layers {
        let layer = layer_tar(content);
        let digest = store.write_blob(&layer).unwrap();
        let descriptor =
            Descriptor::new(media_types::OCI_LAYER, digest.clone(), layer.len() as u64);
        mutate::append_layer(
            &mut config,
            &mut descriptors,
            descriptor,
            digest,
            History::default(),
        );
    }
    let (config_doc, manifest_doc) = mutate::make_image(&config, descriptors, Flavour::Oci);
    store.write_blob(&config_doc.bytes).unwrap();
    store.write_blob(&manifest_doc.bytes).unwrap();
    Image::read(store, &manifest_doc.descriptor).unwrap()
}
