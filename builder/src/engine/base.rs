//! Where a stage starts: `FROM scratch` (an empty config with BuildKit's default PATH), another stage's result, or
//! an image from the store — pulled through the build's [`super::ImagePuller`] when missing, or always with
//! `--pull` — with its config reduced to the fields BuildKit carries into a build.

use layerstore::config::{ContainerConfig, ImageConfig};
use layerstore::{Digest, Image, Platform, Reference, Store};

use super::cache::base_key;
use super::config_edit;
use super::plan::DEFAULT_PATH;
use super::stages::{Engine, StageResult};
use super::state::set_var;
use super::StepError;
use crate::snapshot::LayerRef;
use lade_dockerfile::BaseImage;

/// The config a `FROM scratch` stage starts with.
pub(super) fn scratch_config() -> ImageConfig {
    let platform = layerstore::Platform::host();
    ImageConfig {
        architecture: platform.architecture,
        os: platform.os,
        variant: platform.variant,
        config: Some(ContainerConfig {
            env: Some(vec![format!("PATH={DEFAULT_PATH}")]),
            working_dir: Some("/".into()),
            ..ContainerConfig::default()
        }),
        ..ImageConfig::default()
    }
}

impl Engine<'_> {
    /// The config, layers and cache key a stage starts from.
    pub(super) fn base(&self, base: &BaseImage) -> Result<StageResult, StepError> {
        match base {
            BaseImage::Scratch => {
                let config = scratch_config();
                Ok(StageResult {
                    vars: config_edit::env(&config),
                    config,
                    layers: Vec::new(),
                    key: base_key("scratch"),
                    recipe: base_key("scratch"),
                    records: Vec::new(),
                })
            }
            BaseImage::Stage(index) => {
                let mut result = self
                    .results
                    .lock()
                    .expect("not poisoned")
                    .get(index)
                    .cloned()
                    .ok_or_else(|| {
                        StepError::Unsupported(format!(
                            "stage {index} is not built before it is used"
                        ))
                    })?;
                // BuildKit starts from the base stage's variables and applies the base's ENV over them again, so an
                // ARG there that shadowed an ENV yields to the ENV here.
                for (key, value) in config_edit::env(&result.config) {
                    set_var(&mut result.vars, &key, value);
                }
                Ok(result)
            }
            BaseImage::Image(reference) => {
                let image = self.find_image(reference)?;
                let key = base_key(&image.digest().to_string());
                let layers = LayerRef::of_image(&image);
                let config = known_fields_only(image.config);
                Ok(StageResult {
                    layers,
                    vars: config_edit::env(&config),
                    config,
                    recipe: key.clone(),
                    key,
                    records: Vec::new(),
                })
            }
        }
    }

    /// The source a COPY/ADD `--from` (or RUN bind `from=`) names: a stage's or an image's layers, and the digest
    /// that stands for their content (a stage's recipe, an image's base key).
    pub(super) fn layers_of(&self, from: &str) -> Result<(Vec<LayerRef>, Digest), StepError> {
        if let Some(index) = self.stage_index(from) {
            let results = self.results.lock().expect("not poisoned");
            let result = results.get(&index).ok_or_else(|| {
                StepError::Unsupported(format!("stage {from} is not built before it is used"))
            })?;
            return Ok((result.layers.clone(), result.recipe.clone()));
        }
        let image = self.find_image(from)?;
        let key = base_key(&image.digest().to_string());
        Ok((LayerRef::of_image(&image), key))
    }

    /// An image from the store, pulled first when it is missing (or, with `--pull`, always) and a puller is
    /// available.
    fn find_image(&self, reference: &str) -> Result<Image, StepError> {
        let puller = self.services.puller;
        let pull = |puller: &dyn super::ImagePuller| {
            let image = Reference::parse_tagged(reference).map_err(|error| StepError::Image {
                image: reference.to_string(),
                message: error.to_string(),
            })?;
            // RUN steps run natively, so the base is this host's platform.
            puller
                .pull(&image, &Platform::host())
                .map_err(|source| StepError::PullFailed { image, source })
        };
        if let (true, Some(puller)) = (self.request.pull, puller) {
            // Held while pulling, so that parallel stages wait for the one pull of an image.
            let mut pulled = self.pulled.lock().expect("not poisoned");
            if pulled.insert(reference.to_string()) {
                pull(puller)?;
            }
        }
        let lookup = |store: &Store| match store.find_image_by_reference(reference) {
            Ok(found) => Ok(Some(found.image)),
            Err(layerstore::tags::TagError::NotFound(_)) => Ok(None),
            Err(e) => Err(StepError::Image {
                image: reference.to_string(),
                message: e.to_string(),
            }),
        };
        if let Some(image) = lookup(self.store)? {
            return Ok(image);
        }
        let Some(puller) = puller else {
            return Err(StepError::BaseImageMissing(reference.to_string()));
        };
        pull(puller)?;
        lookup(self.store)?.ok_or_else(|| StepError::BaseImageMissing(reference.to_string()))
    }
}

/// A base image's config as BuildKit carries it into a build: only the fields of the OCI image config and Docker's
/// build-relevant extensions (Healthcheck, OnBuild, Shell, ArgsEscaped); the rest (`container_config`,
/// `docker_version`, `Hostname`, …) is dropped.
pub(super) fn known_fields_only(mut config: ImageConfig) -> ImageConfig {
    config.extra.clear();
    if let Some(inner) = config.config.as_mut() {
        inner.extra.clear();
        // Go's `omitempty`: empty strings and collections are not written.
        for text in [
            &mut inner.user,
            &mut inner.working_dir,
            &mut inner.stop_signal,
        ] {
            if text.as_deref() == Some("") {
                *text = None;
            }
        }
        for list in [
            &mut inner.env,
            &mut inner.entrypoint,
            &mut inner.cmd,
            &mut inner.on_build,
            &mut inner.shell,
        ] {
            if list.as_ref().is_some_and(Vec::is_empty) {
                *list = None;
            }
        }
        for map in [&mut inner.exposed_ports, &mut inner.volumes] {
            if map.as_ref().is_some_and(|m| m.is_empty()) {
                *map = None;
            }
        }
        if inner.labels.as_ref().is_some_and(|m| m.is_empty()) {
            inner.labels = None;
        }
        if let Some(healthcheck) = inner.healthcheck.as_mut() {
            healthcheck.extra.clear();
        }
    }
    config.rootfs.extra.clear();
    for step in &mut config.history {
        step.extra.clear();
    }
    config
}
