//! A minimal BGP receiver for the tests: it brings up one session at a time
//! with a speaker, sends nothing but OPEN, KEEPALIVEs and (on a protocol
//! error or when stopped) a NOTIFICATION, and records every message the
//! speaker sends. A test reads how many UPDATEs arrived and, per prefix, how
//! often it was announced and withdrawn and with which attributes, so that
//! "nothing reached the wire" can be asserted exactly (BIRD's counters say
//! how many routes changed, not how many UPDATE messages carried them).
//!
//! It uses the codec of `wasmbgp-bgp` (`packet::frame_len` and `decode`,
//! which never panic on input) and plain std threads: one thread per
//! recorder accepts (or opens) a connection, runs the session until it ends,
//! then accepts (or reconnects) again, so a session reset shows up as a
//! second OPEN.
//!
//! Every wait is bounded: reads time out every [`TICK`] so that keepalives,
//! the hold timer and [`Recorder`]'s drop are served, and the thread ends
//! after [`MAX_LIFETIME`] whatever happens.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use wasmbgp_bgp::packet::notification::code;
use wasmbgp_bgp::packet::{self, Capability, Context, Message, MpNlri, Notification, Open, Update};
use wasmbgp_bgp::{Family, PathAttributes, Prefix};

use crate::process::Worker;
use crate::wait::bind_retrying;

/// How often the session thread wakes up when nothing arrives.
pub const TICK: Duration = Duration::from_millis(50);
/// The hold time the recorder proposes, in seconds.
pub const HOLD_TIME: u16 = 30;
/// How long a recorder's thread runs at most (a test that forgets to drop it
/// does not leave it running).
pub const MAX_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Delay between two connection attempts of an active recorder.
const CONNECT_RETRY: Duration = Duration::from_millis(500);
/// Bound on a write to the speaker (an OPEN, a KEEPALIVE, a NOTIFICATION).
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// Bytes read from the socket at once.
const READ_CHUNK: usize = 64 * 1024;

/// Message counters over the recorder's life (or since [`Recorder::reset_counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// OPENs received: one per session the speaker started.
    pub opens: u64,
    /// KEEPALIVEs received.
    pub keepalives: u64,
    /// UPDATE messages received, End-of-RIB markers included.
    pub updates: u64,
    /// End-of-RIB markers among them.
    pub end_of_ribs: u64,
    /// Prefixes announced, summed over the UPDATEs.
    pub announced: u64,
    /// Prefixes withdrawn, summed over the UPDATEs.
    pub withdrawn: u64,
    /// NOTIFICATIONs received.
    pub notifications: u64,
    /// ROUTE-REFRESH messages received.
    pub route_refreshes: u64,
}

/// What the recorder knows of one prefix.
#[derive(Debug, Clone, Default)]
pub struct PrefixRecord {
    /// Times it was announced (since [`Recorder::reset_counts`]).
    pub announced: u64,
    /// Times it was withdrawn (since [`Recorder::reset_counts`]).
    pub withdrawn: u64,
    /// Whether the last UPDATE naming it announced it.
    pub reachable: bool,
    /// The attributes of its last announcement (shared by every prefix of
    /// that UPDATE).
    pub attributes: Option<Arc<PathAttributes>>,
}

/// Everything recorded, behind the recorder's lock.
#[derive(Debug, Default)]
struct Record {
    counts: Counts,
    prefixes: HashMap<Prefix, PrefixRecord>,
    /// NOTIFICATIONs received, in order.
    notifications: Vec<Notification>,
    /// Why sessions ended or what the recorder refused, in order.
    errors: Vec<String>,
    /// The speaker's OPEN of the current session, once received.
    peer_open: Option<Open>,
    /// The current session has exchanged OPEN and KEEPALIVE both ways.
    established: bool,
    /// Whole messages to send on the current session, as given (a test's crafted,
    /// possibly malformed, UPDATEs).
    outbox: Vec<Vec<u8>>,
    /// Whether whole received messages are kept in `raw` ([`Recorder::keep_raw`]).
    keep_raw: bool,
    /// Every whole message received since [`Recorder::keep_raw`], header included,
    /// as received (decodable or not), in order.
    raw: Vec<Vec<u8>>,
}

/// Who opens the TCP connection.
#[derive(Debug)]
enum Role {
    /// The recorder listens (non-blocking); the speaker connects (a wasmbgp
    /// neighbor with `port = N`).
    Listen(TcpListener),
    /// The recorder connects from `local` to the speaker's `remote`
    /// (a wasmbgp neighbor with `passive = true`).
    Connect { local: IpAddr, remote: SocketAddr },
}

/// Identity of the recorder in its OPEN.
#[derive(Debug, Clone, Copy)]
struct Identity {
    asn: u32,
    router_id: Ipv4Addr,
}

/// A BGP receiver recording what one speaker sends; stopped on drop
/// (sending Cease/Administrative Shutdown on an open session).
#[derive(Debug)]
pub struct Recorder {
    record: Arc<Mutex<Record>>,
    worker: Worker,
    local_addr: SocketAddr,
}

impl Recorder {
    /// Listens on `addr` (`IP:PORT`, port 0 for any) as AS `local_as`, router
    /// id the listening address (or 127.0.0.1 for an IPv6 one); retries for
    /// up to 5 s while the address is busy.
    pub fn listen(addr: &str, local_as: u32) -> Result<Self> {
        let addr: SocketAddr = addr
            .parse()
            .with_context(|| format!("bad listen address {addr:?}"))?;
        let listener = bind_retrying(addr)?;
        listener
            .set_nonblocking(true)
            .context("cannot make the listener non-blocking")?;
        let local_addr = listener.local_addr().context("listener address")?;
        let identity = Identity {
            asn: local_as,
            router_id: router_id(local_addr.ip()),
        };
        Ok(Self::spawn(Role::Listen(listener), identity, local_addr))
    }

    /// Connects from `local` (an address, any port) to the speaker at
    /// `remote` (`IP:PORT`) as AS `local_as`, retrying every 0.5 s until a
    /// session is up, and again after each session ends.
    pub fn connect(local: IpAddr, remote: &str, local_as: u32) -> Result<Self> {
        let remote: SocketAddr = remote
            .parse()
            .with_context(|| format!("bad remote address {remote:?}"))?;
        let identity = Identity {
            asn: local_as,
            router_id: router_id(local),
        };
        Ok(Self::spawn(
            Role::Connect { local, remote },
            identity,
            SocketAddr::new(local, 0),
        ))
    }

    fn spawn(role: Role, identity: Identity, local_addr: SocketAddr) -> Self {
        let record = Arc::new(Mutex::new(Record::default()));
        let worker = {
            let record = record.clone();
            Worker::spawn(move |stop| run(&role, identity, &record, stop))
        };
        Self {
            record,
            worker,
            local_addr,
        }
    }

    /// The address it listens on (port 0 for an active recorder).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    fn lock(&self) -> MutexGuard<'_, Record> {
        // A panic elsewhere poisons nothing we cannot still read.
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The counters.
    pub fn counts(&self) -> Counts {
        self.lock().counts
    }

    /// UPDATE messages received (End-of-RIB markers included).
    pub fn updates(&self) -> u64 {
        self.lock().counts.updates
    }

    /// OPENs received: sessions the speaker started.
    pub fn opens(&self) -> u64 {
        self.lock().counts.opens
    }

    /// Prefixes announced, summed over every UPDATE.
    pub fn total_announced(&self) -> u64 {
        self.lock().counts.announced
    }

    /// NOTIFICATIONs received, in order.
    pub fn notifications(&self) -> Vec<Notification> {
        self.lock().notifications.clone()
    }

    /// Why sessions ended or what the recorder refused, in order (empty
    /// while every session stayed up and every message decoded).
    pub fn errors(&self) -> Vec<String> {
        self.lock().errors.clone()
    }

    /// Whether a session is Established (OPEN and KEEPALIVE both ways).
    pub fn established(&self) -> bool {
        self.lock().established
    }

    /// The record of `prefix` (`None` if it was never named).
    pub fn prefix(&self, prefix: &str) -> Result<Option<PrefixRecord>> {
        let key: Prefix = prefix
            .parse()
            .map_err(|e| anyhow!("bad prefix {prefix:?}: {e}"))?;
        Ok(self.lock().prefixes.get(&key).cloned())
    }

    /// How many times `prefix` was announced.
    pub fn announcements_of(&self, prefix: &str) -> Result<u64> {
        Ok(self.prefix(prefix)?.map_or(0, |r| r.announced))
    }

    /// How many times `prefix` was withdrawn.
    pub fn withdrawals_of(&self, prefix: &str) -> Result<u64> {
        Ok(self.prefix(prefix)?.map_or(0, |r| r.withdrawn))
    }

    /// The MED of `prefix`'s last announcement, if it is reachable and has one.
    pub fn med_of(&self, prefix: &str) -> Result<Option<u32>> {
        Ok(self
            .prefix(prefix)?
            .filter(|r| r.reachable)
            .and_then(|r| r.attributes.and_then(|a| a.med)))
    }

    /// How many prefixes are reachable now (the speaker's table as sent).
    pub fn table_len(&self) -> usize {
        self.lock()
            .prefixes
            .values()
            .filter(|r| r.reachable)
            .count()
    }

    /// Sends `message` (whole, header included, as given: it may be malformed on
    /// purpose) on the current session within a tick; it waits for the next session
    /// if none is up.
    pub fn send_raw(&self, message: Vec<u8>) {
        self.lock().outbox.push(message);
    }

    /// From now on, keeps a copy of every whole message received (header included,
    /// as received), for [`Recorder::raw_messages`]. Off by default: a bulk test
    /// receives many messages.
    pub fn keep_raw(&self) {
        self.lock().keep_raw = true;
    }

    /// The whole messages received since [`Recorder::keep_raw`], in order.
    pub fn raw_messages(&self) -> Vec<Vec<u8>> {
        self.lock().raw.clone()
    }

    /// Zeroes the counters and every prefix's announce/withdraw counts;
    /// what is reachable, with which attributes, stays.
    pub fn reset_counts(&self) {
        let mut record = self.lock();
        record.counts = Counts::default();
        for r in record.prefixes.values_mut() {
            r.announced = 0;
            r.withdrawn = 0;
        }
    }

    /// Waits up to `timeout` for an Established session.
    pub fn wait_established(&self, timeout: Duration) -> Result<()> {
        crate::wait::wait_until(
            &format!("the recorder at {} to be Established", self.local_addr),
            timeout,
            || Ok(self.established()),
        )
        .with_context(|| format!("recorder errors: {:?}", self.errors()))
    }

    /// Stops the thread (Cease/Administrative Shutdown on an open session).
    pub fn stop(&mut self) {
        self.worker.stop();
    }
}

/// The router id for a local address: itself if IPv4.
fn router_id(addr: IpAddr) -> Ipv4Addr {
    match addr {
        IpAddr::V4(a) if !a.is_unspecified() => a,
        _ => Ipv4Addr::LOCALHOST,
    }
}

/// The recorder's thread: one session after another until stopped.
fn run(role: &Role, identity: Identity, record: &Mutex<Record>, stop: &AtomicBool) {
    let born = Instant::now();
    let alive = || !stop.load(Ordering::SeqCst) && born.elapsed() < MAX_LIFETIME;
    while alive() {
        let stream = match role {
            Role::Listen(listener) => match listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                Err(e) => {
                    note(record, format!("accept failed: {e}"));
                    std::thread::sleep(CONNECT_RETRY);
                    continue;
                }
            },
            Role::Connect { local, remote } => match connect(*local, *remote) {
                Ok(stream) => stream,
                Err(_) => {
                    // Refused while the speaker is not listening yet: retry.
                    std::thread::sleep(CONNECT_RETRY);
                    continue;
                }
            },
        };
        let mut session = Session::new(stream, identity, record);
        let end = session.run(&alive);
        let mut r = lock(record);
        r.established = false;
        r.peer_open = None;
        r.errors.push(format!("session ended: {end}"));
    }
}

fn lock(record: &Mutex<Record>) -> MutexGuard<'_, Record> {
    record.lock().unwrap_or_else(|e| e.into_inner())
}

fn note(record: &Mutex<Record>, error: String) {
    lock(record).errors.push(error);
}

/// A TCP connection from `local` to `remote`, with a bounded connect.
fn connect(local: IpAddr, remote: SocketAddr) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(remote), Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(local, 0).into())?;
    socket.connect_timeout(&remote.into(), Duration::from_secs(2))?;
    Ok(socket.into())
}

/// One session over one connection.
struct Session<'r> {
    stream: TcpStream,
    identity: Identity,
    record: &'r Mutex<Record>,
    /// Bytes received and not yet decoded.
    pending: Vec<u8>,
    /// The wire format negotiated (4-octet AS).
    context: Context,
    /// Negotiated hold time; zero means neither keepalives nor a hold timer.
    hold: Duration,
    last_received: Instant,
    last_keepalive_sent: Instant,
}

impl<'r> Session<'r> {
    fn new(stream: TcpStream, identity: Identity, record: &'r Mutex<Record>) -> Self {
        Self {
            stream,
            identity,
            record,
            pending: Vec::with_capacity(2 * READ_CHUNK),
            context: Context::default(),
            hold: Duration::from_secs(u64::from(HOLD_TIME)),
            last_received: Instant::now(),
            last_keepalive_sent: Instant::now(),
        }
    }

    /// Runs until the connection ends or `alive` turns false; returns why it ended.
    fn run(&mut self, alive: &dyn Fn() -> bool) -> String {
        if let Err(e) = self.configure() {
            return format!("cannot configure the socket: {e}");
        }
        let open = Message::Open(Open {
            asn: self.identity.asn,
            hold_time: HOLD_TIME,
            bgp_id: self.identity.router_id,
            capabilities: vec![
                Capability::Multiprotocol(Family::IPV4_UNICAST),
                Capability::Multiprotocol(Family::IPV6_UNICAST),
                Capability::Multiprotocol(Family::IPV4_FLOWSPEC),
                Capability::Multiprotocol(Family::IPV6_FLOWSPEC),
                Capability::RouteRefresh,
                Capability::FourOctetAs(self.identity.asn),
            ],
        });
        if let Err(e) = self.send(&open) {
            return e;
        }
        let mut chunk = vec![0u8; READ_CHUNK];
        while alive() {
            match self.stream.read(&mut chunk) {
                Ok(0) => return "the speaker closed the connection".to_owned(),
                Ok(n) => {
                    self.last_received = Instant::now();
                    self.pending.extend_from_slice(&chunk[..n]);
                    if let Err(end) = self.drain_messages() {
                        return end;
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return format!("read failed: {e}"),
            }
            if let Err(end) = self.timers() {
                return end;
            }
            if let Err(end) = self.send_outbox() {
                return end;
            }
        }
        let cease = Notification::administrative_shutdown("recorder stopped");
        let _ = self.send(&Message::Notification(cease));
        "stopped".to_owned()
    }

    /// Writes what the test queued, once the session is Established.
    fn send_outbox(&mut self) -> Result<(), String> {
        let queued = {
            let mut record = lock(self.record);
            if !record.established {
                return Ok(());
            }
            std::mem::take(&mut record.outbox)
        };
        for message in queued {
            self.stream
                .write_all(&message)
                .map_err(|e| format!("cannot send a raw message: {e}"))?;
        }
        Ok(())
    }

    fn configure(&self) -> std::io::Result<()> {
        // Blocking with a timeout: an accepted socket may inherit the
        // listener's non-blocking mode on some systems.
        self.stream.set_nonblocking(false)?;
        self.stream.set_nodelay(true)?;
        self.stream.set_read_timeout(Some(TICK))?;
        self.stream.set_write_timeout(Some(WRITE_TIMEOUT))
    }

    fn send(&mut self, message: &Message) -> Result<(), String> {
        let bytes = message.to_bytes(&self.context);
        self.stream
            .write_all(&bytes)
            .map_err(|e| format!("cannot send {}: {e}", message.kind()))
    }

    /// Sends `notification`, then ends the session with `why`.
    fn refuse(&mut self, notification: Notification, why: String) -> Result<(), String> {
        let described = notification.describe();
        let _ = self.send(&Message::Notification(notification));
        Err(format!("refused: {why} (sent {described})"))
    }

    /// Decodes and handles every whole message in `pending`.
    fn drain_messages(&mut self) -> Result<(), String> {
        let mut at = 0;
        let result = loop {
            let rest = &self.pending[at..];
            let len = match packet::frame_len(rest) {
                Ok(Some(len)) if rest.len() >= len => len,
                Ok(_) => break Ok(()), // an incomplete message: wait for more
                Err(e) => {
                    let why = e.reason.clone();
                    break self.refuse(e.notification, why);
                }
            };
            {
                let mut r = lock(self.record);
                if r.keep_raw {
                    r.raw.push(rest[..len].to_vec());
                }
            }
            let decoded = packet::decode(&rest[..len], &self.context);
            at += len;
            let handled = match decoded {
                Ok(message) => self.handle(message),
                Err(e) => {
                    let why = e.reason.clone();
                    self.refuse(e.notification, why)
                }
            };
            if handled.is_err() {
                break handled;
            }
        };
        self.pending.drain(..at);
        result
    }

    fn handle(&mut self, message: Message) -> Result<(), String> {
        let opened = lock(self.record).peer_open.is_some();
        match message {
            Message::Open(open) if !opened => {
                let hold = HOLD_TIME.min(open.hold_time);
                self.hold = Duration::from_secs(u64::from(hold));
                self.context = Context {
                    four_octet_as: open.four_octet_as(),
                };
                {
                    let mut r = lock(self.record);
                    r.counts.opens += 1;
                    r.peer_open = Some(open);
                }
                self.last_keepalive_sent = Instant::now();
                self.send(&Message::Keepalive)
            }
            Message::Notification(n) => {
                let described = n.describe();
                let mut r = lock(self.record);
                r.counts.notifications += 1;
                r.notifications.push(n);
                Err(format!("received NOTIFICATION {described}"))
            }
            other if !opened => self.refuse(
                Notification {
                    code: code::FSM,
                    subcode: 1, // unexpected message in OpenSent (RFC 6608)
                    data: Vec::new(),
                },
                format!("{} before OPEN", other.kind()),
            ),
            Message::Open(_) => self.refuse(
                Notification {
                    code: code::FSM,
                    subcode: 0,
                    data: Vec::new(),
                },
                "a second OPEN on the session".to_owned(),
            ),
            Message::Keepalive => {
                let mut r = lock(self.record);
                r.counts.keepalives += 1;
                r.established = true;
                Ok(())
            }
            Message::Update(update) => {
                record_update(&mut lock(self.record), update);
                Ok(())
            }
            Message::RouteRefresh(_) => {
                lock(self.record).counts.route_refreshes += 1;
                Ok(())
            }
        }
    }

    /// Sends a KEEPALIVE every third of the hold time once the speaker's OPEN
    /// is in; ends the session when the speaker has been silent for the hold
    /// time (before its OPEN too: a connection that never opens ends).
    fn timers(&mut self) -> Result<(), String> {
        if self.hold.is_zero() {
            return Ok(());
        }
        if self.last_received.elapsed() > self.hold {
            let expired = Notification {
                code: code::HOLD_TIMER_EXPIRED,
                subcode: 0,
                data: Vec::new(),
            };
            return self.refuse(expired, format!("nothing received for {:?}", self.hold));
        }
        let opened = lock(self.record).peer_open.is_some();
        if opened && self.last_keepalive_sent.elapsed() >= self.hold / 3 {
            self.last_keepalive_sent = Instant::now();
            self.send(&Message::Keepalive)?;
        }
        Ok(())
    }
}

/// Counts one UPDATE and records its prefixes.
fn record_update(r: &mut Record, update: Update) {
    r.counts.updates += 1;
    if update.end_of_rib_family().is_some() {
        r.counts.end_of_ribs += 1;
        return;
    }
    if let Some(why) = &update.treat_as_withdraw {
        // The codec turned malformed announcements into withdrawals (RFC 7606):
        // the speaker sent something wrong, which a test must hear about.
        r.errors.push(format!("UPDATE treated as withdraw: {why}"));
    }
    let mut withdrawn: Vec<Prefix> = update.withdrawn.iter().map(|&p| p.into()).collect();
    if let Some(unreach) = &update.mp_unreach {
        withdrawn.extend(prefixes(&unreach.withdrawn));
    }
    let mut announced: Vec<Prefix> = update.nlri.iter().map(|&p| p.into()).collect();
    if let Some(reach) = &update.mp_reach {
        announced.extend(prefixes(&reach.nlri));
    }
    r.counts.withdrawn += withdrawn.len() as u64;
    r.counts.announced += announced.len() as u64;
    for prefix in withdrawn {
        let entry = r.prefixes.entry(prefix).or_default();
        entry.withdrawn += 1;
        entry.reachable = false;
        entry.attributes = None;
    }
    if announced.is_empty() {
        return;
    }
    let attributes = Arc::new(update.attributes);
    for prefix in announced {
        let entry = r.prefixes.entry(prefix).or_default();
        entry.announced += 1;
        entry.reachable = true;
        entry.attributes = Some(attributes.clone());
    }
}

/// The routes of an MP_(UN)REACH NLRI: prefixes and FlowSpec rules (other families
/// are not recorded).
fn prefixes(nlri: &MpNlri) -> Vec<Prefix> {
    nlri.prefixes().collect()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use anyhow::bail;

    use wasmbgp_bgp::packet::notification::cease_sub;
    use wasmbgp_bgp::packet::{MpReach, MpUnreach};
    use wasmbgp_bgp::{Ipv4Prefix, Ipv6Prefix, NextHop};

    use super::*;
    use crate::wait::wait_until;

    /// A speaker's side of the session for the unit tests below.
    struct TestSpeaker {
        stream: TcpStream,
        context: Context,
    }

    impl TestSpeaker {
        /// Connects to `recorder`, exchanges OPEN and KEEPALIVE.
        fn open(recorder: &Recorder, asn: u32) -> Result<Self> {
            let stream =
                TcpStream::connect_timeout(&recorder.local_addr(), Duration::from_secs(2))?;
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            let mut speaker = Self {
                stream,
                context: Context::default(),
            };
            speaker.send(&Message::Open(Open {
                asn,
                hold_time: 90,
                bgp_id: Ipv4Addr::new(192, 0, 2, 1),
                capabilities: vec![
                    Capability::Multiprotocol(Family::IPV4_UNICAST),
                    Capability::Multiprotocol(Family::IPV6_UNICAST),
                    Capability::FourOctetAs(asn),
                ],
            }))?;
            let open = speaker.receive()?;
            let Message::Open(open) = open else {
                bail!("expected the recorder's OPEN, got {open:?}");
            };
            if !open.four_octet_as() || !open.route_refresh() || open.families().count() != 4 {
                bail!("the recorder's OPEN lacks a capability: {open:?}");
            }
            let keepalive = speaker.receive()?;
            if keepalive != Message::Keepalive {
                bail!("expected a KEEPALIVE, got {keepalive:?}");
            }
            speaker.send(&Message::Keepalive)?;
            Ok(speaker)
        }

        fn send(&mut self, message: &Message) -> Result<()> {
            self.stream.write_all(&message.to_bytes(&self.context))?;
            Ok(())
        }

        fn receive(&mut self) -> Result<Message> {
            let mut header = [0u8; packet::HEADER_LEN];
            self.stream.read_exact(&mut header)?;
            let len = packet::frame_len(&header)
                .map_err(|e| anyhow!("{e}"))?
                .context("short header")?;
            let mut message = header.to_vec();
            message.resize(len, 0);
            self.stream.read_exact(&mut message[packet::HEADER_LEN..])?;
            packet::decode(&message, &self.context).map_err(|e| anyhow!("{e}"))
        }
    }

    fn v4(text: &str) -> Ipv4Prefix {
        text.parse().expect("test prefix")
    }

    fn v6(text: &str) -> Ipv6Prefix {
        text.parse().expect("test prefix")
    }

    fn with_med(med: u32) -> PathAttributes {
        PathAttributes {
            next_hop: Some(NextHop::Addr(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))),
            med: Some(med),
            ..PathAttributes::default()
        }
    }

    /// A session from a hand-driven speaker: IPv4 and IPv6 announcements and
    /// withdrawals, End-of-RIB, then a NOTIFICATION; every count exact.
    #[test]
    fn recorder_records_a_session() -> Result<()> {
        let recorder = Recorder::listen("127.0.0.1:0", 65100)?;
        let mut speaker = TestSpeaker::open(&recorder, 65200)?;
        recorder.wait_established(Duration::from_secs(5))?;
        speaker.send(&Message::Update(Update {
            attributes: with_med(5),
            nlri: vec![v4("10.0.0.0/24"), v4("10.0.1.0/24"), v4("10.0.2.0/24")],
            ..Update::default()
        }))?;
        speaker.send(&Message::Update(Update {
            attributes: PathAttributes {
                med: Some(6),
                ..PathAttributes::default()
            },
            mp_reach: Some(MpReach {
                family: Family::IPV6_UNICAST,
                next_hop: vec![IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))],
                nlri: MpNlri::Ipv6(vec![v6("2001:db8:1::/48")]),
            }),
            ..Update::default()
        }))?;
        speaker.send(&Message::Update(Update {
            withdrawn: vec![v4("10.0.1.0/24")],
            mp_unreach: Some(MpUnreach {
                family: Family::IPV6_UNICAST,
                withdrawn: MpNlri::Ipv6(vec![v6("2001:db8:1::/48")]),
            }),
            ..Update::default()
        }))?;
        speaker.send(&Message::Update(Update::end_of_rib(Family::IPV4_UNICAST)))?;
        speaker.send(&Message::Update(Update {
            attributes: with_med(7),
            nlri: vec![v4("10.0.0.0/24")],
            ..Update::default()
        }))?;
        wait_until("five UPDATEs", Duration::from_secs(5), || {
            Ok(recorder.updates() == 5)
        })?;
        let counts = recorder.counts();
        assert_eq!(
            counts,
            Counts {
                opens: 1,
                keepalives: 1,
                updates: 5,
                end_of_ribs: 1,
                announced: 5,
                withdrawn: 2,
                notifications: 0,
                route_refreshes: 0,
            }
        );
        assert_eq!(recorder.announcements_of("10.0.0.0/24")?, 2);
        assert_eq!(recorder.med_of("10.0.0.0/24")?, Some(7));
        assert_eq!(recorder.withdrawals_of("10.0.1.0/24")?, 1);
        assert_eq!(recorder.med_of("10.0.1.0/24")?, None);
        assert_eq!(recorder.announcements_of("2001:db8:1::/48")?, 1);
        assert_eq!(recorder.withdrawals_of("2001:db8:1::/48")?, 1);
        assert_eq!(recorder.announcements_of("10.9.0.0/24")?, 0);
        assert_eq!(recorder.table_len(), 2);
        assert!(recorder.errors().is_empty(), "{:?}", recorder.errors());

        recorder.reset_counts();
        assert_eq!(recorder.counts(), Counts::default());
        assert_eq!(recorder.announcements_of("10.0.0.0/24")?, 0);
        assert_eq!(recorder.table_len(), 2, "a reset keeps the table");

        speaker.send(&Message::Notification(Notification::cease(
            cease_sub::ADMINISTRATIVE_SHUTDOWN,
        )))?;
        wait_until("the NOTIFICATION", Duration::from_secs(5), || {
            Ok(recorder.notifications().len() == 1 && !recorder.established())
        })?;
        assert_eq!(recorder.counts().notifications, 1);
        Ok(())
    }

    /// Garbage after a good OPEN is refused with a NOTIFICATION, not a panic,
    /// and the recorder takes the next session (a second OPEN).
    #[test]
    fn recorder_survives_garbage() -> Result<()> {
        let recorder = Recorder::listen("127.0.0.1:0", 65100)?;
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for round in 0..20 {
            let mut speaker = TestSpeaker::open(&recorder, 65200)?;
            // Pseudo-random bytes, some rounds behind a valid marker so that
            // the length and type checks are reached too.
            let mut junk = Vec::with_capacity(600);
            if round % 2 == 1 {
                junk.extend_from_slice(&[0xff; 16]);
            }
            for _ in 0..600 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                junk.push(seed as u8);
            }
            speaker.stream.write_all(&junk)?;
            // The recorder answers with a NOTIFICATION and closes, or (when
            // the junk looks like the start of a long message) waits for more.
            let _ = speaker.stream.shutdown(std::net::Shutdown::Write);
            wait_until("the session to end", Duration::from_secs(5), || {
                Ok(!recorder.established())
            })?;
        }
        wait_until("20 sessions", Duration::from_secs(5), || {
            Ok(recorder.opens() == 20)
        })?;
        let mut speaker = TestSpeaker::open(&recorder, 65200)?;
        speaker.send(&Message::Update(Update {
            attributes: with_med(1),
            nlri: vec![v4("10.0.0.0/24")],
            ..Update::default()
        }))?;
        wait_until(
            "the UPDATE after the garbage",
            Duration::from_secs(5),
            || Ok(recorder.announcements_of("10.0.0.0/24")? == 1),
        )?;
        assert_eq!(recorder.opens(), 21);
        Ok(())
    }
}
