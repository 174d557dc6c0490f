//! The task of one neighbor: it owns the session machine and the connection, carries out
//! what the machine decides, and sends what the speaker gives it. It keeps the copy of
//! its Adj-RIB-Out (after export policy) that it resends when the session comes up or
//! the peer asks for a refresh; what goes in it is the speaker's decision. UPDATEs
//! received go to the speaker, which owns the Adj-RIB-In.
//!
//! The task never waits on anyone: what it tells the speaker goes through an outbox
//! drained into the bounded [`NEIGHBOR_EVENT_QUEUE`] as room appears, and while the
//! outbox is not empty the task reads nothing more from its connection (so a slow
//! speaker slows the peer down through TCP, not memory). UPDATEs to send wait in the
//! Adj-RIB-Out while the connection's write queue is full.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use wasmbgp_bgp::Family;
use wasmbgp_bgp::packet::notification::cease_sub;
use wasmbgp_bgp::packet::{self, Context, Message, Notification, Open, UpdatePacker};
use wasmbgp_bgp::rib::{AdjRibOut, EndOfRib, ExportPolicy};
use wasmbgp_bgp::session::{self, Action, Event, Session, SessionConfig, State};

use super::connection::{self, Connection, ReadEvent};
use super::critical::CriticalTasks;
use super::messages::{Carried, NeighborEvent, NeighborId, NeighborMsg, RouteChange};
use super::sources::Sources;
use crate::config::NeighborConfig;
use crate::ctl::json::{NeighborStatus, RouteRow};
use crate::metrics::Metrics;

/// The speaker's handle on a neighbor task.
#[derive(Debug, Clone)]
pub struct NeighborHandle {
    /// The task's identity in what it reports.
    pub id: NeighborId,
    /// The neighbor's config.
    pub config: NeighborConfig,
    /// Its mailbox.
    pub tx: mpsc::Sender<NeighborMsg>,
}

/// Messages waiting for a neighbor task. The task never blocks (it updates memory and
/// queues bytes without waiting), so a speaker waiting for room waits briefly.
pub const NEIGHBOR_QUEUE: usize = 256;
/// What every neighbor has told the speaker and it has not taken yet; when full, the
/// neighbors stop reading their peers (see the module's documentation).
pub const NEIGHBOR_EVENT_QUEUE: usize = 1024;

/// Settings every neighbor shares.
#[derive(Debug, Clone)]
pub struct Shared {
    /// Our AS.
    pub local_as: u32,
    /// Our BGP identifier.
    pub router_id: std::net::Ipv4Addr,
    /// Graceful-restart time advertised (0: none).
    pub graceful_restart: u16,
    /// Names of route sources.
    pub sources: Sources,
    /// Counters and gauges.
    pub metrics: Arc<Metrics>,
    /// Where received UPDATEs and session changes go (the speaker).
    pub events: mpsc::Sender<NeighborEvent>,
}

/// Starts the task of a neighbor, tagging what it reports with `id`; `restarted` when
/// wasmbgp itself has just started (its first OPENs say so, for graceful restart). Its session starts
/// when the speaker sends the initial Adj-RIB-Out ([`NeighborMsg::Start`]), and, when
/// it replaces a task stopped for a new session (`predecessor`), not before that task
/// closed its connection and a connect-retry delay passed: the peer reads the Cease
/// before a new connection arrives (a peer with graceful restart would otherwise take
/// the new connection for a restart and drop the old one unread). The task ends when
/// told to stop; only a panic is a fault of the daemon.
pub fn spawn(
    config: NeighborConfig,
    id: NeighborId,
    shared: Shared,
    predecessor: Option<oneshot::Receiver<Carried>>,
    restarted: bool,
    tasks: &CriticalTasks,
) -> NeighborHandle {
    let (tx, rx) = mpsc::channel(NEIGHBOR_QUEUE);
    let handle = NeighborHandle {
        id,
        config: config.clone(),
        tx,
    };
    let name = format!("neighbor {}", config.address);
    tasks.spawn_retiring(name, async move {
        let mut n = Neighbor::new(config, id, shared, restarted);
        n.predecessor = predecessor;
        n.run(rx).await;
    });
    handle
}

/// Upper bound on waiting for queued bytes to leave at shutdown.
const FLUSH_WAIT: Duration = Duration::from_secs(3);
/// How many queued route batches are merged into one flush.
const MAX_BATCHES_PER_FLUSH: usize = 64;

struct Neighbor {
    config: NeighborConfig,
    /// Tags what it reports.
    id: NeighborId,
    shared: Shared,
    session: Session,
    adj_out: AdjRibOut,
    conn: Option<Connection>,
    /// An inbound connection waiting for its OPEN to settle a collision.
    pending: Option<Connection>,
    connecting: Option<JoinHandle<std::io::Result<TcpStream>>>,
    events_tx: mpsc::Sender<ReadEvent>,
    events_rx: mpsc::Receiver<ReadEvent>,
    /// What the speaker has yet to be told, in order.
    outbox: VecDeque<NeighborEvent>,
    /// The End-of-RIBs wait for [`NeighborMsg::EndOfRib`]...
    end_of_rib_held: bool,
    /// ...and then for the routes still waiting for room in the write queue.
    end_of_rib_due: bool,
    /// UPDATEs wait in the Adj-RIB-Out for room in the write queue, and since when
    /// (the oldest plugin verdict among them).
    updates_waiting: bool,
    waiting_since: Option<Instant>,
    closing: Vec<JoinHandle<()>>,
    packer: UpdatePacker,
    policy: ExportPolicy,
    families: Vec<Family>,
    established_at: Option<Instant>,
    established_count: u64,
    updates_received: u64,
    updates_sent: u64,
    label: String,
    /// The session state last reported to the speaker.
    reported_state: State,
    /// The task this one replaces, until it has closed its connection.
    predecessor: Option<oneshot::Receiver<Carried>>,
    /// When the session may start (the predecessor gone, a connect-retry delay later).
    start_at: Option<Instant>,
    /// The initial Adj-RIB-Out arrived: start once the predecessor is gone.
    start_waiting: bool,
    /// Why the predecessor's last session ended, until this one has a reason.
    carried_error: Option<String>,
    /// When the connect attempt in flight started.
    connect_started: Option<Instant>,
    /// The last connect attempt that got no answer before the retry timer (the
    /// session machine records only failures it is told about).
    connect_error: Option<String>,
}

impl Neighbor {
    fn new(config: NeighborConfig, id: NeighborId, shared: Shared, restarted: bool) -> Self {
        let session = Session::new(SessionConfig {
            local_as: shared.local_as,
            peer_as: config.peer_as,
            router_id: shared.router_id,
            hold_time: config.hold_time,
            passive: config.passive,
            connect_retry: config.connect_retry,
            connect_retry_max: config.connect_retry_max,
            families: config.families.clone(),
            graceful_restart: (shared.graceful_restart > 0).then_some(shared.graceful_restart),
            restarted,
        });
        let (events_tx, events_rx) = mpsc::channel(connection::READ_QUEUE);
        let policy = ExportPolicy {
            local_as: shared.local_as,
            ebgp: config.peer_as != shared.local_as,
            next_hop_v4: None,
            next_hop_v6: None,
        };
        let label = config.address.to_string();
        Neighbor {
            config,
            id,
            shared,
            session,
            adj_out: AdjRibOut::new(),
            conn: None,
            pending: None,
            connecting: None,
            events_tx,
            events_rx,
            outbox: VecDeque::new(),
            end_of_rib_held: false,
            end_of_rib_due: false,
            updates_waiting: false,
            waiting_since: None,
            closing: Vec::new(),
            packer: UpdatePacker::new(Context::default()),
            policy,
            families: Vec::new(),
            established_at: None,
            established_count: 0,
            updates_received: 0,
            updates_sent: 0,
            label,
            reported_state: State::Idle,
            predecessor: None,
            start_at: None,
            start_waiting: false,
            carried_error: None,
            connect_started: None,
            connect_error: None,
        }
    }

    async fn run(&mut self, mut rx: mpsc::Receiver<NeighborMsg>) {
        loop {
            let deadline = self.session.next_deadline();
            let speaker = self.shared.events.clone();
            let room = self
                .conn
                .as_ref()
                .filter(|_| self.updates_waiting)
                .map(Connection::room_for_updates);
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => match self.on_message(msg, &mut rx) {
                        Some(Stop::Shutdown(notification, done)) => {
                            match notification {
                                Some(n) => self.stop(n).await,
                                None => self.leave_silently().await,
                            }
                            let _ = done.send(());
                            return;
                        }
                        Some(Stop::With(notification, successor)) => {
                            self.stop(notification).await;
                            let _ = successor.send(self.carried());
                            return;
                        }
                        None => {}
                    },
                    None => {
                        self.stop(Notification::cease(cease_sub::ADMINISTRATIVE_SHUTDOWN)).await;
                        return;
                    }
                },
                Ok(permit) = speaker.reserve(), if !self.outbox.is_empty() => {
                    permit.send(self.outbox.pop_front().expect("guarded"));
                    self.drain_outbox();
                }
                // Nothing more is read while the speaker has not taken what came before.
                Some(ev) = self.events_rx.recv(), if self.outbox.is_empty() => self.on_read(ev),
                _ = async { room.expect("guarded").await }, if room.is_some() => {
                    self.updates_waiting = false;
                    let since = self.waiting_since.take();
                    self.flush(since);
                    self.send_due_end_of_rib();
                }
                carried = async { self.predecessor.as_mut().expect("guarded").await }, if self.predecessor.is_some() => {
                    self.predecessor = None;
                    self.carry_on(carried.unwrap_or_default());
                }
                _ = sleep_until(self.start_at), if self.start_at.is_some() => {
                    self.start_at = None;
                    self.start_session();
                }
                res = async { self.connecting.as_mut().expect("guarded").await }, if self.connecting.is_some() => {
                    self.connecting = None;
                    self.on_connected(res);
                }
                _ = sleep_until(deadline), if deadline.is_some() => {
                    let actions = self.session.poll(Instant::now());
                    self.execute(actions);
                }
            }
            self.closing.retain(|h| !h.is_finished());
        }
    }

    /// Handles one message (and the route batches queued behind it); returns a stop
    /// met on the way, for `run` to carry out.
    fn on_message(
        &mut self,
        msg: NeighborMsg,
        rx: &mut mpsc::Receiver<NeighborMsg>,
    ) -> Option<Stop> {
        match msg {
            NeighborMsg::Start {
                table,
                end_of_rib_held,
            } => {
                self.adj_out = *table;
                self.end_of_rib_held = end_of_rib_held;
                self.start_waiting = true;
                if self.predecessor.is_none() && self.start_at.is_none() {
                    self.start_session();
                }
            }
            NeighborMsg::EndOfRib => {
                self.end_of_rib_due = std::mem::take(&mut self.end_of_rib_held)
                    && self.session.state() == State::Established;
                self.send_due_end_of_rib();
            }
            NeighborMsg::Replace(table) => {
                self.adj_out.replace_with(*table);
                self.flush(None);
            }
            NeighborMsg::Routes { changes, since } => {
                self.apply_routes(changes);
                let mut oldest = since;
                // Merge route batches already queued into the same flush.
                let mut deferred = None;
                for _ in 0..MAX_BATCHES_PER_FLUSH {
                    match rx.try_recv() {
                        Ok(NeighborMsg::Routes { changes, since }) => {
                            self.apply_routes(changes);
                            oldest = match (oldest, since) {
                                (Some(a), Some(b)) => Some(a.min(b)),
                                (a, b) => a.or(b),
                            };
                        }
                        Ok(other) => {
                            deferred = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                self.flush(oldest);
                if let Some(other) = deferred {
                    return self.on_message(other, rx);
                }
            }
            NeighborMsg::Inbound(stream) => self.on_inbound(stream),
            NeighborMsg::Status(reply) => {
                let _ = reply.send(self.status());
            }
            NeighborMsg::AdjRibOut(reply) => {
                let names = self.shared.sources.snapshot();
                let rows = self
                    .adj_out
                    .routes()
                    .map(|(p, a, s)| {
                        RouteRow::new(self.config.address, p, a, names.get(s as usize).cloned())
                    })
                    .collect();
                let _ = reply.send(rows);
            }
            NeighborMsg::Shutdown(notification, done) => {
                return Some(Stop::Shutdown(notification, done));
            }
            NeighborMsg::Cease {
                notification,
                restart,
            } => self.cease(notification, restart),
            NeighborMsg::Stop(notification, successor) => {
                return Some(Stop::With(notification, successor));
            }
            NeighborMsg::Reconfigure(config) => self.reconfigure(*config),
            NeighborMsg::Panic => panic!(
                "fault injection: `ctl debug panic neighbor {}`",
                self.config.address
            ),
        }
        None
    }

    fn apply_routes(&mut self, changes: Vec<RouteChange>) {
        for change in changes {
            self.adj_out.set(change.prefix, change.route);
        }
    }

    /// Sends pending Adj-RIB-Out changes if the session is up and its write queue has
    /// room (else they wait there, later changes replacing earlier ones).
    fn flush(&mut self, since: Option<Instant>) {
        if self.session.state() != State::Established {
            self.adj_out.clear_pending();
            self.updates_waiting = false;
            self.waiting_since = None;
            return;
        }
        if !self.adj_out.has_pending() {
            return;
        }
        if self
            .conn
            .as_ref()
            .is_some_and(|c| !c.has_room_for_updates())
        {
            self.updates_waiting = true;
            self.waiting_since = match (self.waiting_since, since) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            return;
        }
        let mut out = Vec::new();
        let stats =
            self.adj_out
                .flush_pending(&self.packer, &self.policy, &self.families, &mut out);
        self.record_sent(stats);
        if let Some(c) = &self.conn {
            c.send_since(out, since);
        }
    }

    /// Sends the End-of-RIBs held back, once every route before them has left.
    fn send_due_end_of_rib(&mut self) {
        if !self.end_of_rib_due || self.session.state() != State::Established {
            return;
        }
        self.flush(None);
        if self.updates_waiting {
            return;
        }
        self.end_of_rib_due = false;
        let mut out = Vec::new();
        for family in &self.families {
            self.packer.end_of_rib(*family, &mut out);
        }
        info!(neighbor = %self.label, "sent the End-of-RIB held for the health checks");
        self.send_bytes(out);
    }

    /// Tells the speaker `event`, after what it has not taken yet.
    fn report(&mut self, event: NeighborEvent) {
        self.outbox.push_back(event);
        self.drain_outbox();
    }

    /// Hands the speaker what fits in its queue, in order.
    fn drain_outbox(&mut self) {
        use tokio::sync::mpsc::error::TrySendError;
        while let Some(event) = self.outbox.pop_front() {
            match self.shared.events.try_send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(event)) => {
                    self.outbox.push_front(event);
                    return;
                }
                // The speaker is gone: wasmbgp is stopping.
                Err(TrySendError::Closed(_)) => {
                    self.outbox.clear();
                    return;
                }
            }
        }
    }

    fn record_sent(&mut self, stats: wasmbgp_bgp::rib::FlushStats) {
        self.updates_sent += stats.messages as u64;
        self.shared.metrics.updates_sent(&self.label, &stats);
        if stats.skipped > 0 {
            warn!(neighbor = %self.label, skipped = stats.skipped, "routes without a usable next hop for their family were not sent");
        }
    }

    fn send_bytes(&self, bytes: Vec<u8>) {
        if let Some(c) = &self.conn
            && !c.send(bytes)
        {
            warn!(neighbor = %self.label, "the peer reads nothing: its write queue is full, a message was dropped");
        }
    }

    fn on_inbound(&mut self, stream: TcpStream) {
        if let Some(hops) = self.config.ttl_security {
            // GTSM: the SYN must have come at most `hops` away (TTL ≥ 256 - hops);
            // checked before a byte is read, since what the peer already sent is
            // queued whatever minimum TTL the accepted socket gets now.
            let min = 256 - u16::from(hops.max(1));
            match super::sockopt::syn_ttl(&stream) {
                Ok(Some(ttl)) if u16::from(ttl) < min => {
                    warn!(neighbor = %self.label, ttl, min, "refused a connection: ttl-security (GTSM) wants the peer at most {hops} hop(s) away");
                    // The close leaves with TTL 255, so that a peer checking TTLs
                    // itself sees it and does not wait on a dead connection.
                    let _ = super::sockopt::set_ttl_security(
                        &stream,
                        self.config.address.is_ipv6(),
                        hops,
                    );
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    warn!(neighbor = %self.label, error = %e, "refused a connection: cannot read its SYN's TTL for ttl-security");
                    return;
                }
            }
            if let Err(e) =
                super::sockopt::set_ttl_security(&stream, self.config.address.is_ipv6(), hops)
            {
                warn!(neighbor = %self.label, error = %e, "cannot apply ttl-security to an accepted connection");
                return;
            }
        }
        let events = self.events_tx.clone();
        let Ok(conn) = Connection::start(stream, false, events, self.shared.metrics.clone()) else {
            return;
        };
        match self.session.state() {
            State::Idle => {
                drop(conn.close());
            }
            State::Connect | State::Active => {
                if let Some(c) = self.connecting.take() {
                    c.abort();
                }
                self.connect_error = None;
                info!(neighbor = %self.label, remote = %conn.remote, "accepted connection");
                self.conn = Some(conn);
                let actions = self.session.handle(Instant::now(), Event::TcpConnected);
                self.execute(actions);
            }
            State::OpenSent | State::OpenConfirm if self.pending.is_none() => {
                debug!(neighbor = %self.label, "inbound connection while opening: waiting for its OPEN to resolve the collision");
                self.pending = Some(conn);
            }
            State::Established
                if self.session.graceful_restart_negotiated() && self.pending.is_none() =>
            {
                // RFC 4724 §4.2: with graceful restart, the peer may have restarted; its
                // OPEN tells (`Session::peer_restarted`), else it is a collision.
                debug!(neighbor = %self.label, remote = %conn.remote, "inbound connection while established: waiting for its OPEN (restart or collision)");
                self.pending = Some(conn);
            }
            _ => {
                info!(neighbor = %self.label, "refusing a second connection (collision with an established session)");
                conn.send(
                    Message::Notification(session::collision_notification())
                        .to_bytes(&Context::default()),
                );
                self.closing.push(conn.close());
            }
        }
    }

    fn on_connected(&mut self, res: Result<std::io::Result<TcpStream>, tokio::task::JoinError>) {
        if self.session.state() != State::Connect {
            return;
        }
        self.connect_error = None;
        let result = match res {
            Ok(Ok(stream)) => Connection::start(
                stream,
                true,
                self.events_tx.clone(),
                self.shared.metrics.clone(),
            ),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        };
        let actions = match result {
            Ok(conn) => {
                debug!(neighbor = %self.label, local = %conn.local, "connected");
                self.conn = Some(conn);
                self.session.handle(Instant::now(), Event::TcpConnected)
            }
            Err(e) => {
                let hint = if e.kind() == std::io::ErrorKind::TimedOut {
                    self.md5_hint()
                } else {
                    ""
                };
                debug!(neighbor = %self.label, error = %e, "connect failed{hint}");
                self.session.handle(
                    Instant::now(),
                    Event::TcpFailed(format!("connect: {e}{hint}")),
                )
            }
        };
        self.execute(actions);
    }

    fn on_read(&mut self, ev: ReadEvent) {
        let current = self.conn.as_ref().map(|c| c.id);
        let pending = self.pending.as_ref().map(|c| c.id);
        match ev {
            ReadEvent::Messages(id, bytes) if Some(id) == current => self.on_bytes(bytes),
            ReadEvent::Messages(id, bytes) if Some(id) == pending => self.on_pending_bytes(bytes),
            ReadEvent::Malformed(id, e) if Some(id) == current => {
                warn!(neighbor = %self.label, error = %e, "malformed message header");
                let actions = self.session.handle(Instant::now(), Event::DecodeError(e));
                self.execute(actions);
            }
            ReadEvent::Closed(id, why) if Some(id) == current => {
                let actions = self.session.handle(Instant::now(), Event::TcpFailed(why));
                self.execute(actions);
            }
            ReadEvent::Malformed(id, _) | ReadEvent::Closed(id, _) if Some(id) == pending => {
                if let Some(p) = self.pending.take() {
                    self.closing.push(p.close());
                }
            }
            _ => {} // from a connection already closed
        }
    }

    fn on_bytes(&mut self, bytes: Bytes) {
        let id = self.conn.as_ref().map(|c| c.id);
        for msg in connection::split_messages(&bytes) {
            if self.conn.as_ref().map(|c| c.id) != id {
                return; // the connection was dropped while handling an earlier message
            }
            self.on_wire_message(&msg);
        }
        self.flush(None);
    }

    fn on_wire_message(&mut self, msg: &[u8]) {
        let ctx = self
            .session
            .negotiated()
            .map(|n| n.context)
            .unwrap_or_default();
        let event = match packet::decode(msg, &ctx) {
            Ok(m) => {
                self.shared.metrics.message_received(&self.label, m.kind());
                if let Message::Notification(n) = &m {
                    match n.shutdown_communication() {
                        Some(message) => {
                            warn!(neighbor = %self.label, notification = %n.describe(), %message, "received NOTIFICATION")
                        }
                        None => {
                            warn!(neighbor = %self.label, notification = %n.describe(), data = ?String::from_utf8_lossy(&n.data), "received NOTIFICATION")
                        }
                    }
                    self.notification(n, false);
                }
                Event::Message(m)
            }
            Err(e) => {
                warn!(neighbor = %self.label, error = %e, "malformed message");
                Event::DecodeError(e)
            }
        };
        let actions = self.session.handle(Instant::now(), event);
        self.execute(actions);
    }

    /// The first message on an inbound connection that arrived while established (with
    /// graceful restart): the peer restarted, and its new connection replaces the session
    /// (its routes kept stale), or it collided with the established session and is
    /// closed (RFC 4271 §6.8).
    fn on_pending_open_while_established(
        &mut self,
        pending: Connection,
        open: Option<Open>,
        rest: Vec<Bytes>,
    ) {
        let now = Instant::now();
        let Some(open) = open.filter(|o| self.session.peer_restarted(now, o)) else {
            info!(neighbor = %self.label, remote = %pending.remote, "refusing a second connection (collision with an established session)");
            pending.send(
                Message::Notification(session::collision_notification())
                    .to_bytes(&Context::default()),
            );
            self.closing.push(pending.close());
            return;
        };
        info!(neighbor = %self.label, remote = %pending.remote, "the peer connected again while established: it restarted (graceful restart)");
        let actions = self.session.handle(
            now,
            Event::TcpFailed("the peer restarted: it opened a new connection".into()),
        );
        self.execute(actions);
        if let Some(old) = self.conn.take() {
            self.closing.push(old.close());
        }
        self.conn = Some(pending);
        let mut actions = self.session.handle(now, Event::TcpConnected);
        actions.extend(
            self.session
                .handle(now, Event::Message(Message::Open(open))),
        );
        self.execute(actions);
        for m in rest {
            self.on_wire_message(&m);
        }
    }

    /// The first message on an inbound connection that collided with ours.
    fn on_pending_bytes(&mut self, bytes: Bytes) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        let mut messages = connection::split_messages(&bytes);
        let first = messages.next();
        let open = first
            .as_ref()
            .and_then(|m| match packet::decode(m, &Context::default()) {
                Ok(Message::Open(o)) => Some(o),
                _ => None,
            });
        if self.session.state() == State::Established {
            return self.on_pending_open_while_established(pending, open, messages.collect());
        }
        let still_opening = matches!(self.session.state(), State::OpenSent | State::OpenConfirm);
        let Some(open) = open.filter(|_| still_opening) else {
            pending.send(
                Message::Notification(session::collision_notification())
                    .to_bytes(&Context::default()),
            );
            self.closing.push(pending.close());
            return;
        };
        let existing_outbound = self.conn.as_ref().is_some_and(|c| c.outbound);
        if session::collision_keeps_existing(self.shared.router_id, open.bgp_id, existing_outbound)
        {
            info!(neighbor = %self.label, "connection collision: keeping the existing connection");
            pending.send(
                Message::Notification(session::collision_notification())
                    .to_bytes(&Context::default()),
            );
            self.closing.push(pending.close());
            return;
        }
        info!(neighbor = %self.label, "connection collision: keeping the peer's connection");
        if let Some(old) = self.conn.take() {
            old.send(
                Message::Notification(session::collision_notification())
                    .to_bytes(&Context::default()),
            );
            self.closing.push(old.close());
        }
        self.conn = Some(pending);
        let now = Instant::now();
        let mut actions = self.session.handle(now, Event::TcpConnected);
        actions.extend(
            self.session
                .handle(now, Event::Message(Message::Open(open))),
        );
        self.execute(actions);
        let rest: Vec<Bytes> = messages.collect();
        for m in rest {
            self.on_wire_message(&m);
        }
    }

    /// Counts a NOTIFICATION and tells the speaker (for exporters).
    fn notification(&mut self, n: &Notification, sent: bool) {
        self.shared
            .metrics
            .notification(&self.label, sent, n.code, n.subcode);
        self.report(NeighborEvent::Notification {
            neighbor: self.id,
            sent,
            notification: n.clone(),
        });
    }

    /// Tells the speaker when the session's state changed since it was last told.
    fn report_state(&mut self) {
        let state = self.session.state();
        if state == self.reported_state {
            return;
        }
        let old = std::mem::replace(&mut self.reported_state, state);
        self.report(NeighborEvent::State {
            neighbor: self.id,
            old,
            new: state,
            reason: self.session.last_error().unwrap_or_default().to_string(),
        });
    }

    fn execute(&mut self, actions: Vec<Action>) {
        self.execute_actions(actions);
        self.report_state();
    }

    fn execute_actions(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Connect => {
                    let remote = SocketAddr::new(self.config.address, self.config.port);
                    let local = self.config.local_address;
                    let timeout = Duration::from_secs(5);
                    self.abandon_connect();
                    self.connect_started = Some(Instant::now());
                    self.connecting = Some(tokio::spawn(connection::connect(
                        remote,
                        local,
                        connection::Protection {
                            md5: self.config.md5.clone(),
                            ttl_security: self.config.ttl_security,
                        },
                        timeout,
                    )));
                }
                Action::Send(msg) => {
                    let ctx = self
                        .session
                        .negotiated()
                        .map(|n| n.context)
                        .unwrap_or_default();
                    if let Message::Notification(n) = &msg {
                        warn!(neighbor = %self.label, notification = %n.describe(), "sending NOTIFICATION");
                        self.notification(n, true);
                    }
                    self.shared.metrics.message_sent(&self.label, msg.kind());
                    self.send_bytes(msg.to_bytes(&ctx));
                }
                Action::Disconnect => {
                    self.abandon_connect();
                    if let Some(c) = self.conn.take() {
                        self.closing.push(c.close());
                    }
                }
                Action::Established(neg) => self.on_established(neg),
                Action::Down { reason, stale } => {
                    if stale.is_empty() {
                        warn!(neighbor = %self.label, %reason, "session down");
                    } else {
                        warn!(neighbor = %self.label, %reason, families = ?stale.iter().map(|f| f.name()).collect::<Vec<_>>(), "session down; the peer's routes stay, marked stale, while it restarts (graceful restart)");
                    }
                    self.report(NeighborEvent::Down {
                        neighbor: self.id,
                        stale,
                    });
                    self.established_at = None;
                    self.families.clear();
                    self.shared.metrics.session_state(
                        &self.label,
                        self.shared.local_as,
                        self.config.peer_as,
                        false,
                    );
                }
                Action::StaleEnd(families) => {
                    info!(neighbor = %self.label, families = ?families.iter().map(|f| f.name()).collect::<Vec<_>>(), "removing the routes the peer did not send again (graceful restart over)");
                    self.report(NeighborEvent::StaleEnd {
                        neighbor: self.id,
                        families,
                    });
                }
                Action::Update(u) => {
                    self.updates_received += 1;
                    if let Some(why) = &u.treat_as_withdraw {
                        warn!(neighbor = %self.label, reason = %why, "malformed UPDATE treated as withdraw (RFC 7606)");
                        self.shared.metrics.treat_as_withdraw(&self.label);
                    }
                    for d in &u.discarded {
                        debug!(neighbor = %self.label, attribute = %d, "attribute discarded (RFC 7606)");
                    }
                    self.report(NeighborEvent::Update {
                        neighbor: self.id,
                        update: Box::new(u),
                    });
                }
                Action::Refresh(family) => {
                    info!(neighbor = %self.label, %family, "route refresh requested");
                    let mut out = Vec::new();
                    let stats = self.adj_out.encode_full(
                        &self.packer,
                        &self.policy,
                        &[family],
                        EndOfRib::Send,
                        &mut out,
                    );
                    self.record_sent(stats);
                    self.send_bytes(out);
                }
            }
        }
    }

    fn on_established(&mut self, neg: session::Negotiated) {
        let local = self.conn.as_ref().map(|c| c.local.ip());
        let mapped = |ip: IpAddr| match ip {
            IpAddr::V4(a) => a.to_ipv6_mapped(),
            IpAddr::V6(a) => a,
        };
        self.policy.next_hop_v4 = match local {
            Some(IpAddr::V4(a)) => Some(a),
            _ => None,
        };
        self.policy.next_hop_v6 = self.config.next_hop_ipv6.or(local.map(mapped));
        self.packer = UpdatePacker::new(neg.context);
        self.families = neg.families.clone();
        self.established_at = Some(Instant::now());
        self.established_count += 1;
        info!(
            neighbor = %self.label,
            peer_id = %neg.peer_id,
            hold_time = neg.hold_time,
            families = ?neg.families.iter().map(|f| f.name()).collect::<Vec<_>>(),
            "session established"
        );
        let mut out = Vec::new();
        let started = Instant::now();
        self.end_of_rib_due = false;
        let end_of_rib = if self.end_of_rib_held {
            EndOfRib::Hold
        } else {
            EndOfRib::Send
        };
        let stats = self.adj_out.encode_full(
            &self.packer,
            &self.policy,
            &self.families,
            end_of_rib,
            &mut out,
        );
        self.record_sent(stats);
        info!(
            neighbor = %self.label,
            routes = stats.announced,
            messages = stats.messages,
            bytes = out.len(),
            encode_ms = started.elapsed().as_secs_f64() * 1e3,
            "sent the Adj-RIB-Out"
        );
        self.send_bytes(out);
        self.shared.metrics.session_state(
            &self.label,
            self.shared.local_as,
            self.config.peer_as,
            true,
        );
    }

    /// Ends the session with `notification` (the peer sent too many prefixes) and
    /// starts a new one after `restart`, or leaves it down.
    fn cease(&mut self, notification: Notification, restart: Option<Duration>) {
        warn!(neighbor = %self.label, notification = %notification.describe(), restart_in = ?restart, "ending the session");
        let actions = self
            .session
            .handle(Instant::now(), Event::Stop(notification));
        self.execute(actions);
        if let Some(delay) = restart {
            self.start_waiting = true;
            self.start_at = Some(Instant::now() + delay);
        }
    }

    /// Gives up a connect attempt still in flight (the retry timer ran out before it
    /// ended): that silence is all there is to report, so it becomes the last error.
    fn abandon_connect(&mut self) {
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
            self.md5_hint()
        );
        debug!(neighbor = %self.label, %error, "connect attempt given up");
        self.connect_error = Some(error);
    }

    /// What a connect that got no answer may mean: a peer with another TCP-MD5 key (or
    /// none) drops our signed SYNs without a word.
    fn md5_hint(&self) -> &'static str {
        if self.config.md5.is_some() {
            " (TCP-MD5 is set: a peer with another key, or none, drops the connection silently)"
        } else {
            ""
        }
    }

    /// Starts the session once it has its Adj-RIB-Out and no predecessor is in the way.
    fn start_session(&mut self) {
        if !std::mem::take(&mut self.start_waiting) {
            return;
        }
        let actions = self.session.handle(Instant::now(), Event::Start);
        self.execute(actions);
    }

    /// The predecessor closed its connection: take over its counters, and start after a
    /// connect-retry delay.
    fn carry_on(&mut self, carried: Carried) {
        self.established_count += carried.established_count;
        self.updates_received += carried.updates_received;
        self.updates_sent += carried.updates_sent;
        self.carried_error = carried.last_error;
        self.start_at = Some(Instant::now() + self.config.connect_retry);
    }

    /// What a successor carries on.
    fn carried(&self) -> Carried {
        Carried {
            established_count: self.established_count,
            updates_received: self.updates_received,
            updates_sent: self.updates_sent,
            last_error: self.session.last_error().map(str::to_string),
        }
    }

    /// Takes settings that need no new session (the speaker decided which).
    fn reconfigure(&mut self, config: NeighborConfig) {
        info!(neighbor = %self.label, "settings changed; the session carries on");
        self.session
            .set_connect_retry(config.connect_retry, config.connect_retry_max);
        self.config = config;
    }

    /// Sends `notification` (if a session is open), closes, and waits briefly for the
    /// bytes to leave.
    async fn stop(&mut self, notification: Notification) {
        let actions = self
            .session
            .handle(Instant::now(), Event::Stop(notification));
        self.execute(actions);
        if let Some(p) = self.pending.take() {
            self.closing.push(p.close());
        }
        self.await_closing().await;
    }

    /// Waits briefly for the connections being closed to send what they queued.
    async fn await_closing(&mut self) {
        for h in std::mem::take(&mut self.closing) {
            let _ = tokio::time::timeout(FLUSH_WAIT, h).await;
        }
    }

    /// Closes the connection without a NOTIFICATION and without telling the session:
    /// wasmbgp stops for a graceful restart, and to the peer this looks like its
    /// process ending, so it keeps the routes.
    async fn leave_silently(&mut self) {
        if let Some(c) = self.connecting.take() {
            c.abort();
        }
        let connections = [self.conn.take(), self.pending.take()];
        for c in connections.into_iter().flatten() {
            self.closing.push(c.close());
        }
        info!(neighbor = %self.label, "closed without a NOTIFICATION (graceful restart): the peer keeps our routes until we are back");
        self.await_closing().await;
    }

    fn status(&self) -> NeighborStatus {
        let sent = if self.session.state() == State::Established {
            self.families
                .iter()
                .map(|f| self.adj_out.len_family(*f))
                .sum()
        } else {
            0
        };
        NeighborStatus {
            address: self.config.address,
            port: self.config.port,
            peer_as: self.config.peer_as,
            local_as: self.shared.local_as,
            description: self.config.description.clone(),
            state: self.session.state().name().to_string(),
            uptime_secs: self.established_at.map(|t| t.elapsed().as_secs_f64()),
            established_count: self.established_count,
            // The speaker owns the Adj-RIB-In and fills this in.
            prefixes_received: 0,
            stale_routes: 0,
            prefixes_sent: sent,
            adj_rib_out: self.adj_out.len(),
            updates_received: self.updates_received,
            updates_sent: self.updates_sent,
            // The newest first: an unanswered connect is cleared by any later outcome.
            last_error: self
                .connect_error
                .clone()
                .or_else(|| self.session.last_error().map(str::to_string))
                .or_else(|| self.carried_error.clone()),
            families: self.families.iter().map(|f| f.name()).collect(),
            peer_id: self.session.negotiated().map(|n| n.peer_id.to_string()),
            md5: self.config.md5.as_ref().map(|_| "set".to_string()),
            // The speaker owns the Adj-RIB-In and fills this in.
            prefix_limits: Vec::new(),
        }
    }
}

/// Why a neighbor task stops.
enum Stop {
    /// The daemon stops: send this (or nothing, for a graceful restart), and answer
    /// when done.
    Shutdown(Option<Notification>, oneshot::Sender<()>),
    /// Removed or replaced by a reload: send this, end, and hand the successor (if
    /// any) what it carries on.
    With(Notification, oneshot::Sender<Carried>),
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
