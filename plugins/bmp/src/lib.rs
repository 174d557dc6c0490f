//! `bmp`: a BMP (RFC 7854) feed of the speaker's sessions and received
//! routes to a collector (`collector` = "IP:PORT", granted in
//! `grants.tcp-out`). See README.md.
//!
//! The pure parts are plain modules tested natively: `bgp` and `msg` (the
//! encoders), `feed` (events to BMP messages), `link` (the connection and
//! its backoff), `plugin` (one batch's work); this file adapts the SDK's
//! exporter events to them.

mod bgp;
mod feed;
mod link;
mod msg;
mod plugin;

#[cfg(test)]
mod tests;

use wasmbgp_sdk::exporter::{MessageDirection, RouteDirection, SessionState};
use wasmbgp_sdk::{Error, Event, Exporter, Settings, clock, log};

use crate::feed::{Direction, Session, State};
use crate::plugin::{Bmp, Config, Host};

/// The host as the plugin core sees it.
struct Sdk;

impl Host for Sdk {
    fn now_ms(&mut self) -> u64 {
        clock::now_ms()
    }
    fn monotonic_ms(&mut self) -> u64 {
        clock::monotonic_us() / 1000
    }
    fn resync(&mut self) {
        wasmbgp_sdk::feed::resync();
    }
    fn info(&mut self, message: &str) {
        log::info(message);
    }
    fn warn(&mut self, message: &str) {
        log::warn(message);
    }
}

fn session(s: &wasmbgp_sdk::exporter::Session) -> Session {
    Session {
        neighbor: s.neighbor,
        peer_as: s.peer_as,
        local_as: s.local_as,
    }
}

fn state(s: SessionState) -> State {
    if s == SessionState::Established {
        State::Established
    } else {
        State::Other
    }
}

/// The SDK's view of an event as the feed's.
fn convert<'a>(event: &Event<'a>) -> feed::Event<'a> {
    match *event {
        Event::Session(change) => feed::Event::State {
            session: session(&change.session),
            new: state(change.new),
        },
        Event::Routes(routes) => {
            let u = routes.raw();
            feed::Event::Routes(feed::Routes {
                session: session(&u.session),
                direction: match u.direction {
                    RouteDirection::ReceivedPrePolicy => Direction::PrePolicy,
                    RouteDirection::Received => Direction::PostPolicy,
                    RouteDirection::Sent => Direction::Sent,
                },
                attributes: &u.attributes,
                v4_addresses: &u.v4_addresses,
                v4_lengths: &u.v4_lengths,
                v4_attributes: &u.v4_attributes,
                v6_addresses: &u.v6_addresses,
                v6_lengths: &u.v6_lengths,
                v6_attributes: &u.v6_attributes,
                withdrawn_v4_addresses: &u.withdrawn_v4_addresses,
                withdrawn_v4_lengths: &u.withdrawn_v4_lengths,
                withdrawn_v6_addresses: &u.withdrawn_v6_addresses,
                withdrawn_v6_lengths: &u.withdrawn_v6_lengths,
            })
        }
        Event::EndOfRib(eor) => feed::Event::EndOfRib {
            session: session(&eor.session),
            afi: eor.family.afi,
            safi: eor.family.safi,
        },
        Event::Notification(n) => feed::Event::Notification {
            session: session(&n.session),
            sent: n.direction == MessageDirection::Sent,
            code: n.code,
            subcode: n.subcode,
            data: &n.data,
        },
        Event::Lagged(n) => feed::Event::Lagged(n),
        Event::EndOfSnapshot => feed::Event::EndOfSnapshot,
        Event::Health(_) | Event::Plugin(_) => feed::Event::Ignored,
    }
}

/// The exporter.
struct BmpExporter(Bmp);

impl Exporter for BmpExporter {
    fn init(settings: &Settings) -> Result<Self, Error> {
        Ok(BmpExporter(Bmp::new(Config::from_settings(settings)?)))
    }

    fn begin_batch(&mut self, _events: usize) {
        self.0.begin(&mut Sdk);
    }

    fn on_event(&mut self, event: Event<'_>) {
        self.0.event(&mut Sdk, &convert(&event));
    }

    fn end_batch(&mut self) {
        self.0.end(&mut Sdk);
    }
}

wasmbgp_sdk::export_exporter!(BmpExporter);
