//! How the CLI talks to a box over the LAN: over HTTPS, checking the box's certificate against
//! the site CA ([`trust`]). A bare address means `https://ADDRESS` (port 443, the box's); an
//! explicit `http://` URL is only ever used to read what carries no secret (doctor's look at
//! `/healthz`): a bundle or a manager's credentials go only over HTTPS whose certificate was
//! checked ([`Link::secret`]).

pub mod trust;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::bail;

pub use trust::{Seen, Trust};

/// Where the box is, as the technician gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    pub https: bool,
    /// The name or address the box's certificate must carry (IPv6 without brackets).
    pub host: String,
    /// `None`: the scheme's port (443, or 80 for `http://`).
    pub port: Option<u16>,
    /// As given, for messages that tell what to run next.
    pub given: String,
}

impl Addr {
    /// `192.168.1.20`, `docket.local:8443`, `https://[fd00::2]:8443`, `http://box` (plain).
    pub fn parse(s: &str) -> anyhow::Result<Addr> {
        let (https, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else if s.contains("://") {
            bail!("{s:?}: give the box's address (192.168.1.20, docket.local) or https://ADDRESS[:PORT]");
        } else {
            (true, s)
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.contains('@') {
            bail!("{s:?}: give the box's address without a path or user");
        }
        let (host, port) = match rest.strip_prefix('[') {
            Some(r) => {
                let Some((h, p)) = r.split_once(']') else {
                    bail!("{s:?}: an IPv6 address in [ ] lacks its ]");
                };
                (h, p.strip_prefix(':'))
            }
            None => match rest.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h, Some(p)),
                _ => (rest, None),
            },
        };
        let port = match port {
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| anyhow::anyhow!("{s:?}: {p:?} is not a port number"))?,
            ),
            None => None,
        };
        if host.is_empty() {
            bail!("{s:?}: no address");
        }
        Ok(Addr {
            https,
            host: host.to_owned(),
            port,
            given: s.to_owned(),
        })
    }

    /// `https://host[:port]`.
    pub fn base(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(p) => format!("{scheme}://{host}:{p}"),
            None => format!("{scheme}://{host}"),
        }
    }

    /// Refuses a plain-HTTP address for `what`, a secret, saying to use https.
    pub fn require_https(&self, what: &str) -> anyhow::Result<()> {
        if !self.https {
            bail!(
                "refusing to send {what} over plain HTTP ({}): use https, that is the box's address alone ({}) or https://{}[:PORT]",
                self.base(),
                self.host,
                self.host
            );
        }
        Ok(())
    }

    /// The same box over plain HTTP on the scheme's port (80): its landing page and `/healthz`.
    pub fn plain(&self) -> Addr {
        Addr {
            https: false,
            port: None,
            ..self.clone()
        }
    }
}

/// An HTTP agent for one box, with the trust it checks the box's certificate by.
pub struct Link {
    pub addr: Addr,
    pub trust: Trust,
    agent: ureq::Agent,
    tls: Arc<rustls::ClientConfig>,
    seen: Arc<Mutex<Option<Seen>>>,
}

impl Link {
    pub fn new(addr: Addr, trust: Trust) -> anyhow::Result<Link> {
        let seen = Arc::new(Mutex::new(None));
        let tls = trust.client_config(seen.clone())?;
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(5))
            .tls_config(tls.clone())
            // The box answers its API itself; a redirect is never followed with a secret.
            .redirects(0)
            .build();
        Ok(Link {
            addr,
            trust,
            agent,
            tls,
            seen,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.addr.base())
    }

    /// The agent for a request that carries a secret (a bundle, a manager's credentials): only
    /// over HTTPS, and only when the box's certificate is checked.
    pub fn secret(&self, what: &str) -> anyhow::Result<&ureq::Agent> {
        self.addr.require_https(what)?;
        if !self.trust.checks() {
            bail!("refusing to send {what} to a box whose certificate is not checked: pass --dir SITE (its site CA) or --ca FILE");
        }
        Ok(self.public())
    }

    /// The agent for a request that carries nothing secret.
    pub fn public(&self) -> &ureq::Agent {
        if let Ok(mut g) = self.seen.lock() {
            *g = None;
        }
        &self.agent
    }

    /// What the box presented in the latest handshake (none when a connection was reused).
    pub fn seen(&self) -> Option<Seen> {
        self.seen.lock().ok().and_then(|g| g.clone())
    }

    /// The client configuration, for MQTT over TLS to the same box; the next handshake is
    /// recorded afresh ([`Link::refusal`]).
    pub fn tls_config(&self) -> Arc<rustls::ClientConfig> {
        if let Ok(mut g) = self.seen.lock() {
            *g = None;
        }
        self.tls.clone()
    }

    /// Was the last handshake's certificate refused? Then why, in words.
    pub fn refusal(&self) -> Option<String> {
        let seen = self.seen()?;
        seen.error
            .is_some()
            .then(|| self.trust.explain(&seen, &self.addr))
    }

    /// A failed request in words: the certificate's refusal when that is what failed.
    pub fn failure(&self, e: &ureq::Error) -> String {
        match (e, self.refusal()) {
            (ureq::Error::Transport(_), Some(words)) => words,
            (ureq::Error::Status(code, _), _) => format!("the box answered HTTP {code}"),
            _ => format!("cannot reach the box at {} ({e})", self.addr.base()),
        }
    }
}

pub fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[cfg(test)]
mod tests;
