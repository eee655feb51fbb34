//! A local mapping from image reference to a component `.wasm` file, decoded once and cached
//! until the file changes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::wit::{decode_component, ComponentWorld};

use super::{SourceError, SourceFuture, WorldSource};

/// Largest component file accepted (hostile or runaway inputs are refused, not decoded).
pub const MAX_COMPONENT_BYTES: u64 = 64 * 1024 * 1024;

/// How long a decoded file is trusted before its stamp is read again: a `stat` goes through
/// tokio's blocking pool, a thread hand-off that cost more than the whole review when it ran for
/// every component of every review (issue 17). An edited file is noticed within this time.
pub const RECHECK_AFTER: Duration = Duration::from_secs(1);

type Stamp = (SystemTime, u64);

/// A decoded file: its stamp, its world, and when the stamp was last read.
type Cached = (Stamp, Arc<ComponentWorld>, Instant);

/// Image -> file mapping with a decode cache keyed by the file's modification stamp.
#[derive(Default)]
pub struct LocalFileSource {
    files: HashMap<String, PathBuf>,
    cache: Mutex<HashMap<String, Cached>>,
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
        if let Some(world) = self.cache.lock().ok().and_then(|c| {
            c.get(image)
                .filter(|(_, _, checked)| checked.elapsed() < RECHECK_AFTER)
                .map(|(_, world, _)| world.clone())
        }) {
            return Ok(Some(world));
        }
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
        if let Ok(mut cache) = self.cache.lock() {
            if let Some((cached, world, checked)) = cache.get_mut(image) {
                if *cached == stamp {
                    *checked = Instant::now();
                    return Ok(Some(world.clone()));
                }
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
            cache.insert(image.to_string(), (stamp, world.clone(), Instant::now()));
        }
        Ok(Some(world))
    }
}

impl WorldSource for LocalFileSource {
    fn world<'a>(&'a self, image: &'a str) -> SourceFuture<'a> {
        Box::pin(self.load(image))
    }
}

#[cfg(test)]
mod tests {
    use wit_component::{dummy_module, embed_component_metadata, ComponentEncoder, StringEncoding};
    use wit_parser::{ManglingAndAbi, Resolve};

    use super::*;

    fn component(wit: &str) -> Vec<u8> {
        let mut resolve = Resolve::default();
        let pkg = resolve.push_str("c.wit", wit).expect("WIT");
        let world = resolve.select_world(&[pkg], None).expect("a world");
        let mut module = dummy_module(&resolve, world, ManglingAndAbi::Standard32);
        embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8, false)
            .expect("metadata");
        ComponentEncoder::default()
            .module(&module)
            .expect("module")
            .encode()
            .expect("component")
    }

    const ONE: &str = "package test:one;\ninterface api { f: func(); }\nworld w { import api; }\n";
    const TWO: &str = "package test:two;\ninterface api { f: func(); }\ninterface out { g: func(); }\nworld w { import api; export out; }\n";

    #[tokio::test]
    async fn a_decoded_file_is_served_from_memory_and_an_edit_is_seen_after_the_recheck_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.wasm");
        std::fs::write(&path, component(ONE)).expect("write");
        let source = LocalFileSource::new(HashMap::from([("img:1".to_string(), path.clone())]));
        let first = source.load("img:1").await.expect("loads").expect("mapped");
        // Served from memory within the recheck time, even though the file changed.
        std::fs::write(&path, component(TWO)).expect("rewrite");
        let cached = source.load("img:1").await.expect("loads").expect("mapped");
        assert!(Arc::ptr_eq(&first, &cached));
        // After it, the stamp is read again and the new component decoded.
        tokio::time::sleep(RECHECK_AFTER + Duration::from_millis(100)).await;
        let edited = source.load("img:1").await.expect("loads").expect("mapped");
        assert!(!Arc::ptr_eq(&first, &edited));
        assert_ne!(*first, *edited);
        assert_eq!(edited.exports.len(), 1);
        // An image that is not mapped is not this source's.
        assert!(source.load("img:2").await.expect("no error").is_none());
    }
}
