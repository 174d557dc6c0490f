//! A neighbor's connections: the one its session runs on, an inbound one waiting for its
//! OPEN to settle a collision (RFC 4271 §6.8) or a peer's restart (RFC 4724 §4.2), the
//! connect attempt in flight, and those being closed. It decides which connection
//! lives from the session's state, and tells the session glue what to feed the session;
//! it never drives the session itself.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use wasmbgp_bgp::packet::{Context, DecodeError, Message, Open};
use wasmbgp_bgp::session::{self, Session, State};

use super::super::connection::{self, Connection, ReadEvent};
use super::super::sockopt;
use crate::config::NeighborConfig;
use crate::metrics::Metrics;

/// How long a connect attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound on waiting for queued bytes to leave when closing.
const FLUSH_WAIT: Duration = Duration::from_secs(3);

/// What [`Transport::next`] waited for.
pub(super) enum Happened {
    /// A reader reported.
    Read(ReadEvent),
    /// The connect attempt ended.
    Connected(ConnectResult),
}

/// How a connect attempt ended.
pub(super) type ConnectResult = Result<io::Result<TcpStream>, tokio::task::JoinError>;

/// What a read means to the session.
pub(super) enum Read {
    /// Messages on the session's connection.
    Messages(Vec<Message>),
    /// A message on it did not decode.
    Malformed(DecodeError),
    /// It closed or failed.
    Closed(String),
    /// The first messages of the inbound connection waiting for its OPEN.
    Pending(Vec<Message>),
    /// Nothing for the session (a connection already gone).
    Nothing,
}

/// What an inbound connection became.
pub(super) enum Accepted {
    /// The session's connection now: the session is told TCP is up.
    Adopted,
    /// Waiting for its OPEN, or refused: nothing for the session yet.
    Held,
}

/// What the OPEN of the waiting inbound connection decided.
pub(super) enum Settled {
    /// It was refused and closed.
    Refused,
    /// The peer restarted (graceful restart): the session's connection is lost, then
    /// this one carries the new session ([`Transport::adopt`] after the session is told).
    Restarted(Connection, Open, Vec<Message>),
    /// It won the collision and is the session's connection now (ours got Cease 6/7).
    Won(Open, Vec<Message>),
}

/// The connections of one neighbor (see the module's documentation).
pub(super) struct Transport {
    label: String,
    metrics: Arc<Metrics>,
    /// The session's connection.
    conn: Option<Connection>,
    /// An inbound connection waiting for its OPEN.
    pending: Option<Connection>,
    connecting: Option<JoinHandle<io::Result<TcpStream>>>,
    /// When the connect attempt in flight started.
    connect_started: Option<Instant>,
    /// The last connect attempt that got no answer before the retry timer (the session
    /// machine records only failures it is told about).
    connect_error: Option<String>,
    reads_tx: mpsc::Sender<ReadEvent>,
    reads_rx: mpsc::Receiver<ReadEvent>,
    closing: Vec<JoinHandle<()>>,
}

impl Transport {
    pub(super) fn new(label: String, metrics: Arc<Metrics>) -> Self {
        let (reads_tx, reads_rx) = mpsc::channel(connection::READ_QUEUE);
        Transport {
            label,
            metrics,
            conn: None,
            pending: None,
            connecting: None,
            connect_started: None,
            connect_error: None,
            reads_tx,
            reads_rx,
            closing: Vec::new(),
        }
    }

    /// The session's connection.
    pub(super) fn conn(&self) -> Option<&Connection> {
        self.conn.as_ref()
    }

    /// The last connect attempt that went unanswered, until a later outcome.
    pub(super) fn connect_error(&self) -> Option<&str> {
        self.connect_error.as_deref()
    }

    /// What happens next on the connections: a read (only while `reading`: the reads
    /// wait in their bounded queue meanwhile) or the end of the connect attempt.
    pub(super) async fn next(&mut self, reading: bool) -> Happened {
        tokio::select! {
            Some(ev) = self.reads_rx.recv(), if reading => Happened::Read(ev),
            res = async { self.connecting.as_mut().expect("guarded").await }, if self.connecting.is_some() => {
                self.connecting = None;
                Happened::Connected(res)
            }
            else => std::future::pending().await,
        }
    }

    /// Forgets the connections that finished closing.
    pub(super) fn reap(&mut self) {
        self.closing.retain(|h| !h.is_finished());
    }

    /// Starts a connect attempt to the peer, giving up one still in flight.
    pub(super) fn connect(&mut self, config: &NeighborConfig) {
        let remote = SocketAddr::new(config.address, config.port);
        self.abandon_connect(config);
        self.connect_started = Some(Instant::now());
        self.connecting = Some(tokio::spawn(connection::connect(
            remote,
            config.local_address,
            connection::Protection {
                md5: config.md5.clone(),
                ttl_security: config.ttl_security,
            },
            CONNECT_TIMEOUT,
        )));
    }

    /// The connect attempt ended while the session waits in Connect: the connection,
    /// now the session's, or why there is none.
    pub(super) fn on_connected(
        &mut self,
        res: ConnectResult,
        config: &NeighborConfig,
    ) -> Result<(), String> {
        self.connect_error = None;
        let result = match res {
            Ok(Ok(stream)) => {
                Connection::start(stream, true, self.reads_tx.clone(), self.metrics.clone())
            }
            Ok(Err(e)) => Err(e),
            Err(e) => Err(io::Error::other(e.to_string())),
        };
        match result {
            Ok(conn) => {
                debug!(neighbor = %self.label, local = %conn.local, "connected");
                self.conn = Some(conn);
                Ok(())
            }
            Err(e) => {
                let hint = if e.kind() == io::ErrorKind::TimedOut {
                    md5_hint(config)
                } else {
                    ""
                };
                debug!(neighbor = %self.label, error = %e, "connect failed{hint}");
                Err(format!("connect: {e}{hint}"))
            }
        }
    }

    /// Gives up a connect attempt still in flight (the retry timer ran out before it
    /// ended): that silence is all there is to report, so it becomes the last error.
    fn abandon_connect(&mut self, config: &NeighborConfig) {
        let Some(c) = self.connecting.take() else {
            return;
        };
        c.abort();
        let waited = self
            .connect_started
            .map(|t| t.elapsed())
            .unwrap_or_default();
        let error = format!(
            "connect: no answer in {:.1}s{}",
            waited.as_secs_f64(),
            md5_hint(config)
        );
        debug!(neighbor = %self.label, %error, "connect attempt given up");
        self.connect_error = Some(error);
    }

    /// The session dropped its connection (and any attempt in flight).
    pub(super) fn disconnect(&mut self, config: &NeighborConfig) {
        self.abandon_connect(config);
        if let Some(c) = self.conn.take() {
            self.closing.push(c.close());
        }
    }

    /// Queues bytes on the session's connection; a full queue drops them (logged).
    pub(super) fn send(&self, bytes: Vec<u8>) {
        self.send_since(bytes, None);
    }

    /// Like [`Transport::send`], timing the write from `since` (a plugin's verdict).
    pub(super) fn send_since(&self, bytes: Vec<u8>, since: Option<Instant>) {
        if let Some(c) = &self.conn
            && !c.send_since(bytes, since)
        {
            warn!(neighbor = %self.label, "the peer reads nothing: its write queue is full, a message was dropped");
        }
    }

    /// Hands the session's connection the context the session negotiated (its reader
    /// waits for it after the peer's OPEN).
    pub(super) fn negotiated(&mut self, context: Context) {
        if let Some(c) = self.conn.as_mut() {
            c.negotiated(context);
        }
    }

    /// Sorts a read by the connection it came from.
    pub(super) fn classify(&mut self, ev: ReadEvent) -> Read {
        let current = self.conn.as_ref().map(|c| c.id);
        let pending = self.pending.as_ref().map(|c| c.id);
        match ev {
            ReadEvent::Messages(id, m) if Some(id) == current => Read::Messages(m),
            ReadEvent::Messages(id, m) if Some(id) == pending => Read::Pending(m),
            ReadEvent::Malformed(id, e) if Some(id) == current => Read::Malformed(e),
            ReadEvent::Closed(id, why) if Some(id) == current => Read::Closed(why),
            ReadEvent::Malformed(id, _) | ReadEvent::Closed(id, _) if Some(id) == pending => {
                self.close_pending();
                Read::Nothing
            }
            _ => Read::Nothing, // from a connection already closed
        }
    }

    /// A connection the peer opened, given the session's state: checked for GTSM, then
    /// the session's connection, held for its OPEN, or refused.
    pub(super) fn accept(
        &mut self,
        stream: TcpStream,
        config: &NeighborConfig,
        session: &Session,
    ) -> Accepted {
        if let Some(hops) = config.ttl_security
            && !self.gtsm_allows(&stream, config.address.is_ipv6(), hops)
        {
            return Accepted::Held;
        }
        let Ok(conn) =
            Connection::start(stream, false, self.reads_tx.clone(), self.metrics.clone())
        else {
            return Accepted::Held;
        };
        match session.state() {
            State::Idle => drop(conn.close()),
            State::Connect | State::Active => {
                if let Some(c) = self.connecting.take() {
                    c.abort();
                }
                self.connect_error = None;
                info!(neighbor = %self.label, remote = %conn.remote, "accepted connection");
                self.conn = Some(conn);
                return Accepted::Adopted;
            }
            State::OpenSent | State::OpenConfirm if self.pending.is_none() => {
                debug!(neighbor = %self.label, "inbound connection while opening: waiting for its OPEN to resolve the collision");
                self.pending = Some(conn);
            }
            State::Established
                if session.graceful_restart_negotiated() && self.pending.is_none() =>
            {
                // RFC 4724 §4.2: with graceful restart, the peer may have restarted; its
                // OPEN tells (`Session::peer_restarted`), else it is a collision.
                debug!(neighbor = %self.label, remote = %conn.remote, "inbound connection while established: waiting for its OPEN (restart or collision)");
                self.pending = Some(conn);
            }
            _ => {
                info!(neighbor = %self.label, "refusing a second connection (collision with an established session)");
                self.refuse(conn);
            }
        }
        Accepted::Held
    }

    /// GTSM: the SYN must have come at most `hops` away (TTL ≥ 256 - hops); checked
    /// before a byte is read, since what the peer already sent is queued whatever
    /// minimum TTL the accepted socket gets now.
    fn gtsm_allows(&self, stream: &TcpStream, ipv6: bool, hops: u8) -> bool {
        let min = 256 - u16::from(hops.max(1));
        match sockopt::syn_ttl(stream) {
            Ok(Some(ttl)) if u16::from(ttl) < min => {
                warn!(neighbor = %self.label, ttl, min, "refused a connection: ttl-security (GTSM) wants the peer at most {hops} hop(s) away");
                // The close leaves with TTL 255, so that a peer checking TTLs itself
                // sees it and does not wait on a dead connection.
                let _ = sockopt::set_ttl_security(stream, ipv6, hops);
                return false;
            }
            Ok(_) => {}
            Err(e) => {
                warn!(neighbor = %self.label, error = %e, "refused a connection: cannot read its SYN's TTL for ttl-security");
                return false;
            }
        }
        if let Err(e) = sockopt::set_ttl_security(stream, ipv6, hops) {
            warn!(neighbor = %self.label, error = %e, "cannot apply ttl-security to an accepted connection");
            return false;
        }
        true
    }

    /// The first messages of the waiting inbound connection: its OPEN settles whether
    /// the peer restarted (while established, with graceful restart), which of two
    /// colliding connections lives (while opening, by router id), or that it is refused.
    pub(super) fn settle(
        &mut self,
        messages: Vec<Message>,
        session: &Session,
        router_id: std::net::Ipv4Addr,
    ) -> Settled {
        let Some(pending) = self.pending.take() else {
            return Settled::Refused;
        };
        let mut messages = messages.into_iter();
        let open = match messages.next() {
            Some(Message::Open(o)) => Some(o),
            _ => None,
        };
        let rest: Vec<Message> = messages.collect();
        if session.state() == State::Established {
            return match open.filter(|o| session.peer_restarted(Instant::now(), o)) {
                Some(open) => {
                    info!(neighbor = %self.label, remote = %pending.remote, "the peer connected again while established: it restarted (graceful restart)");
                    Settled::Restarted(pending, open, rest)
                }
                None => {
                    info!(neighbor = %self.label, remote = %pending.remote, "refusing a second connection (collision with an established session)");
                    self.refuse(pending);
                    Settled::Refused
                }
            };
        }
        let still_opening = matches!(session.state(), State::OpenSent | State::OpenConfirm);
        let Some(open) = open.filter(|_| still_opening) else {
            self.refuse(pending);
            return Settled::Refused;
        };
        let existing_outbound = self.conn.as_ref().is_some_and(|c| c.outbound);
        if session::collision_keeps_existing(router_id, open.bgp_id, existing_outbound) {
            info!(neighbor = %self.label, "connection collision: keeping the existing connection");
            self.refuse(pending);
            return Settled::Refused;
        }
        info!(neighbor = %self.label, "connection collision: keeping the peer's connection");
        if let Some(old) = self.conn.take() {
            self.refuse(old);
        }
        self.conn = Some(pending);
        Settled::Won(open, rest)
    }

    /// Makes `conn` the session's connection, closing the one it replaces (the session
    /// was told it was lost).
    pub(super) fn adopt(&mut self, conn: Connection) {
        if let Some(old) = self.conn.replace(conn) {
            self.closing.push(old.close());
        }
    }

    /// Sends Cease 6/7 (connection collision resolution) on `conn` and closes it.
    fn refuse(&mut self, conn: Connection) {
        conn.send(
            Message::Notification(session::collision_notification()).to_bytes(&Context::default()),
        );
        self.closing.push(conn.close());
    }

    fn close_pending(&mut self) {
        if let Some(p) = self.pending.take() {
            self.closing.push(p.close());
        }
    }

    /// Closes every connection without a word (graceful restart: to the peer this
    /// looks like the process ending) and waits briefly for queued bytes to leave.
    pub(super) async fn close_silently(&mut self) {
        if let Some(c) = self.connecting.take() {
            c.abort();
        }
        let connections = [self.conn.take(), self.pending.take()];
        for c in connections.into_iter().flatten() {
            self.closing.push(c.close());
        }
        self.await_closing().await;
    }

    /// After the session's last words: closes the waiting connection too, and waits
    /// briefly for what the connections queued to leave.
    pub(super) async fn close(&mut self) {
        self.close_pending();
        self.await_closing().await;
    }

    async fn await_closing(&mut self) {
        for h in std::mem::take(&mut self.closing) {
            let _ = tokio::time::timeout(FLUSH_WAIT, h).await;
        }
    }
}

/// What a connect that got no answer may mean: a peer with another TCP-MD5 key (or
/// none) drops our signed SYNs without a word.
fn md5_hint(config: &NeighborConfig) -> &'static str {
    if config.md5.is_some() {
        " (TCP-MD5 is set: a peer with another key, or none, drops the connection silently)"
    } else {
        ""
    }
}
