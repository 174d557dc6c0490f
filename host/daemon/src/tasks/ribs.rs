//! Who owns the routes: the speaker, through one [`NeighborRibs`] per neighbor, and
//! where policies are called on them.
//!
//! ```text
//!  config, ctl, plugins ──▶ originated (sources ranked) ──export policy──▶ RouteChange ──▶ neighbor task
//!  neighbor task ──UPDATE──▶ Adj-RIB-In (as received) ──import policy──▶ Adj-RIB-In (accepted)
//! ```
//!
//! A chain of policies runs in order: a rejection stops the route, modifications
//! accumulate. A policy that cannot judge (fault, backoff) gives its routes its
//! `on-failure` treatment: reject (fail closed) or accept unchanged (fail open). The
//! Adj-RIB-In keeps each route once, with the import verdict beside it. Calls go
//! through the runtime's [`PolicyClient`] in batches of at most [`CHUNK`] routes;
//! nothing here runs on a neighbor's task. Whole tables are judged in one ordered pass
//! over a copy (no lookup per route): route tables of a million entries cost hundreds
//! of ns per lookup, more than a policy call.

use std::net::IpAddr;
use std::sync::Arc;

use wasmbgp_bgp::packet::Update;
use wasmbgp_bgp::packet::attributes::PathAttributes;
use wasmbgp_bgp::rib::{AdjRibIn, AdjRibOut, Advertised, Interner, ReceivedChange, RouteIn};
use wasmbgp_bgp::{Family, Prefix};
use wasmbgp_runtime::{Direction, OnFailure, PolicyClient, PolicySession, Verdict};

use super::limits::FAMILY_COUNT;
use super::messages::RouteChange;

/// Routes per policy call (the runtime's largest batch).
pub const CHUNK: usize = wasmbgp_runtime::MAX_BATCH;

/// One policy of a chain, with what to do when it cannot judge.
#[derive(Debug, Clone)]
pub struct PolicyLink {
    /// The plugin.
    pub client: PolicyClient,
    /// Reject or accept the routes it cannot judge.
    pub on_failure: OnFailure,
}

/// The routes the speaker keeps for one neighbor.
#[derive(Debug, Default)]
pub struct NeighborRibs {
    /// Routes to send before export policy, every source's, the best one advertised.
    pub originated: AdjRibOut,
    /// Routes received, each as received and as the import policy accepted it.
    pub adj_in: AdjRibIn,
    /// The neighbor has an import policy.
    import_policy: bool,
    /// Changes received since the import policy last ran, in order.
    to_judge: Vec<ReceivedChange>,
    /// Record received changes before import policy, for exporters.
    record_pre: bool,
    /// Record received changes after import policy, for exporters.
    record_post: bool,
    /// Recorded changes, in order, until [`take_recorded`](Self::take_recorded).
    recorded_pre: Vec<ReceivedChange>,
    recorded_post: Vec<ReceivedChange>,
    /// Which max-prefixes limits the routes received are past.
    pub limits: super::limits::LimitWatch,
}

/// Prefixes announced and withdrawn in an UPDATE, IPv4 and IPv6 (for the metrics).
#[derive(Debug, Default, Clone, Copy)]
pub struct ReceivedCounts {
    /// Announced, [IPv4, IPv6].
    pub announced: [u64; FAMILY_COUNT],
    /// Withdrawn, [IPv4, IPv6].
    pub withdrawn: [u64; FAMILY_COUNT],
}

impl NeighborRibs {
    /// Tables for a neighbor with `originated` routes loaded.
    pub fn new(originated: AdjRibOut, import_policy: bool) -> Self {
        NeighborRibs {
            originated,
            adj_in: AdjRibIn::new(),
            import_policy,
            to_judge: Vec::new(),
            record_pre: false,
            record_post: false,
            recorded_pre: Vec::new(),
            recorded_post: Vec::new(),
            limits: Default::default(),
        }
    }

    /// Routes received (before import policy), IPv4 and IPv6 unicast.
    pub fn received_counts(&self) -> [usize; FAMILY_COUNT] {
        super::limits::FAMILIES.map(|f| self.adj_in.len_family(f))
    }

    /// Whether received routes wait for an import policy (a reload changed the chain;
    /// call it with nothing waiting, then judge everything again).
    pub fn set_import_policy(&mut self, on: bool) {
        debug_assert!(self.to_judge.is_empty());
        self.import_policy = on;
    }

    /// Records received changes for exporters: before import policy, after it.
    pub fn set_recording(&mut self, pre: bool, post: bool) {
        self.record_pre = pre;
        self.record_post = post;
    }

    /// The changes recorded since the last call: before and after import policy.
    pub fn take_recorded(&mut self) -> (Vec<ReceivedChange>, Vec<ReceivedChange>) {
        (
            std::mem::take(&mut self.recorded_pre),
            std::mem::take(&mut self.recorded_post),
        )
    }

    /// True when changes wait in [`take_recorded`](Self::take_recorded).
    pub fn has_recorded(&self) -> bool {
        !self.recorded_pre.is_empty() || !self.recorded_post.is_empty()
    }

    /// The session went down: everything received is gone (recorded as withdrawn),
    /// except the routes of the `stale` families, kept and marked stale while the peer
    /// restarts (nothing recorded: for exporters they have not changed).
    pub fn session_down(&mut self, stale: &[Family]) {
        self.to_judge.clear();
        if stale.is_empty() {
            if self.record_pre {
                let gone = self.adj_in.routes().map(|(p, _)| (p, None));
                self.recorded_pre.extend(gone);
            }
            if self.record_post {
                let gone = self.adj_in.accepted_routes().map(|(p, _)| (p, None));
                self.recorded_post.extend(gone);
            }
            self.adj_in.clear();
            self.limits.reset();
            return;
        }
        for family in super::limits::FAMILIES {
            if stale.contains(&family) {
                self.adj_in.mark_stale(family);
            } else {
                let gone = self.adj_in.clear_family(family);
                self.record_gone(gone);
            }
        }
    }

    /// Removes the routes of these families still stale (recorded as withdrawn);
    /// returns how many.
    pub fn end_stale(&mut self, families: &[Family]) -> usize {
        let mut swept = 0;
        for family in families {
            let gone = self.adj_in.sweep_stale(*family);
            swept += gone.len();
            self.record_gone(gone);
        }
        swept
    }

    /// Records routes removed from the Adj-RIB-In as withdrawn, for exporters.
    fn record_gone(&mut self, gone: Vec<(Prefix, RouteIn)>) {
        for (prefix, route) in gone {
            if self.record_pre {
                self.recorded_pre.push((prefix.clone(), None));
            }
            if self.record_post && route.accepted.is_some() {
                self.recorded_post.push((prefix, None));
            }
        }
    }

    /// The originated routes changed since the last call, through export policy.
    pub async fn export_changes(
        &mut self,
        chain: &[PolicyLink],
        session: PolicySession,
        interner: &mut Interner,
    ) -> Vec<RouteChange> {
        let changes = self.originated.take_changes();
        export(changes, chain, session, interner).await
    }

    /// The neighbor's whole Adj-RIB-Out: every originated route through export policy
    /// (to start a session with, or to replace the neighbor's after a policy changed).
    /// A copy of the originated table judged in one pass, in table order.
    pub async fn export_table(
        &self,
        chain: &[PolicyLink],
        session: PolicySession,
        interner: &mut Interner,
    ) -> AdjRibOut {
        let mut table = self.originated.advertised();
        if chain.is_empty() {
            return table;
        }
        // The copy and the original list the same routes in the same order; the
        // original is walked a chunk at a time, so that no second list of every route
        // is ever built.
        let mut verdicts = Vec::with_capacity(table.len());
        let mut routes = self.originated.routes().map(|(p, a, _)| (p, &**a));
        let mut chunk = Vec::with_capacity(CHUNK);
        loop {
            chunk.clear();
            chunk.extend(routes.by_ref().take(CHUNK));
            if chunk.is_empty() {
                break;
            }
            verdicts.extend(run_chain(chain, Direction::Export, session, &chunk, interner).await);
        }
        let mut verdicts = verdicts.into_iter();
        table.retain_routes(|_, attrs| match verdicts.next() {
            Some(Judged::Accepted) => true,
            Some(Judged::Rewritten(judged)) => {
                *attrs = judged;
                true
            }
            Some(Judged::Rejected) | None => false,
        });
        table
    }

    /// Applies an UPDATE received. Without an import policy every route is accepted as
    /// received at once; with one, the changes wait for
    /// [`judge_received`](Self::judge_received), so that the UPDATEs queued together
    /// are judged in one batch.
    pub fn receive(&mut self, update: &Update, ebgp: bool, local_as: u32) -> ReceivedCounts {
        let first = self.to_judge.len();
        AdjRibIn::changes(update, ebgp, local_as, &mut self.to_judge);
        let mut counts = ReceivedCounts::default();
        for (prefix, attrs) in &self.to_judge[first..] {
            // Per route received: the unicast families without a search.
            let family = match prefix {
                Prefix::V4(_) => 0,
                Prefix::V6(_) => 1,
                Prefix::Flow(rule) => super::limits::family_index(rule.family()),
            };
            match attrs {
                Some(_) => counts.announced[family] += 1,
                None => counts.withdrawn[family] += 1,
            }
        }
        if self.record_pre {
            self.recorded_pre
                .extend(self.to_judge[first..].iter().cloned());
        }
        if !self.import_policy {
            // Accepted as received, at once.
            for (prefix, attrs) in self.to_judge.drain(first..) {
                if self.record_post {
                    self.recorded_post.push((prefix.clone(), attrs.clone()));
                }
                self.adj_in.set(prefix, attrs.map(|a| (a.clone(), Some(a))));
            }
        }
        counts
    }

    /// Routes received and waiting for the import policy.
    pub fn unjudged(&self) -> usize {
        self.to_judge.len()
    }

    /// Runs the import policy on the changes received since the last call and applies
    /// them, in order, each route stored once with its verdict beside it.
    pub async fn judge_received(
        &mut self,
        chain: &[PolicyLink],
        session: PolicySession,
        interner: &mut Interner,
    ) {
        let changes = std::mem::take(&mut self.to_judge);
        let announced: Vec<(Prefix, &PathAttributes)> = changes
            .iter()
            .filter_map(|(p, a)| a.as_ref().map(|a| (p.clone(), &**a)))
            .collect();
        let verdicts = judge_all(chain, Direction::Import, session, &announced, interner).await;
        drop(announced);
        let mut verdicts = verdicts.into_iter();
        for (prefix, received) in changes {
            let route = received.map(|received| {
                let accepted = verdicts
                    .next()
                    .unwrap_or(Judged::Rejected)
                    .attributes(&received);
                (received, accepted)
            });
            if self.record_post {
                let accepted = route.as_ref().and_then(|(_, a)| a.clone());
                self.recorded_post.push((prefix.clone(), accepted));
            }
            self.adj_in.set(prefix, route);
        }
    }

    /// Judges every received route again (after the import policy changed).
    pub async fn import_all(
        &mut self,
        chain: &[PolicyLink],
        session: PolicySession,
        interner: &mut Interner,
    ) {
        let routes: Vec<(Prefix, Arc<PathAttributes>)> =
            self.adj_in.routes().map(|(p, a)| (p, a.clone())).collect();
        let refs: Vec<(Prefix, &PathAttributes)> =
            routes.iter().map(|(p, a)| (p.clone(), &**a)).collect();
        let verdicts = judge_all(chain, Direction::Import, session, &refs, interner).await;
        drop(refs);
        self.adj_in.set_accepted(
            verdicts
                .into_iter()
                .zip(&routes)
                .map(|(judged, (_, own))| judged.attributes(own)),
        );
        if self.record_post {
            // The whole table again, as the new verdicts have it.
            let accepted: std::collections::HashMap<Prefix, Arc<PathAttributes>> = self
                .adj_in
                .accepted_routes()
                .map(|(p, a)| (p, a.clone()))
                .collect();
            self.recorded_post.extend(
                routes
                    .iter()
                    .map(|(p, _)| (p.clone(), accepted.get(p).cloned())),
            );
        }
    }
}

/// What a chain of policies made of one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judged {
    /// Accepted with its own attributes.
    Accepted,
    /// Rejected.
    Rejected,
    /// Accepted with these (interned) attributes.
    Rewritten(Arc<PathAttributes>),
}

impl Judged {
    /// The attributes to keep for a route whose own are `own`; `None` if rejected.
    pub fn attributes(self, own: &Arc<PathAttributes>) -> Option<Arc<PathAttributes>> {
        match self {
            Judged::Accepted => Some(own.clone()),
            Judged::Rejected => None,
            Judged::Rewritten(attrs) => Some(attrs),
        }
    }
}

/// Originated changes through export policy, in chunks.
async fn export(
    changes: Vec<(Prefix, Option<Advertised>)>,
    chain: &[PolicyLink],
    session: PolicySession,
    interner: &mut Interner,
) -> Vec<RouteChange> {
    if chain.is_empty() {
        return changes
            .into_iter()
            .map(|(prefix, route)| RouteChange { prefix, route })
            .collect();
    }
    let announced: Vec<(Prefix, &PathAttributes)> = changes
        .iter()
        .filter_map(|(p, r)| r.as_ref().map(|(a, _)| (p.clone(), &**a)))
        .collect();
    let mut verdicts = judge_all(chain, Direction::Export, session, &announced, interner)
        .await
        .into_iter();
    changes
        .into_iter()
        .map(|(prefix, route)| RouteChange {
            prefix,
            route: route.and_then(|(attrs, source)| {
                let judged = verdicts.next().unwrap_or(Judged::Rejected);
                judged.attributes(&attrs).map(|a| (a, source))
            }),
        })
        .collect()
}

/// `routes` through `chain`, in calls of at most [`CHUNK`] routes.
async fn judge_all(
    chain: &[PolicyLink],
    direction: Direction,
    session: PolicySession,
    routes: &[(Prefix, &PathAttributes)],
    interner: &mut Interner,
) -> Vec<Judged> {
    let mut out = Vec::with_capacity(routes.len());
    for chunk in routes.chunks(CHUNK) {
        out.extend(run_chain(chain, direction, session, chunk, interner).await);
    }
    out
}

/// Runs `routes` through `chain`: per route, what the chain made of it. Nothing is
/// cloned for a route that is accepted as it is (the common case).
pub async fn run_chain(
    chain: &[PolicyLink],
    direction: Direction,
    session: PolicySession,
    routes: &[(Prefix, &PathAttributes)],
    interner: &mut Interner,
) -> Vec<Judged> {
    let mut result = vec![Judged::Accepted; routes.len()];
    // Indices of the routes still accepted, fed to the next policy.
    let mut alive: Vec<usize> = (0..routes.len()).collect();
    for (n, link) in chain.iter().enumerate() {
        if alive.is_empty() {
            break;
        }
        // The first policy judges `routes` as given; the next ones what is left.
        let outcome = if n == 0 {
            link.client.evaluate(direction, session, routes).await
        } else {
            let batch: Vec<(Prefix, &PathAttributes)> = alive
                .iter()
                .map(|&i| match &result[i] {
                    Judged::Rewritten(a) => (routes[i].0.clone(), &**a),
                    _ => routes[i].clone(),
                })
                .collect();
            link.client.evaluate(direction, session, &batch).await
        };
        match outcome {
            Ok(mut verdicts) => {
                verdicts.map_rewritten(|attrs| interner.intern_arc(attrs));
                let mut next = Vec::with_capacity(alive.len());
                for (k, &i) in alive.iter().enumerate() {
                    match verdicts.get(k) {
                        Verdict::Accept => next.push(i),
                        Verdict::Reject => result[i] = Judged::Rejected,
                        Verdict::Replace(attrs) => {
                            result[i] = Judged::Rewritten(attrs.clone());
                            next.push(i);
                        }
                    }
                }
                alive = next;
            }
            Err(why) => {
                tracing::warn!(
                    policy = link.client.name(),
                    routes = alive.len(),
                    on_failure = link.on_failure.name(),
                    "policy could not judge: {why}"
                );
                if link.on_failure != OnFailure::Accept {
                    for i in alive.drain(..) {
                        result[i] = Judged::Rejected;
                    }
                }
            }
        }
    }
    result
}

/// The policy session of a neighbor.
pub fn session(neighbor: IpAddr, peer_as: u32, local_as: u32) -> PolicySession {
    PolicySession {
        neighbor,
        peer_as,
        local_as,
    }
}
