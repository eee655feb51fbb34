//! `--webhook-client-ca`: `/validate` and `/mutate` answer only callers whose client certificate
//! chains to the given CA (kube-apiserver, configured to present one); others get a 401 Status
//! before their body is read. Health and metrics stay open. A real `wasmgate serve` process and
//! curl with and without client certificates.
//!
//! Run: `cargo test --test webhook_client_ca`.

mod support;

use std::path::Path;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use support::serve::{curl, ServeProcess};
use support::{free_port, repo_root};

/// A CA; returns its PEM and an issuer for client certificates.
fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    (pem, Issuer::new(params, key))
}

/// A client certificate and key signed by `issuer`, written to `dir`; returns their paths.
fn client(dir: &Path, name: &str, issuer: &Issuer<'static, KeyPair>) -> (String, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    let (c, k) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c.display().to_string(), k.display().to_string())
}

#[test]
fn the_webhooks_answer_only_callers_with_a_certificate_of_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ca_pem, apiserver_ca) = ca("apiserver webhook client CA");
    let ca_file = d.join("webhook-client-ca.crt");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let (_, other_ca) = ca("some other CA");
    let (good_cert, good_key) = client(d, "kube-apiserver", &apiserver_ca);
    let (bad_cert, bad_key) = client(d, "intruder", &other_ca);
    let home = d.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut wasmgate = ServeProcess::spawn(
        free_port(),
        &d.join("certs"),
        &d.join("wasmgate.log"),
        &home,
        &[
            "--api-auth".into(),
            "none".into(),
            "--inventory".into(),
            repo_root()
                .join("examples/inventory.yaml")
                .display()
                .to_string(),
            "--webhook-client-ca".into(),
            ca_file.display().to_string(),
        ],
    );
    wasmgate.wait_ready(Duration::from_secs(60));
    let server_ca = wasmgate.ca_file().display().to_string();
    let review = repo_root()
        .join("webhooks/fixtures/good-hello-kv.json")
        .display()
        .to_string();
    assert!(Path::new(&review).is_file(), "{review}");
    let body = format!("@{review}");
    for path in ["/validate", "/mutate"] {
        let url = wasmgate.url(path);
        let post = |extra: &[&str]| {
            let mut args = vec![
                "--cacert",
                &server_ca,
                "-H",
                "content-type: application/json",
                "--data-binary",
                &body,
            ];
            args.extend_from_slice(extra);
            args.push(&url);
            curl(&args)
        };
        let (code, status) = post(&[]);
        assert_eq!(code, 401, "{path} without a certificate: {status}");
        assert_eq!(status["kind"], "Status", "{status}");
        assert!(
            status["message"]
                .as_str()
                .unwrap_or_default()
                .contains("client certificate is required"),
            "{status}"
        );
        let (code, status) = post(&["--cert", &bad_cert, "--key", &bad_key]);
        assert_eq!(code, 401, "{path} with another CA's certificate: {status}");
        let (code, answer) = post(&["--cert", &good_cert, "--key", &good_key]);
        assert_eq!(
            code, 200,
            "{path} with the apiserver's certificate: {answer}"
        );
        assert_eq!(answer["kind"], "AdmissionReview", "{answer}");
    }
    // Health stays open (kubelet probes present no certificate).
    let (code, _) = curl(&["--cacert", &server_ca, &wasmgate.url("/healthz")]);
    assert_eq!(code, 200);
    wasmgate.assert_running();
}
