//! Where component worlds come from, in order: the `wit.wasmgate.dev/<component>` annotation,
//! configured sources (a local image -> .wasm mapping, then OCI registries), and worlds
//! remembered from annotations on earlier objects in the same namespace (so Workloads a replica
//! set stamps out, which do not carry the template's annotations, resolve like their template).

mod local;
pub mod oci;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::resolve::WorldState;
use crate::wit::{parse_world_text, ComponentWorld, WitError};

pub use local::LocalFileSource;
pub use oci::{OciConfig, OciSource};

/// The annotation prefix carrying a component's world as WIT text.
pub const WIT_ANNOTATION_PREFIX: &str = "wit.wasmgate.dev/";

/// Why a source failed to produce a world.
#[derive(Debug, thiserror::Error, Clone)]
pub enum SourceError {
    /// The artifact exists but is not a usable component.
    #[error("{image}: {source}")]
    Invalid {
        /// The image reference.
        image: String,
        /// What is wrong with it.
        source: WitError,
    },
    /// The artifact could not be fetched or read.
    #[error("{image}: {message}")]
    Unavailable {
        /// The image reference.
        image: String,
        /// Why.
        message: String,
    },
    /// The artifact is refused (oversized, not a wasm component artifact, a bad reference, or a
    /// registry failure under a `deny` policy): the component is denied.
    #[error("{image}: {message}")]
    Refused {
        /// The image reference.
        image: String,
        /// Why.
        message: String,
    },
}

/// A boxed future, so sources can be trait objects.
pub type SourceFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Arc<ComponentWorld>>, SourceError>> + Send + 'a>>;

/// What a lookup knows about the component beyond its image: where it runs and how it is pulled.
#[derive(Clone, Copy, Debug)]
pub struct WorldRequest<'a> {
    /// Namespace of the object.
    pub namespace: &'a str,
    /// The image reference as written.
    pub image: &'a str,
    /// The component's `imagePullSecret` name, if any.
    pub pull_secret: Option<&'a str>,
}

/// A world, and the digest-pinned image it was read from (registry sources).
#[derive(Clone, Debug)]
pub struct Found {
    /// The component's world.
    pub world: Arc<ComponentWorld>,
    /// `repo@sha256:...` of the artifact that was decoded, when the source knows it.
    pub pinned: Option<String>,
}

/// A boxed future of [`WorldSource::lookup`].
pub type LookupFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Found>, SourceError>> + Send + 'a>>;

/// A source of component worlds by image reference. `Ok(None)` means "not mine".
pub trait WorldSource: Send + Sync {
    /// Looks up the world of `image`.
    fn world<'a>(&'a self, image: &'a str) -> SourceFuture<'a>;

    /// Looks up the world for a request with its namespace and pull secret (what registry
    /// sources need); by default, [`WorldSource::world`] of the image.
    fn lookup<'a>(&'a self, req: WorldRequest<'a>) -> LookupFuture<'a> {
        let fut = self.world(req.image);
        Box::pin(async move {
            Ok(fut.await?.map(|world| Found {
                world,
                pinned: None,
            }))
        })
    }
}

/// One component to find a world for.
pub struct ComponentRef<'a> {
    /// Component name (or `service`).
    pub name: &'a str,
    /// Its image.
    pub image: &'a str,
}

/// One component with its pull secret ([`WorldResolver::lookup`]).
#[derive(Clone, Copy, Debug)]
pub struct PullRef<'a> {
    /// Component name (or `service`).
    pub name: &'a str,
    /// Its image.
    pub image: &'a str,
    /// Its `imagePullSecret` name.
    pub pull_secret: Option<&'a str>,
}

/// Worlds of a workload's components, and the digest-pinned images of those read from a
/// registry.
#[derive(Clone, Debug, Default)]
pub struct Worlds {
    /// Component name -> world.
    pub states: BTreeMap<String, WorldState>,
    /// Component name -> `repo@sha256:...` it was validated at (registry sources only).
    pub pinned: BTreeMap<String, String>,
    /// (image, world) learned from `wit.wasmgate.dev/` annotations: remembered for the Workloads
    /// a replica set stamps out without them, but only once the object is admitted and stored
    /// ([`WorldResolver::remember`]): a denied or dry-run request teaches nothing.
    pub learned: Vec<(String, Arc<ComponentWorld>)>,
}

/// Finds worlds for the components of a workload.
pub struct WorldResolver {
    sources: Vec<Arc<dyn WorldSource>>,
    /// (namespace, image) -> world, learned from annotations; bounded, least recently used out
    /// first, since any caller of `/validate` can add to it.
    remembered: moka::sync::Cache<(String, String), Arc<ComponentWorld>>,
    /// WIT text -> parsed world (or the parser's message): each distinct annotation is parsed
    /// once, bounded by the bytes of text held.
    parsed: moka::sync::Cache<String, Result<Arc<ComponentWorld>, String>>,
}

/// How many components of one review are looked up at once.
pub const LOOKUPS_PER_REVIEW: usize = 8;

/// How many bytes of annotation WIT text [`WorldResolver`] keeps parsed.
pub const PARSED_TEXT_BYTES: u64 = 32 * 1024 * 1024;

/// How many (namespace, image) worlds learned from annotations are remembered.
pub const REMEMBERED_WORLDS: u64 = 10_000;

impl Default for WorldResolver {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl WorldResolver {
    /// A resolver consulting `sources` in order after the annotation.
    pub fn new(sources: Vec<Arc<dyn WorldSource>>) -> Self {
        Self {
            sources,
            remembered: moka::sync::Cache::builder()
                .max_capacity(REMEMBERED_WORLDS)
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .build(),
            parsed: moka::sync::Cache::builder()
                .max_capacity(PARSED_TEXT_BYTES)
                .weigher(|text: &String, _| u32::try_from(text.len()).unwrap_or(u32::MAX))
                .build(),
        }
    }

    /// Worlds for every component, keyed by component name (no pull secrets).
    pub async fn worlds(
        &self,
        namespace: &str,
        components: &[ComponentRef<'_>],
        annotations: &BTreeMap<String, String>,
    ) -> BTreeMap<String, WorldState> {
        let refs: Vec<PullRef<'_>> = components
            .iter()
            .map(|c| PullRef {
                name: c.name,
                image: c.image,
                pull_secret: None,
            })
            .collect();
        self.lookup(namespace, &refs, annotations).await.states
    }

    /// Worlds for every component (looked up concurrently, [`LOOKUPS_PER_REVIEW`] at a time),
    /// with the pinned images.
    pub async fn lookup(
        &self,
        namespace: &str,
        components: &[PullRef<'_>],
        annotations: &BTreeMap<String, String>,
    ) -> Worlds {
        use futures_util::StreamExt as _;
        // A few at a time, in order: a review naming many components must not start every pull
        // at once.
        // (By index: a closure over `&PullRef` trips the compiler's higher-ranked lifetime
        // inference once the future must be Send.)
        let found: Vec<_> = futures_util::stream::iter(0..components.len())
            .map(|i| self.world(namespace, &components[i], annotations))
            .buffered(LOOKUPS_PER_REVIEW)
            .collect()
            .await;
        let mut out = Worlds::default();
        for (c, (state, pinned, learned)) in components.iter().zip(found) {
            if let Some(p) = pinned {
                out.pinned.insert(c.name.to_string(), p);
            }
            if let Some(world) = learned {
                out.learned.push((c.image.to_string(), world));
            }
            out.states.insert(c.name.to_string(), state);
        }
        out
    }

    /// Remembers worlds learned from an admitted, stored object's annotations, by (namespace,
    /// image): the Workloads a replica set stamps out lack the template's annotations.
    pub fn remember(&self, namespace: &str, learned: &[(String, Arc<ComponentWorld>)]) {
        for (image, world) in learned {
            let key = (namespace.to_string(), image.clone());
            // Every admitted review of an object remembers its worlds again: a lookup (which
            // also marks the entry used) is much cheaper than moka's insert.
            if self
                .remembered
                .get(&key)
                .is_some_and(|known| Arc::ptr_eq(&known, world))
            {
                continue;
            }
            self.remembered.insert(key, world.clone());
        }
    }

    /// The world of an annotation's WIT text, parsed once per distinct text (off the async
    /// workers: parsing is CPU work).
    async fn parse(&self, text: &str) -> Result<Arc<ComponentWorld>, String> {
        if let Some(parsed) = self.parsed.get(text) {
            return parsed;
        }
        let owned = text.to_string();
        let parsed = tokio::task::spawn_blocking(move || {
            parse_world_text(&owned)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(format!("the WIT parser failed: {e}")));
        self.parsed.insert(text.to_string(), parsed.clone());
        parsed
    }

    async fn world(
        &self,
        namespace: &str,
        c: &PullRef<'_>,
        annotations: &BTreeMap<String, String>,
    ) -> (WorldState, Option<String>, Option<Arc<ComponentWorld>>) {
        let key = format!("{WIT_ANNOTATION_PREFIX}{}", c.name);
        if let Some(text) = annotations.get(&key) {
            return match self.parse(text).await {
                Ok(world) => (WorldState::Known(world.clone()), None, Some(world)),
                Err(e) => (
                    WorldState::Invalid(format!("annotation {key}: {e}")),
                    None,
                    None,
                ),
            };
        }
        let req = WorldRequest {
            namespace,
            image: c.image,
            pull_secret: c.pull_secret,
        };
        // A registry that cannot be read falls back on a remembered world (a template's
        // annotation); a broken or refused artifact does not.
        let mut unavailable = None;
        for source in &self.sources {
            match source.lookup(req).await {
                Ok(Some(found)) => {
                    return (WorldState::Known(found.world.clone()), found.pinned, None)
                }
                Ok(None) => continue,
                Err(SourceError::Invalid { image, source }) => {
                    return (
                        WorldState::Invalid(format!("image {image}: {source}")),
                        None,
                        None,
                    )
                }
                Err(SourceError::Refused { image, message }) => {
                    return (
                        WorldState::Invalid(format!("image {image}: {message}")),
                        None,
                        None,
                    )
                }
                Err(e @ SourceError::Unavailable { .. }) => {
                    unavailable = Some(format!("cannot read the component: {e}"));
                    break;
                }
            }
        }
        let remembered = self
            .remembered
            .get(&(namespace.to_string(), c.image.to_string()));
        if let Some(world) = remembered {
            return (WorldState::Known(world), None, None);
        }
        if let Some(why) = unavailable {
            return (WorldState::Unknown(why), None, None);
        }
        let state = WorldState::Unknown(format!(
            "no world source for image {}: add the annotation {key} with the component's WIT world, or map the image to a .wasm file (--component {}=FILE.wasm)",
            c.image, c.image
        ));
        (state, None, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORLD: &str =
        "package acme:app;\nworld app {\n  import wasi:keyvalue/store@0.2.0-draft;\n}\n";

    #[tokio::test]
    async fn each_distinct_annotation_is_parsed_once() {
        let resolver = WorldResolver::default();
        let first = resolver.parse(WORLD).await.expect("parses");
        let again = resolver.parse(WORLD).await.expect("parses");
        assert!(
            Arc::ptr_eq(&first, &again),
            "the second lookup is the cached parse"
        );
        let broken = resolver.parse("package acme:app;\nworld {").await;
        assert!(broken.is_err());
        assert_eq!(resolver.parse("package acme:app;\nworld {").await, broken);
    }

    #[tokio::test]
    async fn many_components_resolve_in_order() {
        let resolver = WorldResolver::default();
        let names: Vec<String> = (0..50).map(|i| format!("c{i}")).collect();
        let world = |i: usize| {
            format!("package acme:app;\nworld app {{\n  import acme:p{i}/store@0.1.0;\n}}\n")
        };
        let annotations: BTreeMap<String, String> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("{WIT_ANNOTATION_PREFIX}{n}"), world(i)))
            .collect();
        let refs: Vec<PullRef<'_>> = names
            .iter()
            .map(|n| PullRef {
                name: n,
                image: "registry.example/app:1",
                pull_secret: None,
            })
            .collect();
        let found = resolver.lookup("default", &refs, &annotations).await;
        assert_eq!(found.states.len(), 50);
        for (i, n) in names.iter().enumerate() {
            let WorldState::Known(w) = &found.states[n] else {
                panic!("{n}: {:?}", found.states[n]);
            };
            let imports: Vec<String> = w.imports.iter().map(ToString::to_string).collect();
            assert_eq!(imports, [format!("acme:p{i}/store@0.1.0")], "{n}");
        }
    }
}
