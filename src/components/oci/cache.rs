//! The caches behind registry pulls: worlds by manifest digest (memory, bounded by moka, least
//! recently used out first; and on disk), short-lived tag -> digest lookups, and single-flight so
//! concurrent requests for the same thing share one pull.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt, Shared};
use serde::{Deserialize, Serialize};

use crate::wit::{ComponentWorld, InterfaceRef, WorldItemRef};

/// A bounded map whose entries are fresh for a while; stale entries are kept (until pushed out)
/// so a lookup can revalidate them cheaply, or fall back on them when the registry is down.
///
/// moka bounds it (least recently used out first); freshness is ours, since moka's own
/// time-to-live would drop a stale entry that is still worth falling back on.
pub(crate) struct TtlMap<K, V> {
    ttl: Duration,
    map: moka::sync::Cache<K, (V, Instant)>,
}

impl<K, V> TtlMap<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            ttl,
            map: lru(capacity),
        }
    }

    /// The entry if it is younger than the TTL.
    pub(crate) fn fresh(&self, key: &K) -> Option<V> {
        self.map
            .get(key)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(v, _)| v)
    }

    /// The entry, however old.
    pub(crate) fn any(&self, key: &K) -> Option<V> {
        self.map.get(key).map(|(v, _)| v)
    }

    pub(crate) fn insert(&self, key: K, value: V) {
        self.map.insert(key, (value, Instant::now()));
    }
}

/// A bounded in-memory cache, least recently used out first.
pub(crate) fn lru<K, V>(capacity: usize) -> moka::sync::Cache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    moka::sync::Cache::builder()
        .max_capacity(capacity.max(1) as u64)
        .eviction_policy(moka::policy::EvictionPolicy::lru())
        .build()
}

type Flight<T, E> = Shared<BoxFuture<'static, Result<T, E>>>;

/// Runs one task per key at a time; everyone asking for the key meanwhile awaits the same
/// result. The task is spawned, so it finishes (and fills the caches) even if every caller gives
/// up, e.g. when an admission request times out: the next request then finds the cache warm.
/// (moka's own coalescing runs the work inside the first caller, so a cancelled caller would
/// make the next one start the pull over.)
pub(crate) struct SingleFlight<K, T, E> {
    inflight: Arc<Mutex<HashMap<K, Flight<T, E>>>>,
}

impl<K, T, E> SingleFlight<K, T, E>
where
    K: Hash + Eq + Clone + Send + 'static,
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    pub(crate) fn new() -> Self {
        Self {
            inflight: Arc::default(),
        }
    }

    /// Joins the flight for `key`, or starts `task` as a new one. `panicked` builds the error
    /// for a task that panicked.
    pub(crate) async fn run<F>(&self, key: K, task: F, panicked: fn(String) -> E) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        let flight = {
            let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(f) = map.get(&key) {
                f.clone()
            } else {
                let inflight = self.inflight.clone();
                let k = key.clone();
                let handle = tokio::spawn(async move {
                    let out = task.await;
                    inflight
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&k);
                    out
                });
                let f: Flight<T, E> = async move {
                    handle
                        .await
                        .unwrap_or_else(|e| Err(panicked(e.to_string())))
                }
                .boxed()
                .shared();
                map.insert(key, f.clone());
                f
            }
        };
        flight.await
    }
}

/// Format tag of the on-disk world files; bump when the decoding or the format changes.
// 2: types-only imports are recorded (files in format 1 are ignored and pulled again).
const DISK_FORMAT: &str = "wasmgate-world/2";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum DiskItem {
    Interface(String),
    Named { name: String, interface: String },
    Bare(String),
}

#[derive(Serialize, Deserialize)]
struct DiskWorld {
    format: String,
    digest: String,
    imports: Vec<DiskItem>,
    exports: Vec<DiskItem>,
    #[serde(default, rename = "typesOnly")]
    types_only: Vec<String>,
    #[serde(default, rename = "resourceUses")]
    resource_uses: Vec<(String, Vec<String>)>,
}

fn to_disk(items: &[WorldItemRef]) -> Vec<DiskItem> {
    items
        .iter()
        .map(|i| match i {
            WorldItemRef::Interface(r) => DiskItem::Interface(r.to_string()),
            WorldItemRef::Named { name, interface } => DiskItem::Named {
                name: name.clone(),
                interface: interface.to_string(),
            },
            WorldItemRef::Bare(n) => DiskItem::Bare(n.clone()),
        })
        .collect()
}

fn from_disk(items: Vec<DiskItem>) -> Option<Vec<WorldItemRef>> {
    items
        .into_iter()
        .map(|i| {
            Some(match i {
                DiskItem::Interface(r) => WorldItemRef::Interface(r.parse::<InterfaceRef>().ok()?),
                DiskItem::Named { name, interface } => WorldItemRef::Named {
                    name,
                    interface: interface.parse().ok()?,
                },
                DiskItem::Bare(n) => WorldItemRef::Bare(n),
            })
        })
        .collect()
}

/// Decoded worlds on disk, one small JSON file per manifest digest
/// (`DIR/worlds/sha256-<hex>.json`), so a restart does not pull again.
pub(crate) struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    pub(crate) fn new(root: &Path) -> std::io::Result<Self> {
        let dir = root.join("worlds");
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    fn path(&self, digest: &str) -> Option<PathBuf> {
        let (algo, hex) = digest.split_once(':')?;
        let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
        (ok(algo) && ok(hex)).then(|| self.dir.join(format!("{algo}-{hex}.json")))
    }

    pub(crate) async fn get(&self, digest: &str) -> Option<ComponentWorld> {
        let path = self.path(digest)?;
        let bytes = tokio::fs::read(&path).await.ok()?;
        let parsed: Option<ComponentWorld> = serde_json::from_slice::<DiskWorld>(&bytes)
            .ok()
            .filter(|d| d.format == DISK_FORMAT && d.digest == digest)
            .and_then(|d| {
                Some(ComponentWorld {
                    imports: from_disk(d.imports)?,
                    exports: from_disk(d.exports)?,
                    types_only: d
                        .types_only
                        .iter()
                        .map(|r| r.parse::<InterfaceRef>().ok())
                        .collect::<Option<_>>()?,
                    resource_uses: d
                        .resource_uses
                        .iter()
                        .map(|(user, owners)| {
                            Some((
                                user.parse::<InterfaceRef>().ok()?,
                                owners
                                    .iter()
                                    .map(|o| o.parse::<InterfaceRef>().ok())
                                    .collect::<Option<_>>()?,
                            ))
                        })
                        .collect::<Option<_>>()?,
                })
            });
        if parsed.is_none() {
            tracing::warn!(path = %path.display(), "ignoring an unreadable world cache file");
        }
        parsed
    }

    pub(crate) async fn put(&self, digest: &str, world: &ComponentWorld) {
        let Some(path) = self.path(digest) else {
            return;
        };
        let doc = DiskWorld {
            format: DISK_FORMAT.to_string(),
            digest: digest.to_string(),
            imports: to_disk(&world.imports),
            exports: to_disk(&world.exports),
            types_only: world.types_only.iter().map(ToString::to_string).collect(),
            resource_uses: world
                .resource_uses
                .iter()
                .map(|(user, owners)| {
                    (
                        user.to_string(),
                        owners.iter().map(ToString::to_string).collect(),
                    )
                })
                .collect(),
        };
        let Ok(bytes) = serde_json::to_vec(&doc) else {
            return;
        };
        // Write beside, then rename: a reader never sees half a file.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let written = async {
            tokio::fs::write(&tmp, &bytes).await?;
            tokio::fs::rename(&tmp, &path).await
        }
        .await;
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&tmp).await;
            tracing::warn!(path = %path.display(), error = %e, "cannot write the world cache");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn lru_drops_the_least_recently_used() {
        let cache = lru::<String, u32>(2);
        cache.insert("a".into(), 1);
        cache.insert("b".into(), 2);
        cache.run_pending_tasks();
        assert_eq!(cache.get("a"), Some(1));
        cache.run_pending_tasks();
        cache.insert("c".into(), 3);
        cache.run_pending_tasks();
        assert_eq!(cache.get("b"), None);
        assert_eq!(cache.get("a"), Some(1));
        assert_eq!(cache.get("c"), Some(3));
        assert_eq!(cache.entry_count(), 2);
    }

    #[test]
    fn ttl_entries_go_stale_but_stay() {
        let m = TtlMap::new(2, Duration::from_millis(0));
        m.insert("k", 1);
        assert_eq!(m.fresh(&"k"), None);
        assert_eq!(m.any(&"k"), Some(1));
        let m = TtlMap::new(1, Duration::from_secs(60));
        m.insert("k", 1);
        m.map.run_pending_tasks();
        assert_eq!(m.fresh(&"k"), Some(1));
        m.insert("j", 2);
        m.map.run_pending_tasks();
        assert_eq!(m.map.entry_count(), 1, "the bound holds");
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_run() {
        let flight: Arc<SingleFlight<&'static str, usize, String>> = Arc::new(SingleFlight::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let mut joins = Vec::new();
        for _ in 0..8 {
            let flight = flight.clone();
            let runs = runs.clone();
            joins.push(tokio::spawn(async move {
                flight
                    .run(
                        "k",
                        async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok(7)
                        },
                        |e| e,
                    )
                    .await
            }));
        }
        for j in joins {
            assert_eq!(j.await.unwrap(), Ok(7));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // Once it is done, a new call runs again.
        let again = flight.run("k", async { Ok(8) }, |e| e).await;
        assert_eq!(again, Ok(8));
    }

    #[tokio::test]
    async fn a_flight_outlives_its_callers() {
        let flight: SingleFlight<&'static str, usize, String> = SingleFlight::new();
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        let call = flight.run(
            "k",
            async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                d.fetch_add(1, Ordering::SeqCst);
                Ok(1)
            },
            |e| e,
        );
        // Give up at once.
        let _ = tokio::time::timeout(Duration::from_millis(1), call).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(done.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn worlds_round_trip_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(dir.path()).unwrap();
        let world = ComponentWorld {
            imports: vec![
                WorldItemRef::Interface("wasi:keyvalue/store@0.2.0-draft".parse().unwrap()),
                WorldItemRef::Named {
                    name: "orders-db".into(),
                    interface: "wasmcloud:postgres/query@0.2.0".parse().unwrap(),
                },
                WorldItemRef::Bare("log".into()),
            ],
            exports: vec![WorldItemRef::Interface(
                "wasi:http/incoming-handler@0.2.0".parse().unwrap(),
            )],
            types_only: ["wasi:cli/types@0.3.0".parse().unwrap()].into(),
            resource_uses: [(
                "wasi:http/handler@0.3.0".parse().unwrap(),
                ["wasi:http/types@0.3.0".parse().unwrap()].into(),
            )]
            .into(),
        };
        let digest = "sha256:0123abcd";
        assert_eq!(cache.get(digest).await, None);
        cache.put(digest, &world).await;
        assert_eq!(cache.get(digest).await, Some(world.clone()));
        // Another digest's file, or a bad one, is not used.
        std::fs::copy(
            dir.path().join("worlds/sha256-0123abcd.json"),
            dir.path().join("worlds/sha256-ffff.json"),
        )
        .unwrap();
        assert_eq!(cache.get("sha256:ffff").await, None);
        assert_eq!(cache.get("../../etc/passwd").await, None);
    }
}
