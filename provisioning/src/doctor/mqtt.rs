//! Doctor's broker check: MQTT over TLS to the box, its certificate checked as for HTTPS, and
//! with a manager's credentials (only to a verified box) a real login.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use rustls::pki_types::ServerName;

use super::reach::Reached;
use super::Check;
use crate::lan::Link;

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// How a TLS connection to the MQTT port went.
enum Connect {
    Up(Box<Tls>),
    /// No TCP connection.
    Unreachable,
    /// The box's certificate was refused: why, in words.
    Refused(String),
    /// TCP, but no TLS handshake.
    NotTls(std::io::Error),
}

pub fn broker(r: &Reached, port: u16, manager: Option<&(String, String)>) -> Check {
    let host = &r.link.addr.host;
    let unreachable = format!("nothing accepts MQTT over TLS on {host}:{port}: tablets cannot connect; check the box's firewall and docketd's [tls] mqtt_listen");
    let Some(a) = (host.as_str(), port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
    else {
        return Check::fail("broker", unreachable);
    };
    let mut s = match connect(a, &r.link) {
        Connect::Up(s) => s,
        Connect::Unreachable => return Check::fail("broker", unreachable),
        Connect::Refused(words) => return Check::fail("broker", format!("MQTT over TLS on port {port}: {words}")),
        Connect::NotTls(e) => return Check::fail("broker", format!("port {port} accepts connections but no TLS handshake ({e}): is it docketd's MQTT-over-TLS port ([tls] mqtt_listen)?")),
    };
    let Some((id, password)) = manager else {
        return Check::ok("broker", format!("MQTT over TLS accepts connections on port {port} (pass --dir SITE to also try a login)"));
    };
    if !r.verified {
        return Check::ok("broker", format!("MQTT over TLS accepts connections on port {port}; login not tried: the box's certificate did not verify (the tls line), so the manager's credentials were not sent"));
    }
    match login(&mut s, id, password) {
        Ok(Some(0)) => Check::ok("broker", format!("MQTT login as {id} accepted on port {port}")),
        Ok(Some(4)) => Check::fail("broker", format!("the broker refused the login of manager {id}: the box does not know this manager or its secret (push a bundle from this site directory: `docket site push`)")),
        Ok(Some(5)) => Check::fail("broker", format!("the broker refused the login of manager {id}: this manager was revoked on the box; use another manager's site directory, or approve a new manager on /admin")),
        Ok(None) => Check::fail("broker", format!("the broker closed the login of manager {id} without an answer: the box is out of connections or runs an old docketd; run doctor again in a minute")),
        Ok(Some(rc)) => Check::fail("broker", format!("the broker answered the login with code {rc}: is port {port} docketd's MQTT-over-TLS port?")),
        Err(e) => Check::fail("broker", format!("port {port} speaks TLS but not MQTT ({e}): is it docketd's MQTT-over-TLS port?")),
    }
}

fn connect(a: SocketAddr, link: &Link) -> Connect {
    let Ok(sock) = TcpStream::connect_timeout(&a, Duration::from_secs(3)) else {
        return Connect::Unreachable;
    };
    let setup = || -> std::io::Result<Tls> {
        sock.set_read_timeout(Some(Duration::from_secs(5)))?;
        let name = ServerName::try_from(link.addr.host.clone())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let conn = rustls::ClientConnection::new(link.tls_config(), name)
            .map_err(std::io::Error::other)?;
        let mut s = rustls::StreamOwned::new(conn, sock);
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock)?;
        }
        Ok(s)
    };
    match setup() {
        Ok(s) => Connect::Up(Box::new(s)),
        Err(e) => match link.refusal() {
            Some(words) => Connect::Refused(words),
            None => Connect::NotTls(e),
        },
    }
}

/// An MQTT 3.1.1 login as a device (client id = user name = id, password = its login key), then
/// a clean DISCONNECT: the CONNACK's return code (0: accepted), or `None` when the connection
/// was closed without one (docketd's way of refusing a login, docs/protocol.md). `Err`: the
/// port answered, but not as MQTT.
fn login<S: Read + Write>(s: &mut S, id: &str, password: &str) -> std::io::Result<Option<u8>> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0xC2, 0, 30];
    for field in [id, id, password] {
        body.extend((field.len() as u16).to_be_bytes());
        body.extend(field.as_bytes());
    }
    let mut packet = vec![0x10];
    let mut n = body.len();
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        packet.push(b);
        if n == 0 {
            break;
        }
    }
    packet.extend(body);
    s.write_all(&packet)?;
    s.flush()?;
    let mut ack = [0u8; 4];
    match s.read_exact(&mut ack) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    }
    if ack[0] != 0x20 || ack[1] != 2 {
        return Err(std::io::Error::other("the answer is not an MQTT CONNACK"));
    }
    let _ = s.write_all(&[0xE0, 0]);
    let _ = s.flush();
    Ok(Some(ack[3]))
}
