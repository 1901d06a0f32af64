//! HTTP on `[http] listen` (axum): `/healthz` and `/metrics`. The pages and the `/mqtt`
//! WebSocket bridge arrive with the screens.
//!
//! Owns no state of its own: it reads the shared metrics. Must not write to the store.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AppState {
    pub metrics: Arc<Metrics>,
    pub site_id: String,
    pub version: &'static str,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

#[derive(Serialize)]
struct Health<'a> {
    status: &'a str,
    site_id: &'a str,
    version: &'a str,
    seq: u64,
    open_orders: u64,
}

/// 200 only once docketd is ready (retained state republished, listeners up); 503 before.
async fn healthz(State(s): State<AppState>) -> Response {
    let ready = s.metrics.ready.load(Relaxed);
    let body = Health {
        status: if ready { "ok" } else { "starting" },
        site_id: &s.site_id,
        version: s.version,
        seq: s.metrics.seq.load(Relaxed),
        open_orders: s.metrics.open_orders.load(Relaxed),
    };
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    fn state() -> AppState {
        AppState {
            metrics: Arc::new(Metrics::default()),
            site_id: "s".into(),
            version: "t",
        }
    }

    #[tokio::test]
    async fn healthz_is_503_until_ready() {
        let s = state();
        let r = router(s.clone())
            .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        s.metrics.ready.store(true, Relaxed);
        let r = router(s)
            .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn metrics_is_prometheus_text() {
        let r = router(state())
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        assert!(String::from_utf8_lossy(&body).contains("# TYPE docket_commit_seconds histogram"));
    }
}
