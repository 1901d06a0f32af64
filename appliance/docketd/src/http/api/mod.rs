//! The JSON API (over HTTPS): pairing for new devices (`/api/pair`), manager sessions
//! (`/api/session`, see `auth`) and the manager's admin endpoints (`/api/admin/…`, a session
//! cookie or HTTP Basic with a manager device's id and its login key as hex, `docket_core::keys`).
//! The table of endpoints is in docs/operations.md ("Pairing").
//!
//! Owns the admin connection to the store (behind a mutex, used only inside `spawn_blocking`)
//! and the one `AppError` every API failure becomes (`{"error":{"code","message"}}`). Writes
//! pairings and device rows, only through `store`; device validation is `devices::new_device`.
//! Must not touch orders, the engine or the broker: a revocation is a store write that the
//! daemon's device watcher turns into a disconnect, exactly as for the CLI.

use std::path::Path as FsPath;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
#[cfg(test)]
use docket_core::Role;
use rusqlite::Connection;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::metrics::{self, Metrics};
use crate::status::Status;
use crate::store::pairing::{self, now_ms, Poll};
use crate::store::registry::{new_device, DeviceInfo, DeviceRegistry};
use crate::store::{self, StoreError};

mod auth;
pub mod orders;
mod printers;
mod speed;
mod webhooks;
pub use crate::http::error::AppError;
#[cfg(test)]
use auth::base64_decode;
use auth::basic_credentials;
pub use auth::{Manager, Sessions, SESSION_COOKIE};

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 16 * 1024;
/// Longest device self-description, in characters.
pub const MAX_LABEL_CHARS: usize = 64;
/// Where pages reach the broker (see `http`).
pub const WS_PATH: &str = "/mqtt";

#[derive(Clone)]
pub struct ApiState {
    db: Arc<Mutex<Connection>>,
    registry: Arc<DeviceRegistry>,
    metrics: Arc<Metrics>,
    /// Presence (the device list), ready, storage and the uplink (the admin health).
    status: Arc<Status>,
    site_id: String,
    version: &'static str,
    sessions: Arc<Sessions>,
    /// Plain text on the LAN the site turned on (the admin health shows them).
    warnings: Arc<Vec<String>>,
    /// The integrations' webhooks (None in tests that do not need them).
    webhooks: Option<Arc<crate::webhook::Webhooks>>,
}

impl ApiState {
    /// Opens the API's own connection to an already migrated database.
    pub fn open(
        db: &FsPath,
        registry: Arc<DeviceRegistry>,
        (metrics, status): (Arc<Metrics>, Arc<Status>),
        site_id: &str,
        version: &'static str,
    ) -> Result<Self, StoreError> {
        Ok(ApiState {
            db: Arc::new(Mutex::new(store::connect(db)?)),
            registry,
            metrics,
            status,
            site_id: site_id.to_owned(),
            version,
            sessions: Arc::default(),
            warnings: Arc::default(),
            webhooks: None,
        })
    }

    /// What `/admin` warns about (plain MQTT, plain HTTP).
    pub fn with_warnings(mut self, warnings: Vec<String>) -> Self {
        self.warnings = Arc::new(warnings);
        self
    }

    /// The webhooks `/api/admin/webhooks` sets and tests.
    pub fn with_webhooks(mut self, webhooks: Arc<crate::webhook::Webhooks>) -> Self {
        self.webhooks = Some(webhooks);
        self
    }
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/pair", post(pair_create))
        .route("/api/pair/{token}", get(pair_poll))
        .route("/api/device", get(device_self))
        .route(
            "/api/session",
            post(auth::session_open)
                .get(auth::session_who)
                .delete(auth::session_close),
        )
        .route("/api/admin/pairings", get(admin_pairings))
        .route("/api/admin/pairings/{code}/approve", post(admin_approve))
        .route("/api/admin/pairings/{code}/reject", post(admin_reject))
        .route("/api/admin/devices", get(admin_devices))
        .route("/api/admin/devices/{id}/revoke", post(admin_revoke))
        .route("/api/admin/health", get(admin_health))
        .route("/api/admin/speed", get(speed::admin_speed))
        .route("/api/admin/printers", get(printers::admin_printers))
        .route(
            "/api/admin/printers/{station}",
            axum::routing::put(printers::admin_put_printer).delete(printers::admin_delete_printer),
        )
        .route("/api/admin/webhooks", get(webhooks::admin_webhooks))
        .route(
            "/api/admin/webhooks/{device}",
            axum::routing::put(webhooks::admin_put_webhook).delete(webhooks::admin_delete_webhook),
        )
        .route(
            "/api/admin/webhooks/{device}/test",
            post(webhooks::admin_test_webhook),
        )
        .route(
            "/api/admin/webhooks/{device}/pause",
            post(webhooks::admin_pause_webhook),
        )
        .route(
            "/api/admin/webhooks/{device}/resume",
            post(webhooks::admin_resume_webhook),
        )
        .route(
            "/api/admin/webhooks/{device}/deliveries",
            get(webhooks::admin_webhook_deliveries),
        )
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::map_response(no_store))
        .with_state(state)
}

/// Responses carry secrets and live state: no cache may keep them.
async fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Runs a store operation on the API's connection, off the async workers.
pub(super) async fn with_db<T: Send + 'static>(
    s: &ApiState,
    f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, AppError> {
    let db = s.db.clone();
    let r = tokio::task::spawn_blocking(move || {
        let mut conn = db.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn)
    })
    .await?;
    Ok(r?)
}

/// Parses a JSON body; an empty body counts as `{}`.
pub(super) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(AppError::BadJson)
}

fn secs_until(t: u64, now: u64) -> u64 {
    t.saturating_sub(now) / 1000
}

// ---- pairing (no login: this is how a device gets one) ----

#[derive(Deserialize)]
struct PairRequest {
    label: Option<String>,
}

/// Trims a device's self-description; empty is none.
fn clean_label(label: Option<String>) -> Result<Option<String>, AppError> {
    let Some(label) = label else { return Ok(None) };
    let label = label.trim();
    if label.chars().count() > MAX_LABEL_CHARS || label.chars().any(char::is_control) {
        return Err(AppError::BadLabel);
    }
    Ok((!label.is_empty()).then(|| label.to_owned()))
}

/// The peer's socket address, when the request came over a socket (`ConnectInfo`).
struct Peer(Option<std::net::SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let info = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>();
        Ok(Peer(info.map(|i| i.0)))
    }
}

async fn pair_create(
    State(s): State<ApiState>,
    Peer(peer): Peer,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let req: PairRequest = parse(&body?)?;
    let label = clean_label(req.label)?;
    let now = now_ms();
    let l = label.clone();
    // The peer's IP (IPv4-mapped IPv6 shown as IPv4); "unknown" only where no socket is (tests
    // that call the router directly).
    let addr = peer.map_or_else(
        || "unknown".to_owned(),
        |a| a.ip().to_canonical().to_string(),
    );
    let a = addr.clone();
    let p = with_db(&s, move |c| pairing::create(c, l.as_deref(), &a, now)).await?;
    tracing::info!(code = %p.code, label = ?label, addr, "pairing requested");
    let body = json!({
        "code": p.code,
        "token": hex::encode(p.token),
        "expires_in_s": secs_until(p.expires_at, now),
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn pair_poll(
    State(s): State<ApiState>,
    token: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let Path(token) = token.map_err(AppError::BadPath)?;
    let token: [u8; 32] = hex::decode(&token)
        .ok()
        .and_then(|t| t.try_into().ok())
        .ok_or(AppError::UnknownToken)?;
    let now = now_ms();
    let polled = with_db(&s, move |c| pairing::poll(c, &token, now)).await?;
    Ok(Json(match polled.ok_or(AppError::UnknownToken)? {
        Poll::Pending { expires_at } => {
            json!({"status": "pending", "expires_in_s": secs_until(expires_at, now)})
        }
        Poll::Rejected => json!({"status": "rejected"}),
        Poll::Approved(d) => {
            tracing::info!(device = %d.id, "paired device collected its credentials");
            json!({
                "status": "approved",
                "id": d.id,
                "role": d.role.as_str(),
                "stations": d.stations,
                "secret": hex::encode(d.secret),
                "mqtt": {"ws_path": WS_PATH},
            })
        }
    }))
}

// ---- a device asking about itself (its Basic login) ----

/// Who am I? A page whose MQTT login is refused (the broker just drops the connection) asks
/// here why: 200 with its row, 403 `revoked`, or 401 for an unknown device or a wrong login key.
async fn device_self(
    State(s): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<DeviceInfo>, AppError> {
    let (user, password) = basic_credentials(&headers).ok_or(AppError::Unauthorized)?;
    let registry = s.registry.clone();
    let checked = tokio::task::spawn_blocking(move || registry.check(&user, &password)).await?;
    match checked {
        Ok(d) => Ok(Json(DeviceInfo {
            online: Some(s.status.presence.is_online(&d.id)),
            ..DeviceInfo::from(&d)
        })),
        Err(true) => Err(AppError::Revoked),
        Err(false) => Err(AppError::Unauthorized),
    }
}

// ---- admin (a manager: its Basic login, or a session; see `auth`) ----

async fn admin_pairings(_m: Manager, State(s): State<ApiState>) -> Result<Json<Value>, AppError> {
    let now = now_ms();
    let pending = with_db(&s, move |c| pairing::pending(c, now)).await?;
    let list: Vec<Value> = pending
        .into_iter()
        .map(|p| {
            json!({
                "code": p.code,
                "label": p.label,
                "addr": p.addr,
                "created_at": p.created_at,
                "age_s": now.saturating_sub(p.created_at) / 1000,
                "expires_in_s": secs_until(p.expires_at, now),
            })
        })
        .collect();
    Ok(Json(json!({ "pairings": list })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveRequest {
    id: String,
    role: String,
    #[serde(default)]
    stations: Vec<String>,
}

async fn admin_approve(
    Manager(by): Manager,
    State(s): State<ApiState>,
    code: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<DeviceInfo>, AppError> {
    let Path(code) = code.map_err(AppError::BadPath)?;
    let req: ApproveRequest = parse(&body?)?;
    let now = now_ms();
    let row = new_device(&req.id, &req.role, &req.stations, now)?;
    let info = DeviceInfo::from(&row);
    let c2 = code.clone();
    with_db(&s, move |c| pairing::approve(c, &c2, &row, now)).await?;
    tracing::info!(code = %code, device = %info.id, role = info.role, by = %by.device, "pairing approved");
    Ok(Json(info))
}

async fn admin_reject(
    Manager(by): Manager,
    State(s): State<ApiState>,
    code: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let Path(code) = code.map_err(AppError::BadPath)?;
    let c2 = code.clone();
    with_db(&s, move |c| pairing::reject(c, &c2, now_ms())).await?;
    tracing::info!(code = %code, by = %by.device, "pairing rejected");
    Ok(Json(json!({"code": code, "status": "rejected"})))
}

async fn admin_devices(_m: Manager, State(s): State<ApiState>) -> Result<Json<Value>, AppError> {
    let rows = with_db(&s, |c| store::devices::all(c)).await?;
    let list: Vec<DeviceInfo> = rows
        .iter()
        .map(|d| DeviceInfo {
            online: Some(d.revoked_at.is_none() && s.status.presence.is_online(&d.id)),
            ..DeviceInfo::from(d)
        })
        .collect();
    Ok(Json(json!({ "devices": list })))
}

async fn admin_revoke(
    Manager(by): Manager,
    State(s): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let Path(id) = id.map_err(AppError::BadPath)?;
    let i2 = id.clone();
    with_db(&s, move |c| store::devices::revoke(c, &i2, now_ms())).await?;
    tracing::info!(device = %id, by = %by.device, "device revoked");
    Ok(Json(json!({"id": id, "revoked": true})))
}

async fn admin_health(_m: Manager, State(s): State<ApiState>) -> Json<Value> {
    use std::sync::atomic::Ordering::Relaxed;
    let (m, now) = (&s.metrics, &s.status);
    Json(json!({
        "site_id": s.site_id,
        "version": s.version,
        "uptime_s": metrics::uptime_ms() / 1000,
        "ready": now.ready.load(Relaxed),
        "seq": m.seq.load(Relaxed),
        "open_orders": m.open_orders.load(Relaxed),
        "connected_clients": m.mqtt_connections.load(Relaxed),
        "online_devices": m.online_devices.load(Relaxed),
        "paired_devices": m.paired_devices.load(Relaxed),
        "uplink": now.uplink.state(m.seq.load(Relaxed), 1000),
        "sync_lag": now.uplink.lag_events(m.seq.load(Relaxed)),
        "storage_full": now.storage_full.load(Relaxed),
        "warnings": *s.warnings,
    }))
}

#[cfg(test)]
mod tests;
