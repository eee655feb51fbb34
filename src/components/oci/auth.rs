//! Registry credentials for a pull: the component's `imagePullSecret` (a
//! `kubernetes.io/dockerconfigjson` Secret), with the entry chosen by the image's registry domain
//! the way the wasmCloud operator chooses it (`docker.io` and `index.docker.io` use the key
//! `https://index.docker.io/v1/`; other registries their domain; then docker's legacy match of a
//! key's host name).
//!
//! The webhook has no Kubernetes client of its own for Secrets yet, so the secrets reach it as
//! files: `--pull-secrets-dir DIR` holds `DIR/<namespace>/<secret>/.dockerconfigjson` (the layout
//! a projected Secret volume per namespace gives, or any sync job), and `--registry-auth-file` is a
//! dockerconfigjson for components without a pull secret (what a host's own docker credentials
//! would give it). Any other lookup (a live kube client) implements [`AuthProvider`].

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use base64::Engine;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

use crate::crd::is_dns_subdomain;

/// Largest dockerconfigjson read (a Secret is at most 1 MiB).
const MAX_SECRET_BYTES: u64 = 1024 * 1024;

/// The key Docker (and the operator) use for Docker Hub.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// Credentials for one pull, and where they came from (for messages; never the secret itself).
#[derive(Clone)]
pub struct Credentials {
    /// What is sent to the registry.
    pub auth: RegistryAuth,
    /// Where the credentials came from, e.g. `imagePullSecret team-a/regcred`, or `anonymous`.
    pub origin: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Anonymous access, with a note on why.
    pub fn anonymous(origin: impl Into<String>) -> Self {
        Self {
            auth: RegistryAuth::Anonymous,
            origin: origin.into(),
        }
    }

    /// A stable, non-reversible name for these credentials against `registry` (cache keys: two
    /// tenants with different credentials never share a tag lookup or a registry token).
    pub fn fingerprint(&self, registry: &str) -> String {
        let material = match &self.auth {
            RegistryAuth::Anonymous => return format!("anonymous@{registry}"),
            RegistryAuth::Basic(user, password) => format!("basic\0{registry}\0{user}\0{password}"),
            RegistryAuth::Bearer(token) => format!("bearer\0{registry}\0{token}"),
        };
        let digest = ring::digest::digest(&ring::digest::SHA256, material.as_bytes());
        let hex: String = digest.as_ref()[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{hex}@{registry}")
    }
}

/// Why credentials could not be found.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// The named Secret does not exist (where wasmgate can see it).
    #[error("imagePullSecret {name:?} not found in namespace {namespace:?} ({detail})")]
    NotFound {
        /// Namespace of the workload.
        namespace: String,
        /// Secret name.
        name: String,
        /// Where wasmgate looked.
        detail: String,
    },
    /// The Secret exists but is not a usable dockerconfigjson.
    #[error("imagePullSecret {name:?} in namespace {namespace:?} is not a usable kubernetes.io/dockerconfigjson Secret: {detail}")]
    Invalid {
        /// Namespace of the workload.
        namespace: String,
        /// Secret name.
        name: String,
        /// What is wrong.
        detail: String,
    },
}

/// A boxed credentials future, so providers can be trait objects.
pub type AuthFuture<'a> = Pin<Box<dyn Future<Output = Result<Credentials, AuthError>> + Send + 'a>>;

/// Finds the credentials for pulling from `registry` (the image's domain as written, e.g.
/// `docker.io`, `ghcr.io`, `127.0.0.1:5000`) for a component in `namespace` with the given
/// `imagePullSecret`.
pub trait AuthProvider: Send + Sync {
    /// Looks the credentials up.
    fn credentials<'a>(
        &'a self,
        namespace: &'a str,
        pull_secret: Option<&'a str>,
        registry: &'a str,
    ) -> AuthFuture<'a>;
}

/// Always anonymous.
#[derive(Debug, Default)]
pub struct Anonymous;

impl AuthProvider for Anonymous {
    fn credentials<'a>(
        &'a self,
        _namespace: &'a str,
        _pull_secret: Option<&'a str>,
        _registry: &'a str,
    ) -> AuthFuture<'a> {
        Box::pin(async { Ok(Credentials::anonymous("anonymous")) })
    }
}

/// A parsed `.dockerconfigjson`.
#[derive(Clone, Default)]
pub struct DockerConfig {
    /// Key (as written) -> (username, password).
    auths: BTreeMap<String, (String, String)>,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    auths: BTreeMap<String, RawEntry>,
}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    auth: Option<String>,
}

/// Why a `kubernetes.io/dockerconfigjson` Secret's payload cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DockerConfigError {
    /// Not the JSON shape.
    #[error("not dockerconfigjson: {0}")]
    Json(#[from] serde_json::Error),
    /// An `auth` that is not base64.
    #[error("the auth of {registry:?} is not base64: {source}")]
    Base64 {
        /// The `auths` key.
        registry: String,
        /// The decoder's error.
        source: base64::DecodeError,
    },
    /// An `auth` that decodes to something other than `username:password` in UTF-8.
    #[error("the auth of {registry:?} is not base64 of username:password")]
    NotUserPass {
        /// The `auths` key.
        registry: String,
    },
}

impl DockerConfig {
    /// Parses dockerconfigjson bytes (`{"auths": {"<registry>": {"username", "password"} |
    /// {"auth": base64("user:pass")}}}`); `auth` wins over `username`/`password`, as in docker's
    /// loader.
    pub fn parse(bytes: &[u8]) -> Result<Self, DockerConfigError> {
        let raw: RawConfig = serde_json::from_slice(bytes)?;
        let mut auths = BTreeMap::new();
        for (key, entry) in raw.auths {
            let pair = match entry.auth.as_deref().filter(|a| !a.is_empty()) {
                Some(encoded) => {
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(encoded.trim())
                        .map_err(|source| DockerConfigError::Base64 {
                            registry: key.clone(),
                            source,
                        })?;
                    let not_user_pass = || DockerConfigError::NotUserPass {
                        registry: key.clone(),
                    };
                    let text = String::from_utf8(decoded).map_err(|_| not_user_pass())?;
                    let (user, pass) = text.split_once(':').ok_or_else(not_user_pass)?;
                    (user.to_string(), pass.trim_end_matches('\n').to_string())
                }
                None => (
                    entry.username.unwrap_or_default(),
                    entry.password.unwrap_or_default(),
                ),
            };
            auths.insert(key, pair);
        }
        Ok(Self { auths })
    }

    /// The entry for an image's registry `domain`, as the operator picks it.
    pub fn lookup(&self, domain: &str) -> Option<(&str, &str)> {
        let key = auth_config_key(domain);
        let found = self.auths.get(key).or_else(|| {
            // docker's legacy match: a key written as a URL matches its host name.
            self.auths
                .iter()
                .find(|(k, _)| convert_to_hostname(k) == key)
                .map(|(_, v)| v)
        })?;
        Some((found.0.as_str(), found.1.as_str()))
    }

    /// Credentials for `domain`: basic auth from the entry, or anonymous when there is none (or
    /// it is empty, as the operator then sends empty credentials).
    pub fn credentials(&self, domain: &str, origin: &str) -> Credentials {
        match self.lookup(domain) {
            Some((user, pass)) if !(user.is_empty() && pass.is_empty()) => Credentials {
                auth: RegistryAuth::Basic(user.to_string(), pass.to_string()),
                origin: origin.to_string(),
            },
            _ => Credentials::anonymous(format!(
                "anonymous ({origin} has no entry for {})",
                auth_config_key(domain)
            )),
        }
    }
}

/// The operator's `getAuthConfigKey`.
pub fn auth_config_key(domain: &str) -> &str {
    match domain {
        "docker.io" | "index.docker.io" => DOCKER_HUB_KEY,
        d => d,
    }
}

/// docker's `ConvertToHostname`: strip a scheme and anything after the host.
fn convert_to_hostname(key: &str) -> &str {
    let rest = key
        .strip_prefix("http://")
        .or_else(|| key.strip_prefix("https://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

async fn read_small(path: &Path) -> std::io::Result<Vec<u8>> {
    let meta = tokio::fs::metadata(path).await?;
    if meta.len() > MAX_SECRET_BYTES {
        return Err(std::io::Error::other(format!(
            "{} is {} bytes, over {MAX_SECRET_BYTES}",
            path.display(),
            meta.len()
        )));
    }
    tokio::fs::read(path).await
}

/// Credentials from files: pull secrets in a directory keyed by namespace and name, and a default
/// dockerconfigjson for components without a pull secret. Files are read on each lookup (they
/// are small), so updated Secrets apply at once.
#[derive(Clone, Debug, Default)]
pub struct FileAuth {
    /// `DIR/<namespace>/<name>/.dockerconfigjson`.
    pub secrets_dir: Option<PathBuf>,
    /// Used when a component names no pull secret.
    pub default_config: Option<PathBuf>,
}

impl FileAuth {
    async fn lookup(
        &self,
        namespace: &str,
        pull_secret: Option<&str>,
        registry: &str,
    ) -> Result<Credentials, AuthError> {
        let Some(name) = pull_secret.filter(|n| !n.is_empty()) else {
            let Some(path) = &self.default_config else {
                return Ok(Credentials::anonymous("anonymous"));
            };
            let origin = format!("--registry-auth-file {}", path.display());
            // A broken default file is the operator's mistake, not the workload's: log it and
            // pull anonymously.
            return match read_small(path).await {
                Ok(bytes) => match DockerConfig::parse(&bytes) {
                    Ok(cfg) => Ok(cfg.credentials(registry, &origin)),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "unusable --registry-auth-file");
                        Ok(Credentials::anonymous(format!("anonymous ({origin}: {e})")))
                    }
                },
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot read --registry-auth-file");
                    Ok(Credentials::anonymous(format!("anonymous ({origin}: {e})")))
                }
            };
        };
        let Some(dir) = &self.secrets_dir else {
            return Ok(Credentials::anonymous(format!(
                "anonymous (imagePullSecret {name:?} not read: wasmgate runs without --pull-secrets-dir)"
            )));
        };
        let invalid = |detail: String| AuthError::Invalid {
            namespace: namespace.to_string(),
            name: name.to_string(),
            detail,
        };
        // A valid object name is also what keeps a name from leaving the secrets directory.
        if !is_dns_subdomain(namespace) || !is_dns_subdomain(name) {
            return Err(invalid("not a valid Kubernetes object name".to_string()));
        }
        let secret_dir = dir.join(namespace).join(name);
        let path = secret_dir.join(".dockerconfigjson");
        match read_small(&path).await {
            Ok(bytes) => {
                let cfg = DockerConfig::parse(&bytes).map_err(|e| invalid(e.to_string()))?;
                Ok(cfg.credentials(registry, &format!("imagePullSecret {namespace}/{name}")))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if tokio::fs::metadata(secret_dir.join(".dockercfg"))
                    .await
                    .is_ok()
                {
                    return Err(invalid(
                        "it holds .dockercfg (type kubernetes.io/dockercfg); the wasmCloud operator requires type kubernetes.io/dockerconfigjson".to_string(),
                    ));
                }
                Err(AuthError::NotFound {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    detail: format!("no {}", path.display()),
                })
            }
            Err(e) => Err(invalid(format!("cannot read {}: {e}", path.display()))),
        }
    }
}

impl AuthProvider for FileAuth {
    fn credentials<'a>(
        &'a self,
        namespace: &'a str,
        pull_secret: Option<&'a str>,
        registry: &'a str,
    ) -> AuthFuture<'a> {
        Box::pin(self.lookup(namespace, pull_secret, registry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(c: &Credentials) -> Option<(String, String)> {
        match &c.auth {
            RegistryAuth::Basic(u, p) => Some((u.clone(), p.clone())),
            _ => None,
        }
    }

    #[test]
    fn entries_are_chosen_by_domain_like_the_operator() {
        let cfg = DockerConfig::parse(
            br#"{"auths": {
                "https://index.docker.io/v1/": {"username": "hub", "password": "h"},
                "ghcr.io": {"auth": "Z2g6c2VjcmV0"},
                "https://registry.example.com/v2/": {"username": "ex", "password": "e"},
                "localhost:5000": {"username": "", "password": ""}
            }}"#,
        )
        .unwrap();
        assert_eq!(cfg.lookup("docker.io"), Some(("hub", "h")));
        assert_eq!(cfg.lookup("index.docker.io"), Some(("hub", "h")));
        assert_eq!(cfg.lookup("ghcr.io"), Some(("gh", "secret")));
        assert_eq!(cfg.lookup("registry.example.com"), Some(("ex", "e")));
        assert_eq!(cfg.lookup("quay.io"), None);
        assert!(basic(&cfg.credentials("ghcr.io", "x")).is_some());
        // An empty entry and a missing one: anonymous, with the reason.
        let c = cfg.credentials("localhost:5000", "imagePullSecret a/b");
        assert!(basic(&c).is_none());
        assert!(
            c.origin.contains("no entry for localhost:5000"),
            "{}",
            c.origin
        );
    }

    #[test]
    fn auth_wins_and_bad_auth_is_an_error() {
        let cfg = DockerConfig::parse(
            br#"{"auths": {"r.io": {"username": "u", "password": "p", "auth": "YTpi"}}}"#,
        )
        .unwrap();
        assert_eq!(cfg.lookup("r.io"), Some(("a", "b")));
        assert!(DockerConfig::parse(br#"{"auths": {"r.io": {"auth": "!!"}}}"#).is_err());
        assert!(DockerConfig::parse(br#"{"auths": {"r.io": {"auth": "YWI="}}}"#).is_err());
        assert!(DockerConfig::parse(b"not json").is_err());
        assert!(DockerConfig::parse(b"\"x\"").is_err());
    }

    #[test]
    fn fingerprints_separate_credentials() {
        let a = Credentials {
            auth: RegistryAuth::Basic("u".into(), "p".into()),
            origin: "x".into(),
        };
        let b = Credentials {
            auth: RegistryAuth::Basic("u".into(), "q".into()),
            origin: "x".into(),
        };
        assert_ne!(a.fingerprint("r"), b.fingerprint("r"));
        assert_ne!(a.fingerprint("r"), a.fingerprint("s"));
        assert_eq!(a.fingerprint("r"), a.fingerprint("r"));
        assert_eq!(Credentials::anonymous("a").fingerprint("r"), "anonymous@r");
        assert!(!format!("{a:?}").contains("\"p\""));
    }

    #[test]
    fn object_names_are_checked() {
        assert!(is_dns_subdomain("regcred"));
        assert!(is_dns_subdomain("my.cred-1"));
        for bad in ["", "..", "../x", "a/b", "A", "-a", "a..b"] {
            assert!(!is_dns_subdomain(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn secrets_from_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("team-a/regcred");
        std::fs::create_dir_all(&secret).unwrap();
        std::fs::write(
            secret.join(".dockerconfigjson"),
            br#"{"auths": {"127.0.0.1:5000": {"username": "u", "password": "p"}}}"#,
        )
        .unwrap();
        let legacy = dir.path().join("team-a/old");
        std::fs::create_dir_all(&legacy).unwrap();
        std::fs::write(legacy.join(".dockercfg"), b"{}").unwrap();
        let auth = FileAuth {
            secrets_dir: Some(dir.path().to_path_buf()),
            default_config: None,
        };
        let c = auth
            .credentials("team-a", Some("regcred"), "127.0.0.1:5000")
            .await
            .unwrap();
        assert_eq!(basic(&c), Some(("u".into(), "p".into())));
        assert_eq!(c.origin, "imagePullSecret team-a/regcred");
        let e = auth
            .credentials("team-b", Some("regcred"), "127.0.0.1:5000")
            .await
            .unwrap_err();
        assert!(matches!(e, AuthError::NotFound { .. }), "{e}");
        let e = auth
            .credentials("team-a", Some("old"), "127.0.0.1:5000")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("kubernetes.io/dockercfg"), "{e}");
        let e = auth
            .credentials("team-a", Some("../../etc"), "r")
            .await
            .unwrap_err();
        assert!(matches!(e, AuthError::Invalid { .. }), "{e}");
        let c = auth.credentials("team-a", None, "r").await.unwrap();
        assert!(basic(&c).is_none());
        // Without a directory the secret cannot be read: anonymous, and the reason is kept.
        let c = FileAuth::default()
            .credentials("team-a", Some("regcred"), "r")
            .await
            .unwrap();
        assert!(c.origin.contains("--pull-secrets-dir"), "{}", c.origin);
    }
}
