//! The fleet view's HTTP side (axum): the page (HTML, script and style built into the binary,
//! so it works offline), and `/api/fleet`, the latest reading as JSON or a 503 that says why
//! there is none.
//!
//! Owns the routes and their headers; reads only the poller's latest [`Reading`].

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::watch;

use super::Reading;

const INDEX: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/fleet.js");
const STYLE: &str = include_str!("page/fleet.css");

/// Scripts and styles from this server only: no inline script, no CDN.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// How long a request made before the first reading waits for it.
const FIRST_READING: Duration = Duration::from_secs(8);

pub fn router(latest: watch::Receiver<Reading>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/fleet.js",
            get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/fleet.css",
            get(|| async { asset(STYLE, "text/css; charset=utf-8") }),
        )
        .route("/api/fleet", get(fleet))
        .with_state(latest)
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// Why there is no fleet to show: a 503 with a message for people.
pub struct Unavailable {
    error: String,
    since_ms: Option<i64>,
}

impl IntoResponse for Unavailable {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": self.error,
            "down_since_ms": self.since_ms,
        });
        let mut r = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    }
}

async fn fleet(State(mut latest): State<watch::Receiver<Reading>>) -> Response {
    // Just started: wait (a little) for the first reading rather than say "unavailable".
    let waited = tokio::time::timeout(
        FIRST_READING,
        latest.wait_for(|r| !matches!(r, Reading::Starting)),
    )
    .await
    .ok()
    .and_then(|r| r.ok().map(|r| r.clone()));
    let reading = waited.unwrap_or_else(|| latest.borrow().clone());
    match reading {
        Reading::Ok(f) => {
            let mut r = Json(&*f).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Reading::Down { error, since_ms } => Unavailable {
            error: format!("head office database unreachable: {error}"),
            since_ms: Some(since_ms),
        }
        .into_response(),
        Reading::Starting => Unavailable {
            error: "no reading of head office's database yet: still connecting".into(),
            since_ms: None,
        }
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    async fn get(latest: watch::Receiver<Reading>, path: &str) -> (StatusCode, String, String) {
        let r = router(latest)
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (status, csp) = (
            r.status(),
            r.headers()
                .get(header::CONTENT_SECURITY_POLICY)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default(),
        );
        let body = r.into_body().collect().await.unwrap().to_bytes();
        (status, csp, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn the_database_down_is_a_503_that_says_why_and_since_when() {
        let (_tx, rx) = watch::channel(Reading::Down {
            error: "cannot connect to postgres://x:***@db/docket: refused".into(),
            since_ms: 42,
        });
        let (status, _, body) = get(rx, "/api/fleet").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v["error"],
            "head office database unreachable: cannot connect to postgres://x:***@db/docket: refused"
        );
        assert_eq!(v["down_since_ms"], 42);
    }

    #[tokio::test]
    async fn no_reading_yet_is_a_503_not_a_hang() {
        let (tx, rx) = watch::channel(Reading::Starting);
        drop(tx);
        let (status, _, body) = get(rx, "/api/fleet").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("still connecting"), "{body}");
    }

    #[tokio::test]
    async fn the_page_and_its_assets_come_with_a_policy_that_allows_no_inline_script() {
        for path in ["/", "/fleet.js", "/fleet.css"] {
            let (_tx, rx) = watch::channel(Reading::Starting);
            let (status, csp, body) = get(rx, path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(
                csp.contains("script-src 'self'") && !csp.contains("unsafe"),
                "{csp}"
            );
            assert!(!body.is_empty());
        }
        let (_tx, rx) = watch::channel(Reading::Starting);
        let (_, _, page) = get(rx, "/").await;
        // Scripts only from files, never inline; no style attributes either.
        assert!(page.contains(r#"<script src="/fleet.js" defer></script>"#));
        assert_eq!(page.matches("<script").count(), 1);
        assert!(!page.contains(" style="));
    }
}
