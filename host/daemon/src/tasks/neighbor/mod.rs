//! The task of one neighbor, in two parts: this module is the session glue (it owns the
//! session machine, feeds it the messages its connection decoded, carries out what it
//! decides, and sends what the speaker gives it), and [`transport`] owns the
//! connections (connecting, accepting, which of two colliding connections lives). It
//! keeps the copy of its Adj-RIB-Out (after export policy) that it resends when the
//! session comes up or the peer asks for a refresh; what goes in it is the speaker's
//! decision. UPDATEs received go to the speaker, which owns the Adj-RIB-In.
//!
//! The task never waits on anyone: what it tells the speaker goes through an outbox
//! drained into the bounded [`NEIGHBOR_EVENT_QUEUE`] as room appears, and while the
//! outbox is not empty the task reads nothing more from its connection (so a slow
//! speaker slows the peer down through TCP, not memory). UPDATEs to send wait in the
//! Adj-RIB-Out while the connection's write queue is full.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};
use wasmbgp_bgp::Family;
use wasmbgp_bgp::packet::notification::cease_sub;
use wasmbgp_bgp::packet::{Context, DecodeError, Message, Notification, UpdatePacker};
use wasmbgp_bgp::rib::{AdjRibOut, EndOfRib, ExportPolicy};
use wasmbgp_bgp::session::{self, Action, Event, Session, SessionConfig, State};

use super::connection::Connection;
use super::critical::CriticalTasks;
use super::messages::{Carried, NeighborEvent, NeighborId, NeighborMsg, RouteChange};
use super::sources::Sources;
use crate::config::NeighborConfig;
use crate::ctl::json::{NeighborStatus, RouteRow};
use crate::metrics::Metrics;
use transport::{Accepted, Happened, Read, Settled, Transport};

mod transport;

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
        n.start.predecessor = predecessor;
        n.run(rx).await;
    });
    handle
}

/// How many queued route batches are merged into one flush.
const MAX_BATCHES_PER_FLUSH: usize = 64;

struct Neighbor {
    config: NeighborConfig,
    /// Tags what it reports.
    id: NeighborId,
    shared: Shared,
    session: Session,
    adj_out: AdjRibOut,
    transport: Transport,
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
    packer: UpdatePacker,
    policy: ExportPolicy,
    families: Vec<Family>,
    established_at: Option<Instant>,
    /// Sessions and UPDATEs counted across resets (`last_error`: why the predecessor's
    /// last session ended, until this task has a reason of its own).
    counts: Carried,
    label: String,
    /// The session state last reported to the speaker.
    reported_state: State,
    /// When the session may start.
    start: StartGate,
}

/// What a neighbor's session waits for before it starts: its initial Adj-RIB-Out, the
/// task it replaces to have closed its connection, and then a connect-retry delay (or
/// the restart delay after a Cease for too many prefixes).
#[derive(Default)]
struct StartGate {
    /// The task this one replaces, until it has closed its connection.
    predecessor: Option<oneshot::Receiver<Carried>>,
    /// When the session may start (the predecessor gone, a delay later).
    at: Option<Instant>,
    /// The initial Adj-RIB-Out arrived (or a restart is due): start once nothing else
    /// is in the way.
    waiting: bool,
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
        let policy = ExportPolicy {
            local_as: shared.local_as,
            ebgp: config.peer_as != shared.local_as,
            next_hop_v4: None,
            next_hop_v6: None,
        };
        let label = config.address.to_string();
        let transport = Transport::new(label.clone(), shared.metrics.clone());
        Neighbor {
            config,
            id,
            shared,
            session,
            adj_out: AdjRibOut::new(),
            transport,
            outbox: VecDeque::new(),
            end_of_rib_held: false,
            end_of_rib_due: false,
            updates_waiting: false,
            waiting_since: None,
            packer: UpdatePacker::new(Context::default()),
            policy,
            families: Vec::new(),
            established_at: None,
            counts: Carried::default(),
            label,
            reported_state: State::Idle,
            start: StartGate::default(),
        }
    }

    async fn run(&mut self, mut rx: mpsc::Receiver<NeighborMsg>) {
        loop {
            let deadline = self.session.next_deadline();
            let speaker = self.shared.events.clone();
            let room = self
                .transport
                .conn()
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
                happened = self.transport.next(self.outbox.is_empty()) => match happened {
                    Happened::Read(ev) => self.on_read(ev),
                    Happened::Connected(res) => self.on_connected(res),
                },
                _ = async { room.expect("guarded").await }, if room.is_some() => {
                    self.updates_waiting = false;
                    let since = self.waiting_since.take();
                    self.flush(since);
                    self.send_due_end_of_rib();
                }
                carried = async { self.start.predecessor.as_mut().expect("guarded").await }, if self.start.predecessor.is_some() => {
                    self.start.predecessor = None;
                    self.carry_on(carried.unwrap_or_default());
                }
                _ = sleep_until(self.start.at), if self.start.at.is_some() => {
                    self.start.at = None;
                    self.start_session();
                }
                _ = sleep_until(deadline), if deadline.is_some() => {
                    let actions = self.session.poll(Instant::now());
                    self.execute(actions);
                }
            }
            self.transport.reap();
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
                self.start.waiting = true;
                if self.start.predecessor.is_none() && self.start.at.is_none() {
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
            .transport
            .conn()
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
        self.transport.send_since(out, since);
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
        self.counts.updates_sent += stats.messages as u64;
        self.shared.metrics.updates_sent(&self.label, &stats);
        if stats.skipped > 0 {
            warn!(neighbor = %self.label, skipped = stats.skipped, "routes without a usable next hop for their family were not sent");
        }
    }

    fn send_bytes(&self, bytes: Vec<u8>) {
        self.transport.send(bytes);
    }

    fn on_inbound(&mut self, stream: TcpStream) {
        if let Accepted::Adopted = self.transport.accept(stream, &self.config, &self.session) {
            let actions = self.session.handle(Instant::now(), Event::TcpConnected);
            self.execute(actions);
        }
    }

    fn on_connected(&mut self, res: transport::ConnectResult) {
        if self.session.state() != State::Connect {
            return;
        }
        let event = match self.transport.on_connected(res, &self.config) {
            Ok(()) => Event::TcpConnected,
            Err(why) => Event::TcpFailed(why),
        };
        let actions = self.session.handle(Instant::now(), event);
        self.execute(actions);
    }

    fn on_read(&mut self, ev: super::connection::ReadEvent) {
        match self.transport.classify(ev) {
            Read::Messages(messages) => self.on_messages(messages),
            Read::Pending(messages) => self.on_pending(messages),
            Read::Malformed(e) => self.on_decode_error(e),
            Read::Closed(why) => {
                let actions = self.session.handle(Instant::now(), Event::TcpFailed(why));
                self.execute(actions);
            }
            Read::Nothing => {}
        }
    }

    fn on_messages(&mut self, messages: Vec<Message>) {
        let id = self.transport.conn().map(|c| c.id);
        for message in messages {
            if self.transport.conn().map(|c| c.id) != id {
                return; // the connection was dropped while handling an earlier message
            }
            self.on_wire_message(message);
        }
        self.flush(None);
    }

    fn on_wire_message(&mut self, message: Message) {
        self.shared
            .metrics
            .message_received(&self.label, message.kind());
        if let Message::Notification(n) = &message {
            match n.shutdown_communication() {
                Some(text) => {
                    warn!(neighbor = %self.label, notification = %n.describe(), message = %text, "received NOTIFICATION")
                }
                None => {
                    warn!(neighbor = %self.label, notification = %n.describe(), data = ?String::from_utf8_lossy(&n.data), "received NOTIFICATION")
                }
            }
            self.notification(n, false);
        }
        let actions = self.session.handle(Instant::now(), Event::Message(message));
        self.execute(actions);
    }

    fn on_decode_error(&mut self, e: DecodeError) {
        warn!(neighbor = %self.label, error = %e, "malformed message");
        let actions = self.session.handle(Instant::now(), Event::DecodeError(e));
        self.execute(actions);
    }

    /// The first messages of an inbound connection waiting for its OPEN: a collision
    /// or the peer's restart, as the transport settles it.
    fn on_pending(&mut self, messages: Vec<Message>) {
        let now = Instant::now();
        let (open, rest) =
            match self
                .transport
                .settle(messages, &self.session, self.shared.router_id)
            {
                Settled::Refused => return,
                Settled::Restarted(conn, open, rest) => {
                    let actions = self.session.handle(
                        now,
                        Event::TcpFailed("the peer restarted: it opened a new connection".into()),
                    );
                    self.execute(actions);
                    self.transport.adopt(conn);
                    (open, rest)
                }
                Settled::Won(open, rest) => (open, rest),
            };
        let mut actions = self.session.handle(now, Event::TcpConnected);
        actions.extend(
            self.session
                .handle(now, Event::Message(Message::Open(open))),
        );
        self.execute(actions);
        self.on_messages(rest);
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
        // The reader of a new connection waits for this after the peer's OPEN.
        if let Some(n) = self.session.negotiated() {
            self.transport.negotiated(n.context);
        }
    }

    fn execute_actions(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Connect => self.transport.connect(&self.config),
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
                Action::Disconnect => self.transport.disconnect(&self.config),
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
                    self.counts.updates_received += 1;
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
        let local = self.transport.conn().map(|c| c.local.ip());
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
        self.counts.established_count += 1;
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
            self.start.waiting = true;
            self.start.at = Some(Instant::now() + delay);
        }
    }

    /// Starts the session once it has its Adj-RIB-Out and no predecessor is in the way.
    fn start_session(&mut self) {
        if !std::mem::take(&mut self.start.waiting) {
            return;
        }
        let actions = self.session.handle(Instant::now(), Event::Start);
        self.execute(actions);
    }

    /// The predecessor closed its connection: take over its counters, and start after a
    /// connect-retry delay.
    fn carry_on(&mut self, carried: Carried) {
        self.counts.established_count += carried.established_count;
        self.counts.updates_received += carried.updates_received;
        self.counts.updates_sent += carried.updates_sent;
        self.counts.last_error = carried.last_error;
        self.start.at = Some(Instant::now() + self.config.connect_retry);
    }

    /// What a successor carries on.
    fn carried(&self) -> Carried {
        Carried {
            last_error: self.session.last_error().map(str::to_string),
            ..self.counts.clone()
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
        self.transport.close().await;
    }

    /// Closes the connection without a NOTIFICATION and without telling the session:
    /// wasmbgp stops for a graceful restart, and to the peer this looks like its
    /// process ending, so it keeps the routes.
    async fn leave_silently(&mut self) {
        self.transport.close_silently().await;
        info!(neighbor = %self.label, "closed without a NOTIFICATION (graceful restart): the peer keeps our routes until we are back");
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
            established_count: self.counts.established_count,
            // The speaker owns the Adj-RIB-In and fills this in.
            prefixes_received: 0,
            stale_routes: 0,
            prefixes_sent: sent,
            adj_rib_out: self.adj_out.len(),
            updates_received: self.counts.updates_received,
            updates_sent: self.counts.updates_sent,
            // The newest first: an unanswered connect is cleared by any later outcome.
            last_error: self
                .transport
                .connect_error()
                .map(str::to_string)
                .or_else(|| self.session.last_error().map(str::to_string))
                .or_else(|| self.counts.last_error.clone()),
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
