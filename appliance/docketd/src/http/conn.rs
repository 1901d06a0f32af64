//! HTTP connections: docketd accepts them itself, so that every one is bounded.
//!
//! `axum::serve` runs hyper without a timer: a connection that sends half a request head, or
//! nothing, holds its socket forever, and nothing limits how many one address opens. Here each
//! accepted connection first takes a place ([`Places`]: at most `max_connections` in all and
//! `per_address` from one address; a connection without one is closed at once), then hyper
//! serves it with a header read timeout (which also closes an idle keep-alive connection) and
//! the router with a deadline for each whole request (408). A WebSocket upgrade gives its place
//! back: from then on it is an MQTT connection, bounded by the connection layer.
//!
//! Owns the HTTP accept loop and the per-address counts. Must not know routes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::config::HttpLimits;
use crate::metrics::Metrics;

/// Largest request head (request line and headers): the pages and the API send small ones.
/// (hyper's read buffer; it takes nothing below 8 KiB.)
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Serves `app` on `listener` (over TLS with `tls`) until `shutdown`; then lets each connection finish its request
/// (2 s at most).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    limits: HttpLimits,
    metrics: Arc<Metrics>,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: CancellationToken,
) {
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let app = app.layer(axum::middleware::from_fn_with_state(
        limits.request_timeout,
        deadline,
    ));
    let places = Places::new(limits.max_connections, limits.per_address);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(64)
        .max_buf_size(MAX_HEAD_BYTES);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, or the peer gave up before we accepted: go on after a
                    // breath rather than spin.
                    tracing::warn!(error = %e, "cannot accept an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(place) = places.take(peer.ip()) else {
            metrics.http_refused.fetch_add(1, Relaxed);
            continue; // dropped: closed
        };
        // Pages speak MQTT over this socket once upgraded: with Nagle on, a reply sent right
        // after a PUBACK waited ~40 ms for the browser's delayed ACK.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on an HTTP connection");
        }
        let secure = Secure(tls.is_some());
        let svc = app
            .clone()
            .map_request(move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.extensions_mut().insert(secure);
                req
            });
        let http = http.clone();
        let stop = shutdown.clone();
        let tls = tls.clone();
        let handshake = limits.header_timeout;
        tokio::spawn(async move {
            let _place = place;
            match tls {
                None => serve_one(&http, tcp, svc, peer, stop).await,
                Some(acceptor) => {
                    // The handshake is part of the head: it gets the same time.
                    match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => serve_one(&http, stream, svc, peer, stop).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

/// Whether a request came over TLS (an extension on every request).
#[derive(Debug, Clone, Copy)]
pub struct Secure(pub bool);

/// Serves one connection's requests until it closes or `stop`.
async fn serve_one<I, S>(
    http: &hyper::server::conn::http1::Builder,
    io: I,
    svc: S,
    peer: std::net::SocketAddr,
    stop: CancellationToken,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<Request<hyper::body::Incoming>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = http
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(svc))
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "HTTP connection ended");
            }
        }
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
        }
    }
}

/// Every request is answered within the limit, its body read included (a body trickled in a
/// byte at a time is cut off), or gets 408.
async fn deadline(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            [(axum::http::header::CONNECTION, "close")],
            "the request took too long\n",
        )
            .into_response(),
    }
}

/// The places for HTTP connections: `all` in all, `per_address` for one address.
struct Places {
    all: usize,
    per_address: usize,
    counts: Arc<Mutex<Counts>>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// One connection's place, given back when dropped.
struct Place {
    address: IpAddr,
    counts: Arc<Mutex<Counts>>,
}

impl Places {
    fn new(all: usize, per_address: usize) -> Self {
        Places {
            all,
            per_address,
            counts: Arc::default(),
        }
    }

    /// A place for a connection from `address`, or `None` when it or the box is at its limit.
    fn take(&self, address: IpAddr) -> Option<Place> {
        let address = address.to_canonical();
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let own = c.by_address.get(&address).copied().unwrap_or(0);
        if c.total >= self.all || own >= self.per_address {
            return None;
        }
        c.total += 1;
        c.by_address.insert(address, own + 1);
        Some(Place {
            address,
            counts: self.counts.clone(),
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.total -= 1;
        if let Some(n) = c.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                c.by_address.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_per_address_and_in_all() {
        let places = Places::new(5, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = places.take(a).unwrap();
        let _a2 = places.take(a).unwrap();
        assert!(places.take(a).is_none(), "a third from one address");
        // The same address written as IPv4-mapped IPv6 is the same address.
        assert!(places.take("::ffff:10.0.0.1".parse().unwrap()).is_none());
        let _b1 = places.take(b).unwrap();
        let _b2 = places.take(b).unwrap();
        let _c = places.take("10.0.0.3".parse().unwrap()).unwrap();
        assert!(
            places.take("10.0.0.4".parse().unwrap()).is_none(),
            "six in all"
        );
        drop(a1);
        let _d = places.take("10.0.0.4".parse().unwrap()).unwrap();
        let c = places.counts.lock().unwrap();
        assert_eq!(c.total, 5);
        assert_eq!(c.by_address.get(&a), Some(&1));
    }

    #[test]
    fn an_address_with_no_connections_is_forgotten() {
        let places = Places::new(10, 10);
        for i in 0..100u8 {
            drop(places.take(IpAddr::from([10, 1, 0, i])).unwrap());
        }
        let c = places.counts.lock().unwrap();
        assert_eq!((c.total, c.by_address.len()), (0, 0));
    }
}
