//! The `exporter` world's driver, and the [`ExporterClient`] through which the daemon
//! hands it events.
//!
//! ```text
//!  speaker ──deliver(events)──▶ ExporterClient ──Item (bounded, `queue`)──▶ driver ──on-events──▶ guest
//!          ──snapshot(events)─▶   (one slot, replaced, never queued behind events)
//!  driver ──PluginEvent::SnapshotWanted──▶ speaker (new, restarted or reloaded instance; resync)
//! ```
//!
//! Delivery never waits: when the queue is full the batch is dropped and counted, and
//! the next batch that fits carries the count, which the plugin sees as `lagged(n)`
//! before it. A new instance asks for a snapshot; every batch queued before the
//! speaker took it (sequence number at most the snapshot's) is covered by it and
//! skipped, every batch after follows it: no gap and no duplicate. The driver merges
//! queued batches into calls of at most [`MAX_EVENTS_PER_CALL`] events.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{
    Control, DriverCore, Fault, PluginState, Prepared, Shared, WorldPre, setup_deadline,
    sleep_until, timed_call,
};
use crate::events::PluginEvent;
use crate::export::{EventBatch, ExportEvent};
use crate::host::bindings::exporter::Exporter;
use crate::host::bindings::exporter::wasmbgp::plugin::events as wit;
use crate::host::{PluginCtx, events_out};
use crate::restart::{RestartPolicy, Restarts};

/// The most events (routes count one each) in one `on-events` call.
pub const MAX_EVENTS_PER_CALL: u64 = 4096;
/// Dropped batches are logged at most this often.
const DROP_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

struct Item {
    seq: u64,
    /// Events dropped just before this batch.
    lagged: u64,
    events: EventBatch,
}

struct Snapshot {
    /// The sequence number of the last batch delivered before it was taken.
    after: u64,
    events: EventBatch,
}

/// What the client and the driver share.
struct Feed {
    /// The sequence number of the last batch delivered (queued or dropped).
    seq: AtomicU64,
    /// Events dropped since the last batch that fit (or the last snapshot).
    lost: AtomicU64,
    snapshot: Mutex<Option<Snapshot>>,
    snapshot_ready: Notify,
    last_drop_log: Mutex<Option<Instant>>,
}

/// Hands events to one exporter. Cheap to clone; never waits.
#[derive(Clone)]
pub struct ExporterClient {
    shared: Arc<Shared>,
    queue: mpsc::Sender<Item>,
    feed: Arc<Feed>,
}

impl std::fmt::Debug for ExporterClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExporterClient")
            .field("plugin", &self.shared.name)
            .finish()
    }
}

fn weight(events: &[Arc<ExportEvent>]) -> u64 {
    events.iter().map(|e| e.weight()).sum()
}

impl ExporterClient {
    /// The exporter's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Queues a batch of events, in order after the ones before. Never waits: when the
    /// exporter is behind (its queue is full) the batch is dropped, counted, and the
    /// exporter is told `lagged(n)` before the next batch that fits. Returns false when
    /// dropped.
    pub fn deliver(&self, events: EventBatch) -> bool {
        if events.is_empty() {
            return true;
        }
        let seq = self.feed.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let lagged = self.feed.lost.swap(0, Ordering::Relaxed);
        match self.queue.try_send(Item {
            seq,
            lagged,
            events,
        }) {
            Ok(()) => true,
            Err(
                mpsc::error::TrySendError::Full(item) | mpsc::error::TrySendError::Closed(item),
            ) => {
                let dropped = weight(&item.events);
                self.feed
                    .lost
                    .fetch_add(lagged + dropped, Ordering::Relaxed);
                self.shared.count_events(0, dropped);
                let mut last = self
                    .feed
                    .last_drop_log
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if last.is_none_or(|t| t.elapsed() >= DROP_LOG_EVERY) {
                    *last = Some(Instant::now());
                    tracing::warn!(
                        plugin = %self.shared.name,
                        dropped_total = self.shared.snapshot().events_dropped,
                        "exporter is behind: events dropped (it is told `lagged`); BGP is not slowed"
                    );
                }
                false
            }
        }
    }

    /// Hands the exporter the snapshot it asked for ([`PluginEvent::SnapshotWanted`]):
    /// the sessions and their routes as events, as they are after every batch
    /// delivered so far. The driver adds `end-of-snapshot`.
    pub fn snapshot(&self, events: EventBatch) {
        let after = self.feed.seq.load(Ordering::Relaxed);
        // What was lost so far is covered by the snapshot.
        self.feed.lost.store(0, Ordering::Relaxed);
        *self.feed.snapshot.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Snapshot { after, events });
        self.feed.snapshot_ready.notify_one();
    }
}

/// Starts an exporter's driver; returns the client and the task.
pub(crate) fn spawn(core: DriverCore, restart: RestartPolicy) -> (ExporterClient, JoinHandle<()>) {
    let capacity = core.prepared.spec.queue.max(1);
    let (tx, rx) = mpsc::channel(capacity);
    let feed = Arc::new(Feed {
        seq: AtomicU64::new(0),
        lost: AtomicU64::new(0),
        snapshot: Mutex::new(None),
        snapshot_ready: Notify::new(),
        last_drop_log: Mutex::new(None),
    });
    let client = ExporterClient {
        shared: core.shared.clone(),
        queue: tx,
        feed: feed.clone(),
    };
    let driver = Driver {
        core,
        restarts: Restarts::new(restart),
        instance: None,
        start_at: Some(tokio::time::Instant::now()),
        recovering: false,
        feed,
        awaiting_snapshot: false,
        covered: 0,
        held: VecDeque::new(),
        capacity,
    };
    (client, tokio::spawn(driver.run(rx)))
}

pub(super) struct Instance {
    store: wasmtime::Store<PluginCtx>,
    bindings: Exporter,
}

struct Driver {
    core: DriverCore,
    restarts: Restarts,
    instance: Option<Instance>,
    start_at: Option<tokio::time::Instant>,
    recovering: bool,
    feed: Arc<Feed>,
    /// The instance waits for its snapshot; batches meanwhile are held.
    awaiting_snapshot: bool,
    /// Batches up to this sequence number are in the last snapshot.
    covered: u64,
    /// Batches received while waiting for the snapshot.
    held: VecDeque<Item>,
    capacity: usize,
}

impl Driver {
    async fn run(mut self, mut queue: mpsc::Receiver<Item>) {
        tracing::info!(plugin = %self.core.shared.name, component = %self.core.prepared.spec.component.display(), "exporter started");
        loop {
            let start_at = if self.instance.is_none() {
                self.start_at
            } else {
                None
            };
            let feed = self.feed.clone();
            tokio::select! {
                biased;
                message = self.core.control.recv() => match message {
                    None | Some(Control::Stop) => break,
                    Some(Control::Reload(prepared, reply)) => self.reload(*prepared, reply).await,
                    Some(Control::Disable | Control::Enable) => {}
                },
                () = sleep_until(start_at) => {
                    self.start_at = None;
                    self.start().await;
                }
                () = feed.snapshot_ready.notified(), if self.awaiting_snapshot => {
                    self.on_snapshot().await;
                }
                item = queue.recv() => match item {
                    None => break,
                    Some(item) => self.on_item(item, &mut queue).await,
                },
            }
        }
        self.instance = None;
        self.core.shared.update(|s| s.state = PluginState::Stopped);
        tracing::info!(plugin = %self.core.shared.name, "exporter stopped");
    }

    /// Asks the daemon for a snapshot; batches are held until it comes.
    fn want_snapshot(&mut self) {
        self.awaiting_snapshot = true;
        self.core.events.notify(PluginEvent::SnapshotWanted {
            plugin: self.core.shared.name.clone(),
        });
    }

    async fn on_item(&mut self, item: Item, queue: &mut mpsc::Receiver<Item>) {
        if self.instance.is_none() {
            // Not started yet, or down in backoff: the instance that starts next begins
            // from a snapshot that covers these, so nothing is lost to its view.
            return;
        }
        if self.awaiting_snapshot {
            if self.held.len() >= self.capacity {
                let oldest = self.held.pop_front().expect("held is full");
                self.feed
                    .lost
                    .fetch_add(weight(&oldest.events), Ordering::Relaxed);
                self.core.shared.count_events(0, weight(&oldest.events));
            }
            self.held.push_back(item);
            return;
        }
        // Merge what is already queued, in calls of at most MAX_EVENTS_PER_CALL events
        // (a batch larger than that is split between calls).
        let mut call = Vec::new();
        let mut total = 0;
        let mut next = Some(item);
        while let Some(item) = next.take() {
            if item.seq > self.covered {
                if item.lagged > 0 {
                    call.push(wit::Event::Lagged(item.lagged));
                }
                for event in &item.events {
                    events_out(std::slice::from_ref(event), &mut call);
                    total += event.weight();
                    if total >= MAX_EVENTS_PER_CALL {
                        if !self.call(std::mem::take(&mut call), total).await {
                            return;
                        }
                        total = 0;
                    }
                }
            }
            if total < MAX_EVENTS_PER_CALL {
                next = queue.try_recv().ok();
            }
        }
        self.call(call, total).await;
    }

    /// Adds an item's events (after its `lagged`, unless a snapshot covers it) to a
    /// call; returns their weight.
    fn add_item(&self, item: Item, batch: &mut Vec<wit::Event>) -> u64 {
        if item.seq <= self.covered {
            return 0;
        }
        if item.lagged > 0 {
            batch.push(wit::Event::Lagged(item.lagged));
        }
        events_out(&item.events, batch);
        weight(&item.events)
    }

    async fn on_snapshot(&mut self) {
        let Some(snapshot) = self
            .feed
            .snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        else {
            return;
        };
        self.awaiting_snapshot = false;
        self.covered = snapshot.after;
        let started = Instant::now();
        let mut calls = 0;
        let mut chunk = Vec::new();
        let mut total = 0;
        for event in &snapshot.events {
            events_out(std::slice::from_ref(event), &mut chunk);
            total += event.weight();
            if total >= MAX_EVENTS_PER_CALL {
                calls += 1;
                if !self.call(std::mem::take(&mut chunk), total).await {
                    return;
                }
                total = 0;
            }
        }
        chunk.push(wit::Event::EndOfSnapshot);
        if !self.call(chunk, total).await {
            return;
        }
        tracing::info!(
            plugin = %self.core.shared.name,
            events = weight(&snapshot.events),
            calls = calls + 1,
            ms = started.elapsed().as_millis() as u64,
            "exporter snapshot delivered"
        );
        // What arrived meanwhile and is not covered follows, in order.
        let held: Vec<Item> = self.held.drain(..).collect();
        let mut batch = Vec::new();
        let mut total = 0;
        for item in held {
            total += self.add_item(item, &mut batch);
            if total >= MAX_EVENTS_PER_CALL {
                if !self.call(std::mem::take(&mut batch), total).await {
                    return;
                }
                total = 0;
            }
        }
        if !batch.is_empty() {
            self.call(batch, total).await;
        }
    }

    /// One `on-events` call; false when the instance faulted (it is dropped and
    /// restarted after a backoff).
    async fn call(&mut self, events: Vec<wit::Event>, weight: u64) -> bool {
        if events.is_empty() {
            return true;
        }
        let deadline = self.core.prepared.grants.deadline;
        let Some(instance) = self.instance.as_mut() else {
            return false;
        };
        let bindings = &instance.bindings;
        let started = Instant::now();
        let result = timed_call(&mut instance.store, deadline, async |store| {
            bindings
                .wasmbgp_plugin_event_sink()
                .call_on_events(&mut *store, &events)
                .await
        })
        .await;
        self.core.shared.record_call(started.elapsed());
        let resync = instance.store.data_mut().take_resync();
        match result {
            Ok(()) => {
                self.restarts.success();
                self.core.shared.count_events(weight, 0);
                if resync {
                    tracing::info!(plugin = %self.core.shared.name, "exporter asked to resync");
                    self.want_snapshot();
                }
                true
            }
            Err(e) => {
                self.core.shared.count_events(0, weight);
                self.instance = None;
                self.fail(Fault::Died(format!("on-events: {e}")));
                false
            }
        }
    }

    async fn reload(&mut self, prepared: Prepared, reply: oneshot::Sender<Result<(), String>>) {
        tracing::info!(plugin = %self.core.shared.name, component = %prepared.spec.component.display(), "reloading");
        let instance = match instantiate(&self.core, &prepared).await {
            Ok(instance) => instance,
            Err(fault) => return self.core.refuse_reload(reply, fault),
        };
        self.instance = Some(instance);
        self.restarts.clear();
        self.start_at = None;
        self.recovering = false;
        self.core.shared.update(|s| s.state = PluginState::Running);
        self.core.take_over(prepared, reply);
        self.want_snapshot();
    }

    async fn start(&mut self) -> bool {
        match instantiate(&self.core, &self.core.prepared).await {
            Ok(instance) => {
                self.instance = Some(instance);
                self.core.shared.update(|s| s.state = PluginState::Running);
                self.recovering = false;
                self.core.started();
                self.want_snapshot();
                true
            }
            Err(fault) => {
                self.fail(fault);
                false
            }
        }
    }

    fn fail(&mut self, fault: Fault) {
        let restart_at = self.core.record_fault(
            &mut self.restarts,
            fault,
            "its events are dropped until it is back, then it starts from a snapshot",
        );
        self.awaiting_snapshot = false;
        for item in self.held.drain(..) {
            self.core.shared.count_events(0, weight(&item.events));
        }
        self.start_at = Some(restart_at);
        self.recovering = true;
    }
}

/// Instantiates `prepared` and runs its `init`.
pub(super) async fn instantiate(core: &DriverCore, prepared: &Prepared) -> Result<Instance, Fault> {
    let mut store = core.new_store(prepared);
    let deadline = setup_deadline(prepared);
    let WorldPre::Exporter(pre) = prepared.pre.clone() else {
        return Err(Fault::Died("not an exporter".into()));
    };
    let bindings = timed_call(&mut store, deadline, async |store| {
        pre.instantiate_async(&mut *store).await
    })
    .await
    .map_err(|e| Fault::Died(format!("instantiation failed: {e}")))?;
    let settings = prepared.spec.settings.clone();
    let started = Instant::now();
    let result = timed_call(&mut store, deadline, async |store| {
        bindings
            .wasmbgp_plugin_event_sink()
            .call_init(&mut *store, &settings)
            .await
    })
    .await;
    core.shared.record_call(started.elapsed());
    match result {
        Ok(Ok(())) => Ok(Instance { store, bindings }),
        Ok(Err(message)) => Err(Fault::Config(message)),
        Err(e) => Err(Fault::Died(format!("init: {e}"))),
    }
}
