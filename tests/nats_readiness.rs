//! `/readyz` and `/metrics` follow the NATS heartbeat connection: a real `wasmgate serve
//! --nats-url` process and a real nats-server that is stopped and started again. A replica that
//! has not heard NATS for longer than half the heartbeat timeout sees every host Unknown, so it
//! reports not ready (the Service then sends reviews to replicas that still hear the hosts) and
//! ready again once reconnected; `wasmgate_nats_connected` and `wasmgate_leader` say the same
//! on `/metrics`.
//!
//! Run: `cargo test --test nats_readiness`.

mod support;

use std::time::Duration;

use support::serve::{curl, curl_text, ServeProcess};
use support::{free_port, poll, NatsServer};

/// Bounds for state changes that take a second or two: the CI machine is slow and shared.
const CHANGE: Duration = Duration::from_secs(60);

#[test]
fn readiness_and_metrics_follow_the_nats_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mut nats = NatsServer::start(&d.join("nats.log"));
    let home = d.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut wasmgate = ServeProcess::spawn(
        free_port(),
        &d.join("certs"),
        &d.join("wasmgate.log"),
        &home,
        &[
            "--nats-url".into(),
            nats.url(),
            "--inventory-warmup".into(),
            "0s".into(),
            // Hosts turn Unknown (and the replica unready) after 1 s without NATS.
            "--heartbeat-timeout".into(),
            "2s".into(),
        ],
    );
    wasmgate.wait_ready(CHANGE);
    let ca = wasmgate.ca_file().display().to_string();
    let metrics_url = wasmgate.url("/metrics");
    let metrics = || curl_text(&["--cacert", &ca, &metrics_url]).1;
    let text = metrics();
    assert!(text.contains("\nwasmgate_nats_connected 1\n"), "{text}");
    assert!(text.contains("\nwasmgate_leader 1\n"), "{text}");
    assert!(
        text.contains("\nwasmgate_serving_certificate_expiry_timestamp_seconds "),
        "{text}"
    );

    // NATS goes away: not ready, with the reason, and the gauge drops.
    nats.stop();
    poll(
        "/readyz to fail",
        CHANGE,
        Duration::from_millis(200),
        || {
            let (code, body) = curl(&["--cacert", &ca, &wasmgate.url("/readyz")]);
            let message = body["message"].as_str().unwrap_or_default().to_string();
            if code == 503 && message.contains("NATS") {
                Ok(())
            } else {
                Err(format!("{code}: {body}"))
            }
        },
    );
    assert!(metrics().contains("\nwasmgate_nats_connected 0\n"));
    // The webhooks still answer (the verdicts are for kube-apiserver to get from a ready replica).
    let (code, _) = curl(&["--cacert", &ca, &wasmgate.url("/healthz")]);
    assert_eq!(code, 200);

    // Back on the same port: ready again.
    nats.restart();
    wasmgate.wait_ready(CHANGE);
    assert!(metrics().contains("\nwasmgate_nats_connected 1\n"));
    wasmgate.assert_running();
}
