//! MQTT written and read by hand, for tests that must send what no well-behaved client would
//! (crafted properties, wills on foreign topics, packets split anywhere) and look at exactly what
//! the box answers. Also the WebSocket adapter that carries any TCP client to `/mqtt`.
//!
//! Deliberately small: it frames packets and reads the few fields the tests look at; it is not a
//! second MQTT implementation of the product (docketd parses with rumqttd's codec only).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use docket_core::wire;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// MQTT's variable byte integer (remaining length, property length).
pub fn varint(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            return;
        }
    }
}

/// A length-prefixed string or binary field.
pub fn field(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

/// A whole packet: the first byte, the remaining length, the body.
pub fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![first];
    varint(body.len(), &mut p);
    p.extend_from_slice(body);
    p
}

/// An MQTT 5 property block whose declared length is the real one.
pub fn props(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(bytes.len(), &mut out);
    out.extend_from_slice(bytes);
    out
}

/// A user property (id 0x26) as it goes inside a property block.
pub fn user_property(key: &str, value: &[u8]) -> Vec<u8> {
    let mut out = vec![0x26];
    field(key.as_bytes(), &mut out);
    field(value, &mut out);
    out
}

/// A last will: topic, payload, QoS 1, retained or not; `props` is the whole MQTT 5 will
/// property block (length included), empty for 3.1.1.
pub struct Will<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub retain: bool,
    pub props: Vec<u8>,
}

/// A CONNECT with username and password and a clean session. `level` 4 (3.1.1) or 5; for 5,
/// `props` is the whole connect property block (length included), so a test can declare a
/// length that is not the real one.
pub fn connect(
    level: u8,
    props: &[u8],
    client_id: &str,
    will: Option<&Will>,
    user: &str,
    password: &str,
) -> Vec<u8> {
    let mut b = Vec::new();
    field(b"MQTT", &mut b);
    b.push(level);
    let mut flags = 0xC2; // username, password, clean session
    if let Some(w) = will {
        flags |= 0x04 | 0x08; // will, QoS 1
        if w.retain {
            flags |= 0x20;
        }
    }
    b.push(flags);
    b.extend_from_slice(&30u16.to_be_bytes());
    if level == 5 {
        b.extend_from_slice(props);
    }
    field(client_id.as_bytes(), &mut b);
    if let Some(w) = will {
        if level == 5 {
            b.extend_from_slice(&w.props);
        }
        field(w.topic.as_bytes(), &mut b);
        field(w.payload, &mut b);
    }
    field(user.as_bytes(), &mut b);
    field(password.as_bytes(), &mut b);
    packet(0x10, &b)
}

/// A SUBSCRIBE (QoS 1 for every filter) with packet id `pkid`; `props` is the MQTT 5 property
/// block (empty for 3.1.1).
pub fn subscribe(pkid: u16, props: &[u8], filters: &[&str]) -> Vec<u8> {
    let mut b = pkid.to_be_bytes().to_vec();
    b.extend_from_slice(props);
    for f in filters {
        field(f.as_bytes(), &mut b);
        b.push(1);
    }
    packet(0x82, &b)
}

/// A PUBLISH at QoS 0 (`pkid` None) or 1; `props` is the MQTT 5 property block (empty for 3.1.1).
pub fn publish(
    topic: &str,
    pkid: Option<u16>,
    props: &[u8],
    payload: &[u8],
    retain: bool,
) -> Vec<u8> {
    let mut b = Vec::new();
    field(topic.as_bytes(), &mut b);
    if let Some(id) = pkid {
        b.extend_from_slice(&id.to_be_bytes());
    }
    b.extend_from_slice(props);
    b.extend_from_slice(payload);
    let first = 0x30 | if pkid.is_some() { 0x02 } else { 0 } | u8::from(retain);
    packet(first, &b)
}

/// One packet the box sent: its first byte and its body.
#[derive(Debug, Clone)]
pub struct Frame {
    pub first: u8,
    pub body: Vec<u8>,
}

impl Frame {
    pub fn kind(&self) -> u8 {
        self.first >> 4
    }

    /// CONNACK's return (3.1.1) or reason (5) code.
    pub fn connack_code(&self) -> Option<u8> {
        (self.kind() == 2)
            .then(|| self.body.get(1).copied())
            .flatten()
    }

    /// A PUBLISH's topic.
    pub fn topic(&self) -> Option<String> {
        if self.kind() != 3 || self.body.len() < 2 {
            return None;
        }
        let n = usize::from(u16::from_be_bytes([self.body[0], self.body[1]]));
        let t = self.body.get(2..2 + n)?;
        Some(String::from_utf8_lossy(t).into_owned())
    }

    /// A PUBLISH's QoS.
    pub fn qos(&self) -> u8 {
        (self.first >> 1) & 3
    }

    /// A PUBLISH's packet id (QoS 1 and 2).
    pub fn pkid(&self) -> Option<u16> {
        let n = usize::from(u16::from_be_bytes([
            *self.body.first()?,
            *self.body.get(1)?,
        ]));
        (self.qos() > 0).then(|| {
            let b = &self.body[2 + n..];
            u16::from_be_bytes([b[0], b[1]])
        })
    }

    /// An MQTT 5 PUBLISH's property block length (0: none), or None for 3.1.1 framing.
    pub fn v5_property_len(&self) -> Option<usize> {
        let n = usize::from(u16::from_be_bytes([
            *self.body.first()?,
            *self.body.get(1)?,
        ]));
        let mut at = 2 + n + if self.qos() > 0 { 2 } else { 0 };
        let (mut len, mut shift) = (0usize, 0);
        loop {
            let b = *self.body.get(at)?;
            len |= usize::from(b & 0x7f) << shift;
            at += 1;
            shift += 7;
            if b & 0x80 == 0 {
                return Some(len);
            }
        }
    }

    /// A PUBLISH's payload, for a 3.1.1 framing (no properties).
    pub fn payload_v4(&self) -> Vec<u8> {
        let n = usize::from(u16::from_be_bytes([self.body[0], self.body[1]]));
        let at = 2 + n + if self.qos() > 0 { 2 } else { 0 };
        self.body[at..].to_vec()
    }
}

/// A hand-driven MQTT connection over TCP.
pub struct Raw {
    pub stream: TcpStream,
}

impl Raw {
    pub async fn connect(host: &str, port: u16) -> anyhow::Result<Raw> {
        let stream = TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        Ok(Raw { stream })
    }

    /// [`Raw::connect`] from the local address `from` (another device of the LAN).
    pub async fn connect_from(
        from: std::net::IpAddr,
        host: &str,
        port: u16,
    ) -> anyhow::Result<Raw> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(from, 0))?;
        let stream = socket.connect(format!("{host}:{port}").parse()?).await?;
        stream.set_nodelay(true)?;
        Ok(Raw { stream })
    }

    pub async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// The next packet, or None when the box closed the connection (or within `wait` nothing
    /// came: `Err`).
    pub async fn next(&mut self, wait: Duration) -> anyhow::Result<Option<Frame>> {
        match tokio::time::timeout(wait, read_frame(&mut self.stream)).await {
            Ok(r) => r,
            Err(_) => bail!("nothing from the box within {wait:?}"),
        }
    }

    /// Every packet within `window`, and whether the box closed the connection in it.
    pub async fn collect(&mut self, window: Duration) -> (Vec<Frame>, bool) {
        let end = tokio::time::Instant::now() + window;
        let mut out = Vec::new();
        loop {
            match tokio::time::timeout_at(end, read_frame(&mut self.stream)).await {
                Ok(Ok(Some(f))) => out.push(f),
                Ok(Ok(None)) | Ok(Err(_)) => return (out, true),
                Err(_) => return (out, false),
            }
        }
    }

    /// Waits for the CONNACK and returns its code; `None` when the box hung up without one.
    pub async fn connack(&mut self) -> anyhow::Result<Option<u8>> {
        loop {
            match self.next(crate::DEADLINE).await {
                Ok(Some(f)) if f.kind() == 2 => return Ok(f.connack_code()),
                Ok(Some(_)) => {}
                Ok(None) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }
}

/// Reads one packet; `Ok(None)` at a clean or reset close.
pub async fn read_frame<S: AsyncRead + Unpin>(s: &mut S) -> anyhow::Result<Option<Frame>> {
    let mut first = [0u8; 1];
    match s.read_exact(&mut first).await {
        Ok(_) => {}
        Err(_) => return Ok(None),
    }
    let (mut len, mut shift) = (0usize, 0);
    loop {
        let mut b = [0u8; 1];
        if s.read_exact(&mut b).await.is_err() {
            return Ok(None);
        }
        len |= usize::from(b[0] & 0x7f) << shift;
        shift += 7;
        if b[0] & 0x80 == 0 {
            break;
        }
        if shift > 21 {
            bail!("bad remaining length from the box");
        }
    }
    let mut body = vec![0u8; len];
    if s.read_exact(&mut body).await.is_err() {
        return Ok(None);
    }
    Ok(Some(Frame {
        first: first[0],
        body,
    }))
}

/// Opens a WebSocket to `/mqtt` asking for the `mqtt` subprotocol; checks the server agreed.
pub async fn open_ws(
    host: &str,
    http: u16,
) -> anyhow::Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
> {
    open_ws_from(None, host, http).await
}

/// [`open_ws`] from a chosen local address (another device of the LAN; `None`: the system's).
pub async fn open_ws_from(
    from: Option<std::net::IpAddr>,
    host: &str,
    http: u16,
) -> anyhow::Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
> {
    let mut req = format!("ws://{host}:{http}/mqtt").into_client_request()?;
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "mqtt".parse()?);
    let to: SocketAddr = format!("{host}:{http}").parse()?;
    let tcp = match from {
        Some(ip) => {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(ip, 0))?;
            socket.connect(to).await?
        }
        None => TcpStream::connect(to).await?,
    };
    tcp.set_nodelay(true)?;
    let (ws, resp) =
        tokio_tungstenite::client_async(req, tokio_tungstenite::MaybeTlsStream::Plain(tcp)).await?;
    let proto = resp
        .headers()
        .get("Sec-WebSocket-Protocol")
        .context("no subprotocol in the answer")?;
    anyhow::ensure!(proto == "mqtt", "subprotocol {proto:?}");
    Ok(ws)
}

/// Serves a local TCP port; every connection becomes one WebSocket to docketd's `/mqtt`, so any
/// TCP client (rumqttc, [`Raw`]) speaks through the box's WebSocket path.
pub async fn ws_adapter(http: u16) -> anyhow::Result<SocketAddr> {
    ws_adapter_from(None, http).await
}

/// [`ws_adapter`] whose WebSockets come from the local address `from`.
pub async fn ws_adapter_from(
    from: Option<std::net::IpAddr>,
    http: u16,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(ws) = open_ws_from(from, "127.0.0.1", http).await else {
                    return;
                };
                pipe_ws(ws, tcp).await;
            });
        }
    });
    Ok(addr)
}

async fn pipe_ws<S>(ws: tokio_tungstenite::WebSocketStream<S>, tcp: TcpStream)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ws_tx, mut ws_rx) = ws.split();
    let (mut tcp_r, mut tcp_w) = tcp.into_split();
    let up = async {
        let mut buf = vec![0u8; 4096];
        loop {
            let n = tcp_r.read(&mut buf).await.unwrap_or(0);
            if n == 0
                || ws_tx
                    .send(Message::Binary(buf[..n].to_vec().into()))
                    .await
                    .is_err()
            {
                return;
            }
        }
    };
    let down = async {
        while let Some(Ok(m)) = ws_rx.next().await {
            match m {
                Message::Binary(b) if tcp_w.write_all(&b).await.is_err() => return,
                Message::Close(_) => return,
                _ => {}
            }
        }
    };
    tokio::select! { _ = up => {}, _ = down => {} }
}

/// Logs in on `s`, subscribes to the reply topic and places an order, all in one write (MQTT
/// `level` 4 or 5); returns the reply and whether the command's PUBACK came after the SUBACK.
pub async fn order_in_one_write(
    s: &mut Raw,
    level: u8,
    t: &crate::Creds,
    id: &str,
) -> anyhow::Result<(wire::Reply, bool)> {
    let props: &[u8] = if level == 5 { &[0] } else { &[] };
    let body = wire::CommandBody::place(id, vec![crate::line("fries", 1)]);
    let env = wire::Envelope::sign(id, &t.id, &t.mac_key(), &body)?;
    let mut bytes = connect(level, props, &t.id, None, &t.id, &t.login());
    bytes.extend(subscribe(1, props, &[&wire::reply_topic(&t.id)]));
    bytes.extend(publish(
        &wire::cmd_topic(&t.id),
        Some(7),
        props,
        &wire::encode(&env)?,
        false,
    ));
    s.send(&bytes).await?;
    anyhow::ensure!(s.connack().await? == Some(0), "login refused");
    let (mut suback, mut acked_after_suback) = (false, None);
    loop {
        let f = s
            .next(crate::DEADLINE)
            .await?
            .with_context(|| format!("level {level}, {id}: closed"))?;
        match f.kind() {
            9 => suback = true,
            4 => {
                assert_eq!(f.body[..2], 7u16.to_be_bytes(), "the command's packet id");
                acked_after_suback = Some(suback);
            }
            3 if f.topic().as_deref() == Some(wire::reply_topic(&t.id).as_str()) => {
                let payload = if level == 5 {
                    // The property length (one byte below 128) and the properties.
                    let props = f.v5_property_len().expect("properties");
                    assert!(props < 128);
                    f.payload_v4()[1 + props..].to_vec()
                } else {
                    f.payload_v4()
                };
                let reply = wire::decode::<wire::Reply>(&payload)?;
                let acked = acked_after_suback.context("the reply came before the PUBACK")?;
                return Ok((reply, acked));
            }
            _ => {}
        }
    }
}
