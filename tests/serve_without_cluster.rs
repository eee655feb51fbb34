//! `wasmgate serve` as a real process with no Kubernetes API at all (no `--kubeconfig`, no
//! `$KUBECONFIG`, no `~/.kube/config`, no in-cluster variables):
//! - `--api-auth none` is for loopback only: on a non-loopback `--listen` address serve refuses
//!   to start (a clear error, exit code 2); on 127.0.0.1 it serves the hosts API to anyone;
//! - in the default delegated mode there is nothing to delegate to: the hosts API refuses every
//!   request with a 401 Status that says why, while `/validate`, `/mutate` and `/readyz` work.
//!
//! Run: `cargo test --test serve_without_cluster`.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::serve::{curl, serve_to_exit, ServeProcess};
use support::{free_port, repo_root};

const HOSTS: &str = "/apis/wasmgate.dev/v1alpha1/hosts";

fn inventory_args() -> Vec<String> {
    vec![
        "--inventory".into(),
        repo_root()
            .join("examples/inventory.yaml")
            .display()
            .to_string(),
    ]
}

#[test]
fn api_auth_none_is_refused_on_non_loopback_addresses() {
    let dir = tempfile::tempdir().expect("tempdir");
    for listen in [
        format!("0.0.0.0:{}", free_port()),
        format!("[::]:{}", free_port()),
    ] {
        let mut args = vec![
            "--listen".to_string(),
            listen.clone(),
            "--api-auth".into(),
            "none".into(),
            "--cert-dir".into(),
            dir.path().join("certs").display().to_string(),
        ];
        args.extend(inventory_args());
        // Were the rule not enforced it would serve (to everyone) until killed.
        let out = serve_to_exit(dir.path(), &args, Duration::from_secs(60));
        assert_eq!(out.code(), Some(2), "{listen}: {}", out.describe());
        assert!(
            out.stderr.contains(
                "error: --api-auth none serves the hosts API to anyone: it is allowed on a \
                 loopback --listen address only"
            ),
            "{listen}: {}",
            out.describe()
        );
        assert!(
            !out.stderr.contains("wasmgate serving"),
            "{listen}: it started serving before refusing: {}",
            out.describe()
        );
    }
}

#[test]
fn api_auth_none_serves_anyone_on_loopback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = vec!["--api-auth".to_string(), "none".into()];
    args.extend(inventory_args());
    let mut wg = ServeProcess::spawn(
        free_port(),
        &dir.path().join("certs"),
        &dir.path().join("wasmgate.log"),
        dir.path(),
        &args,
    );
    wg.wait_ready(Duration::from_secs(60));
    let ca = wg.ca_file().display().to_string();
    // No client certificate, no token: served all the same.
    let (code, body) = curl(&["--cacert", &ca, &wg.url(HOSTS)]);
    assert_eq!(code, 200, "{body:#}");
    assert_eq!(body["kind"], "HostList", "{body:#}");
    let log = wg.log_text();
    assert!(
        log.contains("--api-auth none: the hosts API is served without authentication"),
        "{log}"
    );
}

/// Posts the AdmissionReview in `fixture` (under webhooks/fixtures) to `path`; returns its
/// `response`.
fn admit(wg: &ServeProcess, path: &str, fixture: &str) -> Value {
    let ca = wg.ca_file().display().to_string();
    let data = format!(
        "@{}",
        repo_root()
            .join("webhooks/fixtures")
            .join(fixture)
            .display()
    );
    let url = wg.url(&format!("{path}?timeout=10s"));
    let (code, body) = curl(&[
        "--cacert",
        &ca,
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &data,
        &url,
    ]);
    assert_eq!(code, 200, "{path} {fixture}: {body:#}");
    assert_eq!(body["kind"], "AdmissionReview", "{body:#}");
    body["response"].clone()
}

fn assert_refused(code: u16, body: &Value, what: &str) {
    assert_eq!(code, 401, "{what}: {body:#}");
    assert_eq!(body["kind"], "Status", "{what}: {body:#}");
    assert_eq!(body["status"], "Failure", "{what}: {body:#}");
    assert_eq!(body["reason"], "Unauthorized", "{what}: {body:#}");
    assert_eq!(body["code"], 401, "{what}: {body:#}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("no Kubernetes API"),
        "{what}: the Status does not say why: {body:#}"
    );
}

#[test]
fn without_a_kubernetes_api_the_hosts_api_refuses_and_the_webhooks_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut wg = ServeProcess::spawn(
        free_port(),
        &dir.path().join("certs"),
        &dir.path().join("wasmgate.log"),
        dir.path(),
        &inventory_args(),
    );
    wg.wait_ready(Duration::from_secs(60));
    let ca = wg.ca_file().display().to_string();

    // Every request to the hosts API, whatever it carries, is refused with the reason.
    let gv = "/apis/wasmgate.dev/v1alpha1";
    let paths = [
        "/apis".to_string(),
        "/apis/wasmgate.dev".to_string(),
        gv.to_string(),
        format!("{gv}/hosts"),
        format!("{gv}/hosts/brave-otter-1234"),
        format!("{gv}/hosts?watch=true"),
        format!("{gv}/watch/hosts"),
        format!("{gv}/workloadresolutions"),
        format!("{gv}/namespaces/default/workloadresolutions"),
        "/openapi/v2".to_string(),
        "/openapi/v3".to_string(),
    ];
    for path in &paths {
        let url = wg.url(path);
        let (code, body) = curl(&["--cacert", &ca, &url]);
        assert_refused(code, &body, &format!("GET {path}"));
        let (code, body) = curl(&[
            "--cacert",
            &ca,
            "-H",
            "Authorization: Bearer some-token",
            &url,
        ]);
        assert_refused(code, &body, &format!("GET {path} with a bearer token"));
    }
    // ... a client certificate (wasmgate's own) and forged front-proxy headers change nothing.
    let cert = wg.cert_dir.join("tls.crt").display().to_string();
    let key = wg.cert_dir.join("tls.key").display().to_string();
    let url = wg.url(&format!("{gv}/hosts"));
    let (code, body) = curl(&[
        "--cacert",
        &ca,
        "--cert",
        &cert,
        "--key",
        &key,
        "-H",
        "X-Remote-User: admin",
        "-H",
        "X-Remote-Group: system:masters",
        &url,
    ]);
    assert_refused(code, &body, "GET hosts with a certificate and X-Remote-*");
    // ... and writes.
    let host = r#"{"apiVersion":"wasmgate.dev/v1alpha1","kind":"Host","metadata":{"name":"h"},"hostId":"h"}"#;
    let (code, body) = curl(&[
        "--cacert",
        &ca,
        "-H",
        "Content-Type: application/json",
        "-X",
        "POST",
        "--data",
        host,
        &url,
    ]);
    assert_refused(code, &body, "POST hosts");
    let item = wg.url(&format!("{gv}/hosts/h"));
    let (code, body) = curl(&["--cacert", &ca, "-X", "DELETE", &item]);
    assert_refused(code, &body, "DELETE hosts/h");

    // The webhooks decide as usual (on the inventory file).
    let good = admit(&wg, "/validate", "good-hello-kv.json");
    assert_eq!(good["allowed"], true, "{good:#}");
    let broken = admit(&wg, "/validate", "broken-postgres-version.json");
    assert_eq!(broken["allowed"], false, "{broken:#}");
    let message = broken["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("they offer 0.1.1-draft"), "{broken:#}");
    let mutated = admit(&wg, "/mutate", "good-hello-kv.json");
    assert_eq!(mutated["allowed"], true, "{mutated:#}");
    assert_eq!(mutated["patchType"], "JSONPatch", "{mutated:#}");
    // ... and the health endpoints answer.
    for path in ["/readyz", "/healthz", "/livez"] {
        let (code, _) = curl(&["--cacert", &ca, &wg.url(path)]);
        assert_eq!(code, 200, "{path}");
    }

    wg.assert_running();
    let log = wg.log_text();
    for want in [
        "no Kubernetes API to delegate authentication to",
        "no Kubernetes API: the reconciler is off",
    ] {
        assert!(log.contains(want), "the log lacks {want:?}:\n{log}");
    }
    assert_no_panic(&log);
}

fn assert_no_panic(log: &str) {
    assert!(!log.contains("panicked"), "{log}");
}
