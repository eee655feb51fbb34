//! Development certificates: a CA and a serving certificate signed by it, generated with rcgen
//! and written to a directory (never committed), reused on the next start.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::OffsetDateTime;

/// Paths of a generated certificate set.
#[derive(Clone, Debug)]
pub struct CertPaths {
    /// The CA certificate (the webhook configuration's caBundle).
    pub ca: PathBuf,
    /// The serving certificate chain.
    pub cert: PathBuf,
    /// The serving key (mode 0600).
    pub key: PathBuf,
}

impl CertPaths {
    /// The standard file names inside `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            ca: dir.join("ca.crt"),
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        }
    }
}

/// Why certificates could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen failed.
    #[error("generating certificates: {0}")]
    Generate(#[from] rcgen::Error),
    /// Writing failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The names a serving certificate covers by default: loopback plus the in-cluster Service.
pub fn default_sans(service: &str, namespace: &str) -> Vec<String> {
    vec![
        "localhost".into(),
        "127.0.0.1".into(),
        "::1".into(),
        service.into(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// A freshly generated CA and serving certificate, as PEM.
pub struct GeneratedCerts {
    /// CA certificate PEM.
    pub ca_pem: String,
    /// Serving certificate PEM.
    pub cert_pem: String,
    /// Serving key PEM.
    pub key_pem: String,
}

/// The parameters of a CA named `common_name`: the same name and key always give the same
/// issuer (subject and key identifier), so a CA can sign again from its key alone.
fn ca_params(common_name: &str) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn serving_params(sans: &[String]) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::new(sans.to_vec())?;
    params.distinguished_name.push(
        DnType::CommonName,
        sans.first().cloned().unwrap_or_default(),
    );
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    Ok(params)
}

/// Generates a CA and a serving certificate for `sans`.
pub fn generate(sans: &[String]) -> Result<GeneratedCerts, CertError> {
    let ca = CertifiedIssuer::self_signed(ca_params("wasmgate CA")?, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let cert = serving_params(sans)?.signed_by(&key, &ca)?;
    Ok(GeneratedCerts {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A CA made by [`generate_ca`]: enough to sign serving certificates later, in this process or
/// another (the key and the name rebuild the issuer).
pub struct CaMaterial {
    /// The CA certificate, PEM.
    pub cert_pem: String,
    /// The CA key, PEM. Never log it.
    pub key_pem: String,
    /// The CA's common name (its subject).
    pub common_name: String,
}

impl std::fmt::Debug for CaMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaMaterial")
            .field("common_name", &self.common_name)
            .finish_non_exhaustive()
    }
}

/// Generates a self-signed CA named `common_name`, valid from `not_before` to `not_after`.
pub fn generate_ca(
    common_name: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<CaMaterial, CertError> {
    let mut params = ca_params(common_name)?;
    params.not_before = not_before;
    params.not_after = not_after;
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(CaMaterial {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        common_name: common_name.to_owned(),
    })
}

/// A serving certificate and its key, PEM.
pub struct ServingPair {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The key, PEM. Never log it.
    pub key_pem: String,
}

/// Signs a new serving certificate (with a new key) for `sans` by the CA whose key is
/// `ca_key_pem` and whose common name is `ca_common_name`.
pub fn sign_serving(
    ca_common_name: &str,
    ca_key_pem: &str,
    sans: &[String],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<ServingPair, CertError> {
    let issuer = Issuer::new(ca_params(ca_common_name)?, KeyPair::from_pem(ca_key_pem)?);
    let mut params = serving_params(sans)?;
    params.not_before = not_before;
    params.not_after = not_after;
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(ServingPair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Writes `contents` to `path` atomically (a temporary file renamed over it), mode 0600 when
/// `private`.
pub fn write_file(path: &Path, contents: &str, private: bool) -> Result<(), CertError> {
    let err = |source| CertError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).map_err(err)?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    }
    #[cfg(not(unix))]
    let _ = private;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Reuses the certificates in `dir`, or generates and writes new ones.
pub fn ensure_in_dir(dir: &Path, sans: &[String]) -> Result<CertPaths, CertError> {
    let paths = CertPaths::in_dir(dir);
    if paths.ca.exists() && paths.cert.exists() && paths.key.exists() {
        return Ok(paths);
    }
    let generated = generate(sans)?;
    write_file(&paths.ca, &generated.ca_pem, false)?;
    write_file(&paths.key, &generated.key_pem, true)?;
    write_file(&paths.cert, &generated.cert_pem, false)?;
    Ok(paths)
}
