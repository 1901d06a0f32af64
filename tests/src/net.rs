//! Sockets for tests: ports free right now, and connections from a chosen local address.
//! Owns no socket beyond the call.

use std::net::{TcpListener, TcpStream};

/// A TCP port nobody listens on right now.
/// A port free right now and never handed out before by this process: the kernel may offer
/// the same free port twice in a row (a daemon then got equal MQTT and MQTT v5 ports).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A TCP connection to `to` from the local address `from`. Every 127.0.0.0/8 address is this
/// host, so a test can act as several devices of the LAN, each with its own address.
pub fn connect_from(
    from: std::net::IpAddr,
    to: std::net::SocketAddr,
) -> std::io::Result<TcpStream> {
    use rustix::net::{bind, connect, socket, AddressFamily, SocketType};
    let family = if from.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = socket(family, SocketType::STREAM, None)?;
    bind(&fd, &std::net::SocketAddr::new(from, 0))?;
    connect(&fd, &to)?;
    Ok(TcpStream::from(fd))
}
