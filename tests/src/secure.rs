//! TLS for the tests: a client that trusts only a site CA (as a tablet that installed it), and
//! HTTPS requests to a daemon.

use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};

use crate::{Daemon, HttpReply, Request};

/// A client configuration whose only root is `ca_pem` (no system roots).
pub fn trusting(ca_pem: &str) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.context("not a PEM certificate")?)?;
    }
    let c = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(c))
}

/// One HTTPS request to `addr`, checking the server's certificate for `name` with `tls`.
pub fn https_request(
    tls: Arc<rustls::ClientConfig>,
    name: &str,
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> anyhow::Result<HttpReply> {
    let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))?;
    let conn = rustls::ClientConnection::new(tls, ServerName::try_from(name.to_owned())?)?;
    let mut s = rustls::StreamOwned::new(conn, sock);
    let req = Request::new(method, path, headers, body);
    crate::parse_reply(&crate::exchange(&mut s, &req.text(name))?)
}

impl Daemon {
    /// The site CA the box made itself at its first start (`<data>/tls/site-ca.pem`).
    pub fn site_ca_pem(&self) -> anyhow::Result<String> {
        let p = self.dir.path().join("data/tls/site-ca.pem");
        std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
    }

    /// A client configuration trusting only this box's site CA.
    pub fn trusting_site_ca(&self) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        trusting(&self.site_ca_pem()?)
    }

    /// One HTTPS request, trusting only the site CA, to the name `docket.local`.
    pub fn https(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> anyhow::Result<HttpReply> {
        https_request(
            self.trusting_site_ca()?,
            "docket.local",
            (self.host, self.https).into(),
            method,
            path,
            headers,
            body,
        )
    }
}
