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

/// Events waiting for the daemon, from every plugin.
pub const EVENT_QUEUE: usize = 1024;

/// Where plugins' events go: a bounded queue to the daemon.
///
/// A plugin's `announce` and `withdraw` wait for room ([`send`](Self::send)): a plugin
/// announcing in a loop is paced by the daemon and the queue stays at its bound (the
/// wait is the host's time, not the plugin's deadline). What the runtime itself reports
/// (health transitions, faults, lifecycle, snapshot requests) comes from code that
/// cannot wait ([`notify`](Self::notify)): when the queue is full such an event is
/// handed to a task that waits for room, behind the plugins' requests. These are rare
/// by construction (one per check verdict change, fault, reload or resync), so the
/// tasks stay few, and nothing is lost.
#[derive(Debug, Clone)]
pub struct EventSender(tokio::sync::mpsc::Sender<PluginEvent>);

impl EventSender {
    /// A sender and the daemon's end of the queue ([`EVENT_QUEUE`] events).
    pub fn channel() -> (Self, tokio::sync::mpsc::Receiver<PluginEvent>) {
        let (tx, rx) = tokio::sync::mpsc::channel(EVENT_QUEUE);
        (Self(tx), rx)
    }

    /// Queues `event`, waiting for room; false once the daemon is gone.
    pub async fn send(&self, event: PluginEvent) -> bool {
        self.0.send(event).await.is_ok()
    }

    /// Queues `event` without waiting (see the type's documentation).
    pub fn notify(&self, event: PluginEvent) {
        match self.0.try_send(event) {
            Ok(()) | Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {}
            Err(tokio::sync::mpsc::error::TrySendError::Full(event)) => {
                let tx = self.0.clone();
                // Outside a runtime (a test building contexts), there is no daemon to
                // wait for.
                if let Ok(handle) = tokio::runtime::Handle::try_current() {
                    handle.spawn(async move {
                        let _ = tx.send(event).await;
                    });
                }
            }
        }
    }
}
