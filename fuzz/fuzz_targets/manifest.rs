//! Fuzzes manifest, index and image config parsing under every media type a transport may claim.
#![no_main]

use layerstore::{ImageConfig, ManifestKind};
use libfuzzer_sys::fuzz_target;

const MEDIA_TYPES: [&str; 5] = [
    "",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let media_type = MEDIA_TYPES[selector as usize % MEDIA_TYPES.len()];
    if let Ok(kind) = ManifestKind::parse(bytes, media_type) {
        match kind {
            ManifestKind::Image(manifest) => drop(serde_json_roundtrip(&*manifest)),
            ManifestKind::Index(index) => drop(serde_json_roundtrip(&*index)),
        }
    }
    if let Ok(config) = serde_json::from_slice::<ImageConfig>(bytes) {
        serde_json_roundtrip(&config);
    }
});

fn serde_json_roundtrip<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("a parsed manifest serializes")
}
