//! How wasmgate connects to wasmCloud's NATS: the URL plus the credentials and TLS material
//! upstream's runtime operator accepts (`-nats-creds`, `-nats-ca`, `-nats-client-cert`,
//! `-nats-client-key`, `-nats-tls-first` in wasmCloud's `runtime-operator/cmd/main.go`), and an
//! nkey seed. Upstream's chart runs NATS with TLS and `verify_and_map` client certificates, so
//! without these wasmgate could not reach it at all.
//!
//! Everything is read and checked once at start ([`NatsConnection::new`]), so a wrong path or
//! a broken file stops `serve` with a clear error instead of retrying forever. The files are
//! read again on every (re)connect, so rotated certificates and credentials are picked up.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why the NATS connection options cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NatsConfigError {
    /// A file could not be read.
    #[error("{what} {path}: {source}")]
    Read {
        /// Which option named the file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read but does not hold what the option needs.
    #[error("{what} {path}: {reason}")]
    Invalid {
        /// Which option named the file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// NATS credentials and TLS options, shared by `wasmgate serve` and `wasmgate sim-hosts`.
#[derive(Clone, Debug, Default, Args)]
pub struct NatsAuthArgs {
    /// NATS credentials file (`.creds`: a user JWT and its nkey seed), as upstream's operator
    /// `-nats-creds`.
    #[arg(long, value_name = "FILE", env = "WASMGATE_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,
    /// File holding an nkey user seed (`SU...`), for servers configured with nkey users.
    #[arg(
        long,
        value_name = "FILE",
        env = "WASMGATE_NATS_NKEY",
        conflicts_with = "nats_creds"
    )]
    pub nats_nkey: Option<PathBuf>,
    /// CA bundle (PEM) that signs the NATS server's certificate; TLS is then required.
    #[arg(
        long,
        visible_alias = "nats-ca",
        value_name = "FILE",
        env = "WASMGATE_NATS_TLS_CA"
    )]
    pub nats_tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for servers that verify clients (upstream's chart:
    /// `verify_and_map`); needs --nats-tls-key.
    #[arg(
        long,
        visible_alias = "nats-client-cert",
        value_name = "FILE",
        env = "WASMGATE_NATS_TLS_CERT",
        requires = "nats_tls_key"
    )]
    pub nats_tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --nats-tls-cert.
    #[arg(
        long,
        visible_alias = "nats-client-key",
        value_name = "FILE",
        env = "WASMGATE_NATS_TLS_KEY",
        requires = "nats_tls_cert"
    )]
    pub nats_tls_key: Option<PathBuf>,
    /// Start TLS before NATS' INFO exchange (servers with `handshake_first`), as upstream's
    /// `-nats-tls-first`.
    #[arg(long, env = "WASMGATE_NATS_TLS_FIRST")]
    pub nats_tls_first: bool,
}

/// How the client proves who it is.
#[derive(Clone)]
enum Identity {
    /// Anonymous, or user/password/token in the URL.
    Url,
    /// A `.creds` file, re-read on every connect.
    Creds(PathBuf),
    /// An nkey user seed.
    NKey(String),
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::Url => f.write_str("Url"),
            Identity::Creds(path) => f.debug_tuple("Creds").field(path).finish(),
            // Never the seed itself.
            Identity::NKey(_) => f.write_str("NKey(..)"),
        }
    }
}

/// A checked NATS connection configuration: build client options from it with
/// [`NatsConnection::options`].
#[derive(Clone, Debug)]
pub struct NatsConnection {
    url: String,
    identity: Identity,
    tls_ca: Option<PathBuf>,
    client_cert: Option<(PathBuf, PathBuf)>,
    tls_first: bool,
}

impl NatsConnection {
    /// Reads and checks every file `args` names (the credentials parse, the certificates and
    /// key are PEM, the nkey is a user seed).
    pub fn new(url: impl Into<String>, args: &NatsAuthArgs) -> Result<Self, NatsConfigError> {
        let identity = match (&args.nats_creds, &args.nats_nkey) {
            (Some(path), _) => {
                let text = read("--nats-creds", path)?;
                async_nats::ConnectOptions::new()
                    .credentials(&text)
                    .map_err(|e| invalid("--nats-creds", path, e.to_string()))?;
                Identity::Creds(path.clone())
            }
            (None, Some(path)) => {
                let seed = read("--nats-nkey", path)?.trim().to_string();
                let pair = nkeys::KeyPair::from_seed(&seed)
                    .map_err(|e| invalid("--nats-nkey", path, e.to_string()))?;
                if pair.key_pair_type() != nkeys::KeyPairType::User {
                    return Err(invalid(
                        "--nats-nkey",
                        path,
                        "not a user seed (SU...)".to_string(),
                    ));
                }
                Identity::NKey(seed)
            }
            (None, None) => Identity::Url,
        };
        if let Some(path) = &args.nats_tls_ca {
            check_certificates("--nats-tls-ca", path)?;
        }
        let client_cert = match (&args.nats_tls_cert, &args.nats_tls_key) {
            (Some(cert), Some(key)) => {
                check_certificates("--nats-tls-cert", cert)?;
                PrivateKeyDer::from_pem_slice(read("--nats-tls-key", key)?.as_bytes())
                    .map_err(|e| invalid("--nats-tls-key", key, e.to_string()))?;
                Some((cert.clone(), key.clone()))
            }
            _ => None,
        };
        Ok(NatsConnection {
            url: url.into(),
            identity,
            tls_ca: args.nats_tls_ca.clone(),
            client_cert,
            tls_first: args.nats_tls_first,
        })
    }

    /// The server URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Client options named `name` that, once connected, reconnect forever (never giving up,
    /// as upstream's operator: `MaxReconnects(-1)`), with this configuration's identity and
    /// TLS. Reads the credentials file again, so a rotated one is used.
    pub async fn options(&self, name: &str) -> Result<async_nats::ConnectOptions, NatsConfigError> {
        let mut options = async_nats::ConnectOptions::new()
            .name(name)
            .max_reconnects(None)
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((attempts as u64).saturating_mul(250).min(5_000))
            });
        options = match &self.identity {
            Identity::Url => options,
            Identity::Creds(path) => options
                .credentials_file(path)
                .await
                .map_err(|e| invalid("--nats-creds", path, e.to_string()))?,
            Identity::NKey(seed) => options.nkey(seed.clone()),
        };
        if let Some(ca) = &self.tls_ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let Some((cert, key)) = &self.client_cert {
            options = options
                .add_client_certificate(cert.clone(), key.clone())
                .require_tls(true);
        }
        if self.tls_first {
            options = options.tls_first();
        }
        Ok(options)
    }
}

fn read(what: &'static str, path: &Path) -> Result<String, NatsConfigError> {
    std::fs::read_to_string(path).map_err(|source| NatsConfigError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn invalid(what: &'static str, path: &Path, reason: String) -> NatsConfigError {
    NatsConfigError::Invalid {
        what,
        path: path.to_path_buf(),
        reason,
    }
}

fn check_certificates(what: &'static str, path: &Path) -> Result<(), NatsConfigError> {
    let text = read(what, path)?;
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(text.as_bytes()) {
        cert.map_err(|e| invalid(what, path, e.to_string()))?;
        count += 1;
    }
    if count == 0 {
        return Err(invalid(what, path, "no PEM certificate".to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn files_are_checked_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let args = NatsAuthArgs {
            nats_creds: Some(missing.clone()),
            ..Default::default()
        };
        let err = NatsConnection::new("nats://x", &args).unwrap_err();
        assert!(
            matches!(
                err,
                NatsConfigError::Read {
                    what: "--nats-creds",
                    ..
                }
            ),
            "{err}"
        );

        let garbage = write(dir.path(), "garbage", "not a creds file");
        let err = NatsConnection::new(
            "nats://x",
            &NatsAuthArgs {
                nats_creds: Some(garbage),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(matches!(err, NatsConfigError::Invalid { .. }), "{err}");

        // An account seed is a valid nkey but not a user's.
        let account = nkeys::KeyPair::new_account().seed().unwrap();
        let err = NatsConnection::new(
            "nats://x",
            &NatsAuthArgs {
                nats_nkey: Some(write(dir.path(), "account.nk", &account)),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("not a user seed"), "{err}");

        let user = nkeys::KeyPair::new_user().seed().unwrap();
        let ok = NatsConnection::new(
            "nats://x",
            &NatsAuthArgs {
                nats_nkey: Some(write(dir.path(), "user.nk", &format!("{user}\n"))),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(
            !format!("{ok:?}").contains(&user),
            "the seed must not be logged"
        );

        let err = NatsConnection::new(
            "nats://x",
            &NatsAuthArgs {
                nats_tls_ca: Some(write(dir.path(), "ca.pem", "-----BEGIN NOTHING-----\n")),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("--nats-tls-ca"), "{err}");
    }
}
