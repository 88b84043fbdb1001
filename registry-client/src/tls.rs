//! The TLS client configuration for registries: the system roots plus the registry's `certs.d/<host>/ca.crt`, verified
//! by webpki, with one addition Go's and OpenSSL's verifiers make and webpki does not: a server certificate that is
//! itself one of the certificates in `ca.crt` (the usual `openssl req -x509` self-signed certificate, marked
//! `CA:TRUE`) is accepted, when it is valid now and for the host name. Everything else is verified in full.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_name, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::error::Error;

/// A rustls configuration trusting the system roots and, when given, the registry's own CA file.
pub(crate) fn client_config(
    registry: &str,
    ca_file: Option<&Path>,
) -> Result<rustls::ClientConfig, Error> {
    let tls_error = |reason: String| Error::Tls {
        registry: registry.to_string(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A system bundle may hold certificates rustls rejects; skipping them is what every client does.
        let _ = roots.add(cert);
    }
    let mut configured = Vec::new();
    if let Some(ca_file) = ca_file {
        use rustls_pki_types::pem::PemObject;
        let certs = CertificateDer::pem_file_iter(ca_file)
            .map_err(|e| tls_error(format!("reading {}: {e}", ca_file.display())))?;
        for cert in certs {
            let cert =
                cert.map_err(|e| tls_error(format!("reading {}: {e}", ca_file.display())))?;
            roots
                .add(cert.clone())
                .map_err(|e| tls_error(format!("{}: {e}", ca_file.display())))?;
            configured.push(cert);
        }
    }
    if roots.is_empty() {
        return Err(tls_error("no trusted root certificates found".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| tls_error(e.to_string()))?;
    let verifier = Arc::new(Verifier {
        webpki,
        configured,
        provider: provider.clone(),
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// webpki's verifier, plus acceptance of a server certificate that is one of the configured CA certificates.
#[derive(Debug)]
struct Verifier {
    webpki: Arc<WebPkiServerVerifier>,
    /// The certificates of `ca.crt`, compared byte for byte with the server's.
    configured: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
}

/// Is `error` webpki's refusal of a CA certificate as the server's own?
fn is_ca_used_as_end_entity(error: &rustls::Error) -> bool {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => matches!(
            other.0.downcast_ref::<webpki::Error>(),
            Some(webpki::Error::CaUsedAsEndEntity)
        ),
        _ => false,
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verified {
            // webpki checks the certificate's validity period before its basic constraints, so this refusal
            // means the certificate is current; what is left to check is the name. The handshake signature
            // (proof that the server holds the key) is verified by the methods below as for any certificate.
            Err(error)
                if is_ca_used_as_end_entity(&error)
                    && self
                        .configured
                        .iter()
                        .any(|c| c.as_ref() == end_entity.as_ref()) =>
            {
                verify_server_name(&ParsedCertificate::try_from(end_entity)?, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}
