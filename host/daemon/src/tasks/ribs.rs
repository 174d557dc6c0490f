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
//! `on-failure` treatment: reject (fail closed) or accept unchanged (fail open). Without
//! an import policy the Adj-RIB-In as received is also the accepted one (no second
//! table). Calls go through the runtime's [`PolicyClient`] in batches of at most
//! [`CHUNK`] routes; nothing here runs on a neighbor's task.

use std::net::IpAddr;
use std::sync::Arc;

use wasmbgp_bgp::Prefix;
use wasmbgp_bgp::packet::Update;
use wasmbgp_bgp::packet::attributes::PathAttributes;
use wasmbgp_bgp::rib::{AdjRibIn, AdjRibOut, Interner, SourceId};
use wasmbgp_runtime::{Direction, OnFailure, PolicyClient, PolicySession, Verdict};

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
    /// Routes received, as received (RFC 7606 and loop checks applied).
    pub adj_in: AdjRibIn,
    /// Routes received after import policy; `None` when the neighbor has none.
    pub adj_in_accepted: Option<AdjRibIn>,
    /// Prefixes received since the import policy last ran.
    to_judge: Vec<Prefix>,
}

impl NeighborRibs {
    /// Tables for a neighbor with `originated` routes loaded.
    pub fn new(originated: AdjRibOut, import_policy: bool) -> Self {
        NeighborRibs {
            originated,
            adj_in: AdjRibIn::new(),
            adj_in_accepted: import_policy.then(AdjRibIn::new),
            to_judge: Vec::new(),
        }
    }

    /// The routes received after import policy.
    pub fn accepted(&self) -> &AdjRibIn {
        self.adj_in_accepted.as_ref().unwrap_or(&self.adj_in)
    }

    /// The session went down: everything received is gone.
    pub fn session_down(&mut self) {
        self.adj_in.clear();
        self.to_judge.clear();
        if let Some(t) = &mut self.adj_in_accepted {
            t.clear();
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

    /// Every originated route through export policy: the neighbor's whole Adj-RIB-Out
    /// (to start a session with, or to compare against after a policy changed).
    pub async fn export_all(
        &self,
        chain: &[PolicyLink],
        session: PolicySession,
        interner: &mut Interner,
    ) -> Vec<RouteChange> {
        let all = self
            .originated
            .routes()
            .map(|(p, a, s)| (p, Some((a.clone(), s))))
            .collect();
        export(all, chain, session, interner).await
    }

    /// Applies an UPDATE received to the Adj-RIB-In as received; with an import policy,
    /// what it changed waits for [`judge_received`](Self::judge_received), so that the UPDATEs
    /// queued together are judged in one batch.
    pub fn receive(&mut self, update: &Update, ebgp: bool, local_as: u32) {
        let mut changed = Vec::new();
        self.adj_in
            .apply_and_list(update, ebgp, local_as, &mut changed);
        if self.adj_in_accepted.is_some() {
            self.to_judge.extend(changed);
        }
    }

    /// True when received routes wait for the import policy.
    pub fn has_unjudged(&self) -> bool {
        !self.to_judge.is_empty()
    }

    /// Judges every received route again (after the import policy changed).
    pub async fn import_all(
        &mut self,
        chain: &[PolicyLink],
        session: PolicySession,
        interner: &mut Interner,
    ) {
        let Some(accepted) = &mut self.adj_in_accepted else {
            return;
        };
        let stale: Vec<Prefix> = accepted
            .routes()
            .map(|(p, _)| p)
            .filter(|p| self.adj_in.get(p).is_none())
            .collect();
        self.to_judge = self.adj_in.routes().map(|(p, _)| p).chain(stale).collect();
        self.judge_received(chain, session, interner).await;
    }

    /// Brings the accepted table up to date for the prefixes received since the last
    /// call, through the import policy.
    pub async fn judge_received(
        &mut self,
        chain: &[PolicyLink],
        session: PolicySession,
        interner: &mut Interner,
    ) {
        let prefixes = std::mem::take(&mut self.to_judge);
        let Some(accepted) = &mut self.adj_in_accepted else {
            return;
        };
        for chunk in prefixes.chunks(CHUNK) {
            let mut present = Vec::with_capacity(chunk.len());
            for p in chunk {
                match self.adj_in.get(p) {
                    Some(a) => present.push((*p, a.clone())),
                    None => {
                        accepted.remove(p);
                    }
                }
            }
            let verdicts = run_chain(chain, Direction::Import, session, &present, interner).await;
            for ((prefix, _), verdict) in present.into_iter().zip(verdicts) {
                match verdict {
                    Some(attrs) => accepted.insert(prefix, attrs),
                    None => {
                        accepted.remove(&prefix);
                    }
                }
            }
        }
    }
}

/// Originated changes through export policy, in chunks.
async fn export(
    changes: Vec<(Prefix, Option<(Arc<PathAttributes>, SourceId)>)>,
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
    let mut out = Vec::with_capacity(changes.len());
    for chunk in changes.chunks(CHUNK) {
        let announced: Vec<(Prefix, Arc<PathAttributes>)> = chunk
            .iter()
            .filter_map(|(p, r)| r.as_ref().map(|(a, _)| (*p, a.clone())))
            .collect();
        let mut verdicts = run_chain(chain, Direction::Export, session, &announced, interner)
            .await
            .into_iter();
        for (prefix, route) in chunk {
            let route = match route {
                Some((_, source)) => verdicts.next().flatten().map(|a| (a, *source)),
                None => None,
            };
            out.push(RouteChange {
                prefix: *prefix,
                route,
            });
        }
    }
    out
}

/// Runs `routes` through `chain`; per route, its attributes after the chain, or `None`
/// if a policy rejected it.
pub async fn run_chain(
    chain: &[PolicyLink],
    direction: Direction,
    session: PolicySession,
    routes: &[(Prefix, Arc<PathAttributes>)],
    interner: &mut Interner,
) -> Vec<Option<Arc<PathAttributes>>> {
    let mut result: Vec<Option<Arc<PathAttributes>>> =
        routes.iter().map(|(_, a)| Some(a.clone())).collect();
    // Indices of the routes still accepted, fed to the next policy.
    let mut alive: Vec<usize> = (0..routes.len()).collect();
    for link in chain {
        if alive.is_empty() {
            break;
        }
        let batch: Vec<(Prefix, Arc<PathAttributes>)> = alive
            .iter()
            .filter_map(|&i| result[i].clone().map(|a| (routes[i].0, a)))
            .collect();
        match link.client.evaluate(direction, session, &batch).await {
            Ok(verdicts) => {
                let mut next = Vec::with_capacity(alive.len());
                for (k, &i) in alive.iter().enumerate() {
                    match verdicts.get(k) {
                        Verdict::Accept => next.push(i),
                        Verdict::Reject => result[i] = None,
                        Verdict::Replace(attrs) => {
                            result[i] = Some(interner.intern_arc(attrs.clone()));
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
                        result[i] = None;
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
