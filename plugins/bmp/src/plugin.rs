//! The plugin without the SDK glue: settings, and one call's work (connect
//! if needed, turn the events into BMP messages, write them in one go).

use std::net::SocketAddr;
use std::time::Duration;

use wasmbgp_sdk::{Error, Settings};

use crate::feed::{Direction, Event, Feed, Next, Options};
use crate::link::{Connect, Link};
use crate::msg::{self, Timestamp};

/// What the plugin needs from the host (the SDK in the component, a fake in
/// tests).
pub trait Host {
    /// Wall-clock time, milliseconds since the Unix epoch.
    fn now_ms(&mut self) -> u64;
    /// Monotonic time in milliseconds.
    fn monotonic_ms(&mut self) -> u64;
    /// Asks for a fresh snapshot.
    fn resync(&mut self);
    fn info(&mut self, message: &str);
    fn warn(&mut self, message: &str);
}

/// The settings the plugin knows.
pub const SETTINGS: &[&str] = &[
    "collector",
    "route-monitoring",
    "sys-name",
    "sys-descr",
    "stats-interval",
    "connect-timeout",
];

/// More than this many bytes waiting for a slow collector drops the
/// connection (the collector gets a fresh table after the reconnect).
const MAX_PENDING: usize = 32 << 20;

/// The parsed settings.
#[derive(Clone, Debug)]
pub struct Config {
    pub collector: SocketAddr,
    pub options: Options,
    pub connect_timeout: Duration,
}

impl Config {
    pub fn from_settings(settings: &Settings) -> Result<Config, Error> {
        settings.only(SETTINGS)?;
        let collector_text = settings.required("collector")?;
        let collector: SocketAddr = collector_text.parse().map_err(|_| {
            Error::from(format!(
                "setting `collector` = {collector_text:?} is invalid: expected IP:PORT"
            ))
        })?;
        let monitoring = match settings.get_or("route-monitoring", "post-policy") {
            "post-policy" => Direction::PostPolicy,
            "pre-policy" => Direction::PrePolicy,
            other => {
                return Err(format!(
                    "setting `route-monitoring` = {other:?} is invalid: expected post-policy or pre-policy"
                )
                .into());
            }
        };
        let stats_interval: u64 = settings.parse_or("stats-interval", 60)?;
        Ok(Config {
            collector,
            options: Options {
                sys_name: settings.get_or("sys-name", "wasmbgp").to_string(),
                sys_descr: settings
                    .get_or(
                        "sys-descr",
                        concat!("wasmbgp BMP exporter ", env!("CARGO_PKG_VERSION")),
                    )
                    .to_string(),
                monitoring,
                stats_interval_ms: stats_interval.saturating_mul(1000),
            },
            connect_timeout: settings.duration_or("connect-timeout", Duration::from_millis(50))?,
        })
    }
}

/// The BMP exporter.
pub struct Bmp {
    feed: Feed,
    link: Link,
    /// No event was dropped or consumed since the last snapshot began: the
    /// collector can be given the events from here without a resync.
    fresh: bool,
    /// Whether the last attempt to reach the collector failed (to log a
    /// failure once, not at every retry).
    failing: bool,
    out: Vec<u8>,
    /// What the current batch does.
    mode: Mode,
    /// The current batch's times: monotonic ms, and the BMP timestamp.
    now: u64,
    time: Timestamp,
}

/// What a batch does with its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Encodes them for the collector.
    Process,
    /// Not connected: drops them (the collector needs a resync later).
    Drop,
    /// A snapshot was asked for: ignores the rest of the batch.
    Skip,
}

impl Bmp {
    pub fn new(config: Config) -> Bmp {
        Bmp {
            feed: Feed::new(config.options),
            link: Link::new(config.collector, config.connect_timeout, MAX_PENDING),
            fresh: true,
            failing: false,
            out: Vec::new(),
            mode: Mode::Process,
            now: 0,
            time: Timestamp::default(),
        }
    }

    /// Whether the collector is connected.
    #[cfg(test)]
    pub fn connected(&self) -> bool {
        self.link.is_connected()
    }

    /// Handles one batch of events.
    #[cfg(test)]
    pub fn on_events<'a>(
        &mut self,
        host: &mut dyn Host,
        events: impl IntoIterator<Item = Event<'a>>,
    ) {
        self.begin(host);
        for event in events {
            self.event(host, &event);
        }
        self.end(host);
    }

    /// Starts a batch: connects if needed.
    pub fn begin(&mut self, host: &mut dyn Host) {
        self.now = host.monotonic_ms();
        self.time = Timestamp::from_millis(host.now_ms());
        self.out.clear();
        self.mode = Mode::Process;
        match self.link.connect(self.now) {
            Connect::Connected => {}
            Connect::New => {
                host.info(&format!(
                    "connected to the BMP collector {}",
                    self.link.target()
                ));
                self.failing = false;
                self.feed.initiation(&mut self.out);
                if !self.fresh {
                    // The collector has not seen what happened so far: start
                    // over from a snapshot, which the next batch brings.
                    self.resync(host);
                    self.mode = Mode::Skip;
                }
            }
            Connect::Waiting => self.mode = Mode::Drop,
            Connect::Failed(error) => {
                if !self.failing {
                    host.warn(&format!(
                        "cannot reach the BMP collector {}: {error} (retrying in {} ms)",
                        self.link.target(),
                        self.link.backoff.wait_ms(self.now),
                    ));
                }
                self.failing = true;
                self.mode = Mode::Drop;
            }
        }
    }

    /// One event of the batch.
    pub fn event(&mut self, host: &mut dyn Host, event: &Event<'_>) {
        match self.mode {
            Mode::Skip => return,
            Mode::Drop => {
                // Not connected: the collector will get a snapshot later.
                self.fresh = false;
                self.feed.reset();
                return;
            }
            Mode::Process => {}
        }
        self.fresh = false;
        if self.feed.handle(event, self.time, &mut self.out) == Next::Resync {
            // The collector's view has holes: close the BMP session (it
            // forgets the peers), and start over with a snapshot on a new
            // one.
            let lost = if let Event::Lagged(n) = event { *n } else { 0 };
            host.warn(&format!(
                "{lost} events were dropped (lagged): restarting the BMP session with a fresh snapshot"
            ));
            let mut last = Vec::new();
            msg::termination(&mut last, 1, "wasmbgp fell behind; reconnecting");
            let _ = self.link.send(&self.out, self.now);
            self.link.close_with(&last);
            self.out.clear();
            self.resync(host);
            self.mode = Mode::Skip;
        }
    }

    /// Ends a batch: statistics if due, then one write.
    pub fn end(&mut self, host: &mut dyn Host) {
        match self.mode {
            Mode::Drop => return,
            Mode::Skip => {}
            Mode::Process => self.feed.statistics(self.now, self.time, &mut self.out),
        }
        let now = self.now;
        self.flush(host, now);
    }

    fn resync(&mut self, host: &mut dyn Host) {
        self.feed.reset();
        host.resync();
        self.fresh = true;
    }

    fn flush(&mut self, host: &mut dyn Host, now: u64) {
        if self.out.is_empty() && self.link.pending() == 0 {
            return;
        }
        if let Err(error) = self.link.send(&self.out, now) {
            host.warn(&format!(
                "lost the BMP collector {}: {error} (reconnecting in {} ms)",
                self.link.target(),
                self.link.backoff.wait_ms(now),
            ));
            self.fresh = false;
            self.feed.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::TcpListener;

    use wasmbgp_sdk::types::IpAddress;

    use super::*;
    use crate::feed::{Session, State};

    #[derive(Default)]
    struct Fake {
        now: u64,
        resyncs: usize,
        log: Vec<String>,
    }

    impl Host for Fake {
        fn now_ms(&mut self) -> u64 {
            1_700_000_000_000 + self.now
        }
        fn monotonic_ms(&mut self) -> u64 {
            self.now
        }
        fn resync(&mut self) {
            self.resyncs += 1;
        }
        fn info(&mut self, message: &str) {
            self.log.push(message.to_string());
        }
        fn warn(&mut self, message: &str) {
            self.log.push(message.to_string());
        }
    }

    fn up() -> Event<'static> {
        Event::State {
            session: Session {
                neighbor: IpAddress::V4(0x7f000002),
                peer_as: 65001,
                local_as: 65000,
            },
            new: State::Established,
        }
    }

    fn down() -> Event<'static> {
        match up() {
            Event::State { session, .. } => Event::State {
                session,
                new: State::Other,
            },
            _ => unreachable!(),
        }
    }

    /// The BMP message types in `bytes`.
    fn types(bytes: &[u8]) -> Vec<u8> {
        let mut kinds = Vec::new();
        let mut at = 0;
        while at + 6 <= bytes.len() {
            let len = u32::from_be_bytes(bytes[at + 1..at + 5].try_into().unwrap()) as usize;
            kinds.push(bytes[at + 5]);
            at += len;
        }
        kinds
    }

    fn read_some(stream: &mut std::net::TcpStream) -> Vec<u8> {
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut buf = vec![0u8; 65536];
        let n = stream.read(&mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn connects_lazily_and_resyncs_after_a_reconnect() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let settings = Settings::new(vec![
            (
                "collector".into(),
                listener.local_addr().unwrap().to_string(),
            ),
            ("stats-interval".into(), "0".into()),
        ]);
        let mut bmp = Bmp::new(Config::from_settings(&settings).unwrap());
        let mut host = Fake::default();
        assert!(!bmp.connected());

        // The first batch (a snapshot) goes out after the Initiation.
        bmp.on_events(&mut host, [up(), Event::EndOfSnapshot]);
        let (mut collector, _) = listener.accept().unwrap();
        assert_eq!(
            types(&read_some(&mut collector)),
            vec![msg::INITIATION, msg::PEER_UP]
        );
        assert_eq!(host.resyncs, 0);

        // The collector goes away: writes fail, the link backs off.
        drop(collector);
        for _ in 0..50 {
            host.now += 10;
            bmp.on_events(&mut host, [down(), up()]);
            if !bmp.connected() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!bmp.connected(), "{:?}", host.log);
        // While backing off, events are dropped.
        bmp.on_events(&mut host, [up()]);
        assert!(!bmp.connected());

        // After the backoff: a new connection, an Initiation, a resync, and
        // nothing else of that batch.
        host.now += 1_000;
        bmp.on_events(&mut host, [up()]);
        assert!(bmp.connected());
        assert_eq!(host.resyncs, 1);
        let (mut collector, _) = listener.accept().unwrap();
        assert_eq!(types(&read_some(&mut collector)), vec![msg::INITIATION]);

        // The snapshot that follows brings the Peer Up again.
        bmp.on_events(&mut host, [up(), Event::EndOfSnapshot]);
        assert_eq!(types(&read_some(&mut collector)), vec![msg::PEER_UP]);

        // Lagged: Termination, the session closed, a resync.
        bmp.on_events(&mut host, [Event::Lagged(5), up()]);
        assert_eq!(types(&read_some(&mut collector)), vec![msg::TERMINATION]);
        assert_eq!(host.resyncs, 2);
        assert!(!bmp.connected());
        // The next batch (the snapshot) reconnects at once, without another resync.
        bmp.on_events(&mut host, [up(), Event::EndOfSnapshot]);
        let (mut collector, _) = listener.accept().unwrap();
        assert_eq!(
            types(&read_some(&mut collector)),
            vec![msg::INITIATION, msg::PEER_UP]
        );
        assert_eq!(host.resyncs, 2);
    }

    #[test]
    fn settings_are_checked() {
        let parse = |pairs: &[(&str, &str)]| {
            Config::from_settings(&Settings::new(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ))
        };
        assert!(parse(&[]).is_err());
        assert!(parse(&[("collector", "localhost:11019")]).is_err());
        assert!(
            parse(&[
                ("collector", "127.0.0.1:11019"),
                ("route-monitoring", "loc-rib")
            ])
            .is_err()
        );
        assert!(parse(&[("collector", "127.0.0.1:11019"), ("colector", "x")]).is_err());
        let config = parse(&[
            ("collector", "[::1]:11019"),
            ("route-monitoring", "pre-policy"),
        ])
        .unwrap();
        assert_eq!(config.options.monitoring, Direction::PrePolicy);
        assert_eq!(config.options.stats_interval_ms, 60_000);
    }
}
