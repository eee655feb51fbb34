//! A real OCI registry for tests: Debian's `docker-registry` (CNCF distribution) on a free
//! loopback port, storing in a temp dir, with optional basic auth and TLS.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use oci_client::client::{
    Certificate, CertificateEncoding, ClientConfig, ClientProtocol, Config, ImageLayer,
};
use oci_client::manifest::OciImageManifest;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde_json::json;

use super::free_port;

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
/// The config media type of a CNCF wasm OCI artifact.
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";

pub struct Registry {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    tls_ca: Option<String>,
    credentials: Option<(String, String)>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Registry {
    /// Starts `docker-registry serve` on a free loopback port, storing in a temp dir; optional
    /// htpasswd basic auth and TLS (a CA and serving certificate generated with rcgen).
    pub fn start(basic_auth: Option<(&str, &str)>, tls: bool) -> Registry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: install the Debian package docker-registry (scripts/lib-install.sh)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut auth = String::new();
        if let Some((user, pass)) = basic_auth {
            let hash = bcrypt::hash(pass, 4).expect("bcrypt");
            std::fs::write(dir.path().join("htpasswd"), format!("{user}:{hash}\n")).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: wasmgate-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            );
        }
        let mut tls_block = String::new();
        let mut tls_ca = None;
        if tls {
            let certs =
                wasmgate::platform::tls::issue::generate(&["127.0.0.1".into(), "localhost".into()])
                    .expect("certs");
            std::fs::write(dir.path().join("tls.crt"), &certs.cert_pem).unwrap();
            std::fs::write(dir.path().join("tls.key"), &certs.key_pem).unwrap();
            std::fs::write(dir.path().join("ca.crt"), &certs.ca_pem).unwrap();
            tls_block = format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                dir.path().join("tls.crt").display(),
                dir.path().join("tls.key").display()
            );
            tls_ca = Some(certs.ca_pem);
        }
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: wasmgate-test-secret\n{tls_block}{auth}",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let mut registry = Registry {
            child: None,
            port,
            dir,
            tls_ca,
            credentials: basic_auth.map(|(u, p)| (u.to_string(), p.to_string())),
        };
        registry.run();
        registry
    }

    pub fn run(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "docker-registry exited: {status}\n{}",
                    std::fs::read_to_string(self.log_path()).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// Access-log lines of requests whose path contains `part`.
    pub fn requests(&self, method: &str, part: &str) -> usize {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains(&format!("\"{method} /v2/")) && l.contains(part))
            .count()
    }

    pub fn client(&self) -> Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut config = ClientConfig {
            protocol: if self.tls_ca.is_some() {
                ClientProtocol::Https
            } else {
                ClientProtocol::Http
            },
            ..ClientConfig::default()
        };
        if let Some(ca) = &self.tls_ca {
            config.extra_root_certificates = vec![Certificate {
                encoding: CertificateEncoding::Pem,
                data: ca.as_bytes().to_vec(),
            }];
        }
        Client::try_from(config).expect("oci client")
    }

    pub fn auth(&self) -> RegistryAuth {
        match &self.credentials {
            Some((u, p)) => RegistryAuth::Basic(u.clone(), p.clone()),
            None => RegistryAuth::Anonymous,
        }
    }

    /// Pushes an artifact: `layers` of (media type, bytes), a config of `config_type`; returns
    /// the manifest digest.
    pub async fn push_layers(
        &self,
        repo_tag: &str,
        layers: Vec<(&str, Vec<u8>)>,
        config_type: &str,
    ) -> String {
        let reference: Reference = format!("{}/{repo_tag}", self.host()).parse().unwrap();
        let layers: Vec<ImageLayer> = layers
            .into_iter()
            .map(|(t, data)| ImageLayer::new(data, t.to_string(), None))
            .collect();
        let digests: Vec<String> = layers.iter().map(|l| l.sha256_digest()).collect();
        let config = Config::new(
            serde_json::to_vec(&json!({
                "created": "2026-01-01T00:00:00Z",
                "architecture": "wasm",
                "os": "wasip2",
                "layerDigests": digests,
            }))
            .unwrap(),
            config_type.to_string(),
            None,
        );
        let manifest = OciImageManifest::build(&layers, &config, None);
        let client = self.client();
        let auth = self.auth();
        client
            .push(&reference, &layers, config, &auth, Some(manifest))
            .await
            .expect("push");
        client
            .fetch_manifest_digest(&reference, &auth)
            .await
            .expect("digest")
    }

    /// Pushes a component as a CNCF wasm OCI artifact.
    pub async fn push(&self, repo_tag: &str, component: Vec<u8>) -> String {
        self.push_layers(repo_tag, vec![("application/wasm", component)], WASM_CONFIG)
            .await
    }
}
