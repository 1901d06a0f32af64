//! The MQTT front door: docketd's own TCP listeners for tablets and screens, piping bytes to
//! rumqttd's loopback-only listeners.
//!
//! Why: rumqttd 0.20 never sets TCP_NODELAY on its sockets. A QoS 1 publish is answered by a
//! 4-byte PUBACK and, a millisecond later, by the command's reply; Nagle's algorithm holds the
//! reply until the client ACKs the PUBACK, which a client's delayed ACK postpones by ~40 ms. Here
//! the client-facing socket has TCP_NODELAY, and the loopback socket to rumqttd ACKs at once
//! (TCP_QUICKACK after every read), so rumqttd's Nagle never waits. Measured with docket-sim:
//! reply round trip p50 42.4 ms before, see docs/ARCHITECTURE.md for after.
//!
//! Owns the public listeners and the count of open MQTT connections. It moves bytes, and reads
//! the packets clients send only as far as the device topic ACL needs ([`crate::acl`]); the broker
//! does authentication and limits.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::acl::Acl;
use crate::metrics::Metrics;

/// Per-direction buffer: small, since most MQTT packets are; large payloads just take more reads.
const BUF: usize = 4096;
/// After a client has closed its sending side, how long the broker gets to finish answering.
const LINGER: Duration = Duration::from_secs(5);

/// rumqttd's loopback listener for one protocol, with at most [`PENDING`] connections it has not
/// answered yet.
///
/// rumqttd binds its listener itself with the standard library's listen queue of 128, and its
/// accept loop waits for a timer tick (about a millisecond) after each connection. When more
/// connections arrived at once than the queue holds (600 screens after an access point reboots),
/// the kernel dropped the SYNs past it and each of those waited a second to retry: the storm took
/// 2.1-2.4 s. The front door keeps the excess waiting here instead: 0.62 s. (Several rumqttd
/// listeners taken in turn accept faster, 0.38-0.42 s with 2, but spread the screens over more
/// threads: 16 % more CPU at x100.)
#[derive(Clone, Debug)]
pub struct Upstream {
    addr: SocketAddr,
    pending: Arc<Semaphore>,
}

/// Connections handed to rumqttd's listener and not yet answered (CONNACK): below its queue.
pub const PENDING: usize = 100;
/// A connection stops counting as pending after this even unanswered: a client that never sends
/// CONNECT must not hold a place (rumqttd drops it after 5 s).
const PENDING_AT_MOST: Duration = Duration::from_millis(250);

/// A connection's place among the listener's pending ones; dropped when the broker answers.
pub type Pending = Option<tokio::sync::OwnedSemaphorePermit>;

impl Upstream {
    pub fn new(addr: SocketAddr) -> Self {
        Upstream {
            addr,
            pending: Arc::new(Semaphore::new(PENDING)),
        }
    }

    /// Connects to rumqttd's listener once it has room, with TCP_NODELAY.
    pub async fn connect(&self) -> std::io::Result<(TcpStream, Pending)> {
        let permit = self.pending.clone().acquire_owned().await.ok();
        let broker = TcpStream::connect(self.addr).await?;
        broker.set_nodelay(true)?;
        Ok((broker, permit))
    }
}

/// Reads from the broker; the first bytes (the CONNACK: rumqttd has taken the connection), or
/// [`PENDING_AT_MOST`] without any, end the connection's pending place.
async fn read_broker(
    from: &mut OwnedReadHalf,
    buf: &mut [u8],
    pending: &mut Pending,
) -> std::io::Result<usize> {
    if pending.is_none() {
        return from.read(buf).await;
    }
    let first = tokio::select! {
        r = from.read(buf) => Some(r),
        _ = tokio::time::sleep(PENDING_AT_MOST) => None,
    };
    *pending = None;
    match first {
        Some(r) => r,
        None => from.read(buf).await,
    }
}

/// Accepts on `listener` and pipes each connection to `upstream` until `shutdown`; with `acl`,
/// cuts a connection at its first packet outside the device topic ACL.
pub async fn serve(
    listener: TcpListener,
    upstream: Upstream,
    slots: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    acl: bool,
    shutdown: CancellationToken,
) {
    loop {
        let (client, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "MQTT accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "MQTT connection refused: the connection limit is reached");
            continue;
        };
        let metrics = metrics.clone();
        let upstream = upstream.clone();
        tokio::spawn(async move {
            metrics.mqtt_connections.fetch_add(1, Relaxed);
            let acl = acl.then(|| Guard::new(metrics.clone(), peer.to_string()));
            if let Err(e) = pipe(client, upstream, acl).await {
                tracing::debug!(%peer, error = %e, "MQTT connection ended with an error");
            }
            metrics.mqtt_connections.fetch_sub(1, Relaxed);
            drop(permit);
        });
    }
}

/// The ACL of one connection, with what it needs to report a cut.
pub struct Guard {
    acl: Acl,
    metrics: Arc<Metrics>,
    peer: String,
    session: Arc<Session>,
}

impl Guard {
    pub fn new(metrics: Arc<Metrics>, peer: String) -> Self {
        Guard {
            acl: Acl::new(),
            session: Arc::new(Session::new(metrics.clone())),
            metrics,
            peer,
        }
    }

    /// Checks bytes from the client before they are forwarded; `Err` means cut now.
    fn check(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.acl.feed(bytes).map_err(|v| {
            self.metrics.acl_cuts.fetch_add(1, Relaxed);
            tracing::warn!(
                peer = %self.peer,
                device = self.acl.device().unwrap_or("(before login)"),
                reason = %v,
                "MQTT connection cut: outside the device topic ACL"
            );
            std::io::Error::new(std::io::ErrorKind::PermissionDenied, v)
        })?;
        if self.session.device.get().is_none() {
            if let Some(d) = self.acl.device() {
                let _ = self.session.device.set(d.to_owned());
            }
        }
        Ok(())
    }

    /// What the broker-to-client side needs to see the login's answer.
    fn session(&self) -> Arc<Session> {
        self.session.clone()
    }
}

/// One connection's login as the front door sees it: the device its CONNECT named and whether
/// the broker accepted it (a CONNACK with return code 0). An accepted connection counts in
/// [`crate::metrics::Presence`] until this is dropped (both directions of the pipe ended).
pub struct Session {
    metrics: Arc<Metrics>,
    device: std::sync::OnceLock<String>,
    answered: std::sync::atomic::AtomicBool,
    counted: std::sync::atomic::AtomicBool,
}

impl Session {
    fn new(metrics: Arc<Metrics>) -> Self {
        Session {
            metrics,
            device: std::sync::OnceLock::new(),
            answered: Default::default(),
            counted: Default::default(),
        }
    }

    /// Bytes from the broker: the first of them are the CONNACK.
    fn broker_said(&self, bytes: &[u8]) {
        if self.answered.swap(true, Relaxed) {
            return;
        }
        // CONNACK: type 0x20, remaining length (one byte here), flags, return/reason code.
        let accepted = bytes.len() >= 4 && bytes[0] == 0x20 && bytes[1] < 0x80 && bytes[3] == 0;
        if let (true, Some(d)) = (accepted, self.device.get()) {
            self.metrics.presence.connected(d);
            self.counted.store(true, Relaxed);
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !*self.counted.get_mut() {
            return;
        }
        if let Some(d) = self.device.get() {
            if let Some(n) = self.metrics.presence.disconnected(d) {
                self.metrics.online_devices.store(n as u64, Relaxed);
                tracing::debug!(device = %d, "offline: its last connection closed");
            }
        }
    }
}

async fn pipe(client: TcpStream, upstream: Upstream, acl: Option<Guard>) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    let (broker, pending) = upstream.connect().await?;
    let (client_r, client_w) = client.into_split();
    let (broker_r, broker_w) = broker.into_split();
    let session = acl.as_ref().map(Guard::session);
    let mut to_client = std::pin::pin!(broker_to_client(broker_r, client_w, session, pending));
    let mut to_broker = std::pin::pin!(client_to_broker(client_r, broker_w, acl));
    tokio::select! {
        // The broker closed (logout, refused login, takeover, keep-alive timeout): done; the
        // client's half is dropped with it.
        r = &mut to_client => r,
        // The client stopped sending: let the broker finish, then close.
        r = &mut to_broker => {
            r?;
            match tokio::time::timeout(LINGER, to_client).await {
                Ok(r) => r,
                Err(_) => Ok(()),
            }
        }
    }
}

async fn client_to_broker(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut acl: Option<Guard>,
) -> std::io::Result<()> {
    let mut buf = [0u8; BUF];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        if let Some(g) = acl.as_mut() {
            g.check(&buf[..n])?;
        }
        to.write_all(&buf[..n]).await?;
    }
}

async fn broker_to_client(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    session: Option<Arc<Session>>,
    mut pending: Pending,
) -> std::io::Result<()> {
    let mut buf = [0u8; BUF];
    loop {
        let n = read_broker(&mut from, &mut buf, &mut pending).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        if let Some(s) = &session {
            s.broker_said(&buf[..n]);
        }
        // ACK at once so that rumqttd's Nagle releases its next small packet without waiting
        // for a delayed ACK. Quick-ack mode is not sticky: set it after every read.
        let _ = socket2::SockRef::from(from.as_ref()).set_tcp_quickack(true);
        to.write_all(&buf[..n]).await?;
    }
}

/// How long a WebSocket MQTT client may stay silent before it is dropped. MQTT clients ping at
/// their keep-alive (mqtt.js: 60 s by default), so a live one is never this quiet.
pub const WS_IDLE: Duration = Duration::from_secs(180);

/// Pipes one upgraded WebSocket (`/mqtt`, subprotocol `mqtt`, binary frames carrying MQTT bytes)
/// to rumqttd's loopback listener. Browsers reach the broker this way, not through rumqttd's own
/// WebSocket listener (which awaits each handshake inside its accept loop: one stalled browser
/// would block every new connection).
pub async fn ws_bridge(
    socket: axum::extract::ws::WebSocket,
    upstream: Upstream,
    mut acl: Option<Guard>,
) -> std::io::Result<()> {
    use axum::extract::ws::Message;
    use futures_util::{SinkExt, StreamExt};

    let (broker, mut pending) = upstream.connect().await?;
    let (mut broker_r, mut broker_w) = broker.into_split();
    let (mut ws_tx, mut ws_rx) = socket.split();
    let session = acl.as_ref().map(Guard::session);
    let up = async {
        loop {
            let msg = match tokio::time::timeout(WS_IDLE, ws_rx.next()).await {
                Err(_) => return Ok(()), // idle
                Ok(None) => return Ok(()),
                Ok(Some(Err(e))) => return Err(std::io::Error::other(e)),
                Ok(Some(Ok(m))) => m,
            };
            match msg {
                Message::Binary(b) => {
                    if let Some(g) = acl.as_mut() {
                        g.check(&b)?;
                    }
                    broker_w.write_all(&b).await?
                }
                Message::Close(_) => return Ok(()),
                // MQTT over WebSocket is binary only; pings are answered by axum.
                Message::Text(_) | Message::Ping(_) | Message::Pong(_) => {}
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; BUF];
        loop {
            let n = read_broker(&mut broker_r, &mut buf, &mut pending).await?;
            if n == 0 {
                let _ = ws_tx.send(Message::Close(None)).await;
                return Ok::<_, std::io::Error>(());
            }
            let _ = socket2::SockRef::from(broker_r.as_ref()).set_tcp_quickack(true);
            if let Some(s) = &session {
                s.broker_said(&buf[..n]);
            }
            ws_tx
                .send(Message::Binary(bytes::Bytes::copy_from_slice(&buf[..n])))
                .await
                .map_err(std::io::Error::other)?;
        }
    };
    // Either side ending ends the connection: the browser reconnects, the broker cleans up.
    tokio::select! {
        r = up => r,
        r = down => r,
    }
}

/// How many connections a public listener queues before docketd accepts them. The standard
/// library's 128 overflowed when 600 screens reconnected at once (an access point rebooting): the
/// kernel dropped the SYNs past it and each of those clients waited a second to retry. The kernel
/// caps it at `net.core.somaxconn` (4096 by default).
pub const BACKLOG: u32 = 4096;

/// Binds a public listener (`SO_REUSEADDR`, as the standard library does) with [`BACKLOG`].
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// A loopback address with a port free right now, for a listener only docketd connects to.
///
/// rumqttd binds the port itself a moment later, so another process could take it in between.
/// A random address in 127.0.0.0/8 (all of it is loopback on Linux) makes that practically
/// impossible: others bind 127.0.0.1. Falls back to 127.0.0.1 where that range is not routed.
pub fn loopback_port() -> std::io::Result<SocketAddr> {
    let [a, b, c]: [u8; 3] = rand::random();
    let ip = std::net::Ipv4Addr::new(127, a.max(1), b, c.clamp(1, 254));
    match std::net::TcpListener::bind((ip, 0)) {
        Ok(l) => l.local_addr(),
        Err(_) => std::net::TcpListener::bind("127.0.0.1:0")?.local_addr(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pipes_both_ways_and_closes_when_the_broker_does() {
        let broker = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = broker.local_addr().unwrap();
        let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = front.local_addr().unwrap();
        let metrics = Arc::new(Metrics::default());
        let stop = CancellationToken::new();
        tokio::spawn(serve(
            front,
            Upstream::new(upstream),
            Arc::new(Semaphore::new(1)),
            metrics.clone(),
            false,
            stop.clone(),
        ));

        let mut c = TcpStream::connect(addr).await.unwrap();
        let (mut b, _) = broker.accept().await.unwrap();
        c.write_all(b"hello").await.unwrap();
        let mut got = [0u8; 5];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        b.write_all(b"world").await.unwrap();
        c.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"world");
        assert_eq!(metrics.mqtt_connections.load(Relaxed), 1);

        // Over the limit: the second connection is closed at once.
        let mut c2 = TcpStream::connect(addr).await.unwrap();
        let mut one = [0u8; 1];
        assert_eq!(c2.read(&mut one).await.unwrap_or(0), 0);

        // The broker hangs up: the client sees EOF.
        drop(b);
        assert_eq!(c.read(&mut one).await.unwrap_or(0), 0);
        stop.cancel();
    }

    /// A listener that has not answered [`PENDING`] connections gets no more until it answers
    /// one (or [`PENDING_AT_MOST`] passes).
    #[tokio::test]
    async fn upstream_holds_back_connections_past_the_pending_ones() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let u = Upstream::new(l.local_addr().unwrap());
        let mut held = Vec::new();
        for _ in 0..PENDING {
            let (s, p) = u.connect().await.unwrap();
            assert!(p.is_some());
            held.push((s, p));
        }
        let mut next = tokio::spawn({
            let u = u.clone();
            async move { u.connect().await.unwrap() }
        });
        // A loopback connect takes well under a millisecond.
        let early = tokio::time::timeout(Duration::from_millis(200), &mut next).await;
        assert!(
            early.is_err(),
            "a connection past the pending ones went through"
        );
        held.remove(0); // one is answered (or gone)
        let (s, p) = tokio::time::timeout(Duration::from_secs(10), next)
            .await
            .expect("a freed place lets the next connection through")
            .unwrap();
        assert_eq!(
            (s.peer_addr().unwrap(), p.is_some()),
            (l.local_addr().unwrap(), true)
        );
    }

    /// The broker's first bytes free the connection's pending place.
    #[tokio::test]
    async fn the_broker_answering_frees_the_pending_place() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let u = Upstream::new(l.local_addr().unwrap());
        let (s, mut pending) = u.connect().await.unwrap();
        let (mut b, _) = l.accept().await.unwrap();
        b.write_all(b"ok").await.unwrap();
        let (mut r, _w) = s.into_split();
        let mut buf = [0u8; 8];
        let n = read_broker(&mut r, &mut buf, &mut pending).await.unwrap();
        assert_eq!((&buf[..n], pending.is_none()), (&b"ok"[..], true));
    }

    /// 600 clients arriving while the accept loop is busy all get in: with the standard
    /// library's backlog of 128 the kernel drops the SYNs past it and those connects hang.
    /// (Where the kernel caps every backlog lower, only that many are tried.)
    #[tokio::test]
    async fn a_public_listener_queues_a_storm_of_connections() {
        let cap: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(4096);
        let n = cap.min(600);
        let l = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..n {
            set.spawn(tokio::time::timeout(
                Duration::from_secs(20),
                TcpStream::connect(addr),
            ));
        }
        let mut held = Vec::new();
        while let Some(r) = set.join_next().await {
            let c = r.unwrap().expect("a connection was not queued").unwrap();
            held.push(c);
        }
        assert_eq!(held.len(), n);
        // Nothing was accepted: they all wait in the listener's queue.
        drop(l);
    }
}
