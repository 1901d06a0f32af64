//! A real MQTT client (rumqttc over TCP or TLS) with what tablets and screens need: login as a
//! paired device, signed commands and their replies, subscriptions, boards and replay. Owns its
//! connection's event loop task; must not keep device state beyond one connection (see
//! `device` for that).

use std::time::Duration;

use anyhow::{bail, Context};
use docket_core::wire::{self, CommandBody, Envelope, Reply};
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

use crate::{Creds, DEADLINE};

/// A reply's error code ("" for an accepted command).
pub fn reply_code(r: &wire::Reply) -> &str {
    r.error.as_ref().map_or("", |e| e.code.as_str())
}

/// A line for `place_order`.
pub fn line(item: &str, qty: u32) -> wire::LineInput {
    wire::LineInput::plain(item, qty)
}

/// One message as a client received it.
#[derive(Debug, Clone)]
pub struct Msg {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

/// A real MQTT client (rumqttc over TCP) with the helpers tablets and screens need.
pub struct Client {
    pub client: AsyncClient,
    pub id: String,
    mac_key: Option<docket_core::keys::MacKey>,
    rx: mpsc::UnboundedReceiver<Msg>,
    subacks: mpsc::UnboundedReceiver<()>,
    task: tokio::task::JoinHandle<()>,
    counter: u64,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// MQTT keep-alive of the harness's clients unless a test picks another.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);

fn options(
    client_id: &str,
    user: &str,
    password: &str,
    host: &str,
    port: u16,
    keep_alive: Duration,
) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, host, port);
    o.set_credentials(user, password);
    o.set_keep_alive(keep_alive);
    o.set_clean_session(true);
    o.set_max_packet_size(4 * 1024 * 1024, 4 * 1024 * 1024);
    o.set_last_will(LastWill::new(
        wire::presence_topic(client_id),
        wire::encode(&"offline").expect("cbor"),
        QoS::AtLeastOnce,
        true,
    ));
    o
}

/// Polls until CONNACK: Ok(eventloop) or the connection error.
async fn handshake(mut ev: EventLoop) -> anyhow::Result<EventLoop> {
    let r = tokio::time::timeout(DEADLINE, async {
        loop {
            match ev.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    if ack.code == rumqttc::ConnectReturnCode::Success {
                        return Ok(());
                    }
                    bail!("connection refused: {:?}", ack.code);
                }
                Ok(_) => {}
                Err(e) => bail!("connection refused: {e}"),
            }
        }
    })
    .await;
    match r {
        Ok(Ok(())) => Ok(ev),
        Ok(Err(e)) => Err(e),
        Err(_) => bail!("no CONNACK in time"),
    }
}

impl Client {
    /// Connects as a paired device (username = client id = device id, password = its login key).
    pub async fn connect(port: u16, creds: &Creds) -> anyhow::Result<Client> {
        Client::connect_to("127.0.0.1", port, creds).await
    }

    /// Like [`Client::connect`], to a broker on any host (the simulator's `--mqtt HOST:PORT`).
    pub async fn connect_to(host: &str, port: u16, creds: &Creds) -> anyhow::Result<Client> {
        Client::connect_with(host, port, creds, KEEP_ALIVE).await
    }

    /// Like [`Client::connect_to`] with another keep-alive (how soon a silent link is given up).
    pub async fn connect_with(
        host: &str,
        port: u16,
        creds: &Creds,
        keep_alive: Duration,
    ) -> anyhow::Result<Client> {
        let mut c =
            Client::connect_inner(host, port, &creds.id, &creds.id, &creds.login(), keep_alive)
                .await?;
        c.mac_key = Some(creds.mac_key());
        Ok(c)
    }

    pub async fn connect_raw(
        port: u16,
        client_id: &str,
        user: &str,
        password: &str,
    ) -> anyhow::Result<Client> {
        Client::connect_raw_to("127.0.0.1", port, client_id, user, password).await
    }

    pub async fn connect_raw_to(
        host: &str,
        port: u16,
        client_id: &str,
        user: &str,
        password: &str,
    ) -> anyhow::Result<Client> {
        Client::connect_inner(host, port, client_id, user, password, KEEP_ALIVE).await
    }

    async fn connect_inner(
        host: &str,
        port: u16,
        client_id: &str,
        user: &str,
        password: &str,
        keep_alive: Duration,
    ) -> anyhow::Result<Client> {
        let o = options(client_id, user, password, host, port, keep_alive);
        Client::connect_options(o, client_id).await
    }

    /// Connects as a paired device over MQTT over TLS, trusting only `tls`'s roots; `host` is
    /// the name the box's certificate must carry.
    pub async fn connect_tls(
        host: &str,
        port: u16,
        creds: &Creds,
        tls: std::sync::Arc<rustls::ClientConfig>,
    ) -> anyhow::Result<Client> {
        Client::connect_tls_with(host, port, creds, tls, KEEP_ALIVE).await
    }

    /// [`Client::connect_tls`] with another keep-alive.
    pub async fn connect_tls_with(
        host: &str,
        port: u16,
        creds: &Creds,
        tls: std::sync::Arc<rustls::ClientConfig>,
        keep_alive: Duration,
    ) -> anyhow::Result<Client> {
        let mut o = options(&creds.id, &creds.id, &creds.login(), host, port, keep_alive);
        o.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(tls),
        ));
        let mut c = Client::connect_options(o, &creds.id).await?;
        c.mac_key = Some(creds.mac_key());
        Ok(c)
    }

    async fn connect_options(o: MqttOptions, client_id: &str) -> anyhow::Result<Client> {
        let (client, mut ev) = AsyncClient::new(o, 1000);
        // Like a real tablet's WebSocket: no Nagle, or a command sent right after a PUBACK
        // waits ~40 ms for the box's delayed ACK.
        let mut net = ev.network_options();
        net.set_tcp_nodelay(true);
        // The CONNACK deadline is ours (`handshake`), not rumqttc's 5 s: thousands of devices
        // connecting at once queue behind each other.
        net.set_connection_timeout(DEADLINE.as_secs());
        ev.set_network_options(net);
        let mut ev = handshake(ev).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (sub_tx, subacks) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match ev.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let m = Msg {
                            topic: p.topic.clone(),
                            payload: p.payload.to_vec(),
                            retain: p.retain,
                        };
                        if tx.send(m).is_err() {
                            return;
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = sub_tx.send(());
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
        let mut c = Client {
            client,
            id: client_id.to_owned(),
            mac_key: None,
            rx,
            subacks,
            task,
            counter: 0,
        };
        c.client
            .publish(
                wire::presence_topic(client_id),
                QoS::AtLeastOnce,
                true,
                wire::encode(&"online")?,
            )
            .await?;
        c.subscribe(&wire::reply_topic(client_id)).await?;
        Ok(c)
    }

    /// Is the connection still up (its event loop still running)?
    pub fn is_connected(&self) -> bool {
        !self.task.is_finished()
    }

    /// Subscribes (QoS 1) and waits for the SUBACK.
    pub async fn subscribe(&mut self, filter: &str) -> anyhow::Result<()> {
        self.client.subscribe(filter, QoS::AtLeastOnce).await?;
        match tokio::time::timeout(DEADLINE, self.subacks.recv()).await {
            Ok(Some(())) => Ok(()),
            Ok(None) => bail!("connection closed before SUBACK for {filter}"),
            Err(_) => bail!("no SUBACK for {filter} in time"),
        }
    }

    /// Publishes a raw payload on a topic (QoS 1).
    pub async fn publish(&self, topic: &str, payload: Vec<u8>, retain: bool) -> anyhow::Result<()> {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await?;
        Ok(())
    }

    /// A command id unique within this test process (ids are forever: never reuse one).
    pub fn next_id(&mut self) -> String {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        self.counter = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{}-{}-{}", self.id, std::process::id(), self.counter)
    }

    /// Signs and sends a command with a given id.
    pub async fn send_as(&mut self, id: &str, body: &CommandBody) -> anyhow::Result<()> {
        let key = self.mac_key.context("client has no device keys")?;
        let env = Envelope::sign(id, &self.id, &key, body)?;
        self.publish(&wire::cmd_topic(&self.id), wire::encode(&env)?, false)
            .await
    }

    /// Sends a command and waits for its reply.
    pub async fn command(&mut self, body: &CommandBody) -> anyhow::Result<Reply> {
        let id = self.next_id();
        self.send_as(&id, body).await?;
        self.reply_to(&id).await
    }

    /// Waits for the reply to command `id` (other messages are dropped).
    pub async fn reply_to(&mut self, id: &str) -> anyhow::Result<Reply> {
        let topic = wire::reply_topic(&self.id);
        let id = id.to_owned();
        let m = self
            .wait_for(|m| {
                m.topic == topic && wire::decode::<Reply>(&m.payload).is_ok_and(|r| r.command == id)
            })
            .await?;
        Ok(wire::decode(&m.payload)?)
    }

    /// Waits for the first message matching `pred`, dropping others; fails at the deadline.
    pub async fn wait_for(&mut self, mut pred: impl FnMut(&Msg) -> bool) -> anyhow::Result<Msg> {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(m)) if pred(&m) => return Ok(m),
                Ok(Some(_)) => {}
                Ok(None) => bail!("connection closed while waiting"),
                Err(_) => bail!("nothing matching arrived before the deadline"),
            }
        }
    }

    /// The next message, whatever it is, with no deadline; `None` once the connection is gone.
    /// For long-running clients (the simulator) that dispatch every message themselves.
    pub async fn recv(&mut self) -> Option<Msg> {
        self.rx.recv().await
    }

    /// Everything that arrives within `window` (for asserting that something did NOT come).
    pub async fn drain_for(&mut self, window: Duration) -> Vec<Msg> {
        let mut out = Vec::new();
        let end = tokio::time::Instant::now() + window;
        while let Ok(Some(m)) = tokio::time::timeout_at(end, self.rx.recv()).await {
            out.push(m);
        }
        out
    }

    pub async fn disconnect(self) {
        let _ = self.client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while !self.task.is_finished() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
    }
}

/// Tries to log in and reports whether the broker refused.
pub async fn login_refused(port: u16, client_id: &str, user: &str, password: &str) -> bool {
    let (_c, ev) = AsyncClient::new(
        options(client_id, user, password, "127.0.0.1", port, KEEP_ALIVE),
        10,
    );
    handshake(ev).await.is_err()
}

impl Client {
    /// Waits for the retained board of `station` whose seq is at least `min_seq`.
    pub async fn board(&mut self, station: &str, min_seq: u64) -> anyhow::Result<wire::Board> {
        let topic = wire::board_topic(station);
        let m = self
            .wait_for(|m| {
                m.topic == topic
                    && wire::decode::<wire::Board>(&m.payload).is_ok_and(|b| b.seq >= min_seq)
            })
            .await?;
        Ok(wire::decode(&m.payload)?)
    }

    /// Replays every event after `after_seq`, following `more` pages.
    pub async fn replay_all(&mut self, mut after_seq: u64) -> anyhow::Result<Vec<wire::Event>> {
        let mut all = Vec::new();
        loop {
            let r = self.command(&CommandBody::Replay { after_seq }).await?;
            if !r.ok {
                bail!("replay refused: {:?}", r.error);
            }
            let events = r.events.unwrap_or_default();
            if let Some(last) = events.last() {
                after_seq = last.seq;
            }
            all.extend(events);
            if r.more != Some(true) {
                return Ok(all);
            }
        }
    }
}
