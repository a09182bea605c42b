//! A registry's TLS client configuration, built once from its `ca_file`, `client_cert` /
//! `client_key` and `insecure_skip_verify`, and shared by both transports of its connection
//! (the shim's hyper pass-through and the reader's reqwest), so the two can never disagree about
//! whom they trust or which certificate they present.

use std::sync::Arc;

use rustls::{
    ClientConfig, DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject},
};
use shimmer_config::BackendConfig;

use crate::RegistryError;

/// The rustls configuration for `cfg`, without ALPN (each client sets its own).
///
/// Trust: the platform's roots (rustls-platform-verifier, as reqwest uses), plus `ca_file`;
/// or nothing checked at all with `insecure_skip_verify`.
pub fn client_config(cfg: &BackendConfig) -> Result<ClientConfig, RegistryError> {
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let read = |what: &'static str, path: &std::path::Path| {
        std::fs::read(path).map_err(|source| RegistryError::Setup {
            registry: cfg.name.clone(),
            what,
            message: source.to_string(),
        })
    };
    let invalid = |what: &'static str, error: &dyn std::fmt::Display| RegistryError::Setup {
        registry: cfg.name.clone(),
        what,
        message: error.to_string(),
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("client", &e))?
        .dangerous();
    let builder = if cfg.insecure_skip_verify {
        builder.with_custom_certificate_verifier(Arc::new(NoVerifier(provider)))
    } else {
        let extra = match &cfg.ca_file {
            Some(ca) => {
                let pem = read("ca_file", ca)?;
                let certs = CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| invalid("ca_file", &e))?;
                if certs.is_empty() {
                    return Err(invalid("ca_file", &"no PEM certificate in the file"));
                }
                certs
            }
            None => Vec::new(),
        };
        let verifier =
            rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())
                .map_err(|e| invalid("ca_file", &e))?;
        builder.with_custom_certificate_verifier(Arc::new(verifier))
    };
    match (&cfg.client_cert, &cfg.client_key) {
        (Some(cert), Some(key)) => {
            let certs = CertificateDer::pem_slice_iter(&read("client_cert", cert)?)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid("client_cert", &e))?;
            let key = PrivateKeyDer::from_pem_slice(&read("client_key", key)?)
                .map_err(|e| invalid("client_key", &e))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| invalid("client_cert", &e))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// `insecure_skip_verify`: accepts any certificate, but still checks that the handshake is
/// signed by the key of the certificate presented (so the connection is at least encrypted to
/// whoever holds it).
#[derive(Debug)]
struct NoVerifier(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
