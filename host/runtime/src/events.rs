//! What the runtime tells the daemon.

use std::net::IpAddr;

use wasmbgp_bgp::Prefix;
use wasmbgp_bgp::words::RouteSpec;

use crate::export::PluginChange;
use crate::healthcheck::Health;
use crate::spec::OnFailure;

/// An event from a running plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginEvent {
    /// A health transition after hysteresis (never a steady state).
    /// After a [`PluginEvent::Failed`], the next verdict is always sent,
    /// even if it equals the one before the fault.
    Health {
        /// The plugin's name.
        plugin: String,
        /// The new health.
        health: Health,
        /// The last check's message (or "disabled by operator").
        reason: String,
    },
    /// The plugin's instance died (trap, deadline, memory cap, panic, init
    /// error) and will be restarted with backoff; the daemon applies
    /// `on_failure` to its routes.
    Failed {
        /// The plugin's name.
        plugin: String,
        /// What happened.
        error: String,
        /// The plugin's `on-failure` setting.
        on_failure: OnFailure,
    },
    /// A route announced through the `routes` interface, parsed with the
    /// daemon's route words and checked against the grants and `max-routes`
    /// before it left the plugin's call: nothing unvalidated reaches the
    /// speaker.
    Announce {
        /// The plugin's name.
        plugin: String,
        /// The route (`next_hop` is [`NextHop::Local`](wasmbgp_bgp::NextHop::Local) for self).
        route: RouteSpec,
        /// The neighbors to send it to (granted ones only, never empty).
        neighbors: Vec<IpAddr>,
    },
    /// A policy's verdicts may have changed (it was reloaded, its data files changed,
    /// or it is back after a fault, during which its routes were judged by
    /// `on-failure`): the daemon judges the routes it filters again.
    PolicyChanged {
        /// The plugin's name.
        plugin: String,
    },
    /// A withdrawal through the `routes` interface.
    Withdraw {
        /// The plugin's name.
        plugin: String,
        /// The prefix.
        prefix: Prefix,
        /// The neighbors to withdraw it from (never empty).
        neighbors: Vec<IpAddr>,
    },
    /// Something happened to a plugin (for exporters' `plugin` events).
    Lifecycle {
        /// The plugin's name.
        plugin: String,
        /// What.
        change: PluginChange,
        /// The fault, the denied request, the component...
        detail: String,
    },
    /// An exporter's new instance needs a snapshot of the sessions and routes (it
    /// started, restarted, was reloaded or asked to resync): the daemon hands one to
    /// its [`ExporterClient::snapshot`](crate::ExporterClient::snapshot).
    SnapshotWanted {
        /// The exporter's name.
        plugin: String,
    },
}
