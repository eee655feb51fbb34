//! The static inventory file: a `List` or multi-document YAML/JSON of Host objects (the output
//! of `kubectl get hosts -o yaml` is valid), reloaded when it changes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::crd::Host;
use crate::manifest::{parse_objects, ManifestError};

use super::SharedInventory;

/// Why an inventory file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The file could not be read.
    #[error("cannot read inventory {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid YAML/JSON.
    #[error("cannot parse inventory {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: ManifestError,
    },
    /// A Host object has the wrong shape.
    #[error("inventory {path}: Host #{index} ({name}): {message}")]
    Host {
        /// The file.
        path: PathBuf,
        /// Position among the Host objects.
        index: usize,
        /// Its name, if readable.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A Host written to the live inventory is invalid (HTTP 422).
    #[error("Host {name:?} is invalid: {field}: {message}")]
    Invalid {
        /// The object's name (may be empty).
        name: String,
        /// The offending field path.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A write's `metadata.resourceVersion` precondition failed (HTTP 409).
    #[error("Operation cannot be fulfilled on hosts.wasmgate.dev {name:?}: {message}")]
    Conflict {
        /// The object's name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// Log mode: the write could not be published to the inventory stream (HTTP 503).
    #[error("the inventory log is unavailable: {message}")]
    Unavailable {
        /// Why.
        message: String,
    },
    /// Log mode: the write was published (at `seq`) but this replica did not apply it in time
    /// (HTTP 504); it will be applied.
    #[error("the write was stored in the inventory log at sequence {seq} but not applied here within {waited:?}")]
    Timeout {
        /// The write's stream sequence.
        seq: u64,
        /// How long the request waited.
        waited: std::time::Duration,
    },
}

/// Whether an object is a Host (wasmgate's or upstream's).
pub fn is_host(obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some("Host")
        && obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_none_or(|v| {
                v.starts_with("wasmgate.dev/") || v.starts_with("runtime.wasmcloud.dev/")
            })
}

/// Converts the Host objects among `objects`; other kinds are ignored.
pub fn hosts_from_objects(objects: Vec<Value>, path: &Path) -> Result<Vec<Host>, InventoryError> {
    objects
        .into_iter()
        .filter(is_host)
        .enumerate()
        .map(|(index, obj)| {
            let name = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("<unnamed>")
                .to_string();
            serde_json::from_value::<Host>(obj).map_err(|e| InventoryError::Host {
                path: path.to_path_buf(),
                index,
                name,
                message: e.to_string(),
            })
        })
        .collect()
}

/// Reads the Host objects of an inventory file.
pub fn load_hosts(path: &Path) -> Result<Vec<Host>, InventoryError> {
    let text = std::fs::read_to_string(path).map_err(|source| InventoryError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let objects = parse_objects(&text).map_err(|source| InventoryError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    hosts_from_objects(objects, path)
}

fn modified(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Where a loaded inventory file goes: the plain snapshot holder (`check`) or the live
/// inventory that the `hosts` API also serves (`serve --inventory`).
pub trait ReplaceHosts: Send + Sync + 'static {
    /// Replaces every host with `hosts`.
    fn replace_hosts(&self, hosts: Vec<Host>);
}

impl ReplaceHosts for SharedInventory {
    fn replace_hosts(&self, hosts: Vec<Host>) {
        self.replace(hosts);
    }
}

impl ReplaceHosts for super::LiveInventory {
    fn replace_hosts(&self, hosts: Vec<Host>) {
        self.replace_from_file(hosts, SystemTime::now());
    }
}

/// Polls `path` every `interval` and replaces the inventory when the file changes. A file that
/// stops parsing keeps the last good inventory (and logs why), so a bad edit loses nothing.
pub fn watch_file<I: ReplaceHosts + ?Sized>(
    path: PathBuf,
    inventory: Arc<I>,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = modified(&path);
        let mut ticker = tokio::time::interval(interval);
        loop {
            ticker.tick().await;
            let now = modified(&path);
            if now == last {
                continue;
            }
            last = now;
            let p = path.clone();
            match tokio::task::spawn_blocking(move || load_hosts(&p)).await {
                Ok(Ok(hosts)) => {
                    tracing::info!(path = %path.display(), hosts = hosts.len(), "inventory reloaded");
                    inventory.replace_hosts(hosts);
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "inventory reload failed; keeping the previous inventory")
                }
                Err(e) => tracing::error!(error = %e, "inventory reload task failed"),
            }
        }
    })
}
