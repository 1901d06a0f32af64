//! `/api/admin/webhooks`: the integrations' webhooks for `/admin`. `GET` lists each with its
//! state and last deliveries; `PUT /{device}` `{url}` sets an integration device's webhook (the
//! secret, made on create, is in that answer only); `DELETE /{device}` removes it and its log;
//! `POST /{device}/test` sends a signed `test` event now; `POST /{device}/pause` and `/resume`
//! hold its deliveries and let them go; `GET /{device}/deliveries` is its log.
//!
//! Must not deliver events itself: the webhook tasks follow the table (`Webhooks::reload`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::Json;
use rusqlite::OptionalExtension;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{parse, with_db, ApiState, AppError, Manager};
use crate::store::pairing::now_ms;
use crate::store::webhooks::{self, Webhook};
use crate::webhook::Webhooks;

/// Deliveries shown per webhook in the listing.
const SHOWN: u32 = 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookRequest {
    url: String,
}

fn hooks(s: &ApiState) -> Result<Arc<Webhooks>, AppError> {
    s.webhooks.clone().ok_or(AppError::NoWebhooks)
}

/// One webhook as listed (never its secret).
fn entry(h: &Webhooks, w: &Webhook, waiting: u64, last: Vec<webhooks::Delivery>) -> Value {
    let st = h.state(&w.device);
    let state = if !w.enabled {
        "paused"
    } else if st.failing_since.is_some() {
        "failing"
    } else if st.last_ok.is_some() {
        "ok"
    } else {
        "new"
    };
    json!({
        "device": w.device,
        "url": w.url,
        "enabled": w.enabled,
        "cursor": w.cursor,
        "state": state,
        "failing_since": st.failing_since,
        "last_ok": st.last_ok,
        "last_error": st.last_error,
        "waiting_events": waiting,
        "deliveries": last,
    })
}

async fn listing(s: &ApiState) -> Result<Value, AppError> {
    let h = hooks(s)?;
    let rows = with_db(s, |c| {
        let mut out = Vec::new();
        for w in webhooks::all(c)? {
            let waiting = webhooks::waiting(c, w.cursor)?;
            let last = webhooks::deliveries(c, &w.device, SHOWN)?;
            out.push((w, waiting, last));
        }
        let integrations = integrations(c)?;
        Ok((out, integrations))
    })
    .await?;
    let (list, integrations) = rows;
    let list: Vec<Value> = list
        .into_iter()
        .map(|(w, waiting, last)| entry(&h, &w, waiting, last))
        .collect();
    Ok(json!({"webhooks": list, "integrations": integrations}))
}

/// The integration devices not revoked (who may have a webhook).
fn integrations(c: &rusqlite::Connection) -> Result<Vec<String>, crate::store::StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT id FROM devices WHERE role = 'integration' AND revoked_at IS NULL ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) async fn admin_webhooks(
    _m: Manager,
    State(s): State<ApiState>,
) -> Result<Json<Value>, AppError> {
    Ok(Json(listing(&s).await?))
}

pub(super) async fn admin_put_webhook(
    Manager(by): Manager,
    State(s): State<ApiState>,
    device: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, AppError> {
    let Path(device) = device.map_err(AppError::BadPath)?;
    let h = hooks(&s)?;
    let req: WebhookRequest = parse(&body?)?;
    let url = req.url.trim().to_owned();
    h.check_url(&url)
        .map_err(|why| AppError::BadWebhook(format!("url: {why}")))?;
    let secret: [u8; 32] = rand::random();
    let (d, u) = (device.clone(), url.clone());
    let created = with_db(&s, move |c| {
        let role: Option<(String, Option<u64>)> = c
            .query_row(
                "SELECT role, revoked_at FROM devices WHERE id = ?1",
                [&d],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match role {
            Some((role, None)) if role == "integration" => {
                Ok(Some(webhooks::put(c, &d, &u, &secret, now_ms())?))
            }
            _ => Ok(None),
        }
    })
    .await?
    .ok_or_else(|| {
        AppError::BadWebhook(format!(
            "{device:?} is not an integration device (add one with `docketd device add {device} integration`)"
        ))
    })?;
    h.reload();
    tracing::info!(device = %device, url = %url, created, by = %by.device, "webhook set");
    let mut out = listing(&s).await?;
    if created {
        // Shown once: the box keeps it to sign, nobody can read it back.
        out["secret"] = json!(hex::encode(secret));
    }
    out["created"] = json!(created);
    Ok(Json(out))
}

pub(super) async fn admin_delete_webhook(
    Manager(by): Manager,
    State(s): State<ApiState>,
    device: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let Path(device) = device.map_err(AppError::BadPath)?;
    let h = hooks(&s)?;
    let d = device.clone();
    if !with_db(&s, move |c| webhooks::remove(c, &d)).await? {
        return Err(AppError::NoWebhook(device));
    }
    h.stop_now(&device);
    tracing::info!(device = %device, by = %by.device, "webhook removed");
    Ok(Json(listing(&s).await?))
}

/// `POST /{device}/pause`: nothing more is sent from the answer on; the events wait, from its
/// cursor, on the box. Pausing a paused one changes nothing.
pub(super) async fn admin_pause_webhook(
    Manager(by): Manager,
    State(s): State<ApiState>,
    device: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    set_enabled(by, s, device, false).await
}

/// `POST /{device}/resume`: the events that waited are sent, in order, from its cursor.
pub(super) async fn admin_resume_webhook(
    Manager(by): Manager,
    State(s): State<ApiState>,
    device: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    set_enabled(by, s, device, true).await
}

async fn set_enabled(
    by: docket_core::Actor,
    s: ApiState,
    device: Result<Path<String>, PathRejection>,
    enabled: bool,
) -> Result<Json<Value>, AppError> {
    let Path(device) = device.map_err(AppError::BadPath)?;
    let h = hooks(&s)?;
    let d = device.clone();
    if !with_db(&s, move |c| webhooks::set_enabled(c, &d, enabled, now_ms())).await? {
        return Err(AppError::NoWebhook(device));
    }
    if enabled {
        h.reload();
    } else {
        h.stop_now(&device);
    }
    let what = if enabled { "resumed" } else { "paused" };
    tracing::info!(device = %device, by = %by.device, "webhook {what}");
    Ok(Json(listing(&s).await?))
}

async fn stored(s: &ApiState, device: &str) -> Result<Webhook, AppError> {
    let d = device.to_owned();
    with_db(s, move |c| webhooks::get(c, &d))
        .await?
        .ok_or_else(|| AppError::NoWebhook(device.to_owned()))
}

pub(super) async fn admin_test_webhook(
    Manager(by): Manager,
    State(s): State<ApiState>,
    device: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let Path(device) = device.map_err(AppError::BadPath)?;
    let h = hooks(&s)?;
    let hook = stored(&s, &device).await?;
    let d = h.send_test(&hook).await;
    tracing::info!(device = %device, status = ?d.http_status, error = ?d.error, by = %by.device, "webhook test sent");
    let shown = d.clone();
    with_db(&s, move |c| webhooks::log(c, &d)).await?;
    Ok(Json(json!({
        "ok": shown.http_status.is_some_and(|c| (200..300).contains(&c)),
        "delivery": shown,
    })))
}

pub(super) async fn admin_webhook_deliveries(
    _m: Manager,
    State(s): State<ApiState>,
    device: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let Path(device) = device.map_err(AppError::BadPath)?;
    stored(&s, &device).await?;
    let d = device.clone();
    let list = with_db(&s, move |c| webhooks::deliveries(c, &d, webhooks::LOG_KEEP)).await?;
    Ok(Json(json!({"device": device, "deliveries": list})))
}
