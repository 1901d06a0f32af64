//! One webhook POST: HTTPS (rustls, the public web's roots and the site CA) or, where the site
//! allows it, plain HTTP; a new HTTP/1.1 connection per request (hyper's client connection),
//! connect within 5 s, the whole request within 10 s.
//!
//! Owns no state but the TLS client config; must not decide what to send or when to retry.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

/// Time to open the TCP connection (and, for HTTPS, complete the handshake).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for the whole request, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a delivery got no HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("bad URL: {0}")]
    Url(String),
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("TLS: {0}")]
    Tls(#[source] std::io::Error),
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("no answer within {}s", REQUEST_TIMEOUT.as_secs())]
    Timeout,
    #[error("request: {0}")]
    Request(#[from] hyper::http::Error),
}

/// Where a URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, starting with '/'.
    pub path: String,
}

/// Parses an `http://` or `https://` URL with a host (no user info, no fragment).
pub fn parse_url(url: &str) -> Result<Target, String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL ({e})"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(format!("{url:?} must start with https://")),
    };
    let auth = uri
        .authority()
        .ok_or_else(|| format!("{url:?} has no host"))?;
    if auth.as_str().contains('@') {
        return Err(format!("{url:?}: user names in the URL are not accepted"));
    }
    let host = auth.host().trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    Ok(Target {
        https,
        host: host.to_owned(),
        port: auth.port_u16().unwrap_or(if https { 443 } else { 80 }),
        path: uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
    })
}

/// The HTTP client of every webhook.
#[derive(Clone)]
pub struct Client {
    tls: tokio_rustls::TlsConnector,
}

/// What the receiver answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
}

impl Client {
    /// Trusts the public web's roots (webpki-roots) and `site_ca` (the box's site CA, DER).
    pub fn new(site_ca: Option<&[u8]>) -> Result<Client, rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(der) = site_ca {
            roots.add(CertificateDer::from(der.to_vec()))?;
        }
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Client {
            tls: tokio_rustls::TlsConnector::from(Arc::new(cfg)),
        })
    }

    /// POSTs `body` to `url` with `headers`; any HTTP status is an answer.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Answer, SendError> {
        let t = parse_url(url).map_err(SendError::Url)?;
        tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(&t, headers, body))
            .await
            .map_err(|_| SendError::Timeout)?
    }

    async fn exchange(
        &self,
        t: &Target,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Answer, SendError> {
        let connect = async {
            let tcp = TcpStream::connect((t.host.as_str(), t.port))
                .await
                .map_err(SendError::Connect)?;
            let _ = tcp.set_nodelay(true);
            if !t.https {
                return Ok::<_, SendError>(Either::Plain(tcp));
            }
            let name = ServerName::try_from(t.host.clone())
                .map_err(|e| SendError::Url(format!("host {:?}: {e}", t.host)))?;
            let tls = self.tls.connect(name, tcp).await.map_err(SendError::Tls)?;
            Ok(Either::Tls(Box::new(tls)))
        };
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| {
                SendError::Connect(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within {}s", CONNECT_TIMEOUT.as_secs()),
                ))
            })??;
        let host = if t.port == if t.https { 443 } else { 80 } {
            t.host.clone()
        } else {
            format!("{}:{}", t.host, t.port)
        };
        let mut req = Request::post(t.path.as_str()).header(hyper::header::HOST, host);
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let req = req.body(Full::new(Bytes::from(body)))?;
        let status = match stream {
            Either::Plain(s) => send(TokioIo::new(s), req).await?,
            Either::Tls(s) => send(TokioIo::new(*s), req).await?,
        };
        Ok(Answer { status })
    }
}

enum Either {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

async fn send<I>(io: I, req: Request<Full<Bytes>>) -> Result<u16, SendError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    let driver = tokio::spawn(conn);
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    // Read (and drop) the answer's body so the receiver sees the exchange end cleanly.
    let _ = resp.into_body().collect().await;
    drop(sender);
    driver.abort();
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::PrivateKeyDer;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An HTTPS receiver with a certificate from a fresh site CA; the CA's DER and the port.
    async fn tls_receiver() -> (Vec<u8>, u16) {
        let ca = docket_trust::ca::new_site_ca("s", "S").unwrap();
        let ips = ["127.0.0.1".parse().unwrap()];
        let issued = docket_trust::ca::issue_server(&ca, &["localhost".into()], &ips).unwrap();
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(issued.chain_pem.as_bytes())
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap();
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut s) = acceptor.accept(s).await else {
                        return;
                    };
                    let mut buf = vec![0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let _ = s
                        .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                        .await;
                    let _ = s.shutdown().await;
                });
            }
        });
        (docket_trust::ca::der_of(&ca.cert_pem).unwrap(), port)
    }

    #[tokio::test]
    async fn https_to_a_receiver_with_a_site_ca_certificate_and_not_without_it() {
        let (ca, port) = tls_receiver().await;
        let c = Client::new(Some(&ca)).unwrap();
        for host in ["localhost", "127.0.0.1"] {
            let a = c
                .post(&format!("https://{host}:{port}/hook"), &[], b"{}".to_vec())
                .await
                .unwrap();
            assert_eq!(a.status, 204, "{host}");
        }
        let untrusting = Client::new(None).unwrap();
        let e = untrusting
            .post(
                &format!("https://localhost:{port}/hook"),
                &[],
                b"{}".to_vec(),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, SendError::Tls(_)), "{e:?}");
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let e = Client::new(None)
            .unwrap()
            .post(&format!("http://127.0.0.1:{port}/"), &[], vec![])
            .await
            .unwrap_err();
        assert!(matches!(e, SendError::Connect(_)), "{e:?}");
    }

    #[test]
    fn urls_are_parsed_and_odd_ones_refused() {
        let t = parse_url("https://pos.example.com/hooks/docket?x=1").unwrap();
        assert_eq!(
            t,
            Target {
                https: true,
                host: "pos.example.com".into(),
                port: 443,
                path: "/hooks/docket?x=1".into()
            }
        );
        let t = parse_url("http://127.0.0.1:8099").unwrap();
        assert_eq!((t.https, t.port, t.path.as_str()), (false, 8099, "/"));
        assert!(parse_url("ftp://x/").is_err());
        assert!(parse_url("https://user:pw@x/").is_err());
        assert!(parse_url("not a url").is_err());
        assert!(parse_url("/relative").is_err());
    }
}
