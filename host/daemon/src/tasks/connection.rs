//! One TCP connection to a peer: a reader task that turns the byte stream into decoded
//! BGP messages (each decoded once, with the context the session negotiated) and a
//! writer task that drains a queue of encoded bytes.
//!
//! Both queues are bounded. The reader waits for room in its [`READ_QUEUE`]: when the
//! neighbor task (and behind it the speaker) lags, the reader stops reading and TCP
//! slows the peer down. The writer's [`WRITE_QUEUE`] takes UPDATEs only while more
//! than [`CONTROL_ROOM`] slots are free ([`Connection::has_room_for_updates`]); the
//! neighbor keeps the rest in its Adj-RIB-Out, where later changes of a prefix replace
//! earlier ones, until there is room. The slots kept free carry KEEPALIVEs and
//! NOTIFICATIONs; if even those are full, the peer has read nothing for several
//! KEEPALIVE intervals, and what does not fit is dropped (logged).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use wasmbgp_bgp::packet::{self, Context, DecodeError, Message, MessageReader};

use crate::metrics::Metrics;

/// What a reader task reports.
#[derive(Debug)]
pub enum ReadEvent {
    /// The messages of one read, decoded with the session's context.
    Messages(u64, Vec<Message>),
    /// A message that does not decode: the session ends with this error. Nothing more is
    /// read from the connection.
    Malformed(u64, DecodeError),
    /// The peer closed the connection or it failed.
    Closed(u64, String),
}

/// A live connection.
#[derive(Debug)]
pub struct Connection {
    /// Distinguishes this connection's read events from an older one's.
    pub id: u64,
    /// True if we connected out.
    pub outbound: bool,
    /// Our end.
    pub local: SocketAddr,
    /// The peer's end.
    pub remote: SocketAddr,
    writer: mpsc::Sender<(Vec<u8>, Option<Instant>)>,
    writer_task: JoinHandle<()>,
    reader_task: JoinHandle<()>,
    /// Hands the reader the negotiated context, once ([`Connection::negotiated`]).
    codec: Option<oneshot::Sender<Context>>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Largest read at once; many UPDATEs arrive per read under load.
const READ_CHUNK: usize = 256 * 1024;
/// The read buffer of a quiet connection: one message of the largest size.
const READ_IDLE: usize = packet::MAX_MESSAGE_LEN;
/// Reads (of up to [`READ_CHUNK`] octets, decoded) waiting for the neighbor task.
pub const READ_QUEUE: usize = 16;
/// Chunks of encoded messages waiting for the socket.
pub const WRITE_QUEUE: usize = 64;
/// Slots of [`WRITE_QUEUE`] that UPDATEs leave to other messages.
pub const CONTROL_ROOM: usize = 8;

impl Connection {
    /// Starts the reader and writer tasks of `stream`; read events go to `events`.
    /// Writes stamped with [`Connection::send_since`] are timed into `metrics`.
    pub fn start(
        stream: TcpStream,
        outbound: bool,
        events: mpsc::Sender<ReadEvent>,
        metrics: Arc<Metrics>,
    ) -> io::Result<Connection> {
        stream.set_nodelay(true)?;
        let local = stream.local_addr()?;
        let remote = stream.peer_addr()?;
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let (rd, mut wr) = stream.into_split();
        let (writer, mut queue) = mpsc::channel::<(Vec<u8>, Option<Instant>)>(WRITE_QUEUE);
        let writer_task = tokio::spawn(async move {
            while let Some((buf, since)) = queue.recv().await {
                if wr.write_all(&buf).await.is_err() {
                    return;
                }
                if let Some(t) = since {
                    metrics.verdict_to_wire(t.elapsed());
                }
            }
            let _ = wr.shutdown().await;
        });
        let (codec, negotiated) = oneshot::channel();
        let reader_task = tokio::spawn(read(rd, id, events, negotiated));
        Ok(Connection {
            id,
            outbound,
            local,
            remote,
            writer,
            writer_task,
            reader_task,
            codec: Some(codec),
        })
    }

    /// Queues bytes to send; false when the queue is full (the peer reads nothing).
    pub fn send(&self, bytes: Vec<u8>) -> bool {
        self.send_since(bytes, None)
    }

    /// Queues bytes to send; once written, the time since `since` is recorded as a
    /// plugin-verdict-to-wire latency. False when the queue is full.
    pub fn send_since(&self, bytes: Vec<u8>, since: Option<Instant>) -> bool {
        bytes.is_empty()
            || !matches!(
                self.writer.try_send((bytes, since)),
                Err(mpsc::error::TrySendError::Full(_))
            )
    }

    /// True while UPDATEs may be queued (more than [`CONTROL_ROOM`] slots free).
    pub fn has_room_for_updates(&self) -> bool {
        self.writer.capacity() > CONTROL_ROOM
    }

    /// Resolves once UPDATEs may be queued again.
    pub fn room_for_updates(&self) -> impl Future<Output = ()> + Send + 'static {
        let writer = self.writer.clone();
        async move {
            // The permits go back as soon as they are dropped: this only waits.
            let _ = writer.reserve_many(CONTROL_ROOM + 1).await;
        }
    }

    /// The session accepted the peer's OPEN with `context`: the reader, stopped after
    /// that OPEN, goes on decoding with it. Only the first call counts.
    pub fn negotiated(&mut self, context: Context) {
        if let Some(codec) = self.codec.take() {
            let _ = codec.send(context);
        }
    }

    /// Stops reading, sends what is queued, then closes. The handle finishes when the
    /// queue is flushed (callers bound the wait).
    pub fn close(self) -> JoinHandle<()> {
        self.reader_task.abort();
        drop(self.writer);
        self.writer_task
    }
}

/// What a session asks of its sockets.
#[derive(Debug, Clone, Default)]
pub struct Protection {
    /// TCP-MD5 key.
    pub md5: Option<crate::config::Md5Key>,
    /// GTSM: the peer is at most this many hops away.
    pub ttl_security: Option<u8>,
}

/// Connects to `remote`, from `local` if given, within `timeout`, with the session's
/// TCP-MD5 key and GTSM set before the first segment leaves.
pub async fn connect(
    remote: SocketAddr,
    local: Option<std::net::IpAddr>,
    protection: Protection,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let socket = if remote.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = local {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    if let Some(key) = &protection.md5 {
        super::sockopt::set_md5(&socket, remote.ip(), Some(key.bytes()))?;
    }
    if let Some(hops) = protection.ttl_security {
        super::sockopt::set_ttl_security(&socket, remote.is_ipv6(), hops)?;
    }
    match tokio::time::timeout(timeout, socket.connect(remote)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
    }
}

/// The reader task: reads, cuts and decodes ([`MessageReader`]), and reports each read's
/// messages as one batch. After the peer's OPEN it waits for the negotiated context
/// (`negotiated`), so that everything after it is decoded once and rightly; after an
/// error it reports it and stops, since the session ends the connection on it.
async fn read(
    mut rd: OwnedReadHalf,
    id: u64,
    events: mpsc::Sender<ReadEvent>,
    negotiated: oneshot::Receiver<Context>,
) {
    // A quiet connection reads into a buffer of one message; one whose reads fill their
    // buffer (a table arriving) gets READ_CHUNK. Once every message read is taken, the
    // buffer is let go and the next read starts in a fresh one: a long-lived session
    // keeps a page or two resident rather than every page of READ_CHUNK it walked through.
    let mut buf = BytesMut::new();
    let mut busy = false;
    let mut reader = MessageReader::new();
    let mut negotiated = Some(negotiated);
    loop {
        if buf.capacity() - buf.len() < packet::MAX_MESSAGE_LEN {
            buf.reserve(if busy { READ_CHUNK } else { READ_IDLE });
        }
        let read = rd.read_buf(&mut buf).await;
        busy = buf.len() == buf.capacity();
        match read {
            Ok(0) => {
                let _ = events
                    .send(ReadEvent::Closed(id, "closed by peer".into()))
                    .await;
                return;
            }
            Ok(_) => {}
            Err(e) => {
                let _ = events.send(ReadEvent::Closed(id, e.to_string())).await;
                return;
            }
        }
        let mut batch = Vec::new();
        loop {
            match reader.next(&buf) {
                Some(Ok((len, message))) => {
                    buf.advance(len);
                    batch.push(message);
                }
                Some(Err(e)) => {
                    if !batch.is_empty() {
                        let _ = events.send(ReadEvent::Messages(id, batch)).await;
                    }
                    let _ = events.send(ReadEvent::Malformed(id, e)).await;
                    return;
                }
                None if reader.awaits_context() => {
                    let open = std::mem::take(&mut batch);
                    if events.send(ReadEvent::Messages(id, open)).await.is_err() {
                        return;
                    }
                    // The only OPEN awaited; dropped unanswered, the session refused it and
                    // closes the connection.
                    let Some(rx) = negotiated.take() else { return };
                    let Ok(context) = rx.await else { return };
                    reader.negotiated(context);
                }
                None => break,
            }
        }
        if buf.is_empty() {
            buf = BytesMut::new();
        }
        if !batch.is_empty() && events.send(ReadEvent::Messages(id, batch)).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection whose peer reads nothing fills its write queue, keeps the last
    /// slots for control messages, and has room again once the peer reads.
    #[tokio::test]
    async fn a_peer_that_reads_nothing_fills_the_queue_and_room_comes_back() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let (mut peer, _) = accepted.unwrap();
        let (events, _rx) = mpsc::channel(READ_QUEUE);
        let conn =
            Connection::start(client.unwrap(), true, events, Arc::new(Metrics::new())).unwrap();
        // Far more than the socket buffers hold: the writer blocks, the queue fills.
        let chunk = vec![0u8; 1 << 20];
        let mut queued = 0;
        while conn.has_room_for_updates() && queued < 10 * WRITE_QUEUE {
            assert!(conn.send(chunk.clone()));
            queued += 1;
            tokio::task::yield_now().await;
        }
        assert!(
            !conn.has_room_for_updates(),
            "queued {queued} MiB and still room"
        );
        // Control messages still fit in the slots kept for them...
        assert!(conn.send(vec![1; 19]));
        let room = conn.room_for_updates();
        tokio::pin!(room);
        assert!(
            tokio::time::timeout(Duration::from_millis(100), &mut room)
                .await
                .is_err(),
            "room while the peer reads nothing"
        );
        // ...and once the peer reads, UPDATEs may be queued again.
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 1 << 20];
            let mut total = 0usize;
            while let Ok(n) = peer.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                total += n;
            }
            total
        });
        tokio::time::timeout(Duration::from_secs(10), &mut room)
            .await
            .expect("room once the peer reads");
        assert!(conn.has_room_for_updates());
        drop(conn.close());
        reader.abort();
    }
}
