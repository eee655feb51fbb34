//! A heartbeat as NATS delivers it: the input is `<host id>\n<payload>`, published on
//! `runtime.operator.heartbeat.<host id>`. It goes through the ingestion path
//! (`LiveInventory::decode_heartbeat`, which reads the interface lists by their text, then
//! `apply_stored_heartbeat`) into a live inventory that already holds the example hosts; it
//! must accept exactly what `HostHeartbeat::decode_from_subject` (the whole parse) accepts.
//! Then the inventory ages, admission resolves a workload pinned to the host, and the `hosts`
//! API lists it (JSON and Table).
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::Request;
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use wasmgate::components::WorldResolver;
use wasmgate::engine::Engine;
use wasmgate::inventory::nats::{ingest, IngestStats, HEARTBEAT_SUBJECT_PREFIX};
use wasmgate::inventory::HostHeartbeat;
use wasmgate::policy::Policy;
use wasmgate_fuzz::{api_router, live_inventory, runtime, send, Read, ACCEPTS};

/// The workload's world annotation is the same for every input: its parse is cached across
/// inputs (the same text gives the same world, so this changes no outcome).
fn worlds() -> Arc<WorldResolver> {
    static W: OnceLock<Arc<WorldResolver>> = OnceLock::new();
    W.get_or_init(|| Arc::new(WorldResolver::new(vec![])))
        .clone()
}

const WORLD: &str = "package fuzz:app;
world app {
  import wasi:keyvalue/store@0.2.0-draft;
  import wasi:config/store@0.2.0-rc.1;
  import wasi:logging/logging@0.1.0-draft;
  import wasmcloud:messaging/consumer@0.2.0;
  import orders-db: wasmcloud:postgres/query@0.2.0;
  import wasi:blobstore/blobstore@0.2.0-draft;
  export wasi:http/incoming-handler@0.2.0;
  export wasmcloud:messaging/handler@0.2.0;
}";

fn workload(spec_extra: serde_json::Value) -> serde_json::Value {
    let mut spec = json!({
        "components": [{"name": "app", "image": "ghcr.io/example/app:1.0.0"}],
        "hostInterfaces": [
            {"namespace": "wasi", "package": "http", "interfaces": ["incoming-handler"],
             "config": {"host": "app.example.test"}},
            {"namespace": "wasmcloud", "package": "postgres", "name": "orders-db",
             "interfaces": ["query"]},
            {"namespace": "wasi", "package": "blobstore", "interfaces": ["blobstore"]}
        ]
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), spec_extra.as_object()) {
        spec.extend(extra.clone());
    }
    json!({
        "apiVersion": "runtime.wasmcloud.dev/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": "app", "namespace": "team-a",
                     "annotations": {"wit.wasmgate.dev/app": WORLD}},
        "spec": spec
    })
}

fuzz_target!(|data: &[u8]| {
    let (id, payload) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    // NATS subjects are text; a host id with a `.` would only be a longer subject.
    let Ok(id) = std::str::from_utf8(id) else {
        return;
    };
    let subject = format!("{HEARTBEAT_SUBJECT_PREFIX}{id}");
    let inventory = live_inventory();
    let stats = IngestStats::default();
    let whole = HostHeartbeat::decode_from_subject(&subject, payload);
    if !ingest(&inventory, &stats, &subject, payload) {
        assert!(
            whole.is_err(),
            "the ingestion refused a heartbeat the whole parse accepts"
        );
        return;
    }
    // The same heartbeat again (an update), as the next interval brings it: its lists are
    // now found by their text.
    assert!(ingest(&inventory, &stats, &subject, payload));
    let hb = whole.expect("it was ingested, so the whole parse accepts it");

    // Admission against the live inventory: pinned to this host, then any host.
    let engine = Engine::new(worlds(), inventory.clone(), Arc::new(Policy::default()));
    for extra in [json!({"hostId": hb.id}), json!({})] {
        runtime().block_on(engine.evaluate(
            "runtime.wasmcloud.dev",
            "Workload",
            "team-a",
            workload(extra),
        ));
    }

    // The hosts API renders what the heartbeat made.
    let router = api_router(inventory.clone());
    for accept in ACCEPTS {
        let req = Request::get("/apis/wasmgate.dev/v1alpha1/hosts")
            .header("accept", accept)
            .body(Body::empty())
            .expect("a request");
        send(&router, req, Read::All);
    }

    // Ageing: Reporting=False, then Ready=False (after the settle window), then removal.
    let now = SystemTime::now();
    for later in [40, 70, 400, 4000] {
        inventory.tick(now + Duration::from_secs(later));
    }
    let _ = inventory.list();
});
