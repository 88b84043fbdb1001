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
    /// The CPU architecture the image's binaries are built for, in Go's `GOARCH` spelling (`amd64`, `arm64`, ...).
    #[serde(default)]
    pub architecture: String,
    /// The name and/or email of the person or entity that created the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The defaults for a container run from the image (user, environment, entrypoint, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    /// When the image was created, as an RFC 3339 date-time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The build steps that made the image, oldest first; `empty_layer` entries produced no layer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    /// The operating system the image runs on, in Go's `GOOS` spelling (`linux`, `windows`, ...).
    #[serde(default)]
    pub os: String,
    /// OS features the image requires (`os.features`), e.g. `win32k` on Windows.
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    /// The operating system version the image targets (`os.version`), used by Windows images.
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// The layers' DiffIDs, which tie the config to the uncompressed layer content.
    #[serde(default)]
    pub rootfs: RootFs,
    /// The CPU variant within the architecture (`v7` for `arm`, `v8` for `arm64`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Top-level members this type does not model, kept so that they are written back unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The execution parameters of a container made from the image (the config's `config` member).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    /// The user (and optionally group) the process runs as: `name`, `uid`, `uid:gid` or `name:group`.
    #[serde(default, skip_serializing_if = "empty_text")]
    pub user: Option<String>,
    /// Ports to expose, keyed `port/protocol` (`80/tcp`); the values are empty objects.
    #[serde(default, skip_serializing_if = "empty_map")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    /// Environment variables as `NAME=value` entries.
    #[serde(default, skip_serializing_if = "empty_list")]
    pub env: Option<Vec<String>>,
    /// The command run when the container starts; `cmd` is appended to it as arguments.
    #[serde(default, skip_serializing_if = "empty_list")]
    pub entrypoint: Option<Vec<String>>,
    /// Default arguments to the entrypoint, or the command itself when there is no entrypoint.
    #[serde(default, skip_serializing_if = "empty_list")]
    pub cmd: Option<Vec<String>>,
    /// Paths to mount volumes at, as keys; the values are empty objects.
    #[serde(default, skip_serializing_if = "empty_map")]
    pub volumes: Option<BTreeMap<String, Value>>,
    /// The working directory of the process; an absolute path inside the container.
    #[serde(default, skip_serializing_if = "empty_text")]
    pub working_dir: Option<String>,
    /// Arbitrary metadata as key-value pairs (Dockerfile `LABEL`).
    #[serde(default, skip_serializing_if = "empty_map")]
    pub labels: Option<BTreeMap<String, String>>,
    /// The signal sent to stop the container, by name (`SIGTERM`) or number.
    #[serde(default, skip_serializing_if = "empty_text")]
    pub stop_signal: Option<String>,
    /// How to check that the container is still working (Dockerfile `HEALTHCHECK`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// Whether the command line is already escaped for Windows (Docker's `ArgsEscaped`; legacy, Windows only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    /// Written even when unset, as `null`: Docker's and BuildKit's config structs have no `omitempty` on it.
    #[serde(default)]
    pub on_build: Option<Vec<String>>,
    /// The shell used by the shell form of `RUN`, `CMD` and `ENTRYPOINT` (Dockerfile `SHELL`); Docker's default is `["/bin/sh", "-c"]`.
    #[serde(default, skip_serializing_if = "empty_list")]
    pub shell: Option<Vec<String>>,
    /// Members this type does not model (such as `Hostname`), kept so that they are written back unchanged.
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
    /// The check to run: `["NONE"]` disables an inherited check, `["CMD", args...]` runs the command directly, `["CMD-SHELL", command]` runs it with the shell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    /// Nanoseconds between two checks; Docker's default when unset is 30 seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    /// Nanoseconds one check may run before it counts as failed; Docker's default when unset is 30 seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    /// Nanoseconds after start during which failed checks do not count against `retries`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    /// Nanoseconds between checks during the start period (Docker 25 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    /// Consecutive failures needed to report the container unhealthy; Docker's default when unset is 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
    /// Members this type does not model, kept so that they are written back unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The layer DiffIDs (digests of the uncompressed layer tars), bottom first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    /// The rootfs type (`type`); the only value the spec allows is `layers`, the default.
    #[serde(rename = "type")]
    pub kind: String,
    /// The DiffIDs: one digest of each uncompressed layer tar, in the order the layers are applied.
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
    /// Members this type does not model, kept so that they are written back unchanged.
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
    /// When the step ran, as an RFC 3339 date-time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The command that made the step, e.g. a Dockerfile instruction as BuildKit renders it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// The author of the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// A free-form comment about the step (BuildKit writes `buildkit.dockerfile.v0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// True when the step changed only the config and added no layer, so it has no entry in `rootfs.diff_ids`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
    /// Members this type does not model, kept so that they are written back unchanged.
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
