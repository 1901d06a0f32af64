//! Plain HTTP: the one page a tablet needs before it can use HTTPS — how to trust the site CA
//! (a download, its SHA-256 fingerprint, QR codes, steps for Android, iPadOS and managed
//! devices) — and a redirect to HTTPS for everything else.
//!
//! `/trust`, `/site-ca.pem` and `/site-ca.crt` are also served over HTTPS ([`trust_routes`]),
//! so staff can find them again; `/healthz` is served on both. Over plain HTTP a GET or HEAD elsewhere is redirected (308) to
//! the same path on HTTPS; anything else is refused (403): a request that carries a secret
//! over plain HTTP must not be invited to go on.
//!
//! Owns no state: the CA and the HTTPS port are handed in.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::{ca, CaPublic};

/// What the landing page shows.
pub struct Landing {
    pub ca: Option<CaPublic>,
    pub site_name: String,
    /// HTTPS's port, for the redirects and links.
    pub https_port: u16,
}

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

/// `/trust` and the CA downloads (both listeners).
pub fn trust_routes<S: Clone + Send + Sync + 'static>(l: Arc<Landing>) -> Router<S> {
    Router::new()
        .route("/trust", get(page))
        .route("/site-ca.pem", get(pem))
        .route("/site-ca.crt", get(der))
        .with_state(l)
}

/// Plain HTTP when it is not the whole app: the landing page at `/`, the trust routes,
/// `health` (`/healthz`), and redirects.
pub fn plain_router(l: Arc<Landing>, health: Router) -> Router {
    Router::new()
        .route("/", get(page))
        .merge(trust_routes(l.clone()))
        .fallback(redirect)
        .with_state(l)
        .merge(health)
}

/// The host a request named, if it is a plain host name or address (nothing that could break
/// out of a URL or a header); without its port.
fn host_of(h: &HeaderMap) -> Option<String> {
    let v = h.get(header::HOST)?.to_str().ok()?;
    let ok = |c: char| c.is_ascii_alphanumeric() || ".-:[]".contains(c);
    if v.is_empty() || v.len() > 255 || !v.chars().all(ok) {
        return None;
    }
    let host = if let Some(end) = v.find(']') {
        &v[..=end]
    } else {
        v.split(':').next().unwrap_or(v)
    };
    Some(host.to_owned())
}

fn https_base(l: &Landing, h: &HeaderMap) -> String {
    let host = host_of(h).unwrap_or_else(|| "docket.local".into());
    match l.https_port {
        443 => format!("https://{host}"),
        p => format!("https://{host}:{p}"),
    }
}

async fn redirect(State(l): State<Arc<Landing>>, req: Request) -> Response {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let to = format!("{}{path}", https_base(&l, req.headers()));
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return (
            StatusCode::FORBIDDEN,
            format!("this box takes requests only over HTTPS: {to}\n"),
        )
            .into_response();
    }
    match HeaderValue::from_str(&to) {
        Ok(v) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, v)]).into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, "bad request\n").into_response(),
    }
}

fn no_ca() -> Response {
    (
        StatusCode::NOT_FOUND,
        "this box serves a certificate from a public CA: nothing to install\n",
    )
        .into_response()
}

async fn pem(State(l): State<Arc<Landing>>) -> Response {
    match &l.ca {
        Some(ca) => (
            [
                (header::CONTENT_TYPE, "application/x-pem-file"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"docket-site-ca.pem\"",
                ),
            ],
            ca.pem.clone(),
        )
            .into_response(),
        None => no_ca(),
    }
}

async fn der(State(l): State<Arc<Landing>>) -> Response {
    match &l.ca {
        // The type Android's and iPadOS's browsers hand to their certificate installers.
        Some(ca) => (
            [
                (header::CONTENT_TYPE, "application/x-x509-ca-cert"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"docket-site-ca.crt\"",
                ),
            ],
            ca.der.clone(),
        )
            .into_response(),
        None => no_ca(),
    }
}

fn qr_svg(text: &str) -> String {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(220, 220)
            .build(),
        Err(_) => String::new(),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The fingerprint in four lines of eight pairs: what a person reads out and compares.
fn fingerprint_lines(fp: &[u8; 32]) -> String {
    ca::fingerprint_text(fp)
        .split(':')
        .collect::<Vec<_>>()
        .chunks(8)
        .map(|c| c.join(" "))
        .collect::<Vec<_>>()
        .join("<br>")
}

async fn page(State(l): State<Arc<Landing>>, h: HeaderMap) -> Response {
    let https = https_base(&l, &h);
    let host = host_of(&h).unwrap_or_else(|| "docket.local".into());
    let here = match h.get(header::HOST).and_then(|v| v.to_str().ok()) {
        Some(v) if host_of(&h).is_some() => format!("http://{v}"),
        _ => format!("http://{host}"),
    };
    let body = match &l.ca {
        Some(ca) => ca_body(ca, &here, &https),
        None => format!(
            "<p>This box's certificate is from a public CA: there is nothing to install.</p>\
             <p class=go><a href=\"{https}/\">Open Docket</a></p>",
            https = escape(&https)
        ),
    };
    let html = format!(
        include_str!("landing.html"),
        site = escape(&l.site_name),
        body = body
    );
    (
        [
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Html(html),
    )
        .into_response()
}

fn ca_body(ca: &CaPublic, here: &str, https: &str) -> String {
    let download = format!("{here}/site-ca.crt");
    let fp = ca::fingerprint_text(&ca.fingerprint);
    format!(
        include_str!("landing-ca.html"),
        download = escape(&download),
        https = escape(https),
        fp_lines = fingerprint_lines(&ca.fingerprint),
        fp = escape(&fp),
        qr_download = qr_svg(&download),
        qr_fp = qr_svg(&format!("SHA256:{fp}")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_hosts_are_taken_from_the_request() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("192.168.1.20:8080"));
        assert_eq!(host_of(&h).as_deref(), Some("192.168.1.20"));
        h.insert(header::HOST, HeaderValue::from_static("[fe80::1]:8080"));
        assert_eq!(host_of(&h).as_deref(), Some("[fe80::1]"));
        h.insert(header::HOST, HeaderValue::from_static("evil.com/x?"));
        assert_eq!(host_of(&h), None);
        h.insert(header::HOST, HeaderValue::from_static("a@b"));
        assert_eq!(host_of(&h), None);
    }
}
