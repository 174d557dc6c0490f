//! Every message that travels between the daemon's tasks, and the channels they use.
//!
//! ```text
//!   ctl clients ──┐                    plugin drivers (runtime)
//!   reloads ──────┤ SpeakerMsg              │ PluginEvent        ▲ policy batches
//!                 ▼                         ▼                    │ (PolicyClient, bounded 16)
//!             ┌──────────────────────── speaker ─────────────────┤
//!             │                                                  │ events (ExporterClient,
//!             │                                                  ▼  bounded `queue`; dropped
//!             │                                          exporter drivers  and counted when full)
//!             │  owns: originated routes per neighbor (sources ranked),
//!             │        Adj-RIB-In before and after import policy,
//!             │        runs export and import policies, feeds exporters
//!             └──┬──────────────────────────▲───────────────────────
//!      NeighborMsg│ (routes after export      │ NeighborEvent (UPDATEs received,
//!                 │  policy, status queries)  │  session states, NOTIFICATIONs)
//!                 ▼                           │
//!   listener ──▶ neighbor task (one per peer): session glue (the session machine, the
//!    Inbound      copy of its Adj-RIB-Out it resends on establishment or refresh) and
//!                 transport (its connections: connect, accept, collisions)
//!                 ▲ ReadEvent (decoded messages)   │ the negotiated context, once
//!                 │                                ▼ (after the peer's OPEN)
//!               connection reader/writer tasks ◀──▶ socket
//! ```
//!
//! Reloads (SIGHUP, `ctl reload`, `ctl plugin reload`, a plugin file changed) go through
//! `reload.rs`, one at a time: it reads and checks the config and swaps plugin instances
//! on blocking threads, then asks the speaker what runs (`Running`) and hands it only
//! outcomes (`PluginSwapped`, `Apply` with the plan). A neighbor a reload removes or
//! resets gets `Stop` with its Cease; a new task (new [`NeighborId`]) replaces a reset
//! one, and the listeners' [`Inbound`](super::listener::Inbound) map follows.
//!
//! Every channel is bounded, and what happens when one is full is decided per channel:
//!
//! | channel | bound | when full |
//! |---|---|---|
//! | `SpeakerMsg` (ctl, reloads → speaker) | [`SPEAKER_QUEUE`](super::speaker::SPEAKER_QUEUE) | the client waits (it waits for its answer anyway) |
//! | `PluginEvent` (plugins → speaker) | [`EVENT_QUEUE`](wasmbgp_runtime::events::EVENT_QUEUE) | a plugin's `announce`/`withdraw` waits, off its deadline: a plugin in a loop is paced by the speaker |
//! | plugin commands (speaker → plugin driver) | [`CONTROL_QUEUE`](wasmbgp_runtime::CONTROL_QUEUE) | refused as busy, with that error |
//! | policy requests (speaker → policy) | 16 | the speaker waits for the policy: it paces route processing |
//! | exporter events (speaker → exporter) | the exporter's `queue` | dropped and counted, the exporter is told `lagged` |
//! | `NeighborMsg` (speaker, listener → neighbor) | [`NEIGHBOR_QUEUE`](super::neighbor::NEIGHBOR_QUEUE) | the speaker waits (a neighbor task never blocks, so briefly); a listener drops the new connection |
//! | `NeighborEvent` (neighbor → speaker) | [`NEIGHBOR_EVENT_QUEUE`](super::neighbor::NEIGHBOR_EVENT_QUEUE) | the neighbor keeps its events in order and stops reading its peer: TCP slows the peer |
//! | `ReadEvent` (reader → neighbor) | [`READ_QUEUE`](super::connection::READ_QUEUE) reads, each decoded whole | the reader stops reading the socket |
//! | negotiated context (neighbor → reader) | one value (a oneshot) | never full: sent once per connection |
//! | bytes (neighbor → writer) | [`WRITE_QUEUE`](super::connection::WRITE_QUEUE) | UPDATEs wait in the Adj-RIB-Out (later changes replace earlier ones) |
//!
//! The speaker takes control requests first, then at most a bounded batch of plugin
//! events or neighbor events per turn, so that neither a plugin announcing in a loop
//! nor a peer sending a full table keeps an operator's `show` waiting.

use std::time::Instant;

use tokio::net::TcpStream;
use tokio::sync::oneshot;
use wasmbgp_bgp::Prefix;
use wasmbgp_bgp::packet::Update;
use wasmbgp_bgp::rib::{AdjRibOut, Advertised};

use crate::config::diff::{ReloadPlan, ReloadSummary};
use crate::config::{Globals, NeighborConfig, PluginConfig};
use crate::ctl::command::Command;
use crate::ctl::json::{NeighborStatus, Reply, RouteRow};

/// Requests to the speaker (from the control socket, SIGHUP and the plugin file
/// watcher). Reloads are prepared off the speaker (config parsed and checked, new
/// plugin instances started) and only their outcome comes here, so the speaker never
/// waits on a compiler or a plugin's `init`.
#[derive(Debug)]
pub enum SpeakerMsg {
    /// Control commands (or their parse errors), answered in order.
    Batch(Vec<Result<Command, String>>, oneshot::Sender<Vec<Reply>>),
    /// What runs now, for a reload to compare the config file with.
    Running(oneshot::Sender<Running>),
    /// A plugin took a new spec (its new instance serves): record it.
    PluginSwapped(wasmbgp_runtime::PluginSpec),
    /// Apply a checked config's difference with what runs.
    Apply(Box<ReloadPlan>, oneshot::Sender<ReloadSummary>),
    /// Stop every session as `Farewell` says.
    Shutdown(Farewell, oneshot::Sender<()>),
}

/// What runs now: what a config reload is compared with.
#[derive(Debug)]
pub struct Running {
    /// The settings only a restart changes.
    pub globals: Globals,
    /// The neighbors.
    pub neighbors: Vec<NeighborConfig>,
    /// The plugins, each with the handle that swaps its instance.
    pub plugins: Vec<(PluginConfig, wasmbgp_runtime::Reloader)>,
}

pub use crate::ctl::command::Farewell;

/// What a neighbor task stopped for a new session hands its successor once its
/// connection is closed: the counters `show neighbors` reports across the reset.
#[derive(Debug, Clone, Default)]
pub struct Carried {
    /// Sessions established so far.
    pub established_count: u64,
    /// UPDATEs received so far.
    pub updates_received: u64,
    /// UPDATEs sent so far.
    pub updates_sent: u64,
    /// Why the last session ended.
    pub last_error: Option<String>,
}

/// Identifies one neighbor task for as long as it runs: a neighbor removed or reset by
/// a reload gets a new task and id, and what its old task still reports is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NeighborId(pub u64);

/// What a neighbor task tells the speaker, in the order it happened.
#[derive(Debug)]
pub enum NeighborEvent {
    /// An UPDATE received (after RFC 7606 handling), for the Adj-RIB-In.
    Update {
        /// The neighbor's task.
        neighbor: NeighborId,
        /// The message.
        update: Box<Update>,
    },
    /// The session went down: the neighbor's Adj-RIB-In is gone, except the routes of
    /// the `stale` families, kept (marked stale) because the peer is restarting
    /// gracefully.
    Down {
        /// The neighbor's task.
        neighbor: NeighborId,
        /// Families whose routes stay, marked stale.
        stale: Vec<wasmbgp_bgp::Family>,
    },
    /// The routes of these families still stale are to go now (the peer's End-of-RIB
    /// arrived, it came back without preserving them, or its time ran out).
    StaleEnd {
        /// The neighbor's task.
        neighbor: NeighborId,
        /// The families.
        families: Vec<wasmbgp_bgp::Family>,
    },
    /// The session changed state (after the actions of one input).
    State {
        /// The neighbor's task.
        neighbor: NeighborId,
        /// The state before.
        old: wasmbgp_bgp::session::State,
        /// The state now.
        new: wasmbgp_bgp::session::State,
        /// The session's last error, if any.
        reason: String,
    },
    /// A NOTIFICATION sent or received.
    Notification {
        /// The neighbor's task.
        neighbor: NeighborId,
        /// We sent it (else received).
        sent: bool,
        /// The message.
        notification: wasmbgp_bgp::packet::Notification,
    },
}

/// The speaker's decision about one prefix on its way to one neighbor, after export
/// policy: the route to advertise (attributes and where it came from), or none.
#[derive(Debug, Clone)]
pub struct RouteChange {
    /// The prefix.
    pub prefix: Prefix,
    /// What to advertise; `None` withdraws it.
    pub route: Option<Advertised>,
}

/// Messages to a neighbor task.
#[derive(Debug)]
pub enum NeighborMsg {
    /// The initial Adj-RIB-Out, after export policy: the session starts once it has it,
    /// so a peer never sees routes the policy would not let through. With
    /// `end_of_rib_held`, the table is sent without its End-of-RIBs until
    /// [`EndOfRib`](Self::EndOfRib) (wasmbgp restarted and waits for its health checks).
    Start {
        /// The table.
        table: Box<AdjRibOut>,
        /// Hold the End-of-RIBs.
        end_of_rib_held: bool,
    },
    /// The initial table is complete: send the End-of-RIBs held back (now, or with the
    /// table if the session is not up yet).
    EndOfRib,
    /// The whole Adj-RIB-Out after export policy, judged again (a policy changed): the
    /// neighbor sends only what differs from what it has.
    Replace(Box<AdjRibOut>),
    /// Route changes, applied in order. `since` is when the plugin verdict that caused
    /// them arrived, to time how fast it reaches the wire.
    Routes {
        /// The changes.
        changes: Vec<RouteChange>,
        /// When their cause arrived, if a plugin verdict.
        since: Option<Instant>,
    },
    /// The peer connected to our listener.
    Inbound(TcpStream),
    /// Report the session's status.
    Status(oneshot::Sender<NeighborStatus>),
    /// List what the neighbor is sent (after export policy).
    AdjRibOut(oneshot::Sender<Vec<RouteRow>>),
    /// Send this Cease/Administrative Shutdown (none: close without a NOTIFICATION,
    /// for a graceful restart), close, and stop (wasmbgp stops).
    Shutdown(
        Option<wasmbgp_bgp::packet::Notification>,
        oneshot::Sender<()>,
    ),
    /// Send this Cease (the peer sent more prefixes than allowed), close, and try a new
    /// session after `restart` (or not until a reload resets it).
    Cease {
        /// The NOTIFICATION.
        notification: wasmbgp_bgp::packet::Notification,
        /// When to try again.
        restart: Option<std::time::Duration>,
    },
    /// Send this NOTIFICATION (a Cease: the neighbor was removed or needs a new
    /// session), close, stop, and hand what its successor carries on (if it has one).
    Stop(wasmbgp_bgp::packet::Notification, oneshot::Sender<Carried>),
    /// Settings that take effect without a new session (description, limits, retry
    /// delays, policy names): the new config.
    Reconfigure(Box<crate::config::NeighborConfig>),
    /// Panic, to test that the daemon does not run on without this task
    /// (`ctl debug panic neighbor ADDR`, only with fault injection enabled).
    Panic,
}
