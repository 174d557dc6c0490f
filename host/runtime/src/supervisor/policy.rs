//! The `policy` world's driver, and the [`PolicyClient`] through which the daemon has
//! routes judged.
//!
//! ```text
//!  speaker ──evaluate(routes)──▶ PolicyClient ──Request (bounded, 16)──▶ driver task ──▶ guest
//!     ◀────────── Verdicts ◀──── (columns → verdicts) ◀──── oneshot ◀───────┘
//! ```
//!
//! The client turns routes into the WIT batch (columns, each distinct attribute set
//! once) in the caller's task and the verdicts back into attribute sets; the driver
//! owns the instance and only makes calls. When the request queue is full the caller
//! waits: a slow policy slows the routes it judges, nothing else. A fault fails the
//! batch in flight (the caller applies `on-failure`), and until the restarted instance
//! is up every batch is answered at once with [`PolicyUnavailable`]; once it is up
//! again the driver reports [`PluginEvent::PolicyChanged`] so that the routes judged
//! by `on-failure` meanwhile are judged again.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use wasmbgp_bgp::Prefix;
use wasmbgp_bgp::packet::attributes::{NextHop, PathAttributes};

use super::{
    Control, DriverCore, Fault, PluginState, Prepared, Shared, WorldPre, setup_deadline,
    sleep_until, timed_call,
};
use crate::events::PluginEvent;
use crate::host::bindings::policy::Policy;
use crate::host::bindings::policy::exports::wasmbgp::plugin::route_policy as wit;
use crate::host::{PluginCtx, attributes_in, attributes_out, flow_rule_out};
use crate::restart::{RestartPolicy, Restarts};

/// Batches waiting for the driver; beyond this the caller waits.
const QUEUE: usize = 16;
/// The most routes in one call; longer lists are split.
pub const MAX_BATCH: usize = 4096;

/// Which way the routes are going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Received from a neighbor.
    Import,
    /// About to be sent to a neighbor.
    Export,
}

/// The session a batch belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicySession {
    /// The neighbor's address.
    pub neighbor: IpAddr,
    /// The neighbor's AS.
    pub peer_as: u32,
    /// Our AS on the session.
    pub local_as: u32,
}

/// The policy could not judge the routes: they get its `on-failure` treatment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyUnavailable(pub String);

impl std::fmt::Display for PolicyUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a policy made of one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// Accepted as it is.
    Accept,
    /// Rejected.
    Reject,
    /// Accepted with these attributes instead of its own.
    Replace(&'a Arc<PathAttributes>),
}

/// The verdicts on a list of routes, in the list's order.
#[derive(Debug, Clone, Default)]
pub struct Verdicts {
    /// Per route: 0 accept, 1 reject, 2 + i replace with `rewritten[i]`.
    codes: Vec<u32>,
    rewritten: Vec<Arc<PathAttributes>>,
}

impl Verdicts {
    /// Number of verdicts (= routes judged).
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// True when no route was judged.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// The verdict on route `i`.
    pub fn get(&self, i: usize) -> Verdict<'_> {
        match self.codes[i] {
            0 => Verdict::Accept,
            1 => Verdict::Reject,
            n => Verdict::Replace(&self.rewritten[(n - 2) as usize]),
        }
    }

    /// Replaces each rewritten attribute set by `f` of it, once per set rather than
    /// once per route (the caller's interner: equal sets from different batches
    /// become one allocation).
    pub fn map_rewritten(&mut self, mut f: impl FnMut(Arc<PathAttributes>) -> Arc<PathAttributes>) {
        for attrs in &mut self.rewritten {
            *attrs = f(attrs.clone());
        }
    }

    /// Accepted, rejected, modified (for the plugin's counters).
    fn counts(&self) -> [u64; 4] {
        let mut c = [0u64; 4];
        for &code in &self.codes {
            c[code.min(2) as usize] += 1;
        }
        c
    }
}

struct Request {
    batch: wit::RouteBatch,
    reply: oneshot::Sender<Result<wit::Verdicts, String>>,
}

/// Has routes judged by one policy plugin. Cheap to clone.
#[derive(Clone)]
pub struct PolicyClient {
    shared: Arc<Shared>,
    requests: mpsc::Sender<Request>,
}

impl std::fmt::Debug for PolicyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyClient")
            .field("plugin", &self.shared.name)
            .finish()
    }
}

impl PolicyClient {
    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Judges `routes` (any number: long lists are split into calls of at most
    /// [`MAX_BATCH`]). On `Err` none of them was judged. Routes refer to their
    /// attributes: those at one address travel as one attribute set (pass the same
    /// interned set for routes that share one), and nothing is cloned per route.
    pub async fn evaluate(
        &self,
        direction: Direction,
        session: PolicySession,
        routes: &[(Prefix, &PathAttributes)],
    ) -> Result<Verdicts, PolicyUnavailable> {
        let mut all = Verdicts::default();
        for chunk in routes.chunks(MAX_BATCH) {
            let verdicts = match self.evaluate_batch(direction, session, chunk).await {
                Ok(v) => v,
                Err(e) => {
                    self.shared.count_verdicts([0, 0, 0, routes.len() as u64]);
                    return Err(e);
                }
            };
            let base = all.rewritten.len() as u32;
            all.codes.extend(
                verdicts
                    .codes
                    .iter()
                    .map(|&c| if c >= 2 { c + base } else { c }),
            );
            all.rewritten.extend(verdicts.rewritten);
        }
        self.shared.count_verdicts(all.counts());
        Ok(all)
    }

    async fn evaluate_batch(
        &self,
        direction: Direction,
        session: PolicySession,
        routes: &[(Prefix, &PathAttributes)],
    ) -> Result<Verdicts, PolicyUnavailable> {
        let (batch, order) = build_batch(direction, session, routes);
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request { batch, reply })
            .await
            .map_err(|_| PolicyUnavailable(format!("policy {} has stopped", self.name())))?;
        let raw = answer
            .await
            .map_err(|_| PolicyUnavailable(format!("policy {} has stopped", self.name())))?
            .map_err(PolicyUnavailable)?;
        match read_verdicts(raw, &order, routes, direction) {
            Ok(v) => Ok(v),
            Err(why) => {
                // Answering nonsense is the plugin's fault like a trap, but the instance
                // is not dead: count it and let on-failure judge this batch.
                let error = format!(
                    "policy {} answered a malformed verdict list: {why}",
                    self.name()
                );
                tracing::error!(plugin = %self.shared.name, "{error}");
                self.shared.update(|s| s.last_error = Some(error.clone()));
                Err(PolicyUnavailable(error))
            }
        }
    }
}

/// The WIT batch for `routes`, and for each route its position in the verdict list
/// (IPv4 routes first, then IPv6, then FlowSpec rules).
fn build_batch(
    direction: Direction,
    session: PolicySession,
    routes: &[(Prefix, &PathAttributes)],
) -> (wit::RouteBatch, Vec<u32>) {
    let count = |f: fn(&Prefix) -> bool| routes.iter().filter(|(p, _)| f(p)).count();
    let v4_count = count(|p| matches!(p, Prefix::V4(_)));
    let v6_count = count(|p| matches!(p, Prefix::V6(_)));
    let flow_count = routes.len() - v4_count - v6_count;
    let mut batch = wit::RouteBatch {
        direction: match direction {
            Direction::Import => wit::Direction::Import,
            Direction::Export => wit::Direction::Export,
        },
        session: wit::Session {
            neighbor: crate::host::address_out(session.neighbor),
            peer_as: session.peer_as,
            local_as: session.local_as,
        },
        attributes: Vec::new(),
        v4_addresses: Vec::with_capacity(v4_count),
        v4_lengths: Vec::with_capacity(v4_count),
        v4_attributes: Vec::with_capacity(v4_count),
        v6_addresses: Vec::with_capacity(2 * v6_count),
        v6_lengths: Vec::with_capacity(v6_count),
        v6_attributes: Vec::with_capacity(v6_count),
        flows: Vec::with_capacity(flow_count),
        flow_attributes: Vec::with_capacity(flow_count),
    };
    let mut index: HashMap<*const PathAttributes, u32> = HashMap::new();
    // Runs of routes sharing one attribute set are the common case: skip the lookup.
    let mut last: Option<(*const PathAttributes, u32)> = None;
    let mut order = Vec::with_capacity(routes.len());
    let (mut v4_seen, mut v6_seen, mut flows_seen) = (0u32, 0u32, 0u32);
    for (prefix, attrs) in routes {
        let key: *const PathAttributes = *attrs;
        let attr_index = match last {
            Some((k, i)) if k == key => i,
            _ => {
                let i = *index.entry(key).or_insert_with(|| {
                    batch.attributes.push(attributes_out(attrs));
                    (batch.attributes.len() - 1) as u32
                });
                last = Some((key, i));
                i
            }
        };
        match prefix {
            Prefix::V4(p) => {
                batch.v4_addresses.push(u32::from(p.addr()));
                batch.v4_lengths.push(p.len());
                batch.v4_attributes.push(attr_index);
                order.push(v4_seen);
                v4_seen += 1;
            }
            Prefix::V6(p) => {
                let bits = u128::from(p.addr());
                batch.v6_addresses.push((bits >> 64) as u64);
                batch.v6_addresses.push(bits as u64);
                batch.v6_lengths.push(p.len());
                batch.v6_attributes.push(attr_index);
                order.push(v4_count as u32 + v6_seen);
                v6_seen += 1;
            }
            Prefix::Flow(rule) => {
                batch.flows.push(flow_rule_out(rule));
                batch.flow_attributes.push(attr_index);
                order.push((v4_count + v6_count) as u32 + flows_seen);
                flows_seen += 1;
            }
        }
    }
    (batch, order)
}

/// Checks the guest's verdicts and puts them in the caller's order (`routes`, the
/// batch's routes, with `order` from [`build_batch`]).
///
/// On export, `next-hop: none` in a rewritten set is "self" for a unicast route; a
/// FlowSpec rule has no next hop unless it carries an address (redirect to IP), so
/// there `none` keeps the rule's own "self" if it had one and otherwise means no
/// next hop. A set given to both kinds is converted once for each.
fn read_verdicts(
    raw: wit::Verdicts,
    order: &[u32],
    routes: &[(Prefix, &PathAttributes)],
    direction: Direction,
) -> Result<Verdicts, String> {
    if raw.routes.len() != order.len() {
        return Err(format!(
            "{} verdicts for {} routes",
            raw.routes.len(),
            order.len()
        ));
    }
    let limit = 2 + raw.attributes.len() as u64;
    if let Some(bad) = raw.routes.iter().find(|&&c| u64::from(c) >= limit) {
        return Err(format!(
            "verdict {bad} refers to attribute set {} of {}",
            bad - 2,
            raw.attributes.len()
        ));
    }
    // An export policy's `next-hop: none` keeps "self"; on import there is no self.
    let none_is_self = direction == Direction::Export;
    let mut rewritten = raw
        .attributes
        .iter()
        .map(|a| attributes_in(a, none_is_self).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    // Per set, the code of its copy without a next hop (for FlowSpec rules on export).
    let mut without_next_hop: Vec<Option<u32>> = Vec::new();
    let mut codes = Vec::with_capacity(order.len());
    for (&i, (prefix, own)) in order.iter().zip(routes) {
        let code = raw.routes[i as usize];
        let set = code.wrapping_sub(2) as usize;
        let flow_without_self = none_is_self
            && code >= 2
            && matches!(prefix, Prefix::Flow(_))
            && raw.attributes[set].next_hop.is_none()
            && own.next_hop != Some(NextHop::Local);
        if !flow_without_self {
            codes.push(code);
            continue;
        }
        if without_next_hop.is_empty() {
            without_next_hop = vec![None; raw.attributes.len()];
        }
        let copy = *without_next_hop[set].get_or_insert_with(|| {
            let mut attrs = (*rewritten[set]).clone();
            attrs.next_hop = None;
            rewritten.push(Arc::new(attrs));
            1 + rewritten.len() as u32
        });
        codes.push(copy);
    }
    Ok(Verdicts { codes, rewritten })
}

/// Starts a policy's driver; returns the client and the task.
pub(crate) fn spawn(core: DriverCore, restart: RestartPolicy) -> (PolicyClient, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let client = PolicyClient {
        shared: core.shared.clone(),
        requests: tx,
    };
    let driver = Driver {
        core,
        restarts: Restarts::new(restart),
        instance: None,
        start_at: Some(tokio::time::Instant::now()),
        recovering: false,
    };
    (client, tokio::spawn(driver.run(rx)))
}

pub(super) struct Instance {
    store: wasmtime::Store<PluginCtx>,
    bindings: Policy,
}

struct Driver {
    core: DriverCore,
    restarts: Restarts,
    instance: Option<Instance>,
    /// When to (re)start the instance: at spawn, and after a fault's backoff.
    start_at: Option<tokio::time::Instant>,
    /// A fault took the instance down; its successor's start is reported.
    recovering: bool,
}

impl Driver {
    async fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        tracing::info!(plugin = %self.core.shared.name, component = %self.core.prepared.spec.component.display(), "policy started");
        loop {
            let start_at = if self.instance.is_none() {
                self.start_at
            } else {
                None
            };
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
                request = requests.recv() => match request {
                    None => break,
                    Some(request) => {
                        let answer = self.serve(request.batch).await;
                        let _ = request.reply.send(answer);
                    }
                },
            }
        }
        self.instance = None;
        self.core.shared.update(|s| s.state = PluginState::Stopped);
        tracing::info!(plugin = %self.core.shared.name, "policy stopped");
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
        // The verdicts may change: the daemon judges the routes again.
        self.core.events.notify(PluginEvent::PolicyChanged {
            plugin: self.core.shared.name.clone(),
        });
    }

    /// Judges one batch; on a fault the instance is dropped and restarted after backoff.
    async fn serve(&mut self, batch: wit::RouteBatch) -> Result<wit::Verdicts, String> {
        if self.instance.is_none() {
            if self
                .start_at
                .is_some_and(|at| at > tokio::time::Instant::now())
            {
                let why = self.core.shared.snapshot().last_error.unwrap_or_default();
                return Err(format!(
                    "policy {} is restarting after: {why}",
                    self.core.shared.name
                ));
            }
            self.start_at = None;
            if !self.start().await {
                return Err(format!(
                    "policy {} could not start: {}",
                    self.core.shared.name,
                    self.core.shared.snapshot().last_error.unwrap_or_default()
                ));
            }
        }
        let deadline = self.core.prepared.grants.deadline;
        let Some(instance) = self.instance.as_mut() else {
            return Err("no instance".into());
        };
        let bindings = &instance.bindings;
        let started = Instant::now();
        let result = timed_call(&mut instance.store, deadline, async |store| {
            bindings
                .wasmbgp_plugin_route_policy()
                .call_evaluate(&mut *store, &batch)
                .await
        })
        .await;
        self.core.shared.record_call(started.elapsed());
        match result {
            Ok(verdicts) => {
                self.restarts.success();
                Ok(verdicts)
            }
            Err(e) => {
                self.instance = None;
                let error = format!("evaluate: {e}");
                self.fail(Fault::Died(error.clone()));
                Err(format!("policy {}: {error}", self.core.shared.name))
            }
        }
    }

    /// Instantiates and initialises; true on success.
    async fn start(&mut self) -> bool {
        match instantiate(&self.core, &self.core.prepared).await {
            Ok(instance) => {
                self.instance = Some(instance);
                self.core.shared.update(|s| s.state = PluginState::Running);
                self.core.started();
                if std::mem::take(&mut self.recovering) {
                    self.core.events.notify(PluginEvent::PolicyChanged {
                        plugin: self.core.shared.name.clone(),
                    });
                }
                true
            }
            Err(fault) => {
                self.fail(fault);
                false
            }
        }
    }

    fn fail(&mut self, fault: Fault) {
        let consequence = format!(
            "its routes get on-failure = {} until it is back",
            self.core.prepared.spec.on_failure.name()
        );
        let restart_at = self
            .core
            .record_fault(&mut self.restarts, fault, &consequence);
        self.start_at = Some(restart_at);
        self.recovering = true;
    }
}

/// Instantiates `prepared` and runs its `init`.
pub(super) async fn instantiate(core: &DriverCore, prepared: &Prepared) -> Result<Instance, Fault> {
    let files: Vec<wit::DataFile> = prepared
        .files
        .iter()
        .map(|(path, contents)| wit::DataFile {
            path: path.clone(),
            contents: contents.clone(),
        })
        .collect();
    let mut store = core.new_store(prepared);
    let deadline = setup_deadline(prepared);
    let WorldPre::Policy(pre) = prepared.pre.clone() else {
        return Err(Fault::Died("not a policy".into()));
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
            .wasmbgp_plugin_route_policy()
            .call_init(&mut *store, &settings, &files)
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

#[cfg(test)]
mod tests {
    use super::*;
    use wasmbgp_bgp::words;

    fn route(text: &str) -> (Prefix, Arc<PathAttributes>) {
        let r = words::parse_route(&words::tokenize(text), &PathAttributes::default()).unwrap();
        (r.prefix, Arc::new(r.attrs))
    }

    fn refs(routes: &[(Prefix, Arc<PathAttributes>)]) -> Vec<(Prefix, &PathAttributes)> {
        routes.iter().map(|(p, a)| (p.clone(), &**a)).collect()
    }

    fn session() -> PolicySession {
        PolicySession {
            neighbor: "127.0.0.2".parse().unwrap(),
            peer_as: 65002,
            local_as: 65001,
        }
    }

    #[test]
    fn batches_are_columns_with_shared_attributes() {
        let a = route("10.0.0.0/8 med 1");
        let b = route("2001:db8::/32 med 2");
        let shared = a.1.clone();
        let routes = vec![
            a.clone(),
            b.clone(),
            (words::parse_prefix("10.1.0.0/16").unwrap(), shared),
        ];
        let (batch, order) = build_batch(Direction::Import, session(), &refs(&routes));
        assert_eq!(batch.attributes.len(), 2);
        assert_eq!(batch.v4_addresses, vec![0x0a00_0000, 0x0a01_0000]);
        assert_eq!(batch.v4_lengths, vec![8, 16]);
        assert_eq!(batch.v4_attributes, vec![0, 0]);
        assert_eq!(batch.v6_addresses, vec![0x2001_0db8_0000_0000, 0]);
        assert_eq!(batch.v6_attributes, vec![1]);
        // Verdicts come back IPv4 first: route 1 (IPv6) is the last one.
        assert_eq!(order, vec![0, 2, 1]);
    }

    #[test]
    fn verdicts_are_checked_and_reordered() {
        let routes = vec![
            route("10.0.0.0/8"),
            route("2001:db8::/32"),
            route("10.1.0.0/16"),
        ];
        let input = refs(&routes);
        let (_, order) = build_batch(Direction::Export, session(), &input);
        let mut rewritten = attributes_out(&routes[0].1);
        rewritten.med = Some(7);
        let raw = wit::Verdicts {
            routes: vec![1, 2, 0],
            attributes: vec![rewritten],
        };
        let v = read_verdicts(raw, &order, &input, Direction::Export).unwrap();
        assert_eq!(v.get(0), Verdict::Reject);
        assert_eq!(v.get(1), Verdict::Accept);
        let Verdict::Replace(a) = v.get(2) else {
            panic!("expected a replacement")
        };
        assert_eq!(a.med, Some(7));
        assert_eq!(v.counts(), [1, 1, 1, 0]);

        let short = wit::Verdicts {
            routes: vec![0, 0],
            attributes: vec![],
        };
        assert!(
            read_verdicts(short, &order, &input, Direction::Export)
                .unwrap_err()
                .contains("2 verdicts for 3")
        );
        let out_of_range = wit::Verdicts {
            routes: vec![0, 0, 2],
            attributes: vec![],
        };
        assert!(read_verdicts(out_of_range, &order, &input, Direction::Export).is_err());
    }

    fn flow(text: &str) -> (Prefix, Arc<PathAttributes>) {
        let f = words::flow::parse_flow_route(&words::tokenize(text), &PathAttributes::default())
            .unwrap();
        (Prefix::Flow(f.rule), Arc::new(f.attrs))
    }

    #[test]
    fn flow_rules_come_last_in_the_batch_and_in_the_verdicts() {
        let discard = flow("destination 192.0.2.10/32 protocol udp discard");
        let routes = vec![
            discard.clone(),
            route("2001:db8::/32"),
            flow("destination 2001:db8::1/128 next-header tcp rate-limit 9600"),
            route("10.0.0.0/8"),
            (
                flow("destination 198.51.100.0/24 protocol tcp").0,
                discard.1.clone(),
            ),
        ];
        let input = refs(&routes);
        let (batch, order) = build_batch(Direction::Import, session(), &input);
        assert_eq!(order, vec![2, 1, 3, 0, 4]);
        assert_eq!(batch.flows.len(), 3);
        assert_eq!(batch.flow_attributes, vec![0, 2, 0]);
        assert!(batch.flows[1].ipv6 && !batch.flows[0].ipv6);
        let Prefix::Flow(rule) = &routes[0].0 else {
            unreachable!()
        };
        assert_eq!(crate::host::flow_rule_in(&batch.flows[0]).unwrap(), *rule);
        assert_eq!(
            batch.attributes[0].extended_communities,
            vec![0x8006_0000_0000_0000]
        );

        // Reject the first rule, rate-limit the last one instead of discarding it.
        let mut limited = batch.attributes[0].clone();
        limited.extended_communities = vec![0x8006_0000_4616_0000];
        let raw = wit::Verdicts {
            routes: vec![0, 0, 1, 0, 2],
            attributes: vec![limited],
        };
        let v = read_verdicts(raw, &order, &input, Direction::Import).unwrap();
        assert_eq!(v.get(0), Verdict::Reject);
        assert_eq!(v.get(1), Verdict::Accept);
        assert_eq!(v.get(2), Verdict::Accept);
        assert_eq!(v.get(3), Verdict::Accept);
        let Verdict::Replace(a) = v.get(4) else {
            panic!("expected a replacement: {v:?}")
        };
        assert_eq!(
            a.extended_communities[0].to_string(),
            "rate-limit:9600",
            "the actions are the extended communities"
        );
        assert_eq!(a.next_hop, None);
        assert_eq!(v.counts(), [3, 1, 1, 0]);
        let short = wit::Verdicts {
            routes: vec![0, 0, 0, 0],
            attributes: vec![],
        };
        assert!(
            read_verdicts(short, &order, &input, Direction::Import)
                .unwrap_err()
                .contains("4 verdicts for 5")
        );
    }

    #[test]
    fn on_export_a_rule_is_given_no_next_hop_where_a_prefix_gets_self() {
        let routes = vec![
            route("10.0.0.0/8"),
            flow("destination 192.0.2.10/32 discard"),
            flow("destination 192.0.2.11/32 redirect-to-nexthop next-hop 192.0.2.1"),
        ];
        let mut self_flow = flow("destination 192.0.2.12/32 discard");
        Arc::make_mut(&mut self_flow.1).next_hop = Some(NextHop::Local);
        let routes = [routes, vec![self_flow]].concat();
        let input = refs(&routes);
        let (_, order) = build_batch(Direction::Export, session(), &input);
        let mut tagged = attributes_out(&PathAttributes::default());
        tagged.communities = vec![1];
        let mut hop = tagged.clone();
        hop.next_hop = Some(crate::host::address_out("192.0.2.9".parse().unwrap()));
        // Every route gets set 0 (no next hop); the redirect gets set 1 (an address).
        let raw = wit::Verdicts {
            routes: vec![2, 2, 3, 2],
            attributes: vec![tagged, hop],
        };
        let v = read_verdicts(raw, &order, &input, Direction::Export).unwrap();
        let next_hop = |i: usize| match v.get(i) {
            Verdict::Replace(a) => {
                assert_eq!(a.communities, vec![1]);
                a.next_hop
            }
            other => panic!("route {i}: {other:?}"),
        };
        assert_eq!(next_hop(0), Some(NextHop::Local), "a prefix: self");
        assert_eq!(next_hop(1), None, "a rule: none");
        assert_eq!(
            next_hop(2),
            Some(NextHop::Addr("192.0.2.9".parse().unwrap()))
        );
        assert_eq!(
            next_hop(3),
            Some(NextHop::Local),
            "a rule that had self keeps it"
        );
        assert_eq!(v.rewritten.len(), 3, "set 0 converted twice, set 1 once");
        // On import, `none` is no next hop for every route.
        let mut tagged = attributes_out(&PathAttributes::default());
        tagged.communities = vec![1];
        let raw = wit::Verdicts {
            routes: vec![2, 2, 2, 2],
            attributes: vec![tagged],
        };
        let v = read_verdicts(raw, &order, &input, Direction::Import).unwrap();
        assert!((0..4).all(|i| matches!(v.get(i), Verdict::Replace(a) if a.next_hop.is_none())));
        assert_eq!(v.rewritten.len(), 1);
    }
}
