//! The static inventory file (`wasmgate serve --inventory FILE`) is reloaded while serving: a
//! broken edit keeps the last good inventory (admission verdicts unchanged, the error logged),
//! and a later good edit is picked up. A real `wasmgate serve` process, AdmissionReviews over
//! TLS.
//!
//! Run: `cargo test --test inventory_reload`.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::serve::{curl, ServeProcess};
use support::{free_port, poll, repo_root};

/// How often wasmgate looks at the file (`--inventory-poll-seconds`).
const POLL_SECONDS: u64 = 1;
/// How long a change may take to show (many poll periods: the CI machine is slow).
const PICKED_UP: Duration = Duration::from_secs(30);

/// One host in group `default` offering wasmcloud:postgres at `version`.
fn inventory(version: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: List
items:
- apiVersion: wasmgate.dev/v1alpha1
  kind: Host
  metadata:
    name: db-1
    labels:
      hostgroup: default
  hostId: 2b1c0f6e-0000-4000-8000-000000000001
  hostname: 10.0.0.1
  httpPort: 9191
  status:
    version: 2.7.0
    conditions:
    - type: Reporting
      status: 'True'
      reason: Available
    - type: Ready
      status: 'True'
      reason: Available
    imports:
    - namespace: wasmcloud
      package: postgres
      version: {version}
      interfaces: [types, query, prepared]
"#
    )
}

/// Replaces the file's content at once (write a sibling, rename over it), as a ConfigMap volume
/// update does, so wasmgate never reads a half-written file.
fn replace(path: &Path, content: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content).expect("write the new inventory");
    std::fs::rename(&tmp, path).expect("rename the new inventory into place");
}

/// The verdict of `/validate` on webhooks/fixtures/broken-postgres-version.json (a Workload on
/// host group `default` importing wasmcloud:postgres/query@0.2.0): (allowed, message).
fn verdict(wg: &ServeProcess) -> (bool, String) {
    let ca = wg.ca_file().display().to_string();
    let data = format!(
        "@{}",
        repo_root()
            .join("webhooks/fixtures/broken-postgres-version.json")
            .display()
    );
    let url = wg.url("/validate?timeout=10s");
    let (code, body) = curl(&[
        "--cacert",
        &ca,
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &data,
        &url,
    ]);
    assert_eq!(code, 200, "{body:#}");
    let r = &body["response"];
    (
        r["allowed"] == Value::Bool(true),
        r["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// Waits for the `n`-th log line containing `what` (1-based).
fn wait_log(wg: &mut ServeProcess, what: &str, n: usize) {
    poll(
        &format!("log line #{n} {what:?}"),
        PICKED_UP,
        Duration::from_millis(200),
        || {
            wg.assert_running();
            let log = wg.log_text();
            if log.matches(what).count() >= n {
                Ok(())
            } else {
                Err(log)
            }
        },
    );
}

const RELOADED: &str = "inventory reloaded";
const RELOAD_FAILED: &str = "inventory reload failed; keeping the previous inventory";

#[test]
fn a_broken_inventory_edit_keeps_the_last_good_inventory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("inventory.yaml");
    replace(&file, &inventory("0.2.0"));
    let mut wg = ServeProcess::spawn(
        free_port(),
        &dir.path().join("certs"),
        &dir.path().join("wasmgate.log"),
        dir.path(),
        &[
            "--inventory".into(),
            file.display().to_string(),
            "--inventory-poll-seconds".into(),
            POLL_SECONDS.to_string(),
        ],
    );
    wg.wait_ready(Duration::from_secs(60));
    let (allowed, message) = verdict(&wg);
    assert!(allowed, "db-1 offers postgres 0.2.0: {message}");

    // Invalid YAML: the error is logged, and the verdict stays for several poll periods.
    replace(&file, "apiVersion: v1\nkind: List\nitems: [ {unclosed\n");
    wait_log(&mut wg, RELOAD_FAILED, 1);
    let log = wg.log_text();
    let line = log
        .lines()
        .find(|l| l.contains(RELOAD_FAILED))
        .unwrap_or_default();
    assert!(
        line.contains("ERROR") && line.contains("cannot parse inventory"),
        "{line}"
    );
    let held = Instant::now();
    while held.elapsed() < Duration::from_secs(3 * POLL_SECONDS) {
        let (allowed, message) = verdict(&wg);
        assert!(allowed, "the broken edit changed the verdict: {message}");
        std::thread::sleep(Duration::from_millis(300));
    }

    // Valid YAML whose Host does not decode: the same.
    replace(
        &file,
        "apiVersion: wasmgate.dev/v1alpha1\nkind: Host\nmetadata: {name: db-1}\nhostId: [not, a, string]\n",
    );
    wait_log(&mut wg, RELOAD_FAILED, 2);
    let (allowed, message) = verdict(&wg);
    assert!(
        allowed,
        "the undecodable Host changed the verdict: {message}"
    );
    assert_eq!(
        wg.log_text().matches(RELOADED).count(),
        0,
        "a broken edit was loaded"
    );

    // A good edit (the host now offers only 0.1.1-draft) is picked up.
    replace(&file, &inventory("0.1.1-draft"));
    wait_log(&mut wg, RELOADED, 1);
    let message = poll(
        "the good edit to change the verdict",
        PICKED_UP,
        Duration::from_millis(300),
        || match verdict(&wg) {
            (false, message) => Ok(message),
            (true, message) => Err(message),
        },
    );
    assert!(
        message.contains("none of the 1 hosts matching hostSelector {hostgroup=default}")
            && message.contains("they offer 0.1.1-draft"),
        "{message}"
    );

    // And back: the server follows every good edit.
    replace(&file, &inventory("0.2.0"));
    poll(
        "the verdict to follow the next good edit",
        PICKED_UP,
        Duration::from_millis(300),
        || match verdict(&wg) {
            (true, _) => Ok(()),
            (false, message) => Err(message),
        },
    );
    wg.assert_running();
}
