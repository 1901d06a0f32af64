//! The one rustls `ServerCertVerifier` every client of the box's TLS uses: docketd's own probe
//! logins (`tls::pinned`: exactly the certificate the box serves) and the technician's CLI
//! (`lan::trust`: the site CA, the public CAs, a CA vouched for by its fingerprint). They differ
//! only in how the certificate chain is judged, which each says in a [`ChainCheck`]; the
//! handshake's signatures are checked the same way for all, with the provider's algorithms.
//! Owns no state of its own; must not decide trust for a caller.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// What the server presented in one handshake: rustls' `verify_server_cert` arguments, in one
/// value so that each judge takes (and passes on) them whole.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    /// The server's own certificate.
    pub end_entity: &'a CertificateDer<'a>,
    /// The rest of the chain it sent.
    pub intermediates: &'a [CertificateDer<'a>],
    /// The name the client asked for.
    pub name: &'a ServerName<'a>,
    pub ocsp: &'a [u8],
    pub now: UnixTime,
}

/// How a client judges the chain the server presents (rustls' `verify_server_cert`).
pub trait ChainCheck: std::fmt::Debug + Send + Sync {
    fn check(&self, presented: Presented<'_>) -> Result<ServerCertVerified, rustls::Error>;
}

#[derive(Debug)]
struct Verifier<C> {
    chain: C,
    provider: Arc<CryptoProvider>,
}

impl<C: ChainCheck> ServerCertVerifier for Verifier<C> {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.chain.check(Presented {
            end_entity,
            intermediates,
            name,
            ocsp,
            now,
        })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client configuration (rustls' safe default protocol versions, no client certificate)
/// whose server certificate is judged by `chain` alone.
pub fn client_config(
    provider: Arc<CryptoProvider>,
    chain: impl ChainCheck + 'static,
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let verifier = Verifier {
        chain,
        provider: provider.clone(),
    };
    let c = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(c))
}
