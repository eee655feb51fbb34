//! What the fuzz targets share: the example inventory, an admission [`Engine`] without a
//! registry, an in-memory `hosts` API, and the resolver run over a fuzzed component world.
//!
//! Everything here calls wasmgate's public entry points; nothing is reimplemented. State that
//! could carry one input's effects into the next (world caches, the live inventory, the API's
//! list snapshots) is built fresh per input, so that a crash reproduces from its file alone.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use futures_util::FutureExt as _;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use wasmgate::apiserver::{self, ApiState, AuthMode, Authenticator, LiveConfig, LiveInventory};
use wasmgate::components::WorldResolver;
use wasmgate::crd::{Host, WorkloadSpec};
use wasmgate::engine::Engine;
use wasmgate::inventory::{InventorySource, SharedInventory};
use wasmgate::policy::Policy;
use wasmgate::resolve::{apply_defaults, resolve, Hosts, ResolveInput, WorldState};
use wasmgate::wit::ComponentWorld;

/// Lets a panic inside wit-parser or wit-component unwind to wasmgate, which contains it.
///
/// wasmgate-core runs those parsers under `catch_unwind` (`wit::decode`'s `guarded`) and
/// answers a panic of theirs with a typed error (`WitError::ParserPanicked`): their input is
/// request input, and they do panic on some of it (wit-parser 0.263's `unreachable!` for a
/// component function with an interface name, found by this fuzzer). libFuzzer's panic hook
/// aborts before any unwinding, so it would report as a crash what the product contains. This
/// hook aborts, as libFuzzer's does, on every other panic; and a parser panic that escaped
/// wasmgate's containment would still be caught as a crash by libfuzzer-sys's own
/// `catch_unwind` around the target. Idempotent; call it first in every target that parses WIT.
pub fn contain_parser_panics() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let libfuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_parser = info.location().is_some_and(|l| {
                let file = l.file();
                file.contains("/wit-parser-") || file.contains("/wit-component-")
            });
            if in_parser {
                eprintln!("contained parser panic: {info}");
            } else {
                libfuzzer_hook(info);
            }
        }));
    });
}

/// The single-threaded runtime every target's async calls run on (libFuzzer runs one input at a
/// time; `spawn_blocking` work, such as WIT parsing, still gets its own thread).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// The hosts of `examples/inventory.yaml` (five hosts, one NotReady), loaded once with
/// [`wasmgate::inventory::load_hosts`].
pub fn example_hosts() -> &'static Hosts {
    static HOSTS: OnceLock<Hosts> = OnceLock::new();
    HOSTS.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/inventory.yaml");
        wasmgate::inventory::load_hosts(std::path::Path::new(path))
            .map(Hosts::new)
            .expect("examples/inventory.yaml loads")
    })
}

/// The example hosts as an admission inventory (immutable; shared by every input).
pub fn example_inventory() -> Arc<dyn InventorySource> {
    static INV: OnceLock<Arc<SharedInventory>> = OnceLock::new();
    INV.get_or_init(|| Arc::new(SharedInventory::new(
            example_hosts().iter().map(|host| Host::clone(host)).collect(),
        )))
        .clone()
}

/// An admission engine over `inventory` with no registry and no local component files: worlds
/// come from `wit.wasmgate.dev/` annotations only. The world resolver (and its caches) is new
/// for each call.
pub fn engine(inventory: Arc<dyn InventorySource>) -> Engine {
    Engine::new(
        Arc::new(WorldResolver::new(vec![])),
        inventory,
        Arc::new(Policy::default()),
    )
}

/// The workload the world targets resolve: component `api` (the fuzzed world) on the default
/// host group, with an HTTP entry (so that an exported incoming-handler can be served).
fn workload_spec() -> &'static WorkloadSpec {
    static SPEC: OnceLock<WorkloadSpec> = OnceLock::new();
    SPEC.get_or_init(|| {
        serde_json::from_value(serde_json::json!({
            "hostSelector": {"hostgroup": "default"},
            "components": [{"name": "api", "image": "ghcr.io/example/api:1.0.0"}],
            "hostInterfaces": [{
                "namespace": "wasi", "package": "http", "interfaces": ["incoming-handler"],
                "config": {"host": "api.example.test"}
            }]
        }))
        .expect("the fuzz workload decodes")
    })
}

/// Runs a component world through what admission does with it: the mutating webhook's defaults
/// and the resolver against the example hosts, then the denial message.
pub fn resolve_world(world: ComponentWorld) {
    let policy = Policy::default();
    let worlds: BTreeMap<String, WorldState> =
        [("api".to_string(), WorldState::Known(world.into()))].into();
    let defaulted = apply_defaults(workload_spec(), &worlds, &policy);
    for spec in [workload_spec(), &defaulted.spec] {
        let report = resolve(&ResolveInput {
            namespace: "team-a",
            spec,
            worlds: &worlds,
            hosts: example_hosts(),
            policy: &policy,
            deployment: None,
        });
        if !report.allowed() {
            let _ = report.denial_message();
        }
    }
}

/// A live inventory (small history) holding the example hosts, written as the API writes them.
pub fn live_inventory() -> Arc<LiveInventory> {
    let inv = LiveInventory::new(LiveConfig {
        history: 64,
        ..LiveConfig::default()
    });
    let now = std::time::SystemTime::now();
    for host in example_hosts() {
        let mut host = host.clone();
        host.metadata.resource_version = None;
        inv.upsert(host, now).expect("an example host is valid");
    }
    inv
}

/// The aggregated API's router over `inventory`, every request allowed (`--api-auth` dev mode).
pub fn api_router(inventory: Arc<LiveInventory>) -> axum::Router {
    let auth = Authenticator::new(AuthMode::AllowAll, Duration::from_secs(10));
    apiserver::router(ApiState::new(inventory, auth))
}

/// `Accept` headers kubectl sends: plain JSON, a Table, partial object metadata.
pub const ACCEPTS: [&str; 3] = [
    "application/json",
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io",
];

/// How much of a response body [`send`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// All of it.
    All,
    /// A watch: the stream does not end, so read what it sends at once (the initial events
    /// or the replay), until it waits for live events.
    Stream,
}

/// Sends `req` through `router` and reads the body as `read` says. An internal server error is
/// a bug: the API answers every client mistake with a 4xx Status (and the 504 of a watch from a
/// resourceVersion it has not reached, as kube-apiserver does).
pub fn send(router: &axum::Router, req: Request<Body>, read: Read) -> (StatusCode, Bytes) {
    let what = format!("{} {}", req.method(), req.uri());
    runtime().block_on(async {
        let resp = router
            .clone()
            .oneshot(req)
            .await
            .expect("the router is infallible");
        let status = resp.status();
        let mut body = resp.into_body();
        let mut bytes = Vec::new();
        let mut idle = 0;
        loop {
            let frame = match read {
                Read::All => body.frame().await,
                // The stream's task runs on this thread: let it run, take what it sent, and
                // stop once it waits for live events.
                Read::Stream => match body.frame().now_or_never() {
                    Some(frame) => {
                        idle = 0;
                        frame
                    }
                    None if idle < 3 => {
                        idle += 1;
                        tokio::task::yield_now().await;
                        continue;
                    }
                    None => break,
                },
            };
            match frame {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        bytes.extend_from_slice(data);
                    }
                }
                Some(Err(_)) | None => break,
            }
        }
        assert_ne!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{what}: {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
        (status, Bytes::from(bytes))
    })
}

/// `s` as a URI query: bytes a URI cannot carry are percent-encoded (as a client would send
/// them); everything else, including `%` and `+`, is kept as is.
pub fn as_query(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for &b in raw {
        if b.is_ascii_graphic()
            && !matches!(
                b,
                b'#' | b'"' | b'<' | b'>' | b'`' | b'{' | b'}' | b'\\' | b'^' | b'|'
            )
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
