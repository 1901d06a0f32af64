//! A connection's first packet: the CONNECT, judged as rumqttd's codec parsed it. A refused login
//! is answered with a CONNACK that says why (3.1.1: 0x04 bad user name or password, 0x05 not
//! authorised; MQTT 5: 0x86 / 0x87 with a reason string) before the connection closes, so a
//! tablet can tell "removed" or "wrong credentials" from "network down".
//!
//! Owns the login rules (client id, will, keep-alive); the registry check and the link into the
//! router are the admission desk's ([`super::admit`]).

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use rumqttd::local::{LinkRx, LinkTx};
use rumqttd::protocol::{
    ConnAck, ConnAckProperties, ConnectReturnCode as C, Error as CodecError, Packet, Publish,
};

use super::admit::{self, Admission, Ask};
use super::codec::{Proto, ReadError};
use super::transport::Transport;
use super::wire::{Broken, Wire};
use super::LayerState;
use crate::store::registry::Login;

/// A client must send CONNECT within this time or is dropped.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection stops counting among the unanswered ones after this even without a CONNECT, so
/// that clients which never send one cannot hold the places a reconnect storm needs.
pub const PENDING_AT_MOST: Duration = Duration::from_millis(250);
/// The idle limit of a client that asked for no keep-alive (0): a 3.1.1 client is dropped after
/// this much silence; an MQTT 5 client is told to ping every [`SERVER_KEEP_ALIVE`] seconds.
const NO_KEEP_ALIVE_IDLE: Duration = Duration::from_secs(180);
const SERVER_KEEP_ALIVE: u16 = 60;
/// An MQTT 5 client that lets fewer QoS 1 messages be in flight than this gets state at QoS 0.
const UPGRADE_RECEIVE_MAXIMUM: u16 = 1000;

/// A connection's place among those not yet answered (see `listen`).
pub type Pending = Option<super::gate::Place>;

/// A logged-in device.
pub struct Admitted {
    pub device: String,
    /// Its entry in the connection table (takeover, revocation).
    pub handle: std::sync::Arc<super::table::Handle>,
    pub tx: LinkTx,
    pub rx: LinkRx,
    /// Its will, published by the box if the connection ends without DISCONNECT.
    pub will: Option<Publish>,
    /// Silence longer than this ends the connection (1.5 × its keep-alive).
    pub idle: Duration,
    /// Deliver state at QoS 1 when asked ([`super::outbound`]).
    pub upgrade_state: bool,
}

/// Reads and answers the CONNECT. `None`: the connection is done (refused, not MQTT, a probe).
pub async fn login<T: Transport>(
    shared: &LayerState,
    w: &mut Wire<T>,
    peer: &str,
    pending: &mut Pending,
) -> Option<Admitted> {
    let Packet::Connect(connect, props, will, _will_props, login) =
        read_connect(w, peer, pending).await?
    else {
        tracing::debug!(peer, "first packet is not CONNECT");
        return None;
    };
    let device = connect.client_id.clone();
    if device.is_empty() {
        refuse(
            w,
            C::ClientIdentifierNotValid,
            "a device logs in with its device id",
        )
        .await;
        return None;
    }
    if let (Some(will), true) = (&will, shared.settings.topic_acl) {
        let topic = String::from_utf8_lossy(&will.topic);
        if let Err(v) = super::acl::may_will(&device, &topic) {
            shared.metrics.acl_cuts.fetch_add(1, Relaxed);
            tracing::warn!(peer, device = %super::clip(&device), reason = %v, "MQTT login refused: outside the device topic ACL");
            refuse(
                w,
                C::NotAuthorized,
                "a will outside the device's own presence topic",
            )
            .await;
            return None;
        }
    }
    let login = login.unwrap_or_else(|| rumqttd::protocol::Login {
        username: String::new(),
        password: String::new(),
    });
    let ask = Ask {
        client_id: device.clone(),
        username: login.username,
        password: login.password,
        clean_session: connect.clean_session,
    };
    let link = match shared.desk.login(ask).await {
        Admission::Admitted(link) => link,
        Admission::Refused(Login::Revoked) => {
            refuse(w, C::NotAuthorized, "this device was removed from the box").await;
            return None;
        }
        Admission::Refused(_) => {
            refuse(w, C::BadUserNamePassword, "unknown device or wrong secret").await;
            return None;
        }
        Admission::Unavailable => {
            refuse(
                w,
                C::ServerUnavailable,
                "the box cannot take more connections now",
            )
            .await;
            return None;
        }
    };
    let keep_alive = connect.keep_alive;
    let admit::Link {
        mut tx,
        rx,
        ack,
        handle,
    } = *link;
    w.queue(accepted(shared, w.proto, ack, keep_alive));
    let flushed = w.flush().await;
    pending.take();
    let handle = match handle {
        Some(h) if flushed.is_ok() => h,
        other => {
            // A probe has proved the listener, the desk and the router: done.
            super::session::leave_router(&mut tx);
            if let Some(h) = other {
                shared.table.leave(&device, &h);
            } else {
                w.goodbye(None).await;
            }
            return None;
        }
    };
    let idle = match keep_alive {
        0 if w.proto.is_v5() => Duration::from_secs(u64::from(SERVER_KEEP_ALIVE)) * 3 / 2,
        0 => NO_KEEP_ALIVE_IDLE,
        k => Duration::from_secs(u64::from(k)) * 3 / 2,
    };
    let upgrade_state = props
        .as_ref()
        .and_then(|p| p.receive_maximum)
        .is_none_or(|m| m >= UPGRADE_RECEIVE_MAXIMUM);
    // The box publishes the will as a plain message: its MQTT 5 properties are not kept.
    let will = will.map(|w| Publish::new(w.topic, w.message, w.retain));
    Some(Admitted {
        device,
        handle,
        tx,
        rx,
        will,
        idle,
        upgrade_state,
    })
}

/// The first packet, within [`CONNECT_TIMEOUT`]; the pending place is given up after
/// [`PENDING_AT_MOST`] either way. A client of the other MQTT version is told so.
async fn read_connect<T: Transport>(
    w: &mut Wire<T>,
    peer: &str,
    pending: &mut Pending,
) -> Option<Packet> {
    let first = match tokio::time::timeout(PENDING_AT_MOST, w.next()).await {
        Ok(r) => r,
        Err(_) => {
            pending.take();
            match tokio::time::timeout(CONNECT_TIMEOUT - PENDING_AT_MOST, w.next()).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::debug!(peer, "no CONNECT in time");
                    return None;
                }
            }
        }
    };
    match first {
        Ok(p) => Some(p),
        Err(Broken::Malformed(ReadError::Codec(CodecError::InvalidProtocolLevel(level)))) => {
            // The client speaks another MQTT version than this port: say so in 3.1.1, which
            // every version's client reads.
            tracing::info!(
                peer,
                level,
                "MQTT login refused: protocol version of another port"
            );
            w.proto = Proto::V4;
            refuse(w, C::RefusedProtocolVersion, "").await;
            None
        }
        Err(e) => {
            tracing::debug!(peer, error = ?e, "connection closed before a valid CONNECT");
            None
        }
    }
}

/// Answers a refused login with a CONNACK saying why (MQTT 5: with a reason string), and closes.
async fn refuse<T: Transport>(w: &mut Wire<T>, code: C, why: &str) {
    let props = w.proto.is_v5().then(|| ConnAckProperties {
        reason_string: Some(why.to_owned()),
        ..Default::default()
    });
    let ack = ConnAck {
        session_present: false,
        code,
    };
    w.goodbye(Some(Packet::ConnAck(ack, props))).await;
}

/// The CONNACK of an admitted login: the router's "session present", and for MQTT 5 what the
/// box accepts.
fn accepted(
    shared: &LayerState,
    proto: Proto,
    router_ack: rumqttd::Notification,
    keep_alive: u16,
) -> Packet {
    let session_present = match Option::<Packet>::from(router_ack) {
        Some(Packet::ConnAck(a, _)) => a.session_present,
        _ => false,
    };
    let props = proto.is_v5().then(|| ConnAckProperties {
        max_packet_size: u32::try_from(shared.settings.max_packet).ok(),
        // Absent topic alias maximum: none accepted (the ACL judges every topic).
        shared_subscription_available: shared.settings.topic_acl.then_some(0),
        server_keep_alive: (keep_alive == 0).then_some(SERVER_KEEP_ALIVE),
        ..Default::default()
    });
    Packet::ConnAck(
        ConnAck {
            session_present,
            code: C::Success,
        },
        props,
    )
}
