//! End to end: certificates and leader election against a real kube-apiserver 1.36 (etcd and
//! kube-controller-manager beside it, all on loopback), and hot reload of mounted certificates.
//!
//! `self_managed_certificates_and_leader_election` (one cluster, scenarios in order; wasmgate runs
//! with the ServiceAccount and RBAC of `manifests/`, short durations from flags):
//! 1. self-managed mode: the leader creates the Secret, writes the caBundle into both webhook
//!    configurations and the APIService; the APIService turns Available and `kubectl apply`
//!    goes through the webhooks with that caBundle;
//! 2. rotation (30 s validity, rotated at 20 s): admission requests (curl against /validate,
//!    trusting the CA from the Secret, one connection each) and `kubectl apply --dry-run=server`
//!    run in loops across the rotation with zero failures, and the served serial changes while
//!    the CA stays the same;
//! 3. two replicas on one Lease: exactly one leads; after `kill -9` of the leader the other takes
//!    the Lease within the lease duration (plus one retry) and writes (it rotates the Secret);
//!    SIGTERM releases the Lease at once.
//!
//! `mounted_certificates_reload_without_restart` (no cluster): files laid out like a Secret
//! volume (`..data` symlink swap); the served certificate follows them, a mismatched pair keeps
//! the last good one.
//!
//! Run: `cargo test --test e2e_certs -- --nocapture` (see tests/support/mod.rs for CI=true,
//! WASMGATE_SKIP_E2E=1, WASMGATE_CP_BIN, WASMGATE_E2E_KEEP).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    announce, apply_hosts_apiservice, apply_webhook_configurations_at, control_plane_bin,
    dry_run_manifests, free_port, install_wasmgate_rbac, install_workload_crds, poll, repo_root,
    run_bounded, scenario, start_cluster, wait_apiservice_available, wait_for_webhooks,
    ControlPlane, Kubectl, Wasmgate, APISERVICE,
};

const NS: &str = "wasmgate-system";
const SECRET: &str = "wasmgate-tls";
const LEASE: &str = "wasmgate";
/// Serving certificate validity for the test (rotated at two thirds: 20 s).
const VALIDITY_SECS: u64 = 30;
const LEASE_SECS: u64 = 6;
const RETRY_SECS: u64 = 1;
const GOOD: &str = "examples/workloads/hello-kv.yaml";
const BROKEN: &str = "examples/broken/postgres-version.yaml";

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_else(|e| panic!("not base64 ({e}): {text}"))
}

/// The serial of the certificate served on 127.0.0.1:`port` (hex, from openssl).
fn served_serial(port: u16) -> Result<String, String> {
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(format!(
        "openssl s_client -connect 127.0.0.1:{port} -servername localhost </dev/null 2>/dev/null \
         | openssl x509 -noout -serial"
    ));
    let out = run_bounded(cmd, None, Duration::from_secs(10));
    match out.stdout.trim().strip_prefix("serial=") {
        Some(s) if out.success() => Ok(s.to_owned()),
        _ => Err(out.describe()),
    }
}

/// The serial of a PEM certificate.
fn pem_serial(pem: &[u8]) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(["x509", "-noout", "-serial"]);
    let out = run_bounded(
        cmd,
        Some(&String::from_utf8_lossy(pem)),
        Duration::from_secs(10),
    );
    assert!(out.success(), "{}", out.describe());
    out.stdout.trim().trim_start_matches("serial=").to_owned()
}

fn secret(kubectl: &Kubectl) -> Value {
    kubectl.get_json(&["secret", SECRET, "-n", NS])
}

fn secret_data(secret: &Value, key: &str) -> Vec<u8> {
    unb64(
        secret["data"][key]
            .as_str()
            .unwrap_or_else(|| panic!("Secret has no {key}: {:#}", secret["metadata"])),
    )
}

fn lease_holder(kubectl: &Kubectl) -> String {
    let lease = kubectl.get_json(&["lease", LEASE, "-n", NS]);
    lease["spec"]["holderIdentity"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn self_managed_certificates_and_leader_election() {
    let t0 = Instant::now();
    let Some((cluster, kubectl, work)) = start_cluster() else {
        return; // WASMGATE_SKIP_E2E=1, announced loudly
    };

    let port_a = free_port();
    let mut sa_kubeconfig = PathBuf::new();
    scenario(
        "setup: RBAC of manifests/, CRDs, webhooks and APIService without caBundle",
        || sa_kubeconfig = setup(&cluster, &kubectl, &work, port_a),
    );

    let flags = |identity: &str| -> Vec<String> {
        [
            "--cert-mode",
            "self-managed",
            "--kubeconfig",
            &sa_kubeconfig.display().to_string(),
            "--leader-identity",
            identity,
            "--leader-lease-duration",
            &format!("{LEASE_SECS}s"),
            "--leader-renew-period",
            "2s",
            "--leader-retry-period",
            &format!("{RETRY_SECS}s"),
            "--cert-validity",
            &format!("{VALIDITY_SECS}s"),
            "--cert-poll-interval",
            "1s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let inventory = repo_root().join("examples/inventory.yaml");
    // The helper waits for ca.crt in --cert-dir: self-managed mode keeps a copy of the Secret's
    // CA bundle there.
    let mut a = Wasmgate::start_with(
        port_a,
        &work.join("a"),
        &inventory,
        &work.join("a.log"),
        &flags("wasmgate-a"),
    );

    scenario(
        "self-managed: Secret created, caBundles written, APIService Available, apply works",
        || self_managed(&kubectl, &a),
    );
    scenario(
        "rotation: zero failed admission requests, new serial, same CA",
        || rotation(&kubectl, &a),
    );

    let mut b = Wasmgate::start_with(
        free_port(),
        &work.join("b"),
        &inventory,
        &work.join("b.log"),
        &flags("wasmgate-b"),
    );
    scenario(
        "two replicas: one leader; kill -9 of it, the other takes over and writes",
        || failover(&kubectl, &mut a, &b),
    );
    scenario("SIGTERM releases the Lease at once", || {
        release_on_sigterm(&kubectl, &mut b)
    });

    drop(a);
    drop(b);
    drop(cluster);
    announce(format!(
        "e2e: all certificate scenarios passed in {:.1}s",
        t0.elapsed().as_secs_f64()
    ));
}

// ---------------------------------------------------------------------------------------------
// Setup
// ---------------------------------------------------------------------------------------------

fn setup(cluster: &ControlPlane, kubectl: &Kubectl, work: &Path, port: u16) -> PathBuf {
    let path = install_wasmgate_rbac(cluster, kubectl, work);
    // The Deployment and the rest of manifests/ are accepted by the real apiserver.
    dry_run_manifests(kubectl);
    // CRDs, so that Workloads reach the webhooks.
    install_workload_crds(kubectl);
    // The shipped webhook configurations and the APIService, on wasmgate's port and without a
    // caBundle: wasmgate writes it.
    apply_webhook_configurations_at(kubectl, port, None);
    apply_hosts_apiservice(kubectl, port, None);
    path
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

fn ca_bundles(kubectl: &Kubectl) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for kind in [
        "validatingwebhookconfiguration",
        "mutatingwebhookconfiguration",
    ] {
        let obj = kubectl.get_json(&[kind, "wasmgate"]);
        for hook in obj["webhooks"].as_array().cloned().unwrap_or_default() {
            out.push((
                format!("{kind}/{}", hook["name"].as_str().unwrap_or("")),
                hook["clientConfig"]["caBundle"].as_str().map(str::to_owned),
            ));
        }
    }
    let svc = kubectl.get_json(&[APISERVICE]);
    out.push((
        APISERVICE.to_owned(),
        svc["spec"]["caBundle"].as_str().map(str::to_owned),
    ));
    out
}

fn self_managed(kubectl: &Kubectl, a: &Wasmgate) {
    let s = secret(kubectl);
    assert_eq!(s["type"], "kubernetes.io/tls", "{:#}", s["metadata"]);
    for key in ["ca.crt", "ca.key", "tls.crt", "tls.key"] {
        assert!(!secret_data(&s, key).is_empty(), "{key} empty");
    }
    assert_eq!(
        s["metadata"]["annotations"]["wasmgate.dev/issued-by"], "wasmgate-a",
        "{:#}",
        s["metadata"]
    );
    let ca = secret_data(&s, "ca.crt");
    assert_eq!(
        std::fs::read(a.ca_file()).expect("the CA copy in --cert-dir"),
        ca,
        "the CA copy in --cert-dir is the Secret's"
    );
    assert_eq!(lease_holder(kubectl), "wasmgate-a");
    // The served certificate is the Secret's.
    assert_eq!(
        served_serial(a.port).unwrap(),
        pem_serial(&secret_data(&s, "tls.crt"))
    );

    let want = b64(&ca);
    poll(
        "the caBundle in both webhook configurations and the APIService",
        Duration::from_secs(20),
        Duration::from_millis(300),
        || {
            let bundles = ca_bundles(kubectl);
            if bundles.len() == 3 && bundles.iter().all(|(_, b)| b.as_deref() == Some(&want)) {
                Ok(())
            } else {
                Err(format!("{bundles:?}"))
            }
        },
    );

    // Available with the caBundle wasmgate wrote.
    wait_apiservice_available(kubectl, a);
    wait_for_webhooks(
        kubectl,
        "kubectl apply through the webhooks (denied and defaulted)",
        BROKEN,
        GOOD,
    );
    let log = std::fs::read_to_string(&a.log).unwrap_or_default();
    assert!(
        !log.contains("PRIVATE KEY") && !log.contains("-----BEGIN"),
        "key or certificate material in the log"
    );
}

fn rotation(kubectl: &Kubectl, a: &Wasmgate) {
    let before = secret(kubectl);
    let ca = secret_data(&before, "ca.crt");
    let ca_file = a.ca_file();
    let serial0 = served_serial(a.port).unwrap();
    let bundles0 = ca_bundles(kubectl);

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let url = a.url("/validate");
    let fixture = repo_root().join("webhooks/fixtures/good-hello-kv.json");
    let curl_loop = {
        let (stop, ok, failures, ca_file) =
            (stop.clone(), ok.clone(), failures.clone(), ca_file.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut curl = Command::new("curl");
                curl.args(["-sS", "--max-time", "5", "--cacert"])
                    .arg(&ca_file)
                    .args(["-H", "Content-Type: application/json", "--data-binary"])
                    .arg(format!("@{}", fixture.display()))
                    .args(["-w", "\n%{http_code}"])
                    .arg(&url);
                let out = run_bounded(curl, None, Duration::from_secs(10));
                if out.success()
                    && out.stdout.ends_with("\n200")
                    && out.stdout.contains("\"allowed\":true")
                {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failures.lock().unwrap().push(out.describe());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let applied = Arc::new(AtomicUsize::new(0));
    let kubectl_loop = {
        let (stop, applied, failures) = (stop.clone(), applied.clone(), failures.clone());
        let k = Kubectl {
            bin: kubectl.bin.clone(),
            kubeconfig: kubectl.kubeconfig.clone(),
            cache_dir: kubectl.cache_dir.clone(),
        };
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let out = k.run(&["apply", "--dry-run=server", "-f", GOOD], None);
                if out.success() {
                    applied.fetch_add(1, Ordering::Relaxed);
                } else {
                    failures.lock().unwrap().push(out.describe());
                }
            }
        })
    };

    let t = Instant::now();
    let serial1 = poll(
        "the served certificate to rotate",
        Duration::from_secs(VALIDITY_SECS + 20),
        Duration::from_millis(250),
        || match served_serial(a.port) {
            Ok(s) if s != serial0 => Ok(s),
            Ok(s) => Err(format!("still {s}")),
            Err(e) => Err(e),
        },
    );
    let rotated_after = t.elapsed();
    // Keep the clients going a little past the switch.
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    curl_loop.join().expect("curl loop");
    kubectl_loop.join().expect("kubectl loop");
    let failures = failures.lock().unwrap();
    let (ok, applied) = (ok.load(Ordering::Relaxed), applied.load(Ordering::Relaxed));
    announce(format!(
        "e2e: rotation after {:.1}s: serial {serial0} -> {serial1}; {ok} admission requests and \
         {applied} kubectl applies, {} failed",
        rotated_after.as_secs_f64(),
        failures.len()
    ));
    assert!(
        failures.is_empty(),
        "{} requests failed across the rotation; first:\n{}",
        failures.len(),
        failures[0]
    );
    assert!(
        ok >= 20 && applied >= 5,
        "too few requests: {ok} and {applied}"
    );

    let after = secret(kubectl);
    assert_eq!(secret_data(&after, "ca.crt"), ca, "the CA changed");
    assert_eq!(pem_serial(&secret_data(&after, "tls.crt")), serial1);
    assert_eq!(ca_bundles(kubectl), bundles0, "the caBundles changed");
    let log = std::fs::read_to_string(&a.log).unwrap_or_default();
    assert!(
        log.contains("serving certificate reloaded from the Secret"),
        "{}",
        a.log_tail(30)
    );
}

fn failover(kubectl: &Kubectl, a: &mut Wasmgate, b: &Wasmgate) {
    // B serves the Secret's certificate, and follows.
    poll(
        "replica B to serve the same certificate as A",
        Duration::from_secs(15),
        Duration::from_millis(300),
        || {
            let (sa, sb) = (served_serial(a.port)?, served_serial(b.port)?);
            if sa == sb {
                Ok(())
            } else {
                Err(format!("a {sa}, b {sb}"))
            }
        },
    );
    std::thread::sleep(Duration::from_secs(LEASE_SECS));
    assert_eq!(lease_holder(kubectl), "wasmgate-a", "A still leads");
    let b_log = std::fs::read_to_string(&b.log).unwrap_or_default();
    assert!(
        !b_log.contains("became the leader"),
        "two leaders: {}",
        b.log_tail(20)
    );
    let transitions = |k: &Kubectl| {
        k.get_json(&["lease", LEASE, "-n", NS])["spec"]["leaseTransitions"]
            .as_i64()
            .unwrap_or(0)
    };
    let transitions0 = transitions(kubectl);

    let pid = a.pid().expect("A running");
    a.stop(); // SIGKILL: no release
    let t = Instant::now();
    poll(
        "B to take the Lease",
        Duration::from_secs(LEASE_SECS + 10),
        Duration::from_millis(200),
        || match lease_holder(kubectl) {
            h if h == "wasmgate-b" => Ok(()),
            h => Err(format!("holder {h:?}")),
        },
    );
    let took = t.elapsed();
    announce(format!(
        "e2e: A (pid {pid}) killed; B took the Lease after {:.1}s (lease duration {LEASE_SECS}s, \
         retry {RETRY_SECS}s)",
        took.as_secs_f64()
    ));
    // Only the eventual state is asserted (the poll above is bounded generously): how fast a
    // takeover is depends on a loaded CI machine; the time is reported above, not asserted.
    assert!(transitions(kubectl) > transitions0, "leaseTransitions");

    // B writes: it rotates the Secret (issued-by) and serves the new certificate.
    let t = Instant::now();
    let s = poll(
        "a Secret write by B",
        Duration::from_secs(VALIDITY_SECS + 10),
        Duration::from_millis(300),
        || {
            let s = secret(kubectl);
            if s["metadata"]["annotations"]["wasmgate.dev/issued-by"] == "wasmgate-b" {
                Ok(s)
            } else {
                Err(format!("{:#}", s["metadata"]["annotations"]))
            }
        },
    );
    let want = pem_serial(&secret_data(&s, "tls.crt"));
    poll(
        "B to serve its new certificate",
        Duration::from_secs(10),
        Duration::from_millis(200),
        || match served_serial(b.port) {
            Ok(s) if s == want => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    announce(format!(
        "e2e: B rotated the Secret {:.1}s after taking over",
        t.elapsed().as_secs_f64()
    ));
}

fn release_on_sigterm(kubectl: &Kubectl, b: &mut Wasmgate) {
    let pid = b.pid().expect("B running");
    let out = run_bounded(
        {
            let mut c = Command::new("kill");
            c.args(["-TERM", &pid.to_string()]);
            c
        },
        None,
        Duration::from_secs(5),
    );
    assert!(out.success(), "{}", out.describe());
    let t = Instant::now();
    poll(
        "the Lease to be released",
        Duration::from_secs(5),
        Duration::from_millis(100),
        || match lease_holder(kubectl) {
            h if h.is_empty() => Ok(()),
            h => Err(format!("holder {h:?}")),
        },
    );
    announce(format!(
        "e2e: Lease released {:.2}s after SIGTERM",
        t.elapsed().as_secs_f64()
    ));
    poll(
        "B to exit",
        Duration::from_secs(15),
        Duration::from_millis(100),
        || {
            if support::process_gone(pid) {
                Ok(())
            } else {
                Err("running".into())
            }
        },
    );
    let log = std::fs::read_to_string(&b.log).unwrap_or_default();
    assert!(
        log.contains("released the leader Lease"),
        "{}",
        b.log_tail(20)
    );
}

// ---------------------------------------------------------------------------------------------
// Mounted certificates
// ---------------------------------------------------------------------------------------------

/// Writes a new version directory and swaps `..data` to it, as the kubelet does.
fn publish(dir: &Path, version: &str, ca: &str, cert: &str, key: &str) {
    let v = dir.join(version);
    std::fs::create_dir_all(&v).unwrap();
    std::fs::write(v.join("ca.crt"), ca).unwrap();
    std::fs::write(v.join("tls.crt"), cert).unwrap();
    std::fs::write(v.join("tls.key"), key).unwrap();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(version, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for f in ["ca.crt", "tls.crt", "tls.key"] {
        let link = dir.join(f);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{f}"), &link).unwrap();
        }
    }
}

#[test]
fn mounted_certificates_reload_without_restart() {
    if control_plane_bin().is_none() {
        return;
    }
    let t0 = Instant::now();
    let work = tempfile::Builder::new()
        .prefix("wasmgate-e2e-mounted-")
        .tempdir()
        .unwrap();
    let dir = work.path().join("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let sans = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let gen = || wasmgate::platform::tls::issue::generate(&sans).unwrap();
    let (one, two, three) = (gen(), gen(), gen());
    publish(&dir, "..v1", &one.ca_pem, &one.cert_pem, &one.key_pem);
    let extra: Vec<String> = [
        "--tls-cert",
        &dir.join("tls.crt").display().to_string(),
        "--tls-key",
        &dir.join("tls.key").display().to_string(),
        "--tls-reload-interval",
        "300ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let wg = Wasmgate::start_with(
        free_port(),
        &dir,
        &repo_root().join("examples/inventory.yaml"),
        &work.path().join("wasmgate.log"),
        &extra,
    );
    let pid = wg.pid();
    let serial = |pem: &str| pem_serial(pem.as_bytes());
    assert_eq!(served_serial(wg.port).unwrap(), serial(&one.cert_pem));

    let wait_for = |want: String, what: &str| {
        let t = Instant::now();
        poll(
            what,
            Duration::from_secs(10),
            Duration::from_millis(100),
            || match served_serial(wg.port) {
                Ok(s) if s == want => Ok(()),
                other => Err(format!("{other:?}")),
            },
        );
        t.elapsed()
    };
    publish(&dir, "..v2", &two.ca_pem, &two.cert_pem, &two.key_pem);
    let took = wait_for(
        serial(&two.cert_pem),
        "the new certificate after the ..data swap",
    );
    announce(format!(
        "e2e: mounted: new certificate served {:.2}s after the swap",
        took.as_secs_f64()
    ));

    // Half written: the new certificate with the old key. The last good pair stays.
    publish(&dir, "..v3", &three.ca_pem, &three.cert_pem, &two.key_pem);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(served_serial(wg.port).unwrap(), serial(&two.cert_pem));
    let log = std::fs::read_to_string(&wg.log).unwrap_or_default();
    assert!(
        log.contains("cannot be used; still serving the last good certificate"),
        "{}",
        wg.log_tail(20)
    );
    publish(&dir, "..v4", &three.ca_pem, &three.cert_pem, &three.key_pem);
    wait_for(serial(&three.cert_pem), "the repaired pair");
    assert_eq!(wg.pid(), pid, "no restart");
    assert!(!support::process_gone(pid.unwrap()), "still running");
    let log = std::fs::read_to_string(&wg.log).unwrap_or_default();
    assert!(!log.contains("PRIVATE KEY"), "key material in the log");
    drop(wg);
    announce(format!(
        "e2e: mounted certificates: reloads without restart ... ok ({:.1}s)",
        t0.elapsed().as_secs_f64()
    ));
}
