//! Where exporters are fed: the speaker records what happens (session changes,
//! NOTIFICATIONs, routes received and sent, End-of-RIB, health, plugin lifecycle) into
//! an [`ExportHub`], which hands each exporter the events it subscribed to once per
//! turn of the speaker's loop, and builds the snapshot a new exporter instance starts
//! from.
//!
//! Nothing here waits: [`ExporterClient::deliver`] drops and counts when an exporter is
//! behind, so a slow or stuck exporter costs the speaker the time to clone a few
//! pointers. With no exporter subscribed to routes, no route event is ever built.

use std::net::IpAddr;
use std::sync::Arc;

use wasmbgp_bgp::Prefix;
use wasmbgp_bgp::packet::attributes::PathAttributes;
use wasmbgp_bgp::rib::ReceivedChange;
use wasmbgp_bgp::session::State;
use wasmbgp_runtime::ExporterClient;
use wasmbgp_runtime::export::{
    EventBatch, ExportEvent, MessageDirection, RouteDirection, RouteEvent, Session, SessionState,
};

use crate::config::Subscription;

/// The most routes in one route event (long lists are split).
pub const ROUTES_PER_EVENT: usize = 4096;

/// One exporter and what it receives.
#[derive(Debug)]
pub struct ExporterLink {
    /// Its client.
    pub client: ExporterClient,
    /// Its subscription.
    pub subscription: Subscription,
}

/// What the exporters, taken together, want built.
#[derive(Debug, Default, Clone, Copy)]
pub struct Wanted {
    /// Received routes before import policy.
    pub received_pre: bool,
    /// Received routes after import policy.
    pub received_post: bool,
    /// Routes advertised.
    pub sent: bool,
}

/// The speaker's feed to every exporter.
#[derive(Debug, Default)]
pub struct ExportHub {
    links: Vec<ExporterLink>,
    wanted: Wanted,
    /// Events of this turn, in order.
    pending: Vec<Arc<ExportEvent>>,
}

pub fn state_of(s: State) -> SessionState {
    match s {
        State::Idle => SessionState::Idle,
        State::Connect => SessionState::Connect,
        State::Active => SessionState::Active,
        State::OpenSent => SessionState::OpenSent,
        State::OpenConfirm => SessionState::OpenConfirm,
        State::Established => SessionState::Established,
    }
}

/// A session's identity for events.
pub fn session(neighbor: IpAddr, peer_as: u32, local_as: u32) -> Session {
    Session {
        neighbor,
        peer_as,
        local_as,
    }
}

impl Subscription {
    fn wants(&self, event: &ExportEvent) -> bool {
        match event {
            ExportEvent::Session { .. } => self.sessions,
            ExportEvent::Routes(r) => match r.direction {
                RouteDirection::ReceivedPrePolicy => self.routes_received && self.pre_policy,
                RouteDirection::Received => self.routes_received && !self.pre_policy,
                RouteDirection::Sent => self.routes_sent,
            },
            ExportEvent::EndOfRib { .. } => self.end_of_rib,
            ExportEvent::Notification { .. } => self.notifications,
            ExportEvent::Health { .. } => self.health,
            ExportEvent::Plugin { .. } => self.plugins,
        }
    }
}

impl ExportHub {
    /// A hub feeding `links`.
    pub fn new(links: Vec<ExporterLink>) -> Self {
        let mut wanted = Wanted::default();
        for l in &links {
            let s = l.subscription;
            wanted.received_pre |= s.routes_received && s.pre_policy;
            wanted.received_post |= s.routes_received && !s.pre_policy;
            wanted.sent |= s.routes_sent;
        }
        ExportHub {
            links,
            wanted,
            pending: Vec::new(),
        }
    }

    /// What route events are worth building.
    pub fn wanted(&self) -> Wanted {
        self.wanted
    }

    /// True when no exporter is configured.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    fn push(&mut self, event: ExportEvent) {
        if !self.links.is_empty() {
            self.pending.push(Arc::new(event));
        }
    }

    /// A session changed state.
    pub fn session_state(&mut self, session: Session, old: State, new: State, reason: String) {
        self.push(ExportEvent::Session {
            session,
            old: state_of(old),
            new: state_of(new),
            reason,
        });
    }

    /// A NOTIFICATION was sent or received.
    pub fn notification(
        &mut self,
        session: Session,
        sent: bool,
        n: &wasmbgp_bgp::packet::Notification,
    ) {
        self.push(ExportEvent::Notification {
            session,
            direction: if sent {
                MessageDirection::Sent
            } else {
                MessageDirection::Received
            },
            code: n.code,
            subcode: n.subcode,
            data: n.data.clone(),
            description: n.describe(),
        });
    }

    /// End-of-RIB received.
    pub fn end_of_rib(&mut self, session: Session, family: wasmbgp_bgp::Family) {
        self.push(ExportEvent::EndOfRib {
            session,
            afi: family.afi,
            safi: family.safi,
        });
    }

    /// Route changes in order (announcement with attributes, or withdrawal).
    pub fn routes<'a>(
        &mut self,
        session: Session,
        direction: RouteDirection,
        changes: impl IntoIterator<Item = (Prefix, Option<&'a Arc<PathAttributes>>)>,
    ) {
        if self.links.is_empty() {
            return;
        }
        for event in route_events(session, direction, changes) {
            self.pending.push(Arc::new(ExportEvent::Routes(event)));
        }
    }

    /// Received route changes, as [`ReceivedChange`]s.
    pub fn received(
        &mut self,
        session: Session,
        direction: RouteDirection,
        changes: &[ReceivedChange],
    ) {
        self.routes(
            session,
            direction,
            changes.iter().map(|(p, a)| (p.clone(), a.as_ref())),
        );
    }

    /// Any other event (health, plugin lifecycle).
    pub fn event(&mut self, event: ExportEvent) {
        self.push(event);
    }

    /// Hands every exporter the events of this turn it subscribed to.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let events = std::mem::take(&mut self.pending);
        for link in &self.links {
            let batch: EventBatch = events
                .iter()
                .filter(|e| link.subscription.wants(e))
                .cloned()
                .collect();
            link.client.deliver(batch);
        }
    }

    /// The exporter named `plugin`, to hand it a snapshot; its subscription too.
    pub fn link(&self, plugin: &str) -> Option<&ExporterLink> {
        self.links.iter().find(|l| l.client.name() == plugin)
    }
}

/// Ordered route changes as route events: each event applies its withdrawals before
/// its announcements, so a new event starts whenever a withdrawal follows an
/// announcement; at most [`ROUTES_PER_EVENT`] routes each.
pub fn route_events<'a>(
    session: Session,
    direction: RouteDirection,
    changes: impl IntoIterator<Item = (Prefix, Option<&'a Arc<PathAttributes>>)>,
) -> Vec<RouteEvent> {
    let mut out = Vec::new();
    let new = || RouteEvent {
        session,
        direction,
        announced: Vec::new(),
        withdrawn: Vec::new(),
    };
    let mut current = new();
    for (prefix, attrs) in changes {
        let full = current.announced.len() + current.withdrawn.len() >= ROUTES_PER_EVENT;
        if full || (attrs.is_none() && !current.announced.is_empty()) {
            out.push(std::mem::replace(&mut current, new()));
        }
        match attrs {
            Some(a) => current.announced.push((prefix, a.clone())),
            None => current.withdrawn.push(prefix),
        }
    }
    if !current.announced.is_empty() || !current.withdrawn.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_withdrawal_after_an_announcement_starts_a_new_event() {
        let s = session("192.0.2.1".parse().unwrap(), 65001, 65000);
        let a = Arc::new(PathAttributes::default());
        let p = |t: &str| t.parse::<Prefix>().unwrap();
        let changes = vec![
            (p("10.0.0.0/24"), None),
            (p("10.0.1.0/24"), Some(&a)),
            (p("10.0.1.0/24"), None),
            (p("10.0.2.0/24"), Some(&a)),
        ];
        let events = route_events(s, RouteDirection::Received, changes);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].withdrawn, vec![p("10.0.0.0/24")]);
        assert_eq!(events[0].announced.len(), 1);
        assert_eq!(events[1].withdrawn, vec![p("10.0.1.0/24")]);
        assert_eq!(events[1].announced[0].0, p("10.0.2.0/24"));
    }
}
