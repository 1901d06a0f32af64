//! The app served over HTTPS (`[tls] https_listen`; over plain HTTP too only with `http.plain`)
//! (axum): `/healthz`, `/metrics`, `/site/bundle` and `/mqtt`, the WebSocket bridge browsers use
//! to reach the broker; `/api/…` (pairing, sessions, admin) is merged in from `api` and the pages
//! (`/tablet`, `/kds`, `/expo`, `/admin`, `/assets/…`) from `web`. Plain HTTP otherwise serves
//! `/healthz` ([`health_router`]) beside the landing page (`crate::tls::landing`).
//!
//! Owns no state of its own: it reads the shared metrics. Must not write to the store (only
//! `api` does, through `store`).

pub mod api;
pub mod conn;
pub mod error;
pub mod web;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use docket_core::health::{Disk, Health, Status, TlsState};

use crate::metrics::Metrics;
use error::AppError;

#[derive(Clone)]
pub struct AppState {
    pub metrics: Arc<Metrics>,
    pub status: Arc<crate::status::Status>,
    pub site_id: String,
    pub version: &'static str,
    /// The MQTT connection layer, for `/mqtt` and the listeners' health (None: `/mqtt` answers
    /// 503, as in unit tests of this module).
    pub mqtt: Option<crate::mqtt::conn::Connections>,
    /// Largest WebSocket message accepted (the broker's packet limit plus framing).
    pub max_message_bytes: usize,
    /// The pairing and admin API (None: not served, as in unit tests of this module).
    pub api: Option<crate::http::api::ApiState>,
    /// The site bundle's state and `POST /site/bundle` (None: not served).
    pub site: Option<Arc<SiteShared>>,
    /// Plain text on the LAN that the site turned on (`/healthz` `warnings`).
    pub warnings: Vec<String>,
    /// The served certificate (`/healthz` `tls`; None in unit tests).
    pub tls: Option<Arc<crate::tls::Tls>>,
    /// Commands of integration devices through the engine (the local integration API; None in
    /// unit tests of this module).
    pub integration: Option<crate::integration::Submitter>,
}

/// The data directory the site bundle lives in and what became of it ([`crate::site`]).
pub struct SiteShared {
    pub data_dir: std::path::PathBuf,
    pub status: std::sync::Mutex<crate::site::SiteStatus>,
    /// Cancelled to restart docketd once a pushed bundle is stored (`restart_on_site_push`).
    pub restart: Option<tokio_util::sync::CancellationToken>,
}

/// `/healthz` alone: what plain HTTP serves beside the landing page (monitoring, the box's
/// recovery check; it carries no secret).
pub fn health_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(state)
}

pub fn router(state: AppState) -> Router {
    let api = state.api.clone();
    let integration = state.integration.clone();
    let r = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/site/bundle", axum::routing::post(push_bundle))
        .route(crate::http::api::WS_PATH, get(mqtt_ws))
        .merge(crate::http::web::router())
        .with_state(state);
    match (api, integration) {
        (Some(api), Some(submitter)) => r
            .merge(crate::http::api::router(api.clone()))
            .merge(crate::http::api::orders::router(api, submitter)),
        (Some(api), None) => r.merge(crate::http::api::router(api)),
        (None, _) => r,
    }
}

/// 200 only once docketd is ready (retained state republished, a login through every listener)
/// and while every listener keeps taking logins; 503 before, and while one does not.
async fn healthz(State(s): State<AppState>) -> Response {
    let started = s.status.ready.load(Relaxed);
    let fresh = crate::daemon::systemd::listener_fresh_ms();
    let listeners_ok = s
        .mqtt
        .as_ref()
        .is_none_or(|c| c.health().alive_within(fresh).is_ok());
    let ready = started && listeners_ok;
    let body = Health {
        status: match (started, listeners_ok) {
            (false, _) => Status::Starting,
            (true, true) => Status::Ok,
            (true, false) => Status::ListenerDown,
        },
        site_id: s.site_id.clone(),
        version: s.version.into(),
        seq: s.metrics.seq.load(Relaxed),
        open_orders: s.metrics.open_orders.load(Relaxed),
        now_ms: crate::clock::now_ms(),
        site: s
            .site
            .as_ref()
            .and_then(|x| x.status.lock().ok().map(|g| g.clone())),
        disk: s.site.as_ref().and_then(|x| {
            let v = rustix::fs::statvfs(&x.data_dir).ok()?;
            Some(Disk {
                free_bytes: v.f_bavail.saturating_mul(v.f_frsize),
                total_bytes: v.f_blocks.saturating_mul(v.f_frsize),
                storage_full: s.status.storage_full.load(Relaxed),
            })
        }),
        listeners: s.mqtt.as_ref().map(|c| c.health().report(fresh)),
        tls: s.tls.as_ref().map(|t| TlsState {
            ca: t.ca_source.into(),
            ca_sha256: t
                .ca
                .as_ref()
                .map(|c| crate::tls::ca::fingerprint_text(&c.fingerprint)),
            not_after: t.not_after(),
        }),
        warnings: (s.warnings.iter().cloned())
            .chain(s.status.uplink.warnings())
            .collect(),
        printing: Some(s.status.printing.report()).filter(|r| !r.is_empty()),
    };
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// A newer site bundle: 200 when stored (it applies at the next start), 403 when not signed
/// by the pinned key or tampered, 409 when its serial is not higher, 400 when malformed, 422
/// when signed but its content cannot be used (TLS material, a URL, a manager): the refusal in
/// the one error shape ([`AppError`]), its message saying why.
async fn push_bundle(
    State(s): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, AppError> {
    let site = s.site.clone().ok_or(AppError::NoSite)?;
    let dir = site.data_dir.clone();
    let pushed = tokio::task::spawn_blocking(move || crate::site::accept_push(&dir, &body)).await?;
    let b = pushed.inspect_err(|e| tracing::warn!(error = %e, "pushed site bundle refused"))?;
    if let Ok(mut g) = site.status.lock() {
        g.pending_serial = Some(b.serial);
    }
    let applies = match &site.restart {
        Some(restart) => {
            // Answer first; then stop as on SIGTERM (everything handed over is committed).
            let restart = restart.clone();
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                restart.cancel();
            });
            "now: docketd restarts"
        }
        None => "at restart",
    };
    Ok(Json(
        serde_json::json!({"stored": true, "serial": b.serial, "site_id": b.site_id, "applies": applies}),
    ))
}

/// MQTT over WebSocket (subprotocol `mqtt`, as mqtt.js asks for): MQTT 3.1.1, served by the
/// connection layer like the MQTT ports.
async fn mqtt_ws(
    State(s): State<AppState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(mqtt) = s.mqtt.clone() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "the broker is not running").into_response();
    };
    let Some(slot) = mqtt.slot() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many MQTT connections").into_response();
    };
    ws.protocols(["mqtt"])
        .max_message_size(s.max_message_bytes)
        .max_frame_size(s.max_message_bytes)
        .on_upgrade(move |socket| async move { mqtt.serve_websocket(socket, peer, slot).await })
}

async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(&s.status),
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
            status: Arc::default(),
            site_id: "s".into(),
            version: "t",
            mqtt: None,
            max_message_bytes: 1024,
            api: None,
            site: None,
            warnings: Vec::new(),
            tls: None,
            integration: None,
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
        s.status.ready.store(true, Relaxed);
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
