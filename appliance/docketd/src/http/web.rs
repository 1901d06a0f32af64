//! The pages (`/`, `/tablet`, `/kds`, `/expo`, `/admin`) and their scripts and stylesheet
//! (`/assets/…`), embedded at compile time from `appliance/web/dist` (see `build.rs`).
//!
//! Served with an ETag (304 on a match), gzip when the client accepts it, and headers that keep
//! the pages to themselves: a Content-Security-Policy allowing only this box's scripts, styles
//! and WebSocket, no framing, no MIME sniffing. Hash-named chunks are cached for a year; the
//! rest is revalidated on every load, so an update shows at the next reload.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub struct Asset {
    pub path: &'static str,
    pub mime: &'static str,
    pub body: &'static [u8],
    pub gzip: Option<&'static [u8]>,
    pub etag: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; \
    frame-ancestors 'none'; form-action 'self'";

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    ASSETS.iter().fold(Router::new(), |r, a| {
        r.route(a.path, get(move |h: HeaderMap| async move { serve(a, &h) }))
    })
}

fn accepts_gzip(h: &HeaderMap) -> bool {
    h.get_all(header::ACCEPT_ENCODING).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',').any(|e| {
                let mut parts = e.split(';');
                let name = parts.next().unwrap_or("").trim();
                let refused = parts.any(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q == 0.0))
                });
                name.eq_ignore_ascii_case("gzip") && !refused
            })
        })
    })
}

fn serve(a: &'static Asset, h: &HeaderMap) -> Response {
    let immutable = a.path.starts_with("/assets/chunk-");
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, HeaderValue::from_static(a.etag));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if a.mime.starts_with("text/html") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    let matched = h
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == a.etag || t.trim() == "*");
    if matched {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.mime));
    match a.gzip {
        Some(gz) if accepts_gzip(h) => {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            (headers, gz).into_response()
        }
        _ => (headers, a.body).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(path: &str, headers: &[(&str, &str)]) -> Response {
        let mut req = Request::get(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        router::<()>()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[test]
    fn every_page_and_its_script_is_embedded() {
        for page in ["/", "/tablet", "/kds", "/expo", "/admin"] {
            assert!(ASSETS.iter().any(|a| a.path == page), "{page} missing");
        }
        for page in ["tablet", "kds", "expo", "admin"] {
            let html = ASSETS
                .iter()
                .find(|a| a.path == format!("/{page}"))
                .unwrap();
            let script = format!("/assets/{page}.js");
            assert!(std::str::from_utf8(html.body).unwrap().contains(&script));
            assert!(ASSETS.iter().any(|a| a.path == script), "{script} missing");
        }
    }

    #[tokio::test]
    async fn pages_carry_type_etag_and_policy() {
        let r = get("/kds", &[]).await;
        assert_eq!(r.status(), StatusCode::OK);
        let h = r.headers();
        assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(h[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("script-src 'self'"));
        assert!(h.get(header::CONTENT_ENCODING).is_none());
        let etag = h[header::ETAG].to_str().unwrap().to_owned();
        let r = get("/kds", &[("if-none-match", &etag)]).await;
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        let r = get("/kds", &[("if-none-match", "\"other\"")]).await;
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn gzip_only_when_accepted() {
        let r = get("/assets/tablet.js", &[("accept-encoding", "br, gzip")]).await;
        assert_eq!(r.headers()[header::CONTENT_ENCODING], "gzip");
        let r = get("/assets/tablet.js", &[("accept-encoding", "gzip;q=0, br")]).await;
        assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
        let r = get("/nope", &[]).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}
