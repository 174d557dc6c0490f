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
pub const SETTINGS: &[&str] =
    &["collector", "route-monitoring", "sys-name", "sys-descr", "stats-interval", "connect-timeout"];

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
                    .get_or("sys-descr", concat!("wasmbgp BMP exporter ", env!("CARGO_PKG_VERSION")))
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
}

impl Bmp {
    pub fn new(config: Config) -> Bmp {
        Bmp {
            feed: Feed::new(config.options),
            link: Link::new(config.collector, config.connect_timeout, MAX_PENDING),
            fresh: true,
            failing: false,
            out: Vec::new(),
        }
    }

    /// Whether the collector is connected.
    pub fn connected(&self) -> bool {
        self.link.is_connected()
    }

    /// Handles one batch of events.
    pub fn on_events<'a>(&mut self, host: &mut dyn Host, events: impl IntoIterator<Item = Event<'a>>) {
        let now = host.monotonic_ms();
        let time = Timestamp::from_millis(host.now_ms());
        self.out.clear();
        match self.link.connect(now) {
            Connect::Connected => {}
            Connect::New => {
                host.info(&format!("connected to the BMP collector {}", self.link.target()));
                self.failing = false;
                self.feed.initiation(&mut self.out);
                if !self.fresh {
                    // The collector has not seen what happened so far: start
                    // over from a snapshot, which the next batch brings.
                    self.resync(host);
                    self.flush(host, now);
                    return;
                }
            }
            Connect::Waiting => {
                self.drop_events(events);
                return;
            }
            Connect::Failed(error) => {
                if !self.failing {
                    host.warn(&format!(
                        "cannot reach the BMP collector {}: {error} (retrying in {} ms)",
                        self.link.target(),
                        self.link.backoff.wait_ms(now),
                    ));
                }
                self.failing = true;
                self.drop_events(events);
                return;
            }
        }
        for event in events {
            self.fresh = false;
            if self.feed.handle(&event, time, &mut self.out) == Next::Resync {
                // The collector's view has holes: close the BMP session (it
                // forgets the peers), and start over with a snapshot on a
                // new one.
                host.warn("events were dropped (lagged): restarting the BMP session with a fresh snapshot");
                let mut last = Vec::new();
                msg::termination(&mut last, 1, "wasmbgp fell behind; reconnecting");
                self.link.close_with(&last);
                self.resync(host);
                return;
            }
        }
        self.feed.statistics(now, time, &mut self.out);
        self.flush(host, now);
    }

    fn drop_events<'a>(&mut self, events: impl IntoIterator<Item = Event<'a>>) {
        if events.into_iter().next().is_some() {
            self.fresh = false;
        }
        self.feed.reset();
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
