//! One connection's bytes as MQTT packets: the read buffer, the write buffer, and the codec of
//! the listener it came in on. The session above it deals in packets only.
//!
//! Buffers start empty and grow with the packets: an idle connection holds none (the transport
//! reserves only once the socket is readable), and a large packet's buffer is dropped once it
//! has been written.

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use rumqttd::protocol::Packet;

use super::codec::{Proto, ReadError};
use super::transport::Transport;

/// A write that cannot finish in this time (a peer that stopped reading) ends the connection.
const WRITE_STALL: Duration = Duration::from_secs(30);
/// Write buffers larger than this are not kept between writes.
const KEEP_WRITE: usize = 1024;

pub struct Wire<T> {
    pub t: T,
    pub proto: Proto,
    read: BytesMut,
    write: BytesMut,
    scratch: Vec<u8>,
    /// Largest packet accepted (remaining length), as rumqttd's codec checks it.
    max: usize,
    /// Bytes still missing for the packet at the front of `read`.
    want: usize,
}

/// Why the connection's bytes stopped.
#[derive(Debug)]
pub enum Broken {
    /// The peer closed, or the socket failed.
    Closed,
    /// Not MQTT (or not MQTT this codec accepts, or not strictly MQTT 5).
    Malformed(ReadError),
    /// A write did not finish within [`WRITE_STALL`].
    Stalled,
}

impl<T: Transport> Wire<T> {
    pub fn new(t: T, proto: Proto, max: usize) -> Self {
        Wire {
            t,
            proto,
            read: BytesMut::new(),
            write: BytesMut::new(),
            scratch: Vec::new(),
            max,
            want: 0,
        }
    }

    /// Reads more bytes from the peer (cancel-safe): `Err(Closed)` at the end.
    pub async fn fill(&mut self) -> Result<(), Broken> {
        match self.t.read(&mut self.read, self.want).await {
            Ok(0) | Err(_) => Err(Broken::Closed),
            Ok(_) => Ok(()),
        }
    }

    /// The next whole packet already read, if any.
    pub fn take(&mut self) -> Result<Option<Packet>, Broken> {
        if self.read.is_empty() {
            return Ok(None);
        }
        match self.proto.read(&mut self.read, self.max, &mut self.scratch) {
            Ok(p) => {
                self.want = 0;
                if self.read.is_empty() {
                    // Release the buffer: packets already taken keep their own slices of it.
                    self.read = BytesMut::new();
                }
                Ok(Some(p))
            }
            Err(ReadError::Short(n)) => {
                self.want = n;
                Ok(None)
            }
            Err(e) => Err(Broken::Malformed(e)),
        }
    }

    /// Reads until a whole packet is there.
    pub async fn next(&mut self) -> Result<Packet, Broken> {
        loop {
            if let Some(p) = self.take()? {
                return Ok(p);
            }
            self.fill().await?;
        }
    }

    /// Encodes a packet into the write buffer (converted for the connection's version).
    pub fn queue(&mut self, p: Packet) {
        if let Err(e) = self.proto.write(p, &mut self.write) {
            tracing::warn!(error = %e, "a packet could not be encoded for the device; dropped");
        }
    }

    /// Writes what is queued if the socket takes all of it right now (the usual case: no timer,
    /// no wait); true when nothing is left to write. What it took is gone from the queue.
    pub fn flush_now(&mut self) -> bool {
        if self.write.is_empty() {
            return true;
        }
        let n = self.t.try_write(&self.write);
        if n == self.write.len() {
            self.release_write();
            return true;
        }
        let _ = self.write.split_to(n);
        false
    }

    fn release_write(&mut self) {
        if self.write.capacity() > KEEP_WRITE {
            self.write = BytesMut::new();
        } else {
            self.write.clear();
        }
    }

    /// Writes what is queued.
    pub async fn flush(&mut self) -> Result<(), Broken> {
        if self.write.is_empty() {
            return Ok(());
        }
        let r = tokio::time::timeout(WRITE_STALL, self.t.write(&self.write)).await;
        self.release_write();
        match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Broken::Closed),
            Err(_) => Err(Broken::Stalled),
        }
    }

    /// Drops what is queued and not yet written.
    pub fn discard(&mut self) {
        self.write = BytesMut::new();
    }

    /// Queues a last packet, writes it if the peer takes it soon, and closes.
    pub async fn goodbye(&mut self, last: Option<Packet>) {
        if let Some(p) = last {
            self.queue(p);
        }
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            let _ = self.flush().await;
            self.t.close().await;
        })
        .await;
    }
}

impl From<io::Error> for Broken {
    fn from(_: io::Error) -> Self {
        Broken::Closed
    }
}
