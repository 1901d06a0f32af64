//! Reaching the box for doctor: `/healthz` over HTTPS with the box's certificate checked
//! (the `tls` line: verified or why not, and when it expires). A refused certificate is a FAIL
//! line, and the rest is then read without checking it (nothing secret is sent). Plain HTTP is
//! read only to say that it is the landing page.

use std::time::Duration;

use docket_core::health::{Health, Status};

use super::Check;
use crate::lan::{Addr, Link, Trust};
use crate::sitedir::now_ms;
use crate::sitetls::der_info;

/// The box answered `/healthz` with 200.
pub struct Reached {
    pub link: Link,
    pub health: Health,
    /// The box's certificate verified against the site CA: a manager's credentials may go.
    pub verified: bool,
    /// When the request left and its answer came (for the clock check).
    pub t0: u64,
    pub t1: u64,
}

/// Days before expiry at which the box's certificate is a FAIL: the box issues itself a new one
/// 10 days ahead, so one this close is not being renewed.
const EXPIRY_DAYS: i64 = 7;

pub fn reach(
    addr: &Addr,
    trust: Trust,
    checks: &mut Vec<Check>,
) -> anyhow::Result<Option<Reached>> {
    if !addr.https {
        checks.push(plain_only(addr));
        return Ok(None);
    }
    let checked = trust.checks();
    let mut link = Link::new(addr.clone(), trust)?;
    let (mut got, mut t0, mut t1) = healthz(&link);
    let mut verified = checked;
    match (&got, link.refusal()) {
        (Err(_), Some(words)) => {
            verified = false;
            link = Link::new(addr.clone(), Trust::unchecked())?;
            (got, t0, t1) = healthz(&link);
            let made_itself = got.as_ref().is_ok_and(|(_, h)| {
                h.as_ref()
                    .and_then(|h| h.tls.as_ref())
                    .is_some_and(|t| t.ca == "box")
            });
            let why = if made_itself {
                " (the box says it made its CA itself: it has not had a bundle with this site's CA)"
            } else {
                ""
            };
            checks.push(Check::fail("tls", format!("{words}{why}")));
        }
        (Err(e), None) => {
            checks.push(unreachable(addr, e));
            return Ok(None);
        }
        (Ok(_), _) => checks.push(tls_line(&link, verified)),
    }
    let (code, health) = match got {
        Ok(g) => g,
        Err(e) => {
            checks.push(unreachable(addr, &e));
            return Ok(None);
        }
    };
    match (code, health) {
        (200, Some(health)) => Ok(Some(Reached {
            link,
            health,
            verified,
            t0,
            t1,
        })),
        (200, None) => {
            checks.push(Check::fail(
                "health",
                format!(
                    "the box answered /healthz with something this CLI does not read: is {} really a Docket box? If it is, update the CLI or the box",
                    addr.given
                ),
            ));
            Ok(None)
        }
        (503, health) => {
            checks.push(Check::fail("health", not_ready(health.as_ref())));
            Ok(None)
        }
        (code, _) => {
            checks.push(Check::fail(
                "health",
                format!(
                    "the box answered HTTP {code} on /healthz: is {} really a Docket box?",
                    addr.given
                ),
            ));
            Ok(None)
        }
    }
}

/// What `/healthz` answered: (status, its body when it is one) whatever the status, or the
/// transport error in words.
type Answer = Result<(u16, Option<Health>), String>;

/// `/healthz`, with when the request left and when its answer came.
fn healthz(link: &Link) -> (Answer, u64, u64) {
    let t0 = now_ms();
    let r = link.public().get(&link.url("/healthz")).call();
    let t1 = now_ms();
    let r = match r {
        Ok(resp) => Ok((resp.status(), resp.into_json().ok())),
        Err(ureq::Error::Status(code, resp)) => Ok((code, resp.into_json().ok())),
        Err(e) => Err(e.to_string()),
    };
    (r, t0, t1)
}

/// The `tls` line once `/healthz` answered.
fn tls_line(link: &Link, verified: bool) -> Check {
    let Some(seen) = link.seen() else {
        return Check::ok("tls", "HTTPS answers");
    };
    let Some(leaf) = seen.chain.first().and_then(|d| der_info(d).ok()) else {
        return Check::fail(
            "tls",
            "the box's certificate cannot be read: update the box's firmware",
        );
    };
    let days = leaf.days_left();
    if !verified {
        let top = seen
            .chain
            .last()
            .and_then(|d| der_info(d).ok())
            .map(|c| c.fingerprint)
            .unwrap_or_default();
        return Check::ok("tls", format!("HTTPS answers; its certificate was not checked (it chains to SHA-256 {top}; valid until {}): pass --dir SITE or --ca FILE to check it against the site CA", leaf.not_after));
    }
    if days < EXPIRY_DAYS {
        return Check::fail("tls", format!("the box's certificate expires in {days} days ({}) and is not being renewed: check the box's clock and restart docketd (it issues itself a new one); a site's own certificate you renew yourself: `docket site tls --cert … --key …`, then `docket site push`", leaf.not_after));
    }
    Check::ok(
        "tls",
        format!(
            "HTTPS verified against {}; the box's certificate is valid until {} ({days} days)",
            link.trust.describe(),
            leaf.not_after
        ),
    )
}

/// HTTPS does not answer at all: is plain HTTP there (older firmware, or HTTPS elsewhere)?
fn unreachable(addr: &Addr, e: &str) -> Check {
    let plain = addr.plain();
    let answers = addr.port.is_none() && plain_answers(&plain);
    if answers {
        Check::fail("health", format!("HTTPS at {} does not answer ({e}), but plain HTTP at {} does (only the landing page): the box runs firmware older than HTTPS (install the current update bundle, docs/updates.md) or its HTTPS listener is not on 443", addr.base(), plain.base()))
    } else {
        Check::fail("health", format!("cannot reach the box at {} ({e}): check it is powered, its network cable is in, and that this laptop is on the restaurant LAN", addr.base()))
    }
}

/// An explicit `http://` address: read `/healthz` only to say what it is.
fn plain_only(addr: &Addr) -> Check {
    if plain_answers(addr) {
        Check::fail("health", format!("plain HTTP at {} answers, but it is only the box's landing page (installing the site CA, /healthz, redirects to HTTPS): doctor checks the box over HTTPS: run it with the box's address alone ({}) or https://{}[:PORT]", addr.base(), addr.host, addr.host))
    } else {
        Check::fail("health", format!("cannot reach the box at {}: and doctor checks the box over HTTPS: run it with the box's address alone ({})", addr.base(), addr.host))
    }
}

fn plain_answers(plain: &Addr) -> bool {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(3))
        .redirects(0)
        .build();
    match agent.get(&format!("{}/healthz", plain.base())).call() {
        Ok(_) | Err(ureq::Error::Status(..)) => true,
        Err(_) => false,
    }
}

/// A 503 from `/healthz`, in words.
fn not_ready(h: Option<&Health>) -> String {
    if let Some(h) = h.filter(|h| h.status == Status::ListenerDown) {
        let down: Vec<String> = h
            .listeners
            .iter()
            .flatten()
            .filter(|(_, l)| !l.ok)
            .map(|(name, l)| {
                format!(
                    "{name} ({})",
                    l.error.as_deref().unwrap_or("no recent login")
                )
            })
            .collect();
        format!("docketd runs but a listener no longer takes logins: {}; devices on it cannot connect. The service restarts itself within its watchdog period; if this stays, power-cycle the box", down.join(", "))
    } else {
        "docketd is running but not ready yet: wait a minute; if it stays so, power-cycle the box and run doctor again".into()
    }
}
