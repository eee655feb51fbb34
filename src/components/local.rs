//! A local mapping from image reference to a component `.wasm` file, decoded once and cached
//! until the file changes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::wit::{decode_component, ComponentWorld};

use super::{SourceError, SourceFuture, WorldSource};

/// Largest component file accepted (hostile or runaway inputs are refused, not decoded).
pub const MAX_COMPONENT_BYTES: u64 = 64 * 1024 * 1024;

type Stamp = (SystemTime, u64);

/// Image -> file mapping with a decode cache keyed by the file's modification stamp.
#[derive(Default)]
pub struct LocalFileSource {
    files: HashMap<String, PathBuf>,
    cache: Mutex<HashMap<String, (Stamp, Arc<ComponentWorld>)>>,
}

impl LocalFileSource {
    /// A source for `files` (image reference -> .wasm path).
    pub fn new(files: HashMap<String, PathBuf>) -> Self {
        Self {
            files,
            cache: Mutex::default(),
        }
    }

    /// Parses `IMAGE=FILE` pairs as given on the command line.
    pub fn parse_mapping(pairs: &[String]) -> Result<HashMap<String, PathBuf>, String> {
        pairs
            .iter()
            .map(|p| match p.rsplit_once('=') {
                Some((image, file)) if !image.is_empty() && !file.is_empty() => {
                    Ok((image.to_string(), PathBuf::from(file)))
                }
                _ => Err(format!("--component {p:?}: expected IMAGE=FILE.wasm")),
            })
            .collect()
    }

    async fn load(&self, image: &str) -> Result<Option<Arc<ComponentWorld>>, SourceError> {
        let Some(path) = self.files.get(image) else {
            return Ok(None);
        };
        let unavailable = |message: String| SourceError::Unavailable {
            image: image.to_string(),
            message,
        };
        let meta = tokio::fs::metadata(path)
            .await
            .map_err(|e| unavailable(format!("cannot read {}: {e}", path.display())))?;
        if meta.len() > MAX_COMPONENT_BYTES {
            return Err(SourceError::Invalid {
                image: image.to_string(),
                source: crate::wit::WitError::Corrupt(format!(
                    "{} is {} bytes, over the {MAX_COMPONENT_BYTES}-byte limit",
                    path.display(),
                    meta.len()
                )),
            });
        }
        let stamp = (
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        );
        if let Some((cached, world)) = self.cache.lock().ok().and_then(|c| c.get(image).cloned()) {
            if cached == stamp {
                return Ok(Some(world));
            }
        }
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| unavailable(format!("cannot read {}: {e}", path.display())))?;
        // Decoding is CPU work: keep it off the async workers.
        let world = tokio::task::spawn_blocking(move || decode_component(&bytes))
            .await
            .map_err(|e| unavailable(format!("decoder task failed: {e}")))?
            .map_err(|source| SourceError::Invalid {
                image: image.to_string(),
                source,
            })?;
        let world = Arc::new(world);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(image.to_string(), (stamp, world.clone()));
        }
        Ok(Some(world))
    }
}

impl WorldSource for LocalFileSource {
    fn world<'a>(&'a self, image: &'a str) -> SourceFuture<'a> {
        Box::pin(self.load(image))
    }
}
