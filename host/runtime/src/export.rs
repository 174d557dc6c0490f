//! What the daemon tells exporters: the events of the `exporter` world in the BGP
//! core's types. The speaker builds them; the exporter's driver turns them into the
//! WIT types (on its own task, so that the speaker only clones pointers). Routes are
//! shared, never copied: an event is built once and queued to every exporter
//! subscribed to it.

use std::net::IpAddr;
use std::sync::Arc;

use wasmbgp_bgp::Prefix;
use wasmbgp_bgp::packet::attributes::PathAttributes;

use crate::healthcheck::Health;

/// A BGP session as the speaker knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    /// The neighbor's address.
    pub neighbor: IpAddr,
    /// The neighbor's AS.
    pub peer_as: u32,
    /// Our AS on the session.
    pub local_as: u32,
}

/// The states of the BGP finite state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Idle.
    Idle,
    /// Connect.
    Connect,
    /// Active.
    Active,
    /// OpenSent.
    OpenSent,
    /// OpenConfirm.
    OpenConfirm,
    /// Established.
    Established,
}

/// Which routes a [`RouteEvent`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteDirection {
    /// Received, before import policy.
    ReceivedPrePolicy,
    /// Received, as import policy accepted them.
    Received,
    /// Advertised to the neighbor, after export policy.
    Sent,
}

/// Routes announced and withdrawn on one session.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteEvent {
    /// The session.
    pub session: Session,
    /// Received (before or after policy) or sent.
    pub direction: RouteDirection,
    /// Announced routes; routes sharing an attribute set share its allocation.
    pub announced: Vec<(Prefix, Arc<PathAttributes>)>,
    /// Withdrawn prefixes.
    pub withdrawn: Vec<Prefix>,
}

/// Which way a NOTIFICATION went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageDirection {
    /// We sent it.
    Sent,
    /// The neighbor sent it.
    Received,
}

/// What happened to a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginChange {
    /// Started for the first time.
    Loaded,
    /// Swapped in place for a new component, settings or data.
    Reloaded,
    /// Back after a fault.
    Restarted,
    /// Faulted; restarts after a backoff.
    Faulted,
    /// A request outside its grants was refused.
    Denied,
}

impl PluginChange {
    /// The word used in logs and events.
    pub fn name(self) -> &'static str {
        match self {
            PluginChange::Loaded => "loaded",
            PluginChange::Reloaded => "reloaded",
            PluginChange::Restarted => "restarted",
            PluginChange::Faulted => "faulted",
            PluginChange::Denied => "denied",
        }
    }
}

/// One event for exporters.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportEvent {
    /// A session changed state (in a snapshot, `old == new`).
    Session {
        /// The session.
        session: Session,
        /// The state before.
        old: SessionState,
        /// The state now.
        new: SessionState,
        /// Why.
        reason: String,
    },
    /// Routes announced or withdrawn.
    Routes(RouteEvent),
    /// End-of-RIB received for a family.
    EndOfRib {
        /// The session.
        session: Session,
        /// AFI.
        afi: u16,
        /// SAFI.
        safi: u8,
    },
    /// A NOTIFICATION sent or received.
    Notification {
        /// The session.
        session: Session,
        /// Sent or received.
        direction: MessageDirection,
        /// Error code.
        code: u8,
        /// Error subcode.
        subcode: u8,
        /// Data.
        data: Vec<u8>,
        /// Code and subcode in words.
        description: String,
    },
    /// A health check's verdict changed.
    Health {
        /// The health check.
        plugin: String,
        /// Its verdict.
        health: Health,
        /// Its reason.
        reason: String,
    },
    /// A plugin's lifecycle.
    Plugin {
        /// The plugin.
        plugin: String,
        /// What happened.
        change: PluginChange,
        /// The fault, the denied request...
        detail: String,
    },
}

impl ExportEvent {
    /// How many events this counts as in the delivered and dropped counters: one per
    /// route for route events, one otherwise.
    pub fn weight(&self) -> u64 {
        match self {
            ExportEvent::Routes(r) => (r.announced.len() + r.withdrawn.len()).max(1) as u64,
            _ => 1,
        }
    }
}

/// A batch of events in order, each shared between the exporters that receive it.
pub type EventBatch = Vec<Arc<ExportEvent>>;
