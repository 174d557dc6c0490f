//! The TCP connection to the collector: connected lazily, written without
//! blocking (what the socket does not take now waits in a bounded buffer for
//! the next call), dropped on any error and connected again after a backoff.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Exponential backoff between connection attempts.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial_ms: u64,
    max_ms: u64,
    delay_ms: u64,
    /// No attempt before this time (monotonic milliseconds).
    not_before_ms: u64,
}

impl Backoff {
    pub fn new(initial_ms: u64, max_ms: u64) -> Backoff {
        Backoff {
            initial_ms,
            max_ms,
            delay_ms: initial_ms,
            not_before_ms: 0,
        }
    }

    /// Whether an attempt may be made now.
    pub fn due(&self, now_ms: u64) -> bool {
        now_ms >= self.not_before_ms
    }

    /// An attempt failed at `now_ms`: wait the current delay, then double it.
    pub fn failed(&mut self, now_ms: u64) {
        self.not_before_ms = now_ms.saturating_add(self.delay_ms);
        self.delay_ms = (self.delay_ms.saturating_mul(2)).min(self.max_ms);
    }

    /// A connection worked: the next failure waits the initial delay again.
    pub fn succeeded(&mut self) {
        self.delay_ms = self.initial_ms;
        self.not_before_ms = 0;
    }

    /// How long until the next attempt may be made.
    pub fn wait_ms(&self, now_ms: u64) -> u64 {
        self.not_before_ms.saturating_sub(now_ms)
    }

    /// The delay the next failure will wait.
    #[cfg(test)]
    pub fn delay_ms(&self) -> u64 {
        self.delay_ms
    }
}

/// The connection to the collector.
pub struct Link {
    target: SocketAddr,
    connect_timeout: Duration,
    stream: Option<TcpStream>,
    /// Bytes the socket has not taken yet.
    pending: Vec<u8>,
    /// More pending than this drops the connection (the collector is too
    /// slow; it gets a fresh table after the reconnect).
    max_pending: usize,
    pub backoff: Backoff,
}

/// What [`Link::connect`] did.
#[derive(Debug)]
pub enum Connect {
    /// Already connected.
    Connected,
    /// A new connection.
    New,
    /// Not connected: backing off.
    Waiting,
    /// Not connected: this attempt failed.
    Failed(io::Error),
}

impl Link {
    pub fn new(target: SocketAddr, connect_timeout: Duration, max_pending: usize) -> Link {
        Link {
            target,
            connect_timeout,
            stream: None,
            pending: Vec::new(),
            max_pending,
            backoff: Backoff::new(1_000, 30_000),
        }
    }

    pub fn target(&self) -> SocketAddr {
        self.target
    }

    #[cfg(test)]
    pub fn is_connected(&self) -> bool {
        self.stream.is_some()
    }

    /// Connects unless connected or backing off.
    pub fn connect(&mut self, now_ms: u64) -> Connect {
        if self.stream.is_some() {
            return Connect::Connected;
        }
        if !self.backoff.due(now_ms) {
            return Connect::Waiting;
        }
        let result =
            TcpStream::connect_timeout(&self.target, self.connect_timeout).and_then(|stream| {
                stream.set_nodelay(true).ok();
                stream.set_nonblocking(true)?;
                Ok(stream)
            });
        match result {
            Ok(stream) => {
                self.stream = Some(stream);
                self.pending.clear();
                self.backoff.succeeded();
                Connect::New
            }
            Err(error) => {
                self.backoff.failed(now_ms);
                Connect::Failed(error)
            }
        }
    }

    /// Drops the connection (and what it had not sent); the next attempt
    /// waits for the backoff.
    pub fn drop_connection(&mut self, now_ms: u64) {
        self.stream = None;
        self.pending.clear();
        self.backoff.failed(now_ms);
    }

    /// Closes the connection after sending `last` as far as the socket takes
    /// it now; the next attempt may be made at once.
    pub fn close_with(&mut self, last: &[u8]) {
        if let Some(stream) = &mut self.stream {
            let _ = stream.write(last);
        }
        self.stream = None;
        self.pending.clear();
    }

    /// Bytes waiting for the socket.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Sends what is pending, then `data`, as far as the socket takes them
    /// without blocking; keeps the rest. An error (or too much pending)
    /// drops the connection.
    pub fn send(&mut self, data: &[u8], now_ms: u64) -> io::Result<()> {
        let Some(stream) = &mut self.stream else {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "not connected"));
        };
        let result = (|| {
            if !self.pending.is_empty() {
                let written = write_some(stream, &self.pending)?;
                self.pending.drain(..written);
            }
            let mut written = 0;
            if self.pending.is_empty() {
                written = write_some(stream, data)?;
            }
            let rest = &data[written..];
            if self.pending.len() + rest.len() > self.max_pending {
                return Err(io::Error::other(format!(
                    "the collector is too slow: over {} bytes waiting",
                    self.max_pending
                )));
            }
            self.pending.extend_from_slice(rest);
            Ok(())
        })();
        if result.is_err() {
            self.drop_connection(now_ms);
        }
        result
    }
}

/// Writes as much of `data` as the non-blocking socket takes now.
fn write_some(stream: &mut TcpStream, data: &[u8]) -> io::Result<usize> {
    let mut written = 0;
    while written < data.len() {
        match stream.write(&data[written..]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the collector closed",
                ));
            }
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    #[test]
    fn backoff_doubles_up_to_the_maximum_and_resets() {
        let mut b = Backoff::new(1_000, 5_000);
        assert!(b.due(0));
        b.failed(10_000);
        assert!(!b.due(10_999));
        assert!(b.due(11_000));
        b.failed(11_000);
        assert!(!b.due(12_999));
        assert!(b.due(13_000));
        b.failed(13_000); // 4 s
        b.failed(17_000); // 5 s (capped)
        assert_eq!(b.delay_ms(), 5_000);
        assert!(!b.due(21_999));
        b.succeeded();
        assert!(b.due(0));
        assert_eq!(b.delay_ms(), 1_000);
    }

    #[test]
    fn sends_and_reconnects_after_an_error() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = listener.local_addr().unwrap();
        let mut link = Link::new(target, Duration::from_secs(1), 1 << 20);
        assert!(matches!(link.connect(0), Connect::New));
        assert!(matches!(link.connect(0), Connect::Connected));
        let (mut server, _) = listener.accept().unwrap();
        link.send(b"hello", 0).unwrap();
        let mut buf = [0u8; 5];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");

        // The collector goes away: a later write fails and the link backs off.
        drop(server);
        drop(listener);
        let mut failed = false;
        for i in 0..100 {
            if link.send(&[0u8; 65536], 1_000).is_err() {
                failed = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(5 + i));
        }
        assert!(failed, "writes to a closed peer never failed");
        assert!(!link.is_connected());
        assert!(matches!(link.connect(1_500), Connect::Waiting));
        assert!(matches!(link.connect(2_000), Connect::Failed(_)));
    }
}
