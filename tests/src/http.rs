//! Plain HTTP/1.1 for tests: one request per connection (`Connection: close`), the reply's
//! status, head and body, Basic auth, and the daemon's HTTP port (`/healthz`, `/metrics`).
//! Must not hold a connection open or know TLS (`secure` speaks HTTPS through [`exchange`]).

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::{connect_from, eventually, Daemon};

impl Daemon {
    /// A plain HTTP/1.1 GET on the daemon's HTTP port: (status, body).
    pub fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let mut s = TcpStream::connect((self.host, self.http))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        let text = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let buf = exchange(&mut s, &text)?;
        let body = buf
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((status_of(&buf)?, body))
    }

    /// One HTTP/1.1 request on the daemon's HTTP port (`Connection: close`, `Content-Length`):
    /// (status, body).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> anyhow::Result<(u16, String)> {
        let r = self.http(method, path, headers, body)?;
        Ok((r.status, r.body))
    }

    /// Like [`Daemon::http`], from the local address `from` (another device on the LAN).
    pub fn http_from(
        &self,
        from: IpAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> anyhow::Result<HttpReply> {
        let req = Request::new(method, path, headers, body);
        http_request_from(Some(from), (self.host, self.http).into(), req)
    }

    /// Like [`Daemon::request`], keeping the response head for header checks.
    pub fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> anyhow::Result<HttpReply> {
        http_request((self.host, self.http).into(), method, path, headers, body)
    }

    /// A metric's value from `/metrics` (the line `name value`, labels included in `name`).
    pub fn metric(&self, name: &str) -> anyhow::Result<f64> {
        let (_, body) = self.get("/metrics")?;
        for line in body.lines() {
            if let Some(v) = line.strip_prefix(name).and_then(|r| r.strip_prefix(' ')) {
                return Ok(v.trim().parse()?);
            }
        }
        bail!("metric {name} not found")
    }

    /// Waits until a metric reaches at least `min`.
    pub async fn metric_at_least(&self, name: &str, min: f64) -> anyhow::Result<()> {
        eventually(&format!("{name} >= {min}"), || {
            self.metric(name).unwrap_or(0.0) >= min
        })
        .await
    }
}

/// One HTTP/1.1 request, as [`http_request_from`] and [`crate::secure::https_request`] send it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a str,
}

impl<'a> Request<'a> {
    pub fn new(
        method: &'a str,
        path: &'a str,
        headers: &'a [(&'a str, &'a str)],
        body: &'a str,
    ) -> Request<'a> {
        Request {
            method,
            path,
            headers,
            body,
        }
    }

    /// The request as text for `host` (`Connection: close`, `Content-Length`).
    pub fn text(&self, host: &str) -> String {
        let (method, path, body) = (self.method, self.path, self.body);
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in self.headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        req
    }
}

/// One HTTP/1.1 request to `addr` (`Connection: close`, `Content-Length`, 5 s read timeout).
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> anyhow::Result<HttpReply> {
    http_request_from(None, addr, Request::new(method, path, headers, body))
}

/// [`http_request`] from a chosen local address (`None`: the system's choice).
pub fn http_request_from(
    from: Option<IpAddr>,
    addr: SocketAddr,
    req: Request<'_>,
) -> anyhow::Result<HttpReply> {
    let mut s = match from {
        Some(ip) => connect_from(ip, addr)?,
        None => TcpStream::connect_timeout(&addr, Duration::from_secs(5))?,
    };
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    parse_reply(&exchange(&mut s, &req.text(&addr.to_string()))?)
}

/// Writes a whole request and reads the whole response (up to the server's close). A TLS peer
/// that closes after `Connection: close` without close_notify still gave its response.
pub fn exchange(s: &mut (impl Read + Write), request: &str) -> anyhow::Result<String> {
    s.write_all(request.as_bytes())?;
    s.flush()?;
    let mut raw = Vec::new();
    match s.read_to_end(&mut raw) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e.into()),
    }
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

/// The status code of a response's status line.
fn status_of(response: &str) -> anyhow::Result<u16> {
    response
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no status")
}

/// A whole HTTP/1.1 response as [`HttpReply`].
pub fn parse_reply(buf: &str) -> anyhow::Result<HttpReply> {
    let (head, body) = buf.split_once("\r\n\r\n").context("no response head")?;
    Ok(HttpReply {
        status: status_of(head)?,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

/// An HTTP response as [`http_request`] read it.
#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    /// Status line and headers.
    pub head: String,
    pub body: String,
}

impl HttpReply {
    /// A response header's value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_str(&self.body)
            .with_context(|| format!("response is not JSON: {}", self.body))
    }
}

/// An `Authorization` header value for HTTP Basic (RFC 7617; base64 of `user:password`).
pub fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine;
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}
