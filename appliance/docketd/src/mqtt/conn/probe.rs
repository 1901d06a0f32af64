//! Proof that every listener is alive: docketd logs in through each of its own listeners (the
//! MQTT ports, plain and TLS, and `/mqtt` over HTTP and HTTPS), as a device would, and keeps the time of the last
//! login that got its CONNACK. READY waits for a first login through each; `/healthz` and the
//! systemd watchdog stop vouching for the box when one goes stale. A login proves the whole path:
//! the accept loop, a session task, the admission desk and the router.
//!
//! Owns the probes' sockets and the listeners' health. The probe's CONNECT is encoded and its
//! CONNACK read with the same codec the listener uses.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use rumqttd::protocol::{
    Connect, ConnectReturnCode, Disconnect, DisconnectReasonCode, Login, Packet,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use docket_core::health::ListenerState;

use super::admit::PROBE_USER;
use super::codec::Proto;
use crate::metrics::uptime_ms;

/// A probe that gets no CONNACK within this time failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Where and how to log in.
#[derive(Debug, Clone)]
pub enum Target {
    /// An MQTT port.
    Tcp(SocketAddr, Proto),
    /// An MQTT-over-TLS port, trusting what the box serves.
    Tls(SocketAddr, Proto, Arc<rustls::ClientConfig>),
    /// `/mqtt` on the HTTP port (MQTT 3.1.1 over WebSocket).
    WebSocket(SocketAddr),
    /// `/mqtt` on the HTTPS port (WSS).
    SecureWebSocket(SocketAddr, Arc<rustls::ClientConfig>),
}

struct Entry {
    name: &'static str,
    target: Target,
    /// `uptime_ms` of the last probe that got a CONNACK (0: none yet).
    ok_at: AtomicU64,
    /// Why the last probe failed, or why the listener died.
    error: Mutex<Option<String>>,
}

/// The listeners' health, shared by the probes, `/healthz` and the watchdog.
pub struct Health {
    entries: Vec<Entry>,
}

impl Health {
    pub fn new(targets: Vec<(&'static str, Target)>) -> Self {
        Health {
            entries: targets
                .into_iter()
                .map(|(name, target)| Entry {
                    name,
                    target,
                    ok_at: AtomicU64::new(0),
                    error: Mutex::new(None),
                })
                .collect(),
        }
    }

    /// The accept loop of `name` stopped for good.
    pub fn dead(&self, name: &str, why: &str) {
        for e in self.entries.iter().filter(|e| e.name == name) {
            e.ok_at.store(0, Relaxed);
            *e.error.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(format!("listener died: {why}"));
        }
    }

    /// `Ok` when every listener took a login within `within_ms`; else which did not, and why.
    pub fn alive_within(&self, within_ms: u64) -> Result<(), String> {
        let now = uptime_ms();
        let stale: Vec<String> = self
            .entries
            .iter()
            .filter(|e| {
                let at = e.ok_at.load(Relaxed);
                at == 0 || now.saturating_sub(at) > within_ms
            })
            .map(|e| {
                let why = e.error.lock().unwrap_or_else(|p| p.into_inner()).clone();
                format!(
                    "{} ({})",
                    e.name,
                    why.unwrap_or_else(|| "no recent login".into())
                )
            })
            .collect();
        if stale.is_empty() {
            Ok(())
        } else {
            Err(stale.join(", "))
        }
    }

    /// Each listener by name, as `/healthz` reports it.
    pub fn report(&self, within_ms: u64) -> std::collections::BTreeMap<String, ListenerState> {
        let now = uptime_ms();
        self.entries
            .iter()
            .map(|e| {
                let at = e.ok_at.load(Relaxed);
                let ago = (at > 0).then(|| now.saturating_sub(at));
                let state = ListenerState {
                    ok: ago.is_some_and(|a| a <= within_ms),
                    last_login_ms_ago: ago,
                    error: e.error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
                };
                (e.name.to_owned(), state)
            })
            .collect()
    }

    /// Probes every listener once, all at the same time.
    pub async fn probe_all(&self, token: &str) {
        let probes = self.entries.iter().map(|e| async move {
            let r =
                tokio::time::timeout(PROBE_TIMEOUT, login(e.target.clone(), e.name, token)).await;
            let r = r.unwrap_or_else(|_| Err("no CONNACK in time".into()));
            let mut err = e.error.lock().unwrap_or_else(|p| p.into_inner());
            if err
                .as_deref()
                .is_some_and(|s| s.starts_with("listener died"))
            {
                return;
            }
            match r {
                Ok(()) => {
                    e.ok_at.store(uptime_ms().max(1), Relaxed);
                    *err = None;
                }
                Err(why) => {
                    tracing::warn!(listener = e.name, why, "a probe login failed");
                    *err = Some(why);
                }
            }
        });
        futures_util::future::join_all(probes).await;
    }

    /// Probes every `every` until `stop`.
    pub async fn run(&self, token: &str, every: Duration, stop: CancellationToken) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => self.probe_all(token).await,
            }
        }
    }
}

fn connect_packet(name: &str, token: &str) -> Packet {
    Packet::Connect(
        Connect {
            keep_alive: 10,
            client_id: format!("docketd-probe-{name}"),
            clean_session: true,
        },
        None,
        None,
        None,
        Some(Login {
            username: PROBE_USER.into(),
            password: token.into(),
        }),
    )
}

fn disconnect() -> Packet {
    Packet::Disconnect(
        Disconnect {
            reason_code: DisconnectReasonCode::NormalDisconnection,
        },
        None,
    )
}

/// What the listener answered. A CONNACK's flags and code sit in the same place in both
/// versions, and rumqttd reads a CONNACK only with its 3.1.1 codec: an MQTT 5 refusal reads as
/// an unknown code.
fn connack(buf: &mut BytesMut) -> Result<Option<()>, String> {
    match Proto::V4.read(buf, 64 * 1024, &mut Vec::new()) {
        Ok(Packet::ConnAck(a, _)) if a.code == ConnectReturnCode::Success => Ok(Some(())),
        Ok(Packet::ConnAck(a, _)) => Err(format!("login refused: {:?}", a.code)),
        Ok(_) => Err("an answer that is not CONNACK".into()),
        Err(super::codec::ReadError::Short(_)) => Ok(None),
        Err(e) => Err(format!("unreadable answer: {e}")),
    }
}

fn loopback(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        let ip: std::net::IpAddr = if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
        SocketAddr::new(ip, addr.port())
    } else {
        addr
    }
}

async fn login(target: Target, name: &str, token: &str) -> Result<(), String> {
    match target {
        Target::Tcp(addr, proto) => mqtt(connect(addr).await?, proto, name, token).await,
        Target::Tls(addr, proto, client) => {
            let s = secure(connect(addr).await?, client).await?;
            mqtt(s, proto, name, token).await
        }
        Target::WebSocket(addr) => {
            let tcp = connect(addr).await?;
            websocket(tcp, &format!("ws://{}", loopback(addr)), name, token).await
        }
        Target::SecureWebSocket(addr, client) => {
            let s = secure(connect(addr).await?, client).await?;
            websocket(s, &format!("wss://{}", loopback(addr)), name, token).await
        }
    }
}

async fn connect(addr: SocketAddr) -> Result<tokio::net::TcpStream, String> {
    tokio::net::TcpStream::connect(loopback(addr))
        .await
        .map_err(|e| format!("cannot connect: {e}"))
}

async fn secure(
    tcp: tokio::net::TcpStream,
    client: Arc<rustls::ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let name = rustls_pki_types::ServerName::try_from("docket.local").map_err(|e| e.to_string())?;
    tokio_rustls::TlsConnector::from(client)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))
}

async fn mqtt<S>(mut s: S, proto: Proto, name: &str, token: &str) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut out = BytesMut::new();
    proto
        .write(connect_packet(name, token), &mut out)
        .map_err(|e| e.to_string())?;
    s.write_all(&out).await.map_err(|e| e.to_string())?;
    s.flush().await.map_err(|e| e.to_string())?;
    let mut buf = BytesMut::new();
    loop {
        if connack(&mut buf)?.is_some() {
            break;
        }
        if s.read_buf(&mut buf).await.map_err(|e| e.to_string())? == 0 {
            return Err("closed without CONNACK".into());
        }
    }
    out.clear();
    let _ = proto.write(disconnect(), &mut out);
    let _ = s.write_all(&out).await;
    let _ = s.shutdown().await;
    Ok(())
}

async fn websocket<S>(tcp: S, base: &str, name: &str, token: &str) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
    let mut req = format!("{base}{}", crate::http::api::WS_PATH)
        .into_client_request()
        .map_err(|e| e.to_string())?;
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        axum::http::HeaderValue::from_static("mqtt"),
    );
    let (mut ws, _) = tokio_tungstenite::client_async(req, tcp)
        .await
        .map_err(|e| format!("WebSocket handshake: {e}"))?;
    let mut out = BytesMut::new();
    Proto::V4
        .write(connect_packet(name, token), &mut out)
        .map_err(|e| e.to_string())?;
    ws.send(Message::Binary(out.freeze()))
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = BytesMut::new();
    loop {
        if connack(&mut buf)?.is_some() {
            break;
        }
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => buf.extend_from_slice(&b),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("closed without CONNACK".into()),
        }
    }
    let _ = ws.close(None).await;
    Ok(())
}
