//! The local integration API (`/api/v1/…`): a POS or another till places, amends, voids, fires
//! and reads its orders over HTTPS as a device of role `integration`, with its own key
//! (`Authorization: Bearer <device-id>.<login-key-hex>`, or HTTP Basic id:key). Every request
//! checks the device registry again (which reloads on every change), so a revoked key is
//! refused at once. docs/integration.md is the POS vendor's page; `openapi.json` beside this
//! module is the contract, served at `/api/v1/openapi.json` and checked against this code by
//! `tests/tests/integration_api.rs`.
//!
//! Owns no state: commands go through [`crate::integration::Submitter`] (the engine's one command
//! path: the same checks, exactly once by (device, `Idempotency-Key`), the reply only after the
//! commit); the order's status is read from the store's `orders` projection on the API's own
//! connection. Must not decide an order rule itself (`docket_core::decide` does, scoping
//! included: an integration changes only the orders it placed).

mod codes;
mod request;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use docket_core::wire::{CommandBody, Reply};
use docket_core::Role;
use serde_json::{json, Map, Value};

use super::auth::{basic_credentials, same_origin};
use super::{no_store, parse, with_db, ApiState, AppError, BODY_LIMIT};
use crate::integration::Submitter;
pub use codes::status_of;
pub use request::MAX_KEY_CHARS;
use request::{idempotency_key, Fire, NewLines, NewOrder, Void};

/// The OpenAPI 3.1 document of this API, served as is.
pub const OPENAPI: &str = include_str!("../openapi.json");

#[derive(Clone)]
pub struct OrdersState {
    api: ApiState,
    submitter: Submitter,
}

pub fn router(api: ApiState, submitter: Submitter) -> Router {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/orders", post(place))
        .route("/api/v1/orders/{order_id}", get(order_status))
        .route("/api/v1/orders/{order_id}/lines", post(add_lines))
        .route("/api/v1/orders/{order_id}/void", post(void_line))
        .route("/api/v1/orders/{order_id}/fire", post(fire_course))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::map_response(no_store))
        .with_state(OrdersState { api, submitter })
}

async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI,
    )
        .into_response()
}

/// A request from an integration device with its right, unrevoked key.
pub struct Integration(pub String);

/// `Bearer <device-id>.<login-key-hex>` (the key is hex, so the last dot splits) or Basic.
fn credentials(h: &HeaderMap) -> Option<(String, String)> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        let (id, key) = rest.trim().rsplit_once('.')?;
        return Some((id.to_owned(), key.to_owned()));
    }
    basic_credentials(h)
}

impl FromRequestParts<OrdersState> for Integration {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, s: &OrdersState) -> Result<Self, AppError> {
        // A browser that visits another site must not act with a key it was given.
        if parts.method != Method::GET && !same_origin(&parts.headers) {
            return Err(AppError::CrossOrigin);
        }
        let (id, key) = credentials(&parts.headers).ok_or(AppError::BadKey)?;
        let registry = s.api.registry.clone();
        let claimed: String = id.chars().take(64).collect();
        let checked = tokio::task::spawn_blocking(move || registry.check(&id, &key)).await?;
        match checked {
            Ok(d) if d.role == Role::Integration => Ok(Integration(d.id)),
            Ok(d) => Err(AppError::NotIntegration(d.id)),
            Err(true) => Err(AppError::KeyRevoked),
            Err(false) => {
                tracing::info!(user = %claimed, "integration API key refused");
                Err(AppError::BadKey)
            }
        }
    }
}

/// The command decided by the engine as `who`'s command `key`: `ok` with the reply's order id,
/// ticket and seq, or the refusal with the core's code. The same key again gets the first reply,
/// so the same status and body.
async fn submit(
    s: &OrdersState,
    who: &Integration,
    key: &str,
    body: &CommandBody,
    ok: StatusCode,
) -> Result<Response, AppError> {
    let reply = s.submitter.submit(&who.0, key, body).await?;
    respond(reply, ok)
}

fn respond(reply: Reply, ok: StatusCode) -> Result<Response, AppError> {
    if let Some(e) = reply.error {
        return Err(AppError::Rejected(e));
    }
    let mut out = Map::new();
    if let Some(id) = reply.order_id {
        out.insert("order_id".into(), id.into());
    }
    if let Some(t) = reply.ticket {
        out.insert("ticket".into(), t.into());
    }
    if let Some(seq) = reply.seq {
        out.insert("seq".into(), seq.into());
    }
    Ok((ok, Json(Value::Object(out))).into_response())
}

async fn place(
    who: Integration,
    State(s): State<OrdersState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let key = idempotency_key(&headers)?;
    let req: NewOrder = parse(&body?)?;
    submit(&s, &who, &key, &req.into_command(), StatusCode::CREATED).await
}

async fn add_lines(
    who: Integration,
    State(s): State<OrdersState>,
    order_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let cmd = |order_id, req: NewLines| req.into_command(order_id);
    on_order(&s, &who, order_id, &headers, body, cmd).await
}

async fn void_line(
    who: Integration,
    State(s): State<OrdersState>,
    order_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let cmd = |order_id, Void { line }| CommandBody::VoidLine { order_id, line };
    on_order(&s, &who, order_id, &headers, body, cmd).await
}

async fn fire_course(
    who: Integration,
    State(s): State<OrdersState>,
    order_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let cmd = |order_id, Fire { course }| CommandBody::FireCourse { order_id, course };
    on_order(&s, &who, order_id, &headers, body, cmd).await
}

/// A command on the order in the path: the path, the idempotency key and the body checked in
/// that order (each its own error), then the body `R` made into the command and submitted.
async fn on_order<R: serde::de::DeserializeOwned>(
    s: &OrdersState,
    who: &Integration,
    order_id: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    command: impl FnOnce(String, R) -> CommandBody,
) -> Result<Response, AppError> {
    let Path(order_id) = order_id.map_err(AppError::BadPath)?;
    let key = idempotency_key(headers)?;
    let req: R = parse(&body?)?;
    submit(s, who, &key, &command(order_id, req), StatusCode::OK).await
}

/// The order as the store has it (the `orders` projection: its latest committed state), only
/// when this integration placed it: another's order, or one from a tablet, is as unknown.
async fn order_status(
    who: Integration,
    State(s): State<OrdersState>,
    order_id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let Path(order_id) = order_id.map_err(AppError::BadPath)?;
    let id = order_id.clone();
    let order = with_db(&s.api, move |c| crate::store::order_by_id(c, &id)).await?;
    match order {
        Some(o) if o.origin.as_ref().is_some_and(|g| g.device == who.0) => Ok(Json(json!(o))),
        _ => Err(AppError::UnknownOrder(order_id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_splits_at_the_last_dot_and_basic_still_works() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer till.1.ab12"),
        );
        assert_eq!(
            credentials(&h),
            Some(("till.1".to_owned(), "ab12".to_owned()))
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dGlsbDphYjEy"),
        );
        assert_eq!(
            credentials(&h),
            Some(("till".to_owned(), "ab12".to_owned()))
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer nodot"),
        );
        assert_eq!(credentials(&h), None);
    }

    #[test]
    fn a_refused_reply_keeps_its_core_code_and_an_accepted_one_its_ticket() {
        let r = Reply::accepted("k", "o-000001", 1, 7);
        let resp = respond(r, StatusCode::CREATED).unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        let refused = Reply::rejected(
            "k",
            &docket_core::Rejection::new(docket_core::Code::SoldOut, "fries is 86'd"),
        );
        let resp = respond(refused, StatusCode::CREATED)
            .unwrap_err()
            .into_response();
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn the_openapi_document_is_json_of_version_3_1() {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    }
}
