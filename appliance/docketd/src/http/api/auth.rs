//! Who an admin request is: a manager device by HTTP Basic (its id and login key as hex; for
//! scripts, over HTTPS), or by a session the `/admin` page opened once (`POST /api/session`)
//! and holds as an HttpOnly, Secure, SameSite=Strict cookie that expires. State changes from
//! another origin are refused either way.
//!
//! Owns the sessions (in memory: a restart signs managers out). A session names a device; the
//! device is checked again on every request, so revoking it ends its sessions.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use docket_core::{Actor, Role};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{parse, ApiState, AppError};
use crate::store::registry::Lookup;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "docket_session";
/// How long a session lasts from its login (a shift).
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions held at once; a new one past this ends the oldest.
const MAX_SESSIONS: usize = 256;

/// The open sessions, by the SHA-256 of their token (a memory dump shows no usable token).
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
}

struct Session {
    device: String,
    expires: Instant,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    fn open(&self, device: &str) -> String {
        let token = hex::encode(rand::random::<[u8; 32]>());
        let now = Instant::now();
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|_, s| s.expires > now);
        if m.len() >= MAX_SESSIONS {
            if let Some(oldest) = m.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) {
                m.remove(&oldest);
            }
        }
        m.insert(
            digest(&token),
            Session {
                device: device.to_owned(),
                expires: now + SESSION_TTL,
            },
        );
        token
    }

    /// The device a live session belongs to.
    pub fn device(&self, token: &str) -> Option<String> {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let key = digest(token);
        match m.get(&key) {
            Some(s) if s.expires > Instant::now() => Some(s.device.clone()),
            Some(_) => {
                m.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn end(&self, token: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&digest(token));
    }
}

/// A page's own request (`fetch`), not a navigation or a script: browsers say which.
fn from_page(h: &HeaderMap) -> bool {
    h.get("sec-fetch-mode")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|m| m != "navigate")
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie(h: &HeaderMap, name: &str) -> Option<String> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name && v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| v.to_owned())
        })
}

fn set_cookie(value: &str, max_age: u64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("docket_session=; Max-Age=0"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginForm {
    id: String,
    /// The login key as hex.
    key: String,
}

/// `POST /api/session`: a manager's id and login key (a JSON body, or HTTP Basic) for a
/// session cookie, over HTTPS. 401 for anything else; nothing says which part was wrong.
pub(super) async fn session_open(
    State(s): State<ApiState>,
    secure: Option<axum::Extension<crate::http::conn::Secure>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    if !same_origin(&headers) {
        return Err(AppError::CrossOrigin);
    }
    // Plain HTTP (a site with `http.plain`): no session; the page keeps to Basic there.
    if secure.is_some_and(|axum::Extension(crate::http::conn::Secure(tls))| !tls) {
        return Err(AppError::HttpsRequired);
    }
    let (user, password) = match basic_credentials(&headers) {
        Some(c) => c,
        None => {
            let f: LoginForm = parse(&body)?;
            (f.id, f.key)
        }
    };
    let actor = login(&s, user, password).await?;
    if actor.role != Role::Manager {
        return Err(AppError::Forbidden(actor.device));
    }
    let token = s.sessions.open(&actor.device);
    tracing::info!(device = %actor.device, "a manager session opened");
    let mut r = (
        StatusCode::OK,
        Json(json!({ "device": actor.device, "expires_in_s": SESSION_TTL.as_secs() })),
    )
        .into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&token, SESSION_TTL.as_secs()),
    );
    Ok(r)
}

/// `GET /api/session`: who this session is (401 without one).
pub(super) async fn session_who(m: Manager) -> Json<serde_json::Value> {
    Json(json!({ "device": m.0.device }))
}

/// `DELETE /api/session`: signs out (the cookie is cleared either way).
pub(super) async fn session_close(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    if !same_origin(&headers) {
        return AppError::CrossOrigin.into_response();
    }
    if let Some(t) = cookie(&headers, SESSION_COOKIE) {
        s.sessions.end(&t);
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, set_cookie("", 0));
    r
}

/// A request signed in as a manager device. Also refuses state changes from another origin: a
/// browser that cached the Basic login must not let any page it visits revoke devices.
pub struct Manager(pub Actor);

impl FromRequestParts<ApiState> for Manager {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, s: &ApiState) -> Result<Self, AppError> {
        if parts.method != Method::GET
            && parts.method != Method::HEAD
            && !same_origin(&parts.headers)
        {
            return Err(AppError::CrossOrigin);
        }
        let actor = match basic_credentials(&parts.headers) {
            Some((user, password)) => login(s, user, password).await?,
            None => {
                let from_page = from_page(&parts.headers);
                let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
                    return Err(if from_page {
                        AppError::SignedOut
                    } else {
                        AppError::Unauthorized
                    });
                };
                let device = s.sessions.device(&token).ok_or(AppError::SignedOut)?;
                // Every request checks the device again: a revoked manager's session ends.
                match s.registry.lookup(&device) {
                    Lookup::Active(actor, _) => actor,
                    _ => {
                        s.sessions.end(&token);
                        return Err(AppError::SignedOut);
                    }
                }
            }
        };
        if actor.role != Role::Manager {
            return Err(AppError::Forbidden(actor.device));
        }
        Ok(Manager(actor))
    }
}

/// A device's id and login key checked against the registry.
async fn login(s: &ApiState, user: String, password: String) -> Result<Actor, AppError> {
    let registry = s.registry.clone();
    let claimed: String = user.chars().take(64).collect();
    let actor = tokio::task::spawn_blocking(move || registry.verify(&user, &password)).await?;
    actor.ok_or_else(|| {
        tracing::info!(user = %claimed, "admin API login refused");
        AppError::Unauthorized
    })
}

/// No `Origin` (curl, the CLI's peers) or one naming the `Host` the request came to.
pub(super) fn same_origin(h: &HeaderMap) -> bool {
    let Some(origin) = h.get(header::ORIGIN) else {
        return true;
    };
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin = origin.to_str().ok().and_then(|o| {
        o.strip_prefix("http://")
            .or_else(|| o.strip_prefix("https://"))
    });
    matches!((origin, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// `Authorization: Basic base64(user:password)`.
pub(super) fn basic_credentials(h: &HeaderMap) -> Option<(String, String)> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") || b64.len() > 1024 {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(b64.trim())?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Standard base64 (RFC 4648 §4), padding optional: all Basic auth needs.
pub(super) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::engine::{general_purpose, DecodePaddingMode, GeneralPurpose};
    use base64::Engine;
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        general_purpose::PAD.with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(s).ok()
}
