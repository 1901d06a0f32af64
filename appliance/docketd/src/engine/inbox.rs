//! The engine's one input queue. Inputs of these kinds arrive in it:
//!
//! - **commands**, handed over by the device's own connection session ([`crate::mqtt::conn`]) once the
//!   device ACL has judged the PUBLISH on `docket/v1/cmd/{its id}`: no trip through the router,
//!   so a command costs the router nothing and the engine one wake-up;
//! - **menu changes from head office** (`uplink::menus_down`), each with its reply channel;
//! - **everything the router forwards on the engine's link** (state-topic echoes and foreign
//!   writes, the heartbeat, and commands that came through the router after all),
//!   moved here by a small thread that also answers the router's "paused" notifications.
//!
//! The queue is bounded: a session waits (and so stops reading its socket) while it is full, and
//! so does the link's thread. Per device, commands keep the order the device sent them in.
//! Must not judge or decide anything: it only carries.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use rumqttd::local::{LinkError, LinkRx};
use rumqttd::Notification;
use tokio::sync::oneshot;

use super::waiters::Waiters;

/// Inputs waiting for the engine at most. Each is a command or a notification (a few hundred
/// bytes each); the engine takes up to 4 × `max_batch` of them per turn.
pub const CAPACITY: usize = 4096;

/// One thing for the engine.
#[derive(Debug)]
pub enum Input {
    /// A command, as published by `device` on its own command topic.
    Command { device: String, payload: Bytes },
    /// What the router forwarded on the engine's link.
    Router(Notification),
    /// The engine's link failed (the router is gone): the engine stops with this.
    LinkLost(Box<LinkError>),
    /// A menu change from head office (`uplink::menus_down`), answered on its own channel.
    HeadOffice(Box<crate::engine::central::Request>),
}

/// The sending side: the connection layer holds one, and so do the local integration API and
/// head office's downlink (which wait for their replies through [`Waiters`]). Cheap to clone.
#[derive(Clone)]
pub struct Commands {
    tx: flume::Sender<Input>,
    waiters: Arc<Waiters>,
}

/// The engine has stopped: nothing takes commands any more.
#[derive(Debug, thiserror::Error)]
#[error("the engine stopped taking commands")]
pub struct Stopped;

impl Commands {
    /// Hands a device's command to the engine, waiting while the queue is full.
    pub async fn send(&self, device: &str, payload: Bytes) -> Result<(), Stopped> {
        let input = Input::Command {
            device: device.to_owned(),
            payload,
        };
        // The common case without a future: the queue has room.
        match self.tx.try_send(input) {
            Ok(()) => Ok(()),
            Err(flume::TrySendError::Full(input)) => {
                self.tx.send_async(input).await.map_err(|_| Stopped)
            }
            Err(flume::TrySendError::Disconnected(_)) => Err(Stopped),
        }
    }

    /// Hands `device`'s command `id` (its encoded, signed envelope) to the engine and gives
    /// back where its reply will arrive: the engine answers it as it answers a session's, after
    /// the commit. The caller that gives up waiting calls [`Commands::forget`].
    pub async fn request(
        &self,
        device: &str,
        id: &str,
        payload: Bytes,
    ) -> Result<oneshot::Receiver<Vec<u8>>, Stopped> {
        let rx = self.waiters.wait(device, id);
        if let Err(e) = self.send(device, payload).await {
            self.waiters.forget(device, id);
            return Err(e);
        }
        Ok(rx)
    }

    /// Stops waiting for a reply asked with [`Commands::request`].
    pub fn forget(&self, device: &str, id: &str) {
        self.waiters.forget(device, id);
    }
}

impl Commands {
    /// Hands a change from head office to the engine and waits for what became of it.
    pub async fn head_office(
        &self,
        change: crate::engine::central::Change,
    ) -> Result<crate::engine::central::Outcome, Stopped> {
        let (reply, outcome) = tokio::sync::oneshot::channel();
        let req = crate::engine::central::Request { change, reply };
        (self.tx.send_async(Input::HeadOffice(Box::new(req))).await).map_err(|_| Stopped)?;
        outcome.await.map_err(|_| Stopped)
    }
}

/// The receiving side: the engine's.
pub struct Inbox {
    rx: flume::Receiver<Input>,
    /// Kept to attach the router link's thread.
    tx: flume::Sender<Input>,
    /// Replies awaited in the process: the engine hands each reply it sends to them too.
    pub(crate) waiters: Arc<Waiters>,
}

/// A new queue: the sessions' side and the engine's.
pub fn channel(capacity: usize) -> (Commands, Inbox) {
    let (tx, rx) = flume::bounded(capacity);
    let waiters = Arc::new(Waiters::default());
    (
        Commands {
            tx: tx.clone(),
            waiters: waiters.clone(),
        },
        Inbox { rx, tx, waiters },
    )
}

impl Inbox {
    /// Moves what the router forwards on `link` into this queue, on a thread of its own, until
    /// the link fails or the engine is gone. The router pauses a link whose queue is full; the
    /// thread tells it "ready" again (the engine took what was queued, or will).
    pub fn attach(&self, mut link: LinkRx) -> std::io::Result<()> {
        let tx = self.tx.clone();
        std::thread::Builder::new()
            .name("engine-link".into())
            .spawn(move || loop {
                let input = match link.recv() {
                    Ok(Some(Notification::Unschedule)) => match link.ready() {
                        Ok(()) => continue,
                        Err(e) => Input::LinkLost(Box::new(e)),
                    },
                    Ok(Some(n)) => Input::Router(n),
                    Ok(None) => continue,
                    Err(e) => Input::LinkLost(Box::new(e)),
                };
                let lost = matches!(input, Input::LinkLost(_));
                if tx.send(input).is_err() || lost {
                    return;
                }
            })
            .map(|_| ())
    }

    /// The next input, waiting until `deadline` at most (`None`: nothing came).
    pub fn recv_deadline(&self, deadline: Instant) -> Option<Input> {
        // The inbox holds a sender itself, so the queue never reads as disconnected.
        self.rx.recv_deadline(deadline).ok()
    }

    /// The next input if one is waiting.
    pub fn try_recv(&self) -> Option<Input> {
        self.rx.try_recv().ok()
    }

    /// A sender of router notifications, as the link's thread has: the engine's tests forward
    /// through it what a fake router would.
    #[cfg(test)]
    pub(crate) fn sender(&self) -> flume::Sender<Input> {
        self.tx.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commands_arrive_in_order_and_a_full_queue_waits_for_room() {
        let (commands, inbox) = channel(2);
        commands
            .send("tab-1", Bytes::from_static(b"a"))
            .await
            .unwrap();
        commands
            .send("tab-1", Bytes::from_static(b"b"))
            .await
            .unwrap();
        // Full: the third waits until the engine takes one.
        let third = tokio::spawn({
            let commands = commands.clone();
            async move { commands.send("tab-1", Bytes::from_static(b"c")).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !third.is_finished(),
            "a full queue must make the sender wait"
        );
        let mut got = Vec::new();
        while got.len() < 3 {
            let deadline = Instant::now() + Duration::from_secs(5);
            match tokio::task::block_in_place(|| inbox.recv_deadline(deadline)) {
                Some(Input::Command { device, payload }) => {
                    assert_eq!(device, "tab-1");
                    got.push(payload);
                }
                other => panic!("expected a command, got {other:?}"),
            }
        }
        third.await.unwrap().unwrap();
        assert_eq!(got, [&b"a"[..], b"b", b"c"]);
        assert!(inbox.try_recv().is_none());
    }

    #[tokio::test]
    async fn a_stopped_engine_is_reported_to_the_sender() {
        let (commands, inbox) = channel(2);
        drop(inbox);
        assert!(commands.send("tab-1", Bytes::new()).await.is_err());
    }
}
