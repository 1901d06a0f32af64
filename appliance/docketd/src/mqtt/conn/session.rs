//! One device connection from login to goodbye: every packet the device sends is judged (the
//! topic ACL, on the packet rumqttd's codec parsed) before it reaches the router, and everything
//! the router forwards is written in the device's own protocol version.
//!
//! Owns the connection's socket, its link into the router and its will. A fault in one session
//! (a panic included) ends that session only: the task catches it, and the cleanup (will, router,
//! presence) runs on drop whatever happened.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use rumqttd::local::LinkTx;
use rumqttd::protocol::{
    Disconnect, DisconnectReasonCode as Reason, Packet, PubAck, PubAckReason, Publish,
};
use rumqttd::Notification;

use super::acl;
use super::codec::Proto;
use super::inbound::{self, Step, Stop};
use super::login::{self, Admitted, Pending};
use super::outbound::Outbound;
use super::table::{Ending, Handle};
use super::transport::Transport;
use super::wire::{Broken, Wire};
use super::LayerState;
use crate::mqtt::broker::{drain_now, poll_once_ready};

/// Packets handed to the router in one go (rumqttd's own links take 100).
const BATCH: usize = 100;
/// Router notifications written in one go.
const NOTIFICATIONS: usize = 256;

/// How a logged-in session ended, and so whether its will is published.
#[derive(Debug)]
enum End {
    /// DISCONNECT: no will, unless an MQTT 5 device gave another reason than a normal one.
    Clean { will: bool },
    /// The socket closed or failed, or a write stalled: the will.
    Lost,
    /// Silent past its keep-alive: the will.
    Idle,
    /// Cut by the box for a packet it refused: the will, and a DISCONNECT for MQTT 5.
    Cut(Reason),
    /// Told to end from outside.
    Told(Ending),
    /// The router dropped the link (the same device logged in again, or the router judged a
    /// packet), or the engine stopped taking commands (docketd is stopping): no will, the
    /// device is not known to be offline.
    RouterGone,
}

/// Serves one accepted connection until it ends.
pub async fn run<T: Transport>(
    shared: Arc<LayerState>,
    t: T,
    proto: Proto,
    peer: String,
    mut pending: Pending,
) {
    let mut w = Wire::new(t, proto, shared.settings.max_packet);
    let mut bye = Goodbye {
        shared: shared.clone(),
        device: None,
        handle: None,
        tx: None,
        will: None,
        fire: false,
    };
    let served = AssertUnwindSafe(async {
        // Boxed: the login's state is freed once it is done, not kept in every session's task.
        let login = Box::pin(login::login(&shared, &mut w, &peer, &mut pending));
        let Some(a) = login.await else {
            return;
        };
        drop(pending);
        serve(&shared, &mut w, a, &peer, &mut bye).await;
    })
    .catch_unwind()
    .await;
    if served.is_err() {
        tracing::error!(peer, device = ?bye.device, "MQTT connection task panicked; connection closed");
        bye.fire = true;
    }
    drop(bye);
}

async fn serve<T: Transport>(
    shared: &LayerState,
    w: &mut Wire<T>,
    a: Admitted,
    peer: &str,
    bye: &mut Goodbye,
) {
    let Admitted {
        device,
        handle,
        tx,
        mut rx,
        will,
        idle,
        upgrade_state,
    } = a;
    shared.status.presence.connected(&device);
    bye.device = Some(device.clone());
    bye.handle = Some(handle.clone());
    bye.will = will;
    let mut out = Outbound::new(upgrade_state);
    let ctx = Ctx {
        shared,
        device: &device,
        peer,
    };
    let silence = tokio::time::sleep(idle);
    tokio::pin!(silence);
    // The link lives in the goodbye from here on, so that it leaves the router even on a panic.
    let tx = bye.tx.insert(tx);
    // One wait for "end now", registered once (a cancellation waiter costs a lock to add).
    let told = handle.cancelled();
    tokio::pin!(told);
    // Commands waiting for the device's SUBSCRIBEs to be answered (see `release`).
    let mut held: Vec<(Publish, Option<u16>)> = Vec::new();
    // Packets that came in the same read as the CONNECT (clients pipeline their SUBSCRIBEs).
    let first = match incoming(&ctx, w, tx, &mut out, &mut held).await {
        Some(end) => Some(end),
        None => flush_unless_told(w, &handle, told.as_mut()).await.err(),
    };
    let end = if let Some(end) = first {
        end
    } else {
        loop {
            tokio::select! {
                _ = &mut told => break End::Told(handle.ending()),
                // Nothing more is read while commands are held: they are bounded by one read.
                r = w.fill(), if held.is_empty() => {
                    if r.is_err() {
                        break End::Lost;
                    }
                    silence.as_mut().reset(tokio::time::Instant::now() + idle);
                    if let Some(end) = incoming(&ctx, w, tx, &mut out, &mut held).await {
                        break end;
                    }
                    if let Err(end) = flush_unless_told(w, &handle, told.as_mut()).await {
                        break end;
                    }
                }
                r = rx.next() => match r {
                    Err(_) => break End::RouterGone,
                    Ok(first) => {
                        let mut batch: Vec<Notification> = first.into_iter().collect();
                        drain_now(&mut rx, &mut batch, NOTIFICATIONS);
                        let (end, unscheduled) = outgoing(w, &mut out, batch);
                        if let Some(end) = end {
                            break end;
                        }
                        if let Some(end) = release(&ctx, w, &out, &mut held).await {
                            break end;
                        }
                        if let Err(end) = flush_unless_told(w, &handle, told.as_mut()).await {
                            break end;
                        }
                        // The router paused this link (its queue was full): ready for more.
                        // (Boxed: the wake-up carries a router event of ~1 KB inline.)
                    if unscheduled && Box::pin(rx.wake()).await.is_err() {
                            break End::RouterGone;
                        }
                    }
                },
                _ = &mut silence => break End::Idle,
            }
        }
    };
    tracing::debug!(peer, device, end = ?end, "MQTT connection ended");
    let (fire, last) = match end {
        End::Clean { will } => (will, None),
        End::Lost | End::Idle => (true, None),
        End::Cut(reason) => (true, Some(reason)),
        End::Told(Ending::TakenOver) => (false, Some(Reason::SessionTakenOver)),
        End::Told(Ending::Revoked) => (true, Some(Reason::AdministrativeAction)),
        End::Told(Ending::Shutdown) => (false, Some(Reason::ServerShuttingDown)),
        End::Told(Ending::None) | End::RouterGone => (false, None),
    };
    bye.fire = fire;
    let last = last.map(|reason_code| Packet::Disconnect(Disconnect { reason_code }, None));
    Box::pin(w.goodbye(last)).await;
}

struct Ctx<'a> {
    shared: &'a LayerState,
    device: &'a str,
    peer: &'a str,
}

impl Ctx<'_> {
    /// Logs and counts a cut for a packet outside the device topic ACL.
    fn acl_cut(&self, v: &acl::Violation) -> End {
        self.shared.metrics.acl_cuts.fetch_add(1, Relaxed);
        tracing::warn!(
            peer = %self.peer,
            device = %super::clip(self.device),
            reason = %v,
            "MQTT connection cut: outside the device topic ACL"
        );
        End::Cut(Reason::NotAuthorized)
    }
}

/// Handles every whole packet read so far: judged, then handed to the router in batches, and
/// commands to the engine.
async fn incoming<T: Transport>(
    ctx: &Ctx<'_>,
    w: &mut Wire<T>,
    tx: &mut LinkTx,
    out: &mut Outbound,
    held: &mut Vec<(Publish, Option<u16>)>,
) -> Option<End> {
    let mut fwd: Vec<Packet> = Vec::new();
    let acl_on = ctx.shared.settings.topic_acl;
    let end = loop {
        let p = match w.take() {
            Ok(Some(p)) => p,
            Ok(None) => break None,
            Err(Broken::Malformed(e)) => {
                tracing::info!(peer = %ctx.peer, device = %super::clip(ctx.device), error = %e, "MQTT connection cut: malformed packet");
                break Some(End::Cut(Reason::MalformedPacket));
            }
            Err(_) => break Some(End::Lost),
        };
        match inbound::judge(ctx.device, acl_on, out, p) {
            Step::Forward(p) => fwd.push(p),
            Step::Command(p, ack) => held.push((p, ack)),
            Step::Presence(online, ack) => {
                present(ctx.shared, ctx.device, online);
                if let Some(pkid) = ack {
                    let reason = PubAckReason::Success;
                    w.queue(Packet::PubAck(PubAck { pkid, reason }, None));
                }
            }
            Step::Reply(p) => w.queue(p),
            Step::Done => {}
            Step::Stop(Stop::Disconnect { will }) => break Some(End::Clean { will }),
            Step::Stop(Stop::Acl(v)) => break Some(ctx.acl_cut(&v)),
            Step::Stop(Stop::Protocol(what)) => {
                tracing::info!(peer = %ctx.peer, device = %super::clip(ctx.device), packet = what, "MQTT connection cut: a packet a client does not send");
                break Some(End::Cut(Reason::ProtocolError));
            }
        }
        if fwd.len() >= BATCH && forward(ctx.shared, tx, &mut fwd).await.is_err() {
            break Some(End::RouterGone);
        }
    };
    if forward(ctx.shared, tx, &mut fwd).await.is_err() {
        return Some(End::RouterGone);
    }
    if end.is_some() {
        return end;
    }
    release(ctx, w, out, held).await
}

/// Hands held commands to the engine in the order the device sent them, and acknowledges each
/// one the engine's queue took (QoS 1), unless a SUBSCRIBE of the device is still unanswered:
/// the engine's reply must find the device subscribed to its reply topic, as it did when
/// commands went through the router behind the SUBSCRIBE.
async fn release<T: Transport>(
    ctx: &Ctx<'_>,
    w: &mut Wire<T>,
    out: &Outbound,
    held: &mut Vec<(Publish, Option<u16>)>,
) -> Option<End> {
    if held.is_empty() || out.subscribing() {
        return None;
    }
    for (p, ack) in held.drain(..) {
        if ctx
            .shared
            .commands
            .send(ctx.device, p.payload)
            .await
            .is_err()
        {
            return Some(End::RouterGone);
        }
        if let Some(pkid) = ack {
            let ack = PubAck {
                pkid,
                reason: PubAckReason::Success,
            };
            w.queue(Packet::PubAck(ack, None));
        }
    }
    None
}

/// Writes what is queued, unless the session is told to end meanwhile (a device that stopped
/// reading is still cut off at once when it is revoked).
async fn flush_unless_told<T: Transport>(
    w: &mut Wire<T>,
    handle: &Handle,
    told: std::pin::Pin<&mut tokio_util::sync::WaitForCancellationFuture<'_>>,
) -> Result<(), End> {
    if w.flush_now() {
        return Ok(());
    }
    // The socket is full: wait for it (boxed, like every rare wait here, so that an idle
    // connection's task stays small).
    Box::pin(flush_or_told(w, handle, told)).await
}

async fn flush_or_told<T: Transport>(
    w: &mut Wire<T>,
    handle: &Handle,
    told: std::pin::Pin<&mut tokio_util::sync::WaitForCancellationFuture<'_>>,
) -> Result<(), End> {
    tokio::select! {
        r = w.flush() => return r.map_err(|_| End::Lost),
        _ = told => {}
    }
    // Part of it may be on the wire: nothing more of it goes.
    w.discard();
    Err(End::Told(handle.ending()))
}

/// Hands packets to the router: all but the last straight into the link's queue, the last with
/// the notification (one router wake-up per batch, as rumqttd's own links do).
async fn forward(
    shared: &LayerState,
    tx: &mut LinkTx,
    packets: &mut Vec<Packet>,
) -> Result<(), rumqttd::local::LinkError> {
    if packets.is_empty() {
        return Ok(());
    }
    // rumqttd's `send` blocks the thread while the router's channel is full: wait here instead
    // (boxed: the rare wait's state is not carried by every idle connection's task).
    if shared.broker.congested() {
        Box::pin(until_uncongested(shared)).await;
    }
    let Some(last) = packets.pop() else {
        return Ok(());
    };
    if !packets.is_empty() {
        tx.buffer().extend(packets.drain(..));
    }
    poll_once_ready(tx.send(last)).map(|_| ())
}

async fn until_uncongested(shared: &LayerState) {
    while shared.broker.congested() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Queues what the router forwarded, shaped for the device; says whether the router paused the
/// link (it then waits for a wake-up).
fn outgoing<T: Transport>(
    w: &mut Wire<T>,
    out: &mut Outbound,
    batch: Vec<Notification>,
) -> (Option<End>, bool) {
    let mut unscheduled = false;
    for n in batch {
        if matches!(n, Notification::Unschedule) {
            unscheduled = true;
            continue;
        }
        let p = match Option::<Packet>::from(n) {
            // The link's CONNACK was answered at login.
            None | Some(Packet::ConnAck(..)) => continue,
            Some(p) => p,
        };
        if let Packet::Disconnect(d, _) = &p {
            // The router disconnects the link (a packet it refused): the will.
            return (Some(End::Cut(d.reason_code)), unscheduled);
        }
        match out.shape(p) {
            Ok(p) => w.queue(p),
            Err(e) => {
                tracing::info!(error = %e, "MQTT connection cut: not acknowledging");
                return (Some(End::Cut(Reason::ReceiveMaximumExceeded)), unscheduled);
            }
        }
    }
    (None, unscheduled)
}

/// Takes a link out of the router (a no-op if the router dropped it already).
pub fn leave_router(tx: &mut LinkTx) {
    let bye = Packet::Disconnect(
        Disconnect {
            reason_code: Reason::NormalDisconnection,
        },
        None,
    );
    let _ = poll_once_ready(tx.send(bye));
}

/// What a session leaves behind, undone whatever way it ended (a panic included): the will,
/// the router's link, the connection table and presence.
struct Goodbye {
    shared: Arc<LayerState>,
    device: Option<String>,
    handle: Option<Arc<Handle>>,
    tx: Option<LinkTx>,
    will: Option<Publish>,
    fire: bool,
}

/// Records a device's presence message: the connection layer is presence's one writer.
fn present(shared: &LayerState, device: &str, online: bool) {
    let n = shared.status.presence.set(device, online);
    shared.metrics.online_devices.store(n as u64, Relaxed);
}

impl Drop for Goodbye {
    fn drop(&mut self) {
        if let Some(will) = self.will.take().filter(|_| self.fire) {
            // A will on the device's own presence topic (the only one the ACL lets a device
            // leave) is recorded here, like its presence messages; others (ACL off) go out.
            match &self.device {
                Some(device)
                    if will.topic == docket_core::wire::presence_topic(device).as_bytes() =>
                {
                    present(
                        &self.shared,
                        device,
                        docket_core::wire::presence_online(&will.payload),
                    );
                }
                _ => self.shared.desk.will(will),
            }
        }
        if let Some(mut tx) = self.tx.take() {
            leave_router(&mut tx);
        }
        let (Some(device), Some(handle)) = (&self.device, &self.handle) else {
            return;
        };
        self.shared.table.leave(device, handle);
        if let Some(n) = self.shared.status.presence.disconnected(device) {
            self.shared.metrics.online_devices.store(n as u64, Relaxed);
            tracing::debug!(device = %device, "offline: its last connection closed");
        }
    }
}
