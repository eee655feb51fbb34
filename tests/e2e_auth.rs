//! Delegated authentication of the hosts API against a real kube-apiserver 1.36 (etcd and
//! kube-controller-manager beside it, all on loopback), for callers that reach wasmgate directly
//! rather than through the aggregator. wasmgate runs with the ServiceAccount and RBAC of
//! `manifests/`.
//!
//! Scenarios (one cluster, in order; each prints `e2e: <scenario> ... ok`):
//! - `--api-auth none` on a non-loopback address is refused before wasmgate writes anything to
//!   the cluster (no Lease, no certificate Secret);
//! - bearer tokens (`kubectl create token`) are authenticated by TokenReview and authorized by
//!   SubjectAccessReview with the user and groups the review returned: allowed with RBAC (here
//!   through a group binding), 403 without, 403 for a verb the role lacks; an invalid token, a
//!   token for another audience and a token of a deleted ServiceAccount are 401;
//! - rotated CAs: kube-apiserver's `kube-system/extension-apiserver-authentication` ConfigMap is
//!   edited as a CA rotation would (a new front-proxy CA and a new client CA are added, then
//!   replaced); wasmgate (`--auth-reload-seconds 1`) accepts certificates of the new CAs within a
//!   few reload periods and refuses those of the removed ones.
//!
//! Editing that ConfigMap is safe and sticks: kube-apiserver only reads it for extension servers
//! and its controller (`clusterauthenticationtrust`) writes back the union of what the ConfigMap
//! holds and its own CAs, so an added CA stays until it is removed again, and its own are never
//! removed.
//!
//! Run: `cargo test --test e2e_auth -- --nocapture` (see tests/support/mod.rs for CI=true,
//! WASMGATE_SKIP_E2E=1, WASMGATE_CP_BIN, WASMGATE_E2E_KEEP).

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use serde_json::Value;
use support::serve::{curl, serve_to_exit};
use support::{
    announce, free_port, install_wasmgate_rbac, poll, repo_root, scenario, start_cluster,
    ControlPlane, Kubectl, Wasmgate,
};

const HOSTS: &str = "/apis/wasmgate.dev/v1alpha1/hosts";
/// How long a change in the cluster (RBAC, the ConfigMap) may take to show: many reload and
/// cache periods, the CI machine is slow.
const SETTLE: Duration = Duration::from_secs(45);
/// `--auth-reload-seconds`.
const RELOAD_SECONDS: u64 = 1;
/// `--auth-cache-seconds`.
const CACHE_SECONDS: u64 = 2;

#[test]
fn delegated_authentication_end_to_end() {
    let t0 = Instant::now();
    let Some((cluster, kubectl, work)) = start_cluster() else {
        return; // WASMGATE_SKIP_E2E=1, announced loudly
    };

    let mut sa_kubeconfig = PathBuf::new();
    scenario("setup: namespace, ServiceAccount, RBAC", || {
        sa_kubeconfig = install_wasmgate_rbac(&cluster, &kubectl, &work);
    });
    scenario(
        "--api-auth none on 0.0.0.0: refused before anything is written to the cluster",
        || api_auth_none_refused(&kubectl, &work, &sa_kubeconfig),
    );

    let extra = vec![
        "--kubeconfig".to_string(),
        sa_kubeconfig.display().to_string(),
        "--auth-reload-seconds".to_string(),
        RELOAD_SECONDS.to_string(),
        "--auth-cache-seconds".to_string(),
        CACHE_SECONDS.to_string(),
    ];
    let wasmgate = Wasmgate::start_with(
        free_port(),
        &work.join("certs"),
        &repo_root().join("examples/inventory.yaml"),
        &work.join("wasmgate.log"),
        &extra,
    );

    scenario(
        "bearer tokens: TokenReview, then SubjectAccessReview as the reviewed user",
        || bearer_tokens(&kubectl, &wasmgate),
    );
    scenario(
        "rotated CAs in extension-apiserver-authentication: new ones accepted, removed ones refused",
        || rotated_cas(&cluster, &kubectl, &wasmgate, &work),
    );

    drop(wasmgate);
    drop(cluster);
    announce(format!(
        "e2e: all authentication scenarios passed in {:.1}s",
        t0.elapsed().as_secs_f64()
    ));
}

// ---------------------------------------------------------------------------------------------
// --api-auth none
// ---------------------------------------------------------------------------------------------

/// With everything that writes to the cluster turned on (a kubeconfig, so leader election; the
/// self-managed certificate mode, so a Secret), `--api-auth none` on 0.0.0.0 exits with the
/// error, and leaves neither a Lease nor a Secret behind.
fn api_auth_none_refused(kubectl: &Kubectl, work: &Path, kubeconfig: &Path) {
    let home = work.join("home-api-auth-none");
    std::fs::create_dir_all(&home).expect("create a HOME");
    let args: Vec<String> = [
        "--listen",
        &format!("0.0.0.0:{}", free_port()),
        "--api-auth",
        "none",
        "--kubeconfig",
        &kubeconfig.display().to_string(),
        "--cert-mode",
        "self-managed",
        "--cert-dir",
        &work.join("certs-api-auth-none").display().to_string(),
        "--inventory",
        &repo_root()
            .join("examples/inventory.yaml")
            .display()
            .to_string(),
        "--registry-pulls",
        "false",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = serve_to_exit(&home, &args, Duration::from_secs(90));
    assert_eq!(out.code(), Some(2), "{}", out.describe());
    assert!(
        out.stderr.contains(
            "error: --api-auth none serves the hosts API to anyone: it is allowed on a loopback \
             --listen address only"
        ),
        "{}",
        out.describe()
    );
    for (what, args) in [
        (
            "the Lease",
            ["get", "lease", "wasmgate", "-n", "wasmgate-system"],
        ),
        (
            "the TLS Secret",
            ["get", "secret", "wasmgate-tls", "-n", "wasmgate-system"],
        ),
    ] {
        let got = kubectl.run(&args, None);
        assert!(
            !got.success() && got.stderr.contains("NotFound"),
            "a refused `serve` wrote {what}: {}\n--- its output ---\n{}",
            got.describe(),
            out.describe()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Bearer tokens
// ---------------------------------------------------------------------------------------------

fn token(kubectl: &Kubectl, sa: &str, namespace: &str, more: &[&str]) -> String {
    let mut args = vec!["create", "token", sa, "-n", namespace, "--duration=1h"];
    args.extend_from_slice(more);
    let out = kubectl.ok(&args, None);
    let token = out.stdout.trim().to_string();
    assert!(token.len() > 20, "{}", out.describe());
    token
}

/// `curl` with `Authorization: Bearer TOKEN` (and `more`), no client certificate.
fn with_token(wasmgate: &Wasmgate, token: &str, more: &[&str], path: &str) -> (u16, Value) {
    let ca = wasmgate.ca_file().display().to_string();
    let auth = format!("Authorization: Bearer {token}");
    let url = wasmgate.url(path);
    let mut args = vec!["--cacert", &ca, "-H", &auth];
    args.extend_from_slice(more);
    args.push(&url);
    curl(&args)
}

fn assert_status(code: u16, body: &Value, want: u16, reason: &str, what: &str) {
    assert_eq!(code, want, "{what}: {body:#}");
    assert_eq!(body["kind"], "Status", "{what}: {body:#}");
    assert_eq!(body["reason"], reason, "{what}: {body:#}");
}

fn bearer_tokens(kubectl: &Kubectl, wasmgate: &Wasmgate) {
    // `e2e-team`'s ServiceAccounts read hosts through a binding of their group (so the groups
    // TokenReview returns must reach the SubjectAccessReview); `default/stranger` has no binding.
    kubectl.ok(&["create", "namespace", "e2e-team"], None);
    for (sa, ns) in [
        ("reader", "e2e-team"),
        ("leaver", "e2e-team"),
        ("stranger", "default"),
    ] {
        kubectl.ok(&["create", "serviceaccount", sa, "-n", ns], None);
    }
    kubectl.ok(
        &[
            "create",
            "clusterrolebinding",
            "e2e-team-reads-hosts",
            "--clusterrole=wasmgate:hosts-reader",
            "--group=system:serviceaccounts:e2e-team",
        ],
        None,
    );
    let reader = token(kubectl, "reader", "e2e-team", &[]);
    let leaver = token(kubectl, "leaver", "e2e-team", &[]);
    let stranger = token(kubectl, "stranger", "default", &[]);
    let elsewhere = token(
        kubectl,
        "reader",
        "e2e-team",
        &["--audience=https://not-kubernetes.example"],
    );

    // Allowed with RBAC (polled: the binding reaches the RBAC authorizer through an informer,
    // and an early denial is cached for --auth-cache-seconds).
    for (name, token) in [("reader", &reader), ("leaver", &leaver)] {
        poll(
            &format!("{name}'s token to list hosts"),
            SETTLE,
            Duration::from_millis(500),
            || match with_token(wasmgate, token, &[], HOSTS) {
                (200, body) if body["kind"] == "HostList" => Ok(()),
                (code, body) => Err(format!("{code}: {body:#}")),
            },
        );
    }
    // The reviewed user, not a header, is who is authorized: forged front-proxy headers next to
    // the token change nothing without the front-proxy certificate.
    let forged = [
        "-H",
        "X-Remote-User: admin",
        "-H",
        "X-Remote-Group: system:masters",
    ];
    let (code, body) = with_token(wasmgate, &stranger, &forged, HOSTS);
    assert_status(code, &body, 403, "Forbidden", "stranger (forged headers)");
    assert_eq!(
        body["message"],
        "hosts.wasmgate.dev is forbidden: User \"system:serviceaccount:default:stranger\" cannot \
         list resource \"hosts\" in API group \"wasmgate.dev\" at the cluster scope",
        "{body:#}"
    );
    let (code, body) = with_token(wasmgate, &stranger, &[], HOSTS);
    assert_status(code, &body, 403, "Forbidden", "stranger");
    // A verb the reader's role lacks.
    let host = r#"{"apiVersion":"wasmgate.dev/v1alpha1","kind":"Host","metadata":{"name":"by-reader"},"hostId":"by-reader"}"#;
    let (code, body) = with_token(
        wasmgate,
        &reader,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data",
            host,
        ],
        HOSTS,
    );
    assert_status(code, &body, 403, "Forbidden", "reader creating a host");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("User \"system:serviceaccount:e2e-team:reader\" cannot create resource"),
        "{body:#}"
    );

    // Not authenticated: 401, whatever the RBAC.
    for (what, token) in [
        ("a token nobody issued", "not-a-token"),
        (
            "a JWT-shaped token nobody signed",
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJl",
        ),
        ("a token for another audience", elsewhere.as_str()),
    ] {
        let (code, body) = with_token(wasmgate, token, &[], HOSTS);
        assert_status(code, &body, 401, "Unauthorized", what);
        // Why is logged, not told.
        assert_eq!(body["message"], "Unauthorized", "{what}: {body:#}");
    }

    // A token of a deleted ServiceAccount stops working, once the caches expire: wasmgate's
    // (--auth-cache-seconds) and kube-apiserver's own (successful token authentications are
    // reused for 10 s).
    kubectl.ok(
        &["delete", "serviceaccount", "leaver", "-n", "e2e-team"],
        None,
    );
    let deleted = Instant::now();
    poll(
        "the deleted ServiceAccount's token to be refused",
        SETTLE,
        Duration::from_millis(500),
        || match with_token(wasmgate, &leaver, &[], HOSTS) {
            (401, _) => Ok(()),
            (code, body) => Err(format!("{code}: {body:#}")),
        },
    );
    announce(format!(
        "e2e: a deleted ServiceAccount's token refused {:.1}s after the deletion \
         (--auth-cache-seconds {CACHE_SECONDS}; kube-apiserver caches 10 s)",
        deleted.elapsed().as_secs_f64()
    ));
    // The reader is unaffected.
    let (code, body) = with_token(wasmgate, &reader, &[], HOSTS);
    assert_eq!(code, 200, "{body:#}");
}

// ---------------------------------------------------------------------------------------------
// Rotated CAs
// ---------------------------------------------------------------------------------------------

/// A CA generated for this test.
fn new_ca(cn: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, cn);
    CertifiedIssuer::self_signed(p, KeyPair::generate().expect("CA key")).expect("CA")
}

/// A client certificate (CN `cn`, O `org`) signed by `ca`, written with its key under `dir` as
/// `NAME.crt` and `NAME.key` (generated now; nothing is committed). Returns the two paths.
fn client_cert(
    ca: &CertifiedIssuer<'static, KeyPair>,
    cn: &str,
    org: Option<&str>,
    dir: &Path,
    name: &str,
) -> (String, String) {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("client params");
    p.distinguished_name.push(DnType::CommonName, cn);
    if let Some(o) = org {
        p.distinguished_name.push(DnType::OrganizationName, o);
    }
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().expect("client key");
    let cert = p.signed_by(&key, ca).expect("client certificate");
    let crt = dir.join(format!("{name}.crt"));
    let keyfile = dir.join(format!("{name}.key"));
    std::fs::write(&crt, cert.pem()).expect("write the certificate");
    std::fs::write(&keyfile, key.serialize_pem()).expect("write the key");
    (crt.display().to_string(), keyfile.display().to_string())
}

/// A caller presenting a client certificate: a front proxy (with `X-Remote-*` headers) or a
/// client-ca user (without).
struct Caller {
    what: &'static str,
    cert: (String, String),
    front_proxy: bool,
}

impl Caller {
    fn list_hosts(&self, wasmgate: &Wasmgate) -> (u16, Value) {
        let ca = wasmgate.ca_file().display().to_string();
        let url = wasmgate.url(HOSTS);
        let mut args = vec![
            "--cacert",
            &ca,
            "--cert",
            &self.cert.0,
            "--key",
            &self.cert.1,
        ];
        if self.front_proxy {
            args.extend([
                "-H",
                "X-Remote-User: rotation-admin",
                "-H",
                "X-Remote-Group: system:masters",
            ]);
        }
        args.push(&url);
        curl(&args)
    }

    fn assert_refused(&self, wasmgate: &Wasmgate, when: &str) {
        let (code, body) = self.list_hosts(wasmgate);
        assert_status(
            code,
            &body,
            401,
            "Unauthorized",
            &format!("{} {when}", self.what),
        );
    }

    fn wait_accepted(&self, wasmgate: &Wasmgate, when: &str) -> Duration {
        let t = Instant::now();
        poll(
            &format!("{} to be accepted {when}", self.what),
            SETTLE,
            Duration::from_millis(250),
            || match self.list_hosts(wasmgate) {
                (200, body) if body["kind"] == "HostList" => Ok(()),
                (code, body) => Err(format!("{code}: {body:#}")),
            },
        );
        t.elapsed()
    }
}

const CONFIGMAP: [&str; 4] = [
    "configmap",
    "extension-apiserver-authentication",
    "-n",
    "kube-system",
];

fn configmap_data(kubectl: &Kubectl) -> Value {
    kubectl.get_json(&CONFIGMAP)["data"].clone()
}

/// Sets the two CA bundles of the ConfigMap (a merge patch: the other keys stay).
fn set_cas(kubectl: &Kubectl, requestheader: &str, client: &str) {
    let patch = serde_json::json!({"data": {
        "requestheader-client-ca-file": requestheader,
        "client-ca-file": client,
    }});
    let mut args = vec!["patch"];
    args.extend_from_slice(&CONFIGMAP);
    args.extend(["--type=merge", "-p"]);
    let patch = patch.to_string();
    args.push(&patch);
    kubectl.ok(&args, None);
}

fn rotated_cas(cluster: &ControlPlane, kubectl: &Kubectl, wasmgate: &Wasmgate, work: &Path) {
    let dir = work.join("rotation");
    std::fs::create_dir_all(&dir).expect("create the rotation directory");
    let data = configmap_data(kubectl);
    let original_front = data["requestheader-client-ca-file"]
        .as_str()
        .expect("requestheader-client-ca-file")
        .to_string();
    let original_client = data["client-ca-file"]
        .as_str()
        .expect("client-ca-file")
        .to_string();
    assert_eq!(
        data["requestheader-allowed-names"], "[\"front-proxy-client\"]",
        "{data:#}"
    );

    // The aggregator's own front-proxy certificate: accepted throughout.
    let env = |k: &str| cluster.env.get(k).unwrap_or_else(|| panic!("{k}")).clone();
    let aggregator = Caller {
        what: "the aggregator's front-proxy certificate",
        cert: (
            env("WASMGATE_FRONT_PROXY_CLIENT_CERT"),
            env("WASMGATE_FRONT_PROXY_CLIENT_KEY"),
        ),
        front_proxy: true,
    };
    aggregator.wait_accepted(wasmgate, "before the rotation");

    let front1 = new_ca("e2e-front-proxy-ca-1");
    let front2 = new_ca("e2e-front-proxy-ca-2");
    let client1 = new_ca("e2e-client-ca-1");
    let proxy1 = Caller {
        what: "a front proxy of the first new CA",
        cert: client_cert(&front1, "front-proxy-client", None, &dir, "proxy1"),
        front_proxy: true,
    };
    let proxy2 = Caller {
        what: "a front proxy of the second new CA",
        cert: client_cert(&front2, "front-proxy-client", None, &dir, "proxy2"),
        front_proxy: true,
    };
    let admin1 = Caller {
        what: "an admin of the new client CA",
        cert: client_cert(
            &client1,
            "rotation-admin",
            Some("system:masters"),
            &dir,
            "admin1",
        ),
        front_proxy: false,
    };
    for caller in [&proxy1, &proxy2, &admin1] {
        caller.assert_refused(wasmgate, "before its CA is published");
    }

    // Rotation, first step: the new CAs are published next to the old ones.
    set_cas(
        kubectl,
        &format!("{original_front}{}", front1.pem()),
        &format!("{original_client}{}", client1.pem()),
    );
    let took = proxy1.wait_accepted(wasmgate, "once its CA is published");
    admin1.wait_accepted(wasmgate, "once its CA is published");
    announce(format!(
        "e2e: a certificate of a newly published CA accepted after {:.1}s \
         (--auth-reload-seconds {RELOAD_SECONDS})",
        took.as_secs_f64()
    ));
    proxy2.assert_refused(wasmgate, "before its CA is published");
    aggregator.wait_accepted(wasmgate, "next to the new CAs");
    // kube-apiserver's controller keeps what was added (it writes back the union).
    let data = configmap_data(kubectl);
    assert!(
        data["requestheader-client-ca-file"]
            .as_str()
            .is_some_and(|b| b.contains(front1.pem().lines().nth(1).unwrap_or("-"))),
        "kube-apiserver dropped the added CA: {data:#}"
    );

    // Second step: the first new front-proxy CA is replaced by the second, and the new client CA
    // is removed again. One ConfigMap version, swapped at once: as soon as the second proxy is
    // accepted, the first is refused.
    set_cas(
        kubectl,
        &format!("{original_front}{}", front2.pem()),
        &original_client,
    );
    proxy2.wait_accepted(wasmgate, "once its CA replaced the first");
    proxy1.assert_refused(wasmgate, "once its CA was removed");
    poll(
        "the removed client CA's admin to be refused",
        SETTLE,
        Duration::from_millis(250),
        || match admin1.list_hosts(wasmgate) {
            (401, _) => Ok(()),
            (code, body) => Err(format!("{code}: {body:#}")),
        },
    );
    aggregator.wait_accepted(wasmgate, "after the rotation");
    // Stays refused across later reloads.
    std::thread::sleep(Duration::from_secs(3 * RELOAD_SECONDS));
    proxy1.assert_refused(wasmgate, "reloads after its CA was removed");
    admin1.assert_refused(wasmgate, "reloads after its CA was removed");

    // Back to the cluster's own CAs.
    set_cas(kubectl, &original_front, &original_client);
    poll(
        "the second new CA's proxy to be refused after the restore",
        SETTLE,
        Duration::from_millis(250),
        || match proxy2.list_hosts(wasmgate) {
            (401, _) => Ok(()),
            (code, body) => Err(format!("{code}: {body:#}")),
        },
    );
    aggregator.wait_accepted(wasmgate, "after the restore");
    let log = wasmgate.log_tail(400);
    assert!(
        log.contains("loaded the authentication configuration"),
        "{log}"
    );
}
