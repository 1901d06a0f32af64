//! The client side of docketd's own probe logins over TLS: it trusts exactly the certificate
//! the box serves at that moment (whatever its CA), so a probe proves the listener, the
//! handshake and the served certificate together. The verifier itself is docket-trust's (the
//! one the CLI uses too); this module says only how the chain is judged.

use std::sync::Arc;

use docket_trust::verify::{self, ChainCheck, Presented};
use rustls::client::danger::ServerCertVerified;
use rustls::ClientConfig;

use super::Tls;

#[derive(Debug)]
struct Pinned {
    tls: Arc<Tls>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("ca_source", &self.ca_source)
            .finish_non_exhaustive()
    }
}

impl ChainCheck for Pinned {
    fn check(&self, presented: Presented<'_>) -> Result<ServerCertVerified, rustls::Error> {
        if presented.end_entity.as_ref() == self.tls.leaf().as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "not the certificate this box serves".into(),
            ))
        }
    }
}

/// A client configuration that trusts only what `tls` serves.
pub fn probe_client(tls: Arc<Tls>) -> anyhow::Result<Arc<ClientConfig>> {
    Ok(verify::client_config(super::provider(), Pinned { tls })?)
}
