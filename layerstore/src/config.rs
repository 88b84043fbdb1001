//! The image configuration: every field of the OCI image spec plus Docker's extensions (Healthcheck, OnBuild,
//! Shell, ...). Unknown fields are kept in `extra` maps so that a config read and written again loses nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::digest::Digest;

/// An image config document (`application/vnd.oci.image.config.v1+json` or Docker's
/// `application/vnd.docker.container.image.v1+json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    // Fields in alphabetical order, the order BuildKit writes them in (it marshals the config through a map).
    #[serde(default)]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    #[serde(default)]
    pub os: String,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The execution parameters of a container made from the image (the config's `config` member).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "empty_text")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "empty_map")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "empty_list")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "empty_list")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "empty_list")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "empty_map")]
    pub volumes: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "empty_text")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "empty_map")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "empty_text")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    /// Written even when unset, as `null`: Docker's and BuildKit's config structs have no `omitempty` on it.
    #[serde(default)]
    pub on_build: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "empty_list")]
    pub shell: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

// Go's `omitempty`, which Docker's and the OCI config structs put on these fields: an empty value is not written.
fn empty_text(value: &Option<String>) -> bool {
    value.as_deref().is_none_or(str::is_empty)
}

fn empty_list(value: &Option<Vec<String>>) -> bool {
    value.as_ref().is_none_or(Vec::is_empty)
}

fn empty_map<V>(value: &Option<BTreeMap<String, V>>) -> bool {
    value.as_ref().is_none_or(BTreeMap::is_empty)
}

/// Docker's HEALTHCHECK settings; durations are in nanoseconds as Docker stores them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The layer DiffIDs (digests of the uncompressed layer tars), bottom first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".to_string(),
            diff_ids: Vec::new(),
            extra: Map::new(),
        }
    }
}

/// One step of the image's history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ImageConfig {
    /// The container config, created empty when absent.
    pub fn container_config_mut(&mut self) -> &mut ContainerConfig {
        self.config.get_or_insert_with(ContainerConfig::default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_fields_and_unknowns_round_trip() {
        let raw = r#"{"architecture":"amd64","config":{"Env":["PATH=/bin"],"Cmd":["/bin/sh"],"Healthcheck":{"Test":["CMD","true"],"Interval":1000000000},"OnBuild":["RUN x"],"Shell":["/bin/bash","-c"],"Hostname":""},"created":"2020-01-01T00:00:00Z","history":[{"created_by":"x","empty_layer":true}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]},"container":"abc"}"#;
        let c: ImageConfig = serde_json::from_str(raw).unwrap();
        assert_eq!(
            c.config.as_ref().unwrap().on_build.as_ref().unwrap()[0],
            "RUN x"
        );
        assert!(c.history[0].empty_layer);
        assert_eq!(serde_json::to_string(&c).unwrap(), raw);
    }
}
