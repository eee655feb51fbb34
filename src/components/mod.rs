//! Where component worlds come from, in order: the `wit.wasmgate.dev/<component>` annotation,
//! configured sources (a local image -> .wasm mapping now; OCI registries later), and worlds
//! remembered from annotations on earlier objects in the same namespace (so Workloads a replica
//! set stamps out, which do not carry the template's annotations, resolve like their template).

mod local;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use crate::resolve::WorldState;
use crate::wit::{parse_world_text, ComponentWorld, WitError};

pub use local::LocalFileSource;

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
}

/// A boxed future, so sources can be trait objects.
pub type SourceFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Arc<ComponentWorld>>, SourceError>> + Send + 'a>>;

/// A source of component worlds by image reference. `Ok(None)` means "not mine".
pub trait WorldSource: Send + Sync {
    /// Looks up the world of `image`.
    fn world<'a>(&'a self, image: &'a str) -> SourceFuture<'a>;
}

/// One component to find a world for.
pub struct ComponentRef<'a> {
    /// Component name (or `service`).
    pub name: &'a str,
    /// Its image.
    pub image: &'a str,
}

/// Finds worlds for the components of a workload.
#[derive(Default)]
pub struct WorldResolver {
    sources: Vec<Arc<dyn WorldSource>>,
    /// (namespace, image) -> world, learned from annotations.
    remembered: Mutex<HashMap<(String, String), Arc<ComponentWorld>>>,
}

impl WorldResolver {
    /// A resolver consulting `sources` in order after the annotation.
    pub fn new(sources: Vec<Arc<dyn WorldSource>>) -> Self {
        Self {
            sources,
            remembered: Mutex::default(),
        }
    }

    /// Worlds for every component, keyed by component name.
    pub async fn worlds(
        &self,
        namespace: &str,
        components: &[ComponentRef<'_>],
        annotations: &BTreeMap<String, String>,
    ) -> BTreeMap<String, WorldState> {
        let mut out = BTreeMap::new();
        for c in components {
            let state = self.world(namespace, c, annotations).await;
            out.insert(c.name.to_string(), state);
        }
        out
    }

    async fn world(
        &self,
        namespace: &str,
        c: &ComponentRef<'_>,
        annotations: &BTreeMap<String, String>,
    ) -> WorldState {
        let key = format!("{WIT_ANNOTATION_PREFIX}{}", c.name);
        if let Some(text) = annotations.get(&key) {
            return match parse_world_text(text) {
                Ok(world) => {
                    let world = Arc::new(world);
                    if let Ok(mut map) = self.remembered.lock() {
                        map.insert((namespace.to_string(), c.image.to_string()), world.clone());
                    }
                    WorldState::Known((*world).clone())
                }
                Err(e) => WorldState::Invalid(format!("annotation {key}: {e}")),
            };
        }
        for source in &self.sources {
            match source.world(c.image).await {
                Ok(Some(world)) => return WorldState::Known((*world).clone()),
                Ok(None) => {}
                Err(SourceError::Invalid { image, source }) => {
                    return WorldState::Invalid(format!("image {image}: {source}"))
                }
                Err(e @ SourceError::Unavailable { .. }) => {
                    return WorldState::Unknown(format!("cannot read the component: {e}"))
                }
            }
        }
        let remembered = self.remembered.lock().ok().and_then(|m| {
            m.get(&(namespace.to_string(), c.image.to_string()))
                .cloned()
        });
        if let Some(world) = remembered {
            return WorldState::Known((*world).clone());
        }
        WorldState::Unknown(format!(
            "no world source for image {}: add the annotation {key} with the component's WIT world, or map the image to a .wasm file (--component {}=FILE.wasm)",
            c.image, c.image
        ))
    }
}
