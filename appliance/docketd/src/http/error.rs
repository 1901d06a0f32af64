//! The one HTTP error: every way a request to the API or a bundle push fails, with a stable
//! code, a status and a message for humans (axum's `IntoResponse`), so every endpoint answers
//! errors in the same shape.
//!
//! Must not decide anything: handlers return these, this only says how they look on the wire.

use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::api::{BODY_LIMIT, MAX_LABEL_CHARS};
use crate::site::SiteError;
use crate::store::registry::InvalidDevice;
use crate::store::StoreError;

/// Every way a request to the box's HTTP API fails (`/api/…` and `/site/bundle`). Each has a
/// stable `code` and an HTTP status; the body is `{"error": {"code", "message"}}`.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("the request body is not valid JSON for this endpoint: {0}")]
    BadJson(serde_json::Error),
    #[error("the request body is larger than {BODY_LIMIT} bytes")]
    TooLarge,
    #[error("cannot read the request body")]
    Body(#[source] BytesRejection),
    #[error("bad path parameter")]
    BadPath(#[source] PathRejection),
    #[error("label must be at most {MAX_LABEL_CHARS} characters, without control characters")]
    BadLabel,
    #[error(transparent)]
    InvalidDevice(#[from] InvalidDevice),
    #[error("sign in with a manager device's id and login key (HTTP Basic)")]
    Unauthorized,
    /// A page's request without a live session: 401 without a Basic challenge, so that the
    /// browser does not put up its own login box over the page.
    #[error("the session has ended: sign in again")]
    SignedOut,
    #[error("sessions are opened only over HTTPS (their cookie is Secure)")]
    HttpsRequired,
    #[error("device {0:?} is not a manager")]
    Forbidden(String),
    #[error("this device has been revoked by a manager")]
    Revoked,
    #[error("cross-origin requests are refused")]
    CrossOrigin,
    #[error("no pairing request for this token (unknown, expired or already collected)")]
    UnknownToken,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a blocking task failed")]
    Join(#[from] tokio::task::JoinError),
    /// A pushed site bundle refused ([`crate::site::accept_push`]).
    #[error(transparent)]
    Bundle(#[from] SiteError),
    #[error("site bundles are not served here")]
    NoSite,
    /// A query string the endpoint cannot use; the message says which parameter and why.
    #[error("{0}")]
    BadQuery(String),
    /// A printer setting the box cannot use (address, mode, paper); the message says which.
    #[error("{0}")]
    BadPrinter(String),
    #[error("no item of the menu is made at {0:?}")]
    UnknownStation(String),
    #[error("{0:?} has no kitchen printer")]
    NoPrinter(String),
    /// A webhook setting the box cannot use (URL, device); the message says which.
    #[error("{0}")]
    BadWebhook(String),
    #[error("{0:?} has no webhook")]
    NoWebhook(String),
    #[error("webhooks are not served here")]
    NoWebhooks,
    /// The local integration API without a known device and its right key (never says which).
    #[error("give an integration device's id and login key: Authorization: Bearer <device-id>.<login-key-hex>")]
    BadKey,
    /// The integration API's key is right, but a manager revoked the device.
    #[error("this integration's key has been revoked by a manager")]
    KeyRevoked,
    #[error("device {0:?} is not an integration: only an integration device uses this API")]
    NotIntegration(String),
    #[error(
        "the Idempotency-Key header is required once: 1-{} visible ASCII characters",
        crate::http::api::orders::MAX_KEY_CHARS
    )]
    BadIdempotencyKey,
    /// No order by this id that the calling integration placed.
    #[error("no order {0:?} placed by this integration")]
    UnknownOrder(String),
    /// The engine refused the command: its core code and message, as an MQTT client gets them.
    #[error("{}", .0.message)]
    Rejected(docket_core::wire::ReplyError),
    /// The engine gave no reply (stopped, or not in time).
    #[error(transparent)]
    Submit(#[from] crate::integration::SubmitError),
}

impl AppError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        use StatusCode as S;
        match self {
            AppError::BadJson(_) => (S::BAD_REQUEST, "bad_json"),
            AppError::TooLarge => (S::PAYLOAD_TOO_LARGE, "too_large"),
            AppError::Body(_) | AppError::BadPath(_) => (S::BAD_REQUEST, "bad_request"),
            AppError::BadLabel => (S::BAD_REQUEST, "bad_label"),
            AppError::InvalidDevice(e) => (
                S::BAD_REQUEST,
                match e {
                    InvalidDevice::Id(_) => "bad_id",
                    InvalidDevice::Role(_) => "bad_role",
                    InvalidDevice::StationsMissing
                    | InvalidDevice::Station(_)
                    | InvalidDevice::StationsNotAllowed => "bad_stations",
                },
            ),
            AppError::Unauthorized | AppError::SignedOut => (S::UNAUTHORIZED, "unauthorized"),
            AppError::Forbidden(_) => (S::FORBIDDEN, "forbidden"),
            AppError::CrossOrigin => (S::FORBIDDEN, "cross_origin"),
            AppError::HttpsRequired => (S::FORBIDDEN, "https_required"),
            AppError::Revoked => (S::FORBIDDEN, "revoked"),
            AppError::UnknownToken => (S::NOT_FOUND, "unknown_pairing"),
            AppError::Store(e) => match e {
                StoreError::UnknownPairing(_) => (S::NOT_FOUND, "unknown_pairing"),
                StoreError::PairingDecided(_) => (S::CONFLICT, "pairing_decided"),
                StoreError::DeviceExists(_) => (S::CONFLICT, "device_exists"),
                StoreError::NoDevice(_) => (S::NOT_FOUND, "unknown_device"),
                StoreError::TooManyPairings { .. } => (S::TOO_MANY_REQUESTS, "too_many_pairings"),
                StoreError::TooManyPairingsFrom { .. } => {
                    (S::TOO_MANY_REQUESTS, "too_many_pairings_from_address")
                }
                _ => (S::INTERNAL_SERVER_ERROR, "internal"),
            },
            AppError::Join(_) => (S::INTERNAL_SERVER_ERROR, "internal"),
            AppError::NoSite => (S::NOT_FOUND, "not_found"),
            AppError::BadQuery(_) => (S::BAD_REQUEST, "bad_query"),
            AppError::BadPrinter(_) => (S::UNPROCESSABLE_ENTITY, "bad_printer"),
            AppError::UnknownStation(_) => (S::NOT_FOUND, "unknown_station"),
            AppError::NoPrinter(_) => (S::NOT_FOUND, "no_printer"),
            AppError::BadWebhook(_) => (S::UNPROCESSABLE_ENTITY, "bad_webhook"),
            AppError::NoWebhook(_) => (S::NOT_FOUND, "no_webhook"),
            AppError::NoWebhooks => (S::NOT_FOUND, "not_found"),
            AppError::Bundle(e) => bundle_status(e),
            AppError::BadKey => (S::UNAUTHORIZED, "unauthorized"),
            AppError::KeyRevoked => (S::UNAUTHORIZED, "revoked"),
            AppError::NotIntegration(_) => (S::FORBIDDEN, "forbidden"),
            AppError::BadIdempotencyKey => (S::BAD_REQUEST, "bad_idempotency_key"),
            AppError::UnknownOrder(_) => (S::NOT_FOUND, "unknown_order"),
            AppError::Rejected(e) => (crate::http::api::orders::status_of(e.code), e.code.as_str()),
            AppError::Submit(e) => submit_status(e),
        }
    }
}

impl From<BytesRejection> for AppError {
    fn from(e: BytesRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::TooLarge
        } else {
            AppError::Body(e)
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = ?self, "API request failed");
            "internal error (see docketd's log)".to_owned()
        } else {
            self.to_string()
        };
        let mut r = (
            status,
            Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response();
        if matches!(self, AppError::Unauthorized) {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"docket\""),
            );
        }
        if matches!(self, AppError::BadKey) {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"docket\""),
            );
        }
        r
    }
}

/// An integration's command the engine gave no reply to.
fn submit_status(e: &crate::integration::SubmitError) -> (StatusCode, &'static str) {
    use crate::integration::SubmitError as E;
    use StatusCode as S;
    match e {
        E::Unknown(_) => (S::UNAUTHORIZED, "unauthorized"),
        E::Revoked(_) => (S::UNAUTHORIZED, "revoked"),
        E::NotIntegration(_) => (S::FORBIDDEN, "forbidden"),
        E::Stopped => (S::SERVICE_UNAVAILABLE, "unavailable"),
        E::Timeout => (S::SERVICE_UNAVAILABLE, "timeout"),
        E::Encode(_) => (S::INTERNAL_SERVER_ERROR, "internal"),
    }
}

/// A refused bundle: malformed (400), not newer (409), signed by the site but unusable (422:
/// its TLS material, a URL, a manager), not signed by the pinned key or tampered (403).
fn bundle_status(e: &SiteError) -> (StatusCode, &'static str) {
    use docket_core::bundle::BundleError as B;
    use SiteError as E;
    use StatusCode as S;
    match e {
        E::Bundle(B::Malformed(_)) => (S::BAD_REQUEST, "bundle_malformed"),
        E::OldSerial { .. } => (S::CONFLICT, "bundle_not_newer"),
        E::Tls(_)
        | E::Bundle(
            B::BadSiteId(_) | B::BadUrl(_) | B::Plaintext(..) | B::BadManager(_) | B::BadTls { .. },
        ) => (S::UNPROCESSABLE_ENTITY, "bundle_unusable"),
        E::Read(..) | E::Write(..) => (S::INTERNAL_SERVER_ERROR, "internal"),
        _ => (S::FORBIDDEN, "bundle_refused"),
    }
}
