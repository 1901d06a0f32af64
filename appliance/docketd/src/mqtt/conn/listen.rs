//! The MQTT ports: listeners with a deep queue, the bound on connections open at once and on
//! those not yet answered, and the accept loop that hands each connection to its own session
//! task.
//!
//! Owns the listening sockets. A listener that stops accepting for good is reported to the
//! health check at once ([`super::probe`]); its probes then fail too.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::codec::Proto;
use super::login::Pending;
use super::LayerState;

/// How many connections a listener queues before docketd accepts them. The standard library's
/// 128 overflowed when 600 screens reconnected at once (an access point rebooting): the kernel
/// dropped the SYNs past it and each of those clients waited a second to retry. The kernel caps
/// it at `net.core.somaxconn` (4096 by default).
pub const BACKLOG: u32 = 4096;

/// Connections accepted and not yet answered (CONNACK) at once, [`super::gate::PER_ADDRESS`]
/// of them from one address; more wait for a place (their tasks hold a socket, no buffer).
/// Logins are checked and linked into the router one at a time ([`super::admit`]): this keeps a
/// storm's read buffers from piling up in memory ahead of them.
pub const PENDING: usize = 100;

/// A TLS handshake on an MQTT port must be done within this.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// The TLS handshake, holding the unanswered place for [`super::login::PENDING_AT_MOST`] at most
/// (as a plain connection's wait for CONNECT does): silent TLS connections cannot hold the
/// places a reconnect storm needs.
async fn handshake(
    acceptor: tokio_rustls::TlsAcceptor,
    socket: tokio::net::TcpStream,
    pending: &mut Pending,
) -> std::io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    let at_most = super::login::PENDING_AT_MOST;
    let accept = acceptor.accept(socket);
    tokio::pin!(accept);
    match tokio::time::timeout(at_most, &mut accept).await {
        Ok(r) => r,
        Err(_) => {
            pending.take();
            tokio::time::timeout(HANDSHAKE - at_most, accept)
                .await
                .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
        }
    }
}

/// Binds a listener (`SO_REUSEADDR`, as the standard library does) with [`BACKLOG`].
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

/// Errors an accept can recover from (out of descriptors or memory for a moment, a client
/// that gave up while queued).
fn transient(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc_errno::EMFILE)
            | Some(libc_errno::ENFILE)
            | Some(libc_errno::ENOBUFS)
            | Some(libc_errno::ENOMEM)
            | Some(libc_errno::ECONNABORTED)
            | Some(libc_errno::EINTR)
            | Some(libc_errno::EAGAIN)
            | Some(libc_errno::EPROTO)
            | Some(libc_errno::EPERM)
    )
}

mod libc_errno {
    pub const EINTR: i32 = 4;
    pub const EAGAIN: i32 = 11;
    pub const ENOMEM: i32 = 12;
    pub const EPERM: i32 = 1;
    pub const ENFILE: i32 = 23;
    pub const EMFILE: i32 = 24;
    pub const EPROTO: i32 = 71;
    pub const ECONNABORTED: i32 = 103;
    pub const ENOBUFS: i32 = 105;
}

/// Accepts MQTT connections on `listener` until `stop`, or until the listener dies.
pub async fn serve(
    shared: Arc<LayerState>,
    listener: TcpListener,
    proto: Proto,
    name: &'static str,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        let (socket, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(c) => {
                    failures = 0;
                    c
                }
                Err(e) if transient(&e) => {
                    tracing::warn!(listener = name, error = %e, "MQTT accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => {
                    failures += 1;
                    if failures < 20 {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                    tracing::error!(listener = name, error = %e, "MQTT listener died: it no longer accepts connections");
                    shared.health.dead(name, &e.to_string());
                    return;
                }
            },
        };
        let Ok(slot) = shared.slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "MQTT connection refused: the connection limit is reached");
            continue;
        };
        if let Err(e) = socket.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        let shared = shared.clone();
        let stop = stop.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            // A place among the unanswered ones, its address's first ([`super::gate`]): a
            // flood from one address waits here, in its own tasks, not in the listen queue
            // ahead of everyone else.
            let pending: Pending = tokio::select! {
                _ = stop.cancelled() => return,
                p = shared.gate.enter(peer.ip()) => Some(p),
            };
            shared.metrics.mqtt_connections.fetch_add(1, Relaxed);
            match tls {
                None => {
                    super::session::run(shared.clone(), socket, proto, peer.to_string(), pending)
                        .await
                }
                // The handshake starts in the unanswered place, as a plain connection's wait
                // for CONNECT does, and gives it up after as long ([`handshake`]).
                Some(acceptor) => {
                    let mut pending = pending;
                    let accepted = tokio::select! {
                        _ = stop.cancelled() => None,
                        r = handshake(acceptor, socket, &mut pending) => match r {
                            Ok(s) => Some(s),
                            Err(e) => {
                                tracing::debug!(%peer, error = %e, "MQTT TLS handshake failed");
                                None
                            }
                        },
                    };
                    if let Some(s) = accepted {
                        let peer = format!("tls:{peer}");
                        super::session::run(shared.clone(), s, proto, peer, pending).await;
                    }
                }
            }
            shared.metrics.mqtt_connections.fetch_sub(1, Relaxed);
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 600 clients arriving while the accept loop is busy all get in: with the standard
    /// library's backlog of 128 the kernel drops the SYNs past it and those connects hang.
    /// (Where the kernel caps every backlog lower, only that many are tried.)
    #[tokio::test]
    async fn a_listener_queues_a_storm_of_connections() {
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
                tokio::net::TcpStream::connect(addr),
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
