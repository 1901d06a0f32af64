//! The byte streams a device connection rides on: a TCP socket (the MQTT ports) or a WebSocket
//! upgraded on axum's `/mqtt` (browsers). The session reads and writes through [`Transport`] and
//! never knows which.
//!
//! Owns no MQTT knowledge: bytes in, bytes out. A plain TCP connection reads only when the
//! socket is readable, so an idle one holds no read buffer at all; over TLS, rustls keeps its
//! own record buffers and the read buffer is reserved before waiting.

use std::future::Future;
use std::io;

use bytes::BytesMut;

/// How much a read asks for when no packet is half-read (most MQTT packets are far smaller).
const READ_CHUNK: usize = 2048;

pub trait Transport: Send + 'static {
    /// Waits for bytes and appends them to `buf`; `Ok(0)` once the peer closed. Cancel-safe:
    /// bytes are never lost when the future is dropped.
    fn read(
        &mut self,
        buf: &mut BytesMut,
        want: usize,
    ) -> impl Future<Output = io::Result<usize>> + Send;
    /// Writes what the peer takes at once without waiting; how many bytes (0: none, or a
    /// transport that cannot say, which then goes through `write`).
    fn try_write(&mut self, _bytes: &[u8]) -> usize {
        0
    }
    /// Writes all of `bytes` (one WebSocket message on `/mqtt`).
    fn write(&mut self, bytes: &[u8]) -> impl Future<Output = io::Result<()>> + Send;
    /// Says goodbye at the transport level (FIN, or a WebSocket Close) as far as it can.
    fn close(&mut self) -> impl Future<Output = ()> + Send;
}

impl Transport for tokio::net::TcpStream {
    async fn read(&mut self, buf: &mut BytesMut, want: usize) -> io::Result<usize> {
        loop {
            self.readable().await?;
            // Reserve only now: an idle connection waits above with no buffer.
            buf.reserve(want.max(READ_CHUNK));
            match self.try_read_buf(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn try_write(&mut self, bytes: &[u8]) -> usize {
        let mut done = 0;
        while done < bytes.len() {
            match tokio::net::TcpStream::try_write(self, &bytes[done..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => done += n,
            }
        }
        done
    }

    async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        tokio::io::AsyncWriteExt::write_all(self, bytes).await
    }

    async fn close(&mut self) {
        let _ = tokio::io::AsyncWriteExt::shutdown(self).await;
    }
}

/// MQTT over WebSocket (subprotocol `mqtt`): binary messages carry MQTT bytes, split or joined
/// anywhere.
pub struct WebSocket(pub axum::extract::ws::WebSocket);

impl Transport for WebSocket {
    async fn read(&mut self, buf: &mut BytesMut, _want: usize) -> io::Result<usize> {
        use axum::extract::ws::Message;
        loop {
            match self.0.recv().await {
                None => return Ok(0),
                Some(Err(e)) => return Err(io::Error::other(e)),
                Some(Ok(Message::Binary(b))) if b.is_empty() => {}
                Some(Ok(Message::Binary(b))) => {
                    buf.extend_from_slice(&b);
                    return Ok(b.len());
                }
                Some(Ok(Message::Close(_))) => return Ok(0),
                // MQTT over WebSocket is binary only; pings are answered by axum.
                Some(Ok(_)) => {}
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        use axum::extract::ws::Message;
        self.0
            .send(Message::Binary(bytes::Bytes::copy_from_slice(bytes)))
            .await
            .map_err(io::Error::other)
    }

    async fn close(&mut self) {
        use axum::extract::ws::Message;
        let _ = self.0.send(Message::Close(None)).await;
    }
}

/// MQTT over TLS (8883): rustls keeps its own record buffers; the session's reads and writes go
/// through them.
impl Transport for tokio_rustls::server::TlsStream<tokio::net::TcpStream> {
    async fn read(&mut self, buf: &mut BytesMut, want: usize) -> io::Result<usize> {
        buf.reserve(want.max(READ_CHUNK));
        tokio::io::AsyncReadExt::read_buf(self, buf).await
    }

    async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        tokio::io::AsyncWriteExt::write_all(self, bytes).await?;
        tokio::io::AsyncWriteExt::flush(self).await
    }

    async fn close(&mut self) {
        let _ = tokio::io::AsyncWriteExt::shutdown(self).await;
    }
}
