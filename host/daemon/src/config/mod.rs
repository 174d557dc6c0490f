//! The TOML config: parsed with spans so that `wasmbgp check` reports every problem as
//! `FILE:LINE:COL: reason`, and validated before anything runs.

pub mod diff;
mod limits;
mod plugin;
mod reader;

pub use limits::{FamilyLimits, LimitAction, Md5Key, PrefixLimit};
pub use plugin::{Degraded, PluginConfig, Subscription};

pub use reader::{Diagnostic, Diagnostics};

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reader::{Sink, TableReader};
use toml_edit::{Document, Item};
use wasmbgp_bgp::packet::attributes::{AsPath, NextHop, PathAttributes};
use wasmbgp_bgp::rib::Interner;
use wasmbgp_bgp::text::quote;
use wasmbgp_bgp::words;
use wasmbgp_bgp::{Family, Prefix};
use wasmbgp_runtime::World;

/// Validates a plugin's component (given by the daemon, which owns the runtime).
pub type PluginCheck<'a> = &'a dyn Fn(&wasmbgp_runtime::PluginSpec) -> anyhow::Result<()>;

/// Default control socket.
pub const DEFAULT_SOCKET: &str = "/run/wasmbgp.sock";

/// A validated configuration.
#[derive(Debug)]
pub struct Config {
    /// Our BGP identifier.
    pub router_id: Ipv4Addr,
    /// Our AS.
    pub local_as: u32,
    /// Addresses to accept sessions on.
    pub listen: Vec<SocketAddr>,
    /// Graceful-restart time advertised to peers (0: not advertised).
    pub graceful_restart: u16,
    /// The control socket.
    pub control: ControlConfig,
    /// Prometheus exposition address, if enabled.
    pub metrics: Option<SocketAddr>,
    /// The neighbors.
    pub neighbors: Vec<NeighborConfig>,
    /// The RFC 9003 shutdown communication sent with the Cease at shutdown (none by
    /// default: some peers cannot parse one).
    pub shutdown_message: Option<String>,
    /// Static routes, by the block that declared them.
    pub routes: Vec<RouteGroup>,
    /// Plugins.
    pub plugins: Vec<PluginConfig>,
}

/// The settings a reload cannot change (they need a restart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Globals {
    /// `router-id`.
    pub router_id: Ipv4Addr,
    /// `local-as`.
    pub local_as: u32,
    /// `listen`.
    pub listen: Vec<SocketAddr>,
    /// `graceful-restart`.
    pub graceful_restart: u16,
    /// `[control]`.
    pub control: ControlConfig,
    /// `metrics`.
    pub metrics: Option<SocketAddr>,
}

impl Config {
    /// The settings a reload cannot change.
    pub fn globals(&self) -> Globals {
        Globals {
            router_id: self.router_id,
            local_as: self.local_as,
            listen: self.listen.clone(),
            graceful_restart: self.graceful_restart,
            control: self.control.clone(),
            metrics: self.metrics,
        }
    }
}

/// The control socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlConfig {
    /// Path of the Unix socket.
    pub socket: PathBuf,
    /// File mode of the socket.
    pub mode: u32,
}

/// One neighbor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighborConfig {
    /// The peer's address.
    pub address: IpAddr,
    /// The peer's port.
    pub port: u16,
    /// The peer's AS.
    pub peer_as: u32,
    /// Address to connect from, and `next-hop self` for its family.
    pub local_address: Option<IpAddr>,
    /// `next-hop self` for IPv6 routes on an IPv4 session (default: the IPv4-mapped local address).
    pub next_hop_ipv6: Option<Ipv6Addr>,
    /// Proposed hold time.
    pub hold_time: u16,
    /// Only accept the peer's connection.
    pub passive: bool,
    /// First reconnect delay.
    pub connect_retry: Duration,
    /// Reconnect delay cap.
    pub connect_retry_max: Duration,
    /// Families to negotiate.
    pub families: Vec<Family>,
    /// Free text for operators.
    pub description: Option<String>,
    /// The most prefixes the peer may send, per family, and what exceeding it does.
    pub max_prefixes: PrefixLimit,
    /// The most prefixes wasmbgp advertises to the peer, per family.
    pub max_advertise: FamilyLimits,
    /// TCP-MD5 (RFC 2385) key.
    pub md5: Option<Md5Key>,
    /// GTSM (RFC 5082): the peer is at most this many hops away.
    pub ttl_security: Option<u8>,
    /// Policy plugins run, in order, on routes received from the neighbor.
    pub import_policy: Vec<String>,
    /// Policy plugins run, in order, on routes about to be sent to the neighbor.
    pub export_policy: Vec<String>,
}

/// Routes with their (interned) attributes.
pub type Routes = Vec<(Prefix, Arc<PathAttributes>)>;

/// Routes declared by one `[[route]]` or `[[route-file]]` block.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteGroup {
    /// Only these neighbors get the routes (default: every neighbor of the family).
    pub neighbors: Option<Vec<IpAddr>>,
    /// The routes, attributes shared.
    pub routes: Routes,
}

impl RouteGroup {
    /// True if `neighbor` gets these routes.
    pub fn applies_to(&self, neighbor: &IpAddr) -> bool {
        self.neighbors.as_ref().is_none_or(|n| n.contains(neighbor))
    }
}

impl Config {
    /// Reads and validates `path`, asking `check_plugin` about each plugin's component
    /// (that it loads and exports its world).
    pub fn load_with(path: &Path, check_plugin: PluginCheck) -> Result<Config, Diagnostics> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Diagnostics {
            file: file.clone(),
            items: vec![Diagnostic {
                line: 1,
                col: 1,
                message: format!("cannot read: {e}"),
            }],
        })?;
        Self::parse_with(&text, path, check_plugin)
    }

    /// Validates config text as if read from `path` (relative paths resolve beside it).
    #[cfg(test)]
    pub fn parse(text: &str, path: &Path) -> Result<Config, Diagnostics> {
        Self::parse_with(text, path, &|_| Ok(()))
    }

    /// [`Config::parse`] with a plugin check.
    pub fn parse_with(
        text: &str,
        path: &Path,
        check_plugin: PluginCheck,
    ) -> Result<Config, Diagnostics> {
        let file = path.display().to_string();
        let mut sink = Sink::new(text);
        let doc = match Document::parse(text) {
            Ok(doc) => doc,
            Err(e) => {
                sink.error(e.span(), e.message().trim().to_string());
                return Err(sink.finish(&file));
            }
        };
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut interner = Interner::new();
        let config = parse_document(&doc, &base, &mut sink, &mut interner, check_plugin);
        match config {
            Some(c) if sink.is_clean() => Ok(c),
            _ => Err(sink.finish(&file)),
        }
    }
}

fn parse_document(
    doc: &Document<&str>,
    base: &Path,
    sink: &mut Sink,
    interner: &mut Interner,
    check_plugin: PluginCheck,
) -> Option<Config> {
    let mut top = TableReader::new(doc.as_table(), "config");
    let router_id =
        top.req_str("router-id", sink)
            .and_then(|(s, span)| match s.parse::<Ipv4Addr>() {
                Ok(a) if !a.is_unspecified() => Some(a),
                _ => {
                    sink.error(
                        span,
                        format!(
                            "router-id must be a non-zero IPv4 address, not {}",
                            quote(&s)
                        ),
                    );
                    None
                }
            });
    let local_as = top
        .req_int("local-as", 1, u32::MAX as i64, sink)
        .map(|n| n as u32);
    let listen = parse_listen(&mut top, sink);
    let graceful_restart = top
        .opt_int("graceful-restart", 0, 4095, sink)
        .unwrap_or(120) as u16;
    let metrics =
        top.opt_str("metrics", sink)
            .and_then(|(s, span)| match s.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    sink.error(
                        span,
                        format!(
                            "metrics must be an address:port such as \"127.0.0.1:9179\", not {}",
                            quote(&s)
                        ),
                    );
                    None
                }
            });
    let control = parse_control(top.item("control"), sink);
    let shutdown_message = top.opt_str("shutdown-message", sink).and_then(|(s, span)| {
        if s.len() > 255 {
            sink.error(span, "shutdown-message is at most 255 bytes (RFC 9003)");
            return None;
        }
        Some(s)
    });
    let (neighbors, policy_refs, cap_spans) = parse_neighbors(top.item("neighbor"), base, sink);
    let known: HashSet<IpAddr> = neighbors.iter().map(|n| n.address).collect();
    let mut routes = Vec::new();
    for_each_table(top.item("route"), "route", sink, |t, name, sink| {
        let mut r = TableReader::new(t, name);
        let span = r.span();
        let Some((prefix, pspan)) = r.req_str("prefix", sink) else {
            parse_attributes(&mut r, sink);
            parse_route_neighbors(&mut r, &known, sink);
            r.finish(sink);
            return;
        };
        let attrs = parse_attributes(&mut r, sink);
        let group_neighbors = parse_route_neighbors(&mut r, &known, sink);
        r.finish(sink);
        match prefix.parse::<Prefix>() {
            Ok(p) => {
                if let Err(e) = words::check_next_hop_family(&p, attrs.next_hop.as_ref()) {
                    sink.error(span.clone(), e);
                }
                routes.push(RouteGroup {
                    neighbors: group_neighbors,
                    routes: vec![(p, interner.intern(attrs))],
                });
            }
            Err(e) => sink.error(pspan, e.0),
        }
    });
    for_each_table(top.item("flow"), "flow", sink, |t, name, sink| {
        let mut r = TableReader::new(t, name);
        let rule = r.req_str("match", sink);
        let actions = r.opt_str("then", sink);
        let group_neighbors = parse_route_neighbors(&mut r, &known, sink);
        r.finish(sink);
        if let Some(route) = parse_flow_table(rule, actions, sink) {
            routes.push(RouteGroup {
                neighbors: group_neighbors,
                routes: vec![(route.prefix, interner.intern(route.attrs))],
            });
        }
    });
    for_each_table(top.item("flow-file"), "flow-file", sink, |t, name, sink| {
        let mut r = TableReader::new(t, name);
        let file = r.req_str("path", sink);
        let group_neighbors = parse_route_neighbors(&mut r, &known, sink);
        r.finish(sink);
        if let Some((file, span)) = file {
            match load_flow_file(&base.join(&file), interner) {
                Ok(group) => routes.push(RouteGroup {
                    neighbors: group_neighbors,
                    routes: group,
                }),
                Err(e) => sink.error(span, e),
            }
        }
    });
    for_each_table(
        top.item("route-file"),
        "route-file",
        sink,
        |t, name, sink| {
            let mut r = TableReader::new(t, name);
            let file = r.req_str("path", sink);
            let defaults = parse_attributes(&mut r, sink);
            let group_neighbors = parse_route_neighbors(&mut r, &known, sink);
            r.finish(sink);
            if let Some((file, span)) = file {
                let full = base.join(&file);
                match load_route_file(&full, &defaults, interner) {
                    Ok(group) => routes.push(RouteGroup {
                        neighbors: group_neighbors,
                        routes: group,
                    }),
                    Err(e) => sink.error(span, e),
                }
            }
        },
    );
    let plugins = plugin::parse_plugins(
        top.item("plugin"),
        base,
        &known,
        sink,
        interner,
        check_plugin,
    );
    for (name, span) in policy_refs {
        match plugins.iter().find(|p| p.spec.name == name) {
            Some(p) if p.spec.world == World::Policy => {}
            Some(p) => sink.error(
                span,
                format!("plugin {name:?} is a {} plugin, not a policy", p.spec.world),
            ),
            None => sink.error(span, format!("no policy plugin named {name:?}")),
        }
    }
    // A cap the static routes alone exceed could never be honoured.
    for n in neighbors.iter().filter(|n| !n.max_advertise.is_empty()) {
        for family in n.families.iter().copied() {
            let Some(cap) = n.max_advertise.get(family) else {
                continue;
            };
            let prefixes: HashSet<Prefix> = routes
                .iter()
                .filter(|g| g.applies_to(&n.address))
                .flat_map(|g| g.routes.iter().map(|(p, _)| p.clone()))
                .filter(|p| p.family() == family)
                .collect();
            if prefixes.len() > cap as usize {
                let span = cap_spans
                    .iter()
                    .find(|(a, _)| *a == n.address)
                    .and_then(|(_, s)| s.clone());
                sink.error(
                    span,
                    format!(
                        "neighbor {}: its static routes hold {} {family} prefixes, more than its max-advertise {cap}",
                        n.address,
                        prefixes.len()
                    ),
                );
            }
        }
    }
    for n in neighbors.iter().filter(|n| n.passive) {
        if listen.is_empty() {
            sink.error(
                top.span_of("neighbor"),
                format!(
                    "neighbor {} is passive but no `listen` address is configured",
                    n.address
                ),
            );
        }
    }
    top.finish(sink);
    Some(Config {
        router_id: router_id?,
        local_as: local_as?,
        listen,
        graceful_restart,
        control,
        metrics,
        neighbors,
        shutdown_message,
        routes,
        plugins,
    })
}

/// Calls `f` for each table of an array of tables (or a single table) under a key.
pub(crate) fn for_each_table(
    item: Option<&Item>,
    name: &str,
    sink: &mut Sink,
    mut f: impl FnMut(&toml_edit::Table, String, &mut Sink),
) {
    match item {
        None => {}
        Some(Item::ArrayOfTables(arr)) => {
            for (i, t) in arr.iter().enumerate() {
                f(t, format!("{name}[{}]", i + 1), sink);
            }
        }
        Some(Item::Table(t)) => f(t, name.to_string(), sink),
        Some(other) => sink.error(
            other.span(),
            format!("`{name}` must be written as [[{name}]] tables"),
        ),
    }
}

fn parse_listen(top: &mut TableReader, sink: &mut Sink) -> Vec<SocketAddr> {
    let span = top.span_of("listen");
    let list: Vec<(String, Option<Range<usize>>)> = match top.item("listen") {
        None => return Vec::new(),
        Some(item) if item.as_str().is_some() => {
            vec![(item.as_str().unwrap_or_default().to_string(), item.span())]
        }
        Some(_) => top.opt_str_list("listen", sink).unwrap_or_default(),
    };
    let mut out = Vec::new();
    for (s, sp) in list {
        match s.parse::<SocketAddr>() {
            Ok(a) => out.push(a),
            Err(_) => sink.error(
                sp.or(span.clone()),
                format!(
                    "listen must be address:port such as \"127.0.0.1:1790\", not {}",
                    quote(&s)
                ),
            ),
        }
    }
    out
}

fn parse_control(item: Option<&Item>, sink: &mut Sink) -> ControlConfig {
    let mut control = ControlConfig {
        socket: PathBuf::from(DEFAULT_SOCKET),
        mode: 0o600,
    };
    let Some(item) = item else { return control };
    let Some(t) = item.as_table() else {
        sink.error(item.span(), "`control` must be a table");
        return control;
    };
    let mut r = TableReader::new(t, "control");
    if let Some((s, _)) = r.opt_str("socket", sink) {
        control.socket = PathBuf::from(s);
    }
    if let Some((s, span)) = r.opt_str("mode", sink) {
        match u32::from_str_radix(s.trim_start_matches("0o"), 8) {
            Ok(m) if m <= 0o777 => control.mode = m,
            _ => sink.error(
                span,
                format!(
                    "control.mode must be an octal file mode such as \"0600\", not {}",
                    quote(&s)
                ),
            ),
        }
    }
    r.finish(sink);
    control
}

/// A policy named by a neighbor, where it was named.
type PolicyRef = (String, Option<Range<usize>>);

/// Where each neighbor's `max-advertise` is written (checked once routes are read).
type CapSpan = (IpAddr, Option<Range<usize>>);

/// The neighbors, every policy name they refer to (checked once plugins are read), and
/// where their `max-advertise` caps are.
fn parse_neighbors(
    item: Option<&Item>,
    base: &Path,
    sink: &mut Sink,
) -> (Vec<NeighborConfig>, Vec<PolicyRef>, Vec<CapSpan>) {
    let mut out: Vec<NeighborConfig> = Vec::new();
    let mut policy_refs: Vec<PolicyRef> = Vec::new();
    let mut cap_spans: Vec<CapSpan> = Vec::new();
    let mut seen: HashSet<IpAddr> = HashSet::new();
    for_each_table(item, "neighbor", sink, |t, name, sink| {
        let mut r = TableReader::new(t, name.clone());
        let address = r
            .req_str("address", sink)
            .and_then(|(s, span)| match s.parse::<IpAddr>() {
                Ok(a) if seen.insert(a) => Some(a),
                Ok(a) => {
                    sink.error(span, format!("duplicate neighbor {a}"));
                    None
                }
                Err(_) => {
                    sink.error(
                        span,
                        format!("{name}.address must be an IP address, not {}", quote(&s)),
                    );
                    None
                }
            });
        let port = r.opt_int("port", 1, 65535, sink).unwrap_or(179) as u16;
        let peer_as = r
            .req_int("peer-as", 1, u32::MAX as i64, sink)
            .map(|n| n as u32);
        let local_address =
            r.opt_str("local-address", sink)
                .and_then(|(s, span)| match s.parse::<IpAddr>() {
                    Ok(a) if address.is_none_or(|n: IpAddr| n.is_ipv4() == a.is_ipv4()) => Some(a),
                    Ok(a) => {
                        sink.error(
                            span,
                            format!("local-address {a} is not of the neighbor address's family"),
                        );
                        None
                    }
                    Err(_) => {
                        sink.error(
                            span,
                            format!(
                                "{name}.local-address must be an IP address, not {}",
                                quote(&s)
                            ),
                        );
                        None
                    }
                });
        let next_hop_ipv6 =
            r.opt_str("next-hop-ipv6", sink)
                .and_then(|(s, span)| match s.parse::<Ipv6Addr>() {
                    Ok(a) => Some(a),
                    Err(_) => {
                        sink.error(
                            span,
                            format!(
                                "{name}.next-hop-ipv6 must be an IPv6 address, not {}",
                                quote(&s)
                            ),
                        );
                        None
                    }
                });
        let hold_time = r.opt_int("hold-time", 0, 65535, sink).unwrap_or(90);
        if hold_time == 1 || hold_time == 2 {
            sink.error(
                r.span_of("hold-time"),
                format!("{name}.hold-time must be 0 or at least 3 seconds"),
            );
        }
        let passive = r.opt_bool("passive", sink).unwrap_or(false);
        let connect_retry = r
            .opt_duration("connect-retry", sink)
            .unwrap_or(Duration::from_secs(1));
        let connect_retry_max = r
            .opt_duration("connect-retry-max", sink)
            .unwrap_or(Duration::from_secs(10));
        let families = match r.opt_str_list("families", sink) {
            None => vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
            Some(list) => list
                .into_iter()
                .filter_map(|(s, span)| s.parse::<Family>().map_err(|e| sink.error(span, e)).ok())
                .collect(),
        };
        let description = r.opt_str("description", sink).map(|(s, _)| s);
        let max_prefixes = limits::parse_prefix_limit(&mut r, sink);
        let cap_span = r.span_of("max-advertise");
        let max_advertise = limits::parse_family_limits(&mut r, "max-advertise", sink);
        let md5 = limits::parse_md5(&mut r, base, sink);
        let ttl_security = r.opt_int("ttl-security", 1, 254, sink).map(|n| n as u8);
        // Checked against the `[[plugin]]` blocks once those are read.
        let import_policy = r.opt_str_list("import-policy", sink).unwrap_or_default();
        let export_policy = r.opt_str_list("export-policy", sink).unwrap_or_default();
        r.finish(sink);
        if let (Some(address), Some(peer_as)) = (address, peer_as) {
            out.push(NeighborConfig {
                address,
                port,
                peer_as,
                local_address,
                next_hop_ipv6,
                hold_time: hold_time as u16,
                passive,
                connect_retry: connect_retry.max(Duration::from_millis(100)),
                connect_retry_max: connect_retry_max.max(connect_retry),
                families,
                description,
                max_prefixes,
                max_advertise,
                md5,
                ttl_security,
                import_policy: import_policy.iter().map(|(n, _)| n.clone()).collect(),
                export_policy: export_policy.iter().map(|(n, _)| n.clone()).collect(),
            });
            policy_refs.extend(import_policy.into_iter().chain(export_policy));
            cap_spans.push((address, cap_span));
        }
    });
    (out, policy_refs, cap_spans)
}

/// Reads the route attribute keys shared by `[[route]]`, `[[route-file]]` and plugin routes.
pub(crate) fn parse_attributes(r: &mut TableReader, sink: &mut Sink) -> PathAttributes {
    let mut attrs = PathAttributes {
        next_hop: Some(NextHop::Local),
        ..PathAttributes::default()
    };
    if let Some((s, span)) = r.opt_str("next-hop", sink) {
        match words::parse_next_hop(&s) {
            Ok(nh) => attrs.next_hop = Some(nh),
            Err(e) => sink.error(span, e),
        }
    }
    attrs.med = r.opt_int("med", 0, u32::MAX as i64, sink).map(|n| n as u32);
    attrs.local_pref = r
        .opt_int("local-preference", 0, u32::MAX as i64, sink)
        .map(|n| n as u32);
    if let Some((s, span)) = r.opt_str("origin", sink) {
        match words::parse_origin(&s) {
            Ok(o) => attrs.origin = o,
            Err(e) => sink.error(span, e),
        }
    }
    if let Some(list) = r.opt_int_list("as-path", sink) {
        let mut asns = Vec::new();
        for (n, span) in list {
            match u32::try_from(n) {
                Ok(a) => asns.push(a),
                Err(_) => sink.error(span, format!("AS number {n} out of range")),
            }
        }
        attrs.as_path = AsPath::from_sequence(asns);
    }
    attrs.atomic_aggregate = r.opt_bool("atomic-aggregate", sink).unwrap_or(false);
    for (s, span) in r.opt_str_list("communities", sink).unwrap_or_default() {
        match words::parse_community(&s) {
            Ok(c) => attrs.communities.push(c),
            Err(e) => sink.error(span, e),
        }
    }
    for (s, span) in r
        .opt_str_list("large-communities", sink)
        .unwrap_or_default()
    {
        match words::parse_large_community(&s) {
            Ok(c) => attrs.large_communities.push(c),
            Err(e) => sink.error(span, e),
        }
    }
    for (s, span) in r
        .opt_str_list("extended-communities", sink)
        .unwrap_or_default()
    {
        match words::parse_extended_community(&s) {
            Ok(c) => attrs.extended_communities.push(c),
            Err(e) => sink.error(span, e),
        }
    }
    attrs
}

/// A `[[flow]]` table's `match` (the rule) and `then` (actions and attribute words), in
/// ExaBGP's flow words; each error points at the key it is in.
fn parse_flow_table(
    rule: Option<(String, Option<Range<usize>>)>,
    actions: Option<(String, Option<Range<usize>>)>,
    sink: &mut Sink,
) -> Option<words::RouteSpec> {
    let (rule, rule_span) = rule?;
    let rule_words = words::tokenize(&rule);
    let defaults = PathAttributes::default();
    if let Err(e) = words::flow::parse_flow_route(&rule_words, &defaults) {
        sink.error(rule_span, e);
        return None;
    }
    let mut all = rule_words;
    let then_span = actions.map(|(text, span)| {
        all.extend(words::tokenize(&text));
        span
    });
    match words::flow::parse_flow_route(&all, &defaults) {
        Ok(route) => Some(route.into()),
        Err(e) => {
            sink.error(then_span.unwrap_or(rule_span), e);
            None
        }
    }
}

pub(crate) fn parse_route_neighbors(
    r: &mut TableReader,
    known: &HashSet<IpAddr>,
    sink: &mut Sink,
) -> Option<Vec<IpAddr>> {
    let list = r.opt_str_list("neighbors", sink)?;
    let mut out = Vec::new();
    for (s, span) in list {
        match s.parse::<IpAddr>() {
            Ok(a) if known.contains(&a) => out.push(a),
            Ok(a) => sink.error(span, format!("{a} is not a configured neighbor")),
            Err(_) => sink.error(
                span,
                format!("neighbors must list IP addresses, not {}", quote(&s)),
            ),
        }
    }
    Some(out)
}

/// Reads a `[[route-file]]`: one route per line, `PREFIX [attribute words]`; `#` starts a
/// comment. A line that is a bare prefix (the common case in large tables) takes the
/// block's attributes without any per-line allocation.
fn load_route_file(
    path: &Path,
    defaults: &PathAttributes,
    interner: &mut Interner,
) -> Result<Routes, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read route file {}: {e}", path.display()))?;
    parse_route_lines(&text, defaults, interner)
        .map_err(|(line, e)| format!("{}:{line}: {e}", path.display()))
}

/// Reads a `[[flow-file]]`: one FlowSpec rule per line in ExaBGP's flow words, match
/// and then (`destination 192.0.2.0/24 protocol udp rate-limit 9600`, or the block
/// form); `#` starts a comment. The bulk form of `[[flow]]`: no TOML table per rule.
fn load_flow_file(path: &Path, interner: &mut Interner) -> Result<Routes, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read flow file {}: {e}", path.display()))?;
    parse_flow_lines(&text, interner).map_err(|(line, e)| format!("{}:{line}: {e}", path.display()))
}

/// The lines of a flow file, parsed; an error names its 1-based line.
pub fn parse_flow_lines(text: &str, interner: &mut Interner) -> Result<Routes, (usize, String)> {
    let defaults = PathAttributes::default();
    let mut routes = Vec::with_capacity(text.lines().count());
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let route = words::flow::parse_flow_route(&words::tokenize(line), &defaults)
            .map_err(|e| (i + 1, e))?;
        routes.push((Prefix::Flow(route.rule), interner.intern(route.attrs)));
    }
    Ok(routes)
}

/// The lines of a route file, parsed; an error names its 1-based line.
pub fn parse_route_lines(
    text: &str,
    defaults: &PathAttributes,
    interner: &mut Interner,
) -> Result<Routes, (usize, String)> {
    let shared = interner.intern(defaults.clone());
    // Exact capacity: growing (or shrinking) a million-entry vector would copy it.
    let mut routes = Vec::with_capacity(text.lines().count());
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let at = |e: String| (i + 1, e);
        if !line.contains(char::is_whitespace) {
            let p = words::parse_prefix(line).map_err(at)?;
            words::check_next_hop_family(&p, defaults.next_hop.as_ref()).map_err(at)?;
            routes.push((p, shared.clone()));
        } else {
            let spec = words::parse_route(&words::tokenize(line), defaults).map_err(at)?;
            routes.push((spec.prefix, interner.intern(spec.attrs)));
        }
    }
    Ok(routes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, Diagnostics> {
        Config::parse(text, Path::new("test.toml"))
    }

    const GOOD: &str = r#"
router-id = "127.0.0.1"
local-as = 65001
listen = "127.0.0.1:1790"
[control]
socket = "/tmp/x.sock"
[[neighbor]]
address = "127.0.0.2"
peer-as = 65000
families = ["ipv4-unicast"]
[[route]]
prefix = "100.10.0.0/24"
med = 100
communities = ["65001:100"]
"#;

    #[test]
    fn good_config() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.local_as, 65001);
        assert_eq!(c.neighbors[0].port, 179);
        assert_eq!(c.routes[0].routes[0].1.med, Some(100));
        assert_eq!(c.listen, vec!["127.0.0.1:1790".parse().unwrap()]);
    }

    #[test]
    fn every_mistake_is_reported_with_its_line() {
        let bad = r#"router-id = "127.0.0.1"
local-as = 65001
[[neighbor]]
address = "127.0.0.2"
peer-as = 65000
colour = "blue"
[[neighbor]]
address = "127.0.0.2"
peer-as = 65000
[[route]]
prefix = "10.0.0.1/8"
[[route]]
prefix = "10.1.0.0/16"
next-hop = "2001:db8::1"
"#;
        let d = parse(bad).unwrap_err();
        let text = d.to_string();
        assert!(
            text.contains("test.toml:6:1: unknown key `colour` in neighbor[1]"),
            "{text}"
        );
        assert!(
            text.contains("test.toml:8:11: duplicate neighbor 127.0.0.2"),
            "{text}"
        );
        assert!(
            text.contains("test.toml:11:10: prefix \"10.0.0.1/8\" has host bits set"),
            "{text}"
        );
        assert!(
            text.contains("is IPv6 but prefix 10.1.0.0/16 is IPv4"),
            "{text}"
        );
        assert_eq!(d.items.len(), 4, "{text}");
    }

    /// `[[flow]]`: the rule from `match`, actions and attributes from `then`, to the
    /// neighbors of its family; a mistake points into the key that has it.
    #[test]
    fn flow_tables() {
        let config = r#"router-id = "127.0.0.1"
local-as = 65001
[[neighbor]]
address = "127.0.0.2"
peer-as = 65000
families = ["ipv4-unicast", "ipv4-flowspec"]
[[flow]]
match = "source 10.0.0.0/24; destination-port =80; protocol tcp;"
then = "redirect 65001:999; community [ 65001:666 ]"
neighbors = ["127.0.0.2"]
"#;
        let c = parse(config).unwrap();
        let (prefix, attrs) = &c.routes[0].routes[0];
        assert_eq!(prefix.family(), Family::IPV4_FLOWSPEC);
        assert_eq!(
            prefix.to_string(),
            "flow source 10.0.0.0/24 protocol =tcp destination-port =80"
        );
        assert_eq!(
            attrs.extended_communities[0].to_string(),
            "redirect:65001:999"
        );
        assert_eq!(attrs.communities, vec![(65001 << 16) | 666]);
        assert_eq!(
            attrs.next_hop, None,
            "a flow route has no next hop unless given"
        );
        let bad = config
            .replace("protocol tcp;", "protocol tcp; dscp 99;")
            .replace("redirect 65001:999;", "redirect 65001;");
        let text = parse(&bad).unwrap_err().to_string();
        assert!(text.contains("test.toml:8:9: "), "{text}");
        assert!(text.contains("99"), "{text}");
        let bad = config.replace("redirect 65001:999;", "redirect 65001;");
        let text = parse(&bad).unwrap_err().to_string();
        assert!(text.contains("test.toml:9:8: "), "{text}");
    }

    /// `[[flow-file]]`: a rule per line; a bad line is named by file and line.
    #[test]
    fn flow_files() {
        let mut interner = Interner::new();
        let text = "# DDoS rules\ndestination 192.0.2.0/24 protocol udp source-port =53 rate-limit 9600\n\n{ match { source 2001:db8:1::/48; } then { discard; } }\n";
        let routes = parse_flow_lines(text, &mut interner).unwrap();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].0.family(), Family::IPV4_FLOWSPEC);
        assert_eq!(routes[1].0.family(), Family::IPV6_FLOWSPEC);
        assert_eq!(
            routes[0].1.extended_communities[0].to_string(),
            "rate-limit:9600"
        );
        let bad = "destination 192.0.2.0/24\ndestination 192.0.2.0/24 dscp 64\n";
        let (line, e) = parse_flow_lines(bad, &mut interner).unwrap_err();
        assert_eq!(line, 2, "{e}");
    }

    #[test]
    fn missing_fields_and_syntax_errors() {
        let d = parse("local-as = 1\n[[neighbor]]\naddress = \"127.0.0.2\"\n").unwrap_err();
        let text = d.to_string();
        assert!(text.contains("missing required key `router-id`"), "{text}");
        assert!(text.contains("missing required key `peer-as`"), "{text}");
        let d = parse("router-id = \n").unwrap_err();
        assert!(d.to_string().starts_with("test.toml:1:"), "{d}");
    }

    /// Found by fuzzing (`fuzz/regressions/config/toml-edit-0.23-*`): after syntax
    /// errors, a dotted key over a plain value panicked inside toml_edit 0.23 ("all
    /// items have spans"); 0.25 reports it like any syntax error.
    #[test]
    fn a_dotted_key_over_a_value_after_syntax_errors_is_an_error() {
        let d = parse("{{{{{{to go u\u{1} g\nfall ===== \nfall = 2      {{{o g\nfall.= 2     -")
            .unwrap_err();
        assert!(d.to_string().starts_with("test.toml:1:"), "{d}");
    }

    #[test]
    fn session_protections() {
        let dir = std::env::temp_dir().join(format!("wasmbgp-cfg-md5-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("key"), "s3cret\n").unwrap();
        let text = format!("shutdown-message = \"maintenance\"\n{GOOD}").replace(
            "families = [\"ipv4-unicast\"]",
            "families = [\"ipv4-unicast\"]\nmd5-password-file = \"key\"\nmax-prefixes = { ipv4-unicast = 10 }\nmax-prefixes-action = \"warn\"\nmax-prefixes-restart = \"never\"\nmax-advertise = 5",
        );
        let c = Config::parse(&text, &dir.join("c.toml")).unwrap();
        let n = &c.neighbors[0];
        assert_eq!(n.md5.as_ref().map(|k| k.bytes()), Some(&b"s3cret"[..]));
        assert!(!format!("{n:?}").contains("s3cret"), "the key never prints");
        assert_eq!(n.max_prefixes.limits.get(Family::IPV4_UNICAST), Some(10));
        assert_eq!(n.max_prefixes.limits.get(Family::IPV6_UNICAST), None);
        assert_eq!(n.max_prefixes.action, LimitAction::Warn);
        assert_eq!(n.max_prefixes.restart, None);
        assert_eq!(n.max_advertise.get(Family::IPV6_UNICAST), Some(5));
        assert_eq!(c.shutdown_message.as_deref(), Some("maintenance"));
        // A cap below the static routes, a missing key file, an unknown family.
        let bad = text
            .replace(
                "max-advertise = 5",
                "max-advertise = { ipv4-unicast = 0, ipv9 = 3 }",
            )
            .replace("\"key\"", "\"nokey\"");
        let d = Config::parse(&bad, &dir.join("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(d.contains("max-advertise must be between 1"), "{d}");
        assert!(d.contains("max-advertise: unknown family \"ipv9\""), "{d}");
        assert!(d.contains("cannot read md5-password-file"), "{d}");
        let over = text.replace("max-advertise = 5", "max-advertise = { ipv4-unicast = 0 }");
        assert!(Config::parse(&over, &dir.join("c.toml")).is_err());
        let capped = text
            .replace(
                "[[route]]",
                "[[route]]\nprefix = \"100.20.0.0/24\"\n[[route]]",
            )
            .replace("max-advertise = 5", "max-advertise = 1");
        let d = Config::parse(&capped, &dir.join("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(d.contains("more than its max-advertise 1"), "{d}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn route_file_bulk_form() {
        let dir = std::env::temp_dir().join(format!("wasmbgp-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("t.routes"),
            "10.0.0.0/24\n10.0.1.0/24 med 5\n# comment\n\n2001:db8::/48 next-hop 2001:db8::1\n",
        )
        .unwrap();
        let text = format!("{GOOD}[[route-file]]\npath = \"t.routes\"\nmed = 7\n");
        let c = Config::parse(&text, &dir.join("c.toml")).unwrap();
        let g = &c.routes[1].routes;
        assert_eq!(g.len(), 3);
        assert_eq!((g[0].1.med, g[1].1.med), (Some(7), Some(5)));
        std::fs::write(dir.join("t.routes"), "10.0.0.0/24\nbogus\n").unwrap();
        let d = Config::parse(&text, &dir.join("c.toml")).unwrap_err();
        assert!(d.to_string().contains("t.routes:2: invalid address"), "{d}");
        std::fs::remove_dir_all(dir).ok();
    }
}
