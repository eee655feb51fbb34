//! wasmgate's heartbeat decoder against an independent encoder: `wasmgate-heartbeat-proto`
//! generates `HostHeartbeat` with prost and its proto3 JSON mapping with pbjson from the .proto, as
//! wasmCloud's host generates its own, so these payloads are not written by the type that reads
//! them (`wasmgate sim-hosts` encodes with wasmgate's own type).
//!
//! - every field set: each decodes to the value the host sent (64-bit integers arrive as JSON
//!   strings, the timestamp as RFC 3339, maps as objects);
//! - zero values omitted: an almost empty heartbeat decodes to zeros;
//! - the same payloads published on a real nats-server become Hosts: `tests/live_inventory.rs`
//!   (`heartbeats_from_an_independent_encoder_become_hosts`).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmgate::inventory::HostHeartbeat;
use wasmgate_heartbeat_proto::v2;
use wasmgate_heartbeat_proto::Timestamp;

use common::pbjson_heartbeat as full;

fn decode(message: &v2::HostHeartbeat) -> (String, HostHeartbeat) {
    let json = serde_json::to_string(message).expect("pbjson serializes");
    let decoded = HostHeartbeat::decode(json.as_bytes())
        .unwrap_or_else(|e| panic!("wasmgate cannot decode {json}: {e}"));
    (json, decoded)
}

#[test]
fn every_field_decodes_to_what_the_host_sent() {
    let sent = full();
    let (json, got) = decode(&sent);
    // The wire form is pbjson's: camelCase names, uint64 as strings.
    for needle in [
        "\"friendlyName\":\"exotic-toes-5866\"",
        "\"systemMemoryTotal\":\"9007199254740993\"",
        "\"componentCount\":\"7\"",
        "\"httpPort\":8080",
        "\"startedAt\":\"",
    ] {
        assert!(json.contains(needle), "{needle} in {json}");
    }
    assert_eq!(got.id, sent.id);
    assert_eq!(got.hostname, sent.hostname);
    assert_eq!(got.friendly_name, sent.friendly_name);
    assert_eq!(got.version, sent.version);
    assert_eq!(
        got.labels,
        sent.labels.clone().into_iter().collect::<BTreeMap<_, _>>()
    );
    assert_eq!(
        got.started_at,
        Some(UNIX_EPOCH + Duration::new(1_790_000_000, 500_000_000))
    );
    assert_eq!(got.os_arch, sent.os_arch);
    assert_eq!(got.os_name, sent.os_name);
    assert_eq!(got.os_kernel, sent.os_kernel);
    assert_eq!(got.system_cpu_usage, f64::from(sent.system_cpu_usage));
    assert_eq!(got.system_memory_total, sent.system_memory_total);
    assert_eq!(got.system_memory_free, sent.system_memory_free);
    assert_eq!(got.component_count, sent.component_count);
    assert_eq!(got.workload_count, sent.workload_count);
    assert_eq!(got.http_port, sent.http_port);
    assert_eq!(got.environment, sent.environment);
    let same = |ours: &[wasmgate::inventory::WitInterface], theirs: &[v2::WitInterface]| {
        assert_eq!(ours.len(), theirs.len());
        for (o, t) in ours.iter().zip(theirs) {
            assert_eq!(
                (&o.namespace, &o.package, &o.version, &o.interfaces, &o.name),
                (&t.namespace, &t.package, &t.version, &t.interfaces, &t.name)
            );
            assert_eq!(
                o.config,
                t.config.clone().into_iter().collect::<BTreeMap<_, _>>()
            );
        }
    };
    same(&got.imports, &sent.imports);
    same(&got.exports, &sent.exports);
}

#[test]
fn zero_values_are_omitted_and_read_as_zero() {
    let sent = v2::HostHeartbeat {
        id: "0d5c3f7a-9f3e-4f43-8f0e-5d0c6f2b1a11".into(),
        ..Default::default()
    };
    let (json, got) = decode(&sent);
    assert_eq!(json, r#"{"id":"0d5c3f7a-9f3e-4f43-8f0e-5d0c6f2b1a11"}"#);
    assert_eq!(
        got,
        HostHeartbeat {
            id: sent.id.clone(),
            ..Default::default()
        }
    );
}

#[test]
fn the_decoder_reads_what_it_did_not_write() {
    // wasmgate's own encoder (sim-hosts) and pbjson agree on the wire form of a full heartbeat:
    // decoding pbjson's payload and encoding it again gives the same JSON object.
    let (json, got) = decode(&full());
    let mut ours: serde_json::Value =
        serde_json::from_slice(&got.encode()).expect("wasmgate's encoding is JSON");
    let mut theirs: serde_json::Value = serde_json::from_str(&json).expect("pbjson's is JSON");
    // The one difference: pbjson-types writes the timestamp's offset as `+00:00`, wasmgate as
    // protobuf's canonical `Z`. Both are RFC 3339 and both decode to the same instant.
    let theirs_at = theirs["startedAt"].take();
    let ours_at = ours["startedAt"].take();
    assert_eq!(theirs_at, "2026-09-21T14:13:20.500+00:00");
    assert_eq!(ours_at, "2026-09-21T14:13:20.500Z");
    let reread = |at: serde_json::Value| {
        let payload = serde_json::json!({ "id": "x", "startedAt": at }).to_string();
        HostHeartbeat::decode(payload.as_bytes())
            .expect("decodes")
            .started_at
    };
    assert_eq!(reread(theirs_at), reread(ours_at));
    assert_eq!(ours, theirs);
    // Timestamps: a whole second has no fraction in either.
    let mut whole = full();
    whole.started_at = Some(Timestamp {
        seconds: 1_790_000_000,
        nanos: 0,
    });
    let (_, got) = decode(&whole);
    assert_eq!(
        got.started_at,
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000))
    );
}
