//! TLS client certificates: requested, never required, and not judged during the handshake.
//!
//! The handshake only proves that the client holds the key of the certificate it presents (the
//! CertificateVerify signature is checked). Which CA the chain must lead to depends on the request
//! (the front-proxy CA for the aggregated API; for the webhooks nothing, or `--webhook-client-ca`
//! with [`RequiredClientCa`]; nothing for health) and changes at run time (the CA bundle of
//! `extension-apiserver-authentication` rotates), so the chain is verified per request by
//! `crate::apiserver::auth` and [`RequiredClientCa::verify`].

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// Offers client authentication, accepts any (or no) certificate, verifies the handshake
/// signature.
#[derive(Debug)]
pub struct OptionalClientCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl OptionalClientCert {
    /// With ring's signature algorithms.
    pub fn new() -> Self {
        Self {
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for OptionalClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    // No hints: a client then sends its certificate whatever CA issued it.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A CA the webhook callers' client certificates must chain to (`--webhook-client-ca`):
/// kube-apiserver presents one when its AdmissionConfiguration gives it a kubeconfig with a
/// client certificate for the webhook's host. Judged per request, from the chain the handshake
/// received.
#[derive(Debug)]
pub struct RequiredClientCa {
    verifier: std::sync::Arc<dyn ClientCertVerifier>,
}

impl RequiredClientCa {
    /// The verifier for the PEM bundle `pem` (at least one certificate).
    pub fn from_pem(pem: &[u8]) -> Result<Self, super::TlsError> {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            roots
                .add(cert.map_err(super::TlsError::Certificate)?)
                .map_err(super::TlsError::Rustls)?;
        }
        if roots.is_empty() {
            return Err(super::TlsError::NoCertificate);
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            std::sync::Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .map_err(|e| super::TlsError::Rustls(rustls::Error::General(e.to_string())))?;
        Ok(Self { verifier })
    }

    /// Whether the chain the client presented (`peer`, leaf first) leads to the CA; `Err` says
    /// why not, for the 401.
    pub fn verify(&self, peer: &[Vec<u8>]) -> Result<(), String> {
        let chain: Vec<CertificateDer<'_>> = peer
            .iter()
            .map(|c| CertificateDer::from(c.as_slice()))
            .collect();
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Err("a client certificate is required (--webhook-client-ca)".into());
        };
        self.verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .map(|_| ())
            .map_err(|e| format!("the client certificate is not accepted: {e}"))
    }
}
