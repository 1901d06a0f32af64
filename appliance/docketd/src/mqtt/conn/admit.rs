//! The admission desk: one OS thread that checks logins against the device registry, builds each
//! admitted connection's link into the router, and publishes the wills of connections that ended
//! without saying goodbye.
//!
//! One thread because each of these blocks: the registry reads SQLite, and rumqttd's
//! `LinkBuilder::build` waits on a channel until the router has registered the link. The router
//! registers links one at a time anyway, so a reconnect storm queues here in order instead of
//! parking the async workers. Must not read or write sockets.

use std::sync::Arc;

use bytes::Bytes;
use rumqttd::local::{LinkError, LinkRx, LinkTx};
use rumqttd::protocol::{Packet, Publish};
use rumqttd::Notification;
use tokio::sync::{mpsc, oneshot};

use super::table::{Handle, Table};
use crate::metrics::Metrics;
use crate::mqtt::broker::{drain_now, poll_once_ready, Broker};
use crate::store::registry::{ct_eq, DeviceRegistry, Login};

/// Logins and wills waiting for the desk; past this a login is answered "server busy".
const QUEUE: usize = 4096;
/// The username of docketd's own probe logins ([`super::probe`]).
pub const PROBE_USER: &str = "docketd-probe";
/// The will publisher's client id in the router.
const WILLS_CLIENT: &str = "docketd-wills";

/// What a CONNECT asked for, as the session parsed it.
pub struct Ask {
    pub client_id: String,
    pub username: String,
    pub password: String,
    pub clean_session: bool,
}

/// An admitted login's link into the router.
pub struct Link {
    pub tx: LinkTx,
    pub rx: LinkRx,
    /// The router's CONNACK for the link (session present or not).
    pub ack: Notification,
    /// The device's entry in the connection table (None: docketd's own probe).
    pub handle: Option<Arc<Handle>>,
}

/// The desk's answer to a login.
pub enum Admission {
    /// A paired device (or docketd's probe), with its link into the router.
    Admitted(Box<Link>),
    Refused(Login),
    /// The router would not take the link (its connection limit, or it is gone).
    Unavailable,
}

enum Job {
    Login(Ask, oneshot::Sender<Admission>),
    Will(Publish),
}

/// The handle sessions use; cheap to clone.
#[derive(Clone)]
pub struct Desk {
    jobs: mpsc::Sender<Job>,
    probe_token: Arc<str>,
}

impl Desk {
    pub fn start(
        broker: Broker,
        registry: Arc<DeviceRegistry>,
        metrics: Arc<Metrics>,
        table: Arc<Table>,
    ) -> std::io::Result<Desk> {
        let (jobs, rx) = mpsc::channel(QUEUE);
        let probe_token: Arc<str> = hex::encode(rand::random::<[u8; 32]>()).into();
        let token = probe_token.clone();
        std::thread::Builder::new()
            .name("mqtt-admit".into())
            .spawn(move || run(rx, broker, registry, metrics, table, &token))?;
        Ok(Desk { jobs, probe_token })
    }

    /// The password of docketd's own probe logins.
    pub fn probe_token(&self) -> &str {
        &self.probe_token
    }

    /// Checks a login and, when admitted, builds its link.
    pub async fn login(&self, ask: Ask) -> Admission {
        let (tx, rx) = oneshot::channel();
        if self.jobs.try_send(Job::Login(ask, tx)).is_err() {
            return Admission::Unavailable;
        }
        rx.await.unwrap_or(Admission::Unavailable)
    }

    /// Publishes a will (a device's last word, here its presence). Dropped with a log line when
    /// the desk is swamped: presence also follows connections.
    pub fn will(&self, publish: Publish) {
        if self.jobs.try_send(Job::Will(publish)).is_err() {
            tracing::warn!("will dropped: the admission desk is full");
        }
    }
}

fn run(
    mut jobs: mpsc::Receiver<Job>,
    broker: Broker,
    registry: Arc<DeviceRegistry>,
    metrics: Arc<Metrics>,
    table: Arc<Table>,
    token: &str,
) {
    let mut wills: Option<(LinkTx, LinkRx)> = None;
    let mut scratch = Vec::new();
    while let Some(job) = jobs.blocking_recv() {
        match job {
            Job::Login(ask, reply) => {
                let _ = reply.send(admit(&broker, &registry, &metrics, &table, token, ask));
            }
            Job::Will(p) => {
                if wills.is_none() {
                    wills = broker.link(WILLS_CLIENT).ok();
                }
                let Some((tx, rx)) = wills.as_mut() else {
                    tracing::warn!("will dropped: the router refused the will publisher");
                    continue;
                };
                let topic = String::from_utf8_lossy(&p.topic).into_owned();
                if let Err(e) = poll_once_ready(tx.send(Packet::Publish(p, None))) {
                    tracing::warn!(error = ?e, topic, "will dropped");
                    wills = None;
                    continue;
                }
                // Nothing is subscribed on this link; keep its queue empty all the same.
                scratch.clear();
                drain_now(rx, &mut scratch, 256);
            }
        }
    }
}

fn admit(
    broker: &Broker,
    registry: &DeviceRegistry,
    metrics: &Metrics,
    table: &Table,
    token: &str,
    ask: Ask,
) -> Admission {
    let probe = ask.username == PROBE_USER;
    let verdict = if probe {
        if ask.client_id.starts_with("docketd-probe-")
            && ct_eq(ask.password.as_bytes(), token.as_bytes())
        {
            Login::Ok
        } else {
            metrics.auth_failure();
            tracing::info!("MQTT login refused: a probe login without the probe token");
            Login::BadCredentials
        }
    } else {
        registry.login(&ask.client_id, &ask.username, &ask.password)
    };
    if verdict != Login::Ok {
        return Admission::Refused(verdict);
    }
    let built = broker
        .builder(&ask.client_id)
        .clean_session(ask.clean_session)
        // Devices publish only where the ACL lets them; a topic no filter matches yet gets one
        // (without this rumqttd drops the link).
        .dynamic_filters(true)
        // No topic aliases: the ACL judges every topic, and 3.1.1 devices have none.
        .topic_alias_max(0)
        .build();
    match built {
        Ok((tx, rx, ack)) => {
            // Entered here, in the order the router took the links: the router has just dropped
            // an earlier link of this client id, and the table ends that session (no will).
            let handle = (!probe).then(|| table.enter(&ask.client_id));
            Admission::Admitted(Box::new(Link {
                tx,
                rx,
                ack,
                handle,
            }))
        }
        Err(e) => {
            log_link_error(&ask.client_id, &e);
            Admission::Unavailable
        }
    }
}

fn log_link_error(client_id: &str, e: &LinkError) {
    tracing::warn!(client_id, error = ?e, "the router did not take the connection (its connection limit?)");
}

/// A will as the publish the box makes for the device.
pub fn will_publish(topic: Bytes, payload: Bytes, retain: bool) -> Publish {
    Publish::new(topic, payload, retain)
}
