//! `[[plugin]]` tables: the component, its world, settings, grants, health-check knobs and
//! the routes a health check controls.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use toml_edit::{Item, Table};
use wasmbgp_bgp::packet::attributes::PathAttributes;
use wasmbgp_bgp::rib::Interner;
use wasmbgp_bgp::text::quote;
use wasmbgp_bgp::{Prefix, words};
use wasmbgp_runtime::{GrantedFile, Grants, OnFailure, PluginSpec, World};

use super::reader::{Sink, TableReader};
use super::{for_each_table, parse_attributes, parse_route_neighbors};

/// What a health-check route becomes when the service is down or disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Degraded {
    /// Withdraw it.
    Withdraw,
    /// Keep announcing it with this MED (a backup path elsewhere wins).
    Med(u32),
}

/// A route a health check announces while its service is up.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthRoute {
    /// The prefix.
    pub prefix: Prefix,
    /// Attributes while up.
    pub up: Arc<PathAttributes>,
    /// Behaviour while down.
    pub down: Degraded,
    /// Behaviour while disabled by the operator.
    pub disabled: Degraded,
    /// Only these neighbors (default: every neighbor of the family).
    pub neighbors: Option<Vec<IpAddr>>,
}

/// What an exporter receives (`subscribe`, `received-routes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscription {
    /// Session state changes.
    pub sessions: bool,
    /// Routes received from neighbors.
    pub routes_received: bool,
    /// Received routes as received, before import policy (`received-routes =
    /// "pre-policy"`); after it by default.
    pub pre_policy: bool,
    /// Routes advertised to neighbors.
    pub routes_sent: bool,
    /// End-of-RIB markers.
    pub end_of_rib: bool,
    /// NOTIFICATIONs sent and received.
    pub notifications: bool,
    /// Health checks' verdicts.
    pub health: bool,
    /// Plugins' lifecycle.
    pub plugins: bool,
}

impl Subscription {
    /// The names `subscribe` accepts.
    pub const KINDS: [&str; 7] = [
        "sessions",
        "routes-received",
        "routes-sent",
        "end-of-rib",
        "notifications",
        "health",
        "plugins",
    ];

    /// Every kind, received routes after import policy: what an exporter gets unless
    /// its config says otherwise.
    pub const ALL: Subscription = Subscription {
        sessions: true,
        routes_received: true,
        pre_policy: false,
        routes_sent: true,
        end_of_rib: true,
        notifications: true,
        health: true,
        plugins: true,
    };

    fn nothing() -> Subscription {
        Subscription {
            sessions: false,
            routes_received: false,
            pre_policy: false,
            routes_sent: false,
            end_of_rib: false,
            notifications: false,
            health: false,
            plugins: false,
        }
    }

    fn set(&mut self, kind: &str) -> bool {
        let flag = match kind {
            "sessions" => &mut self.sessions,
            "routes-received" => &mut self.routes_received,
            "routes-sent" => &mut self.routes_sent,
            "end-of-rib" => &mut self.end_of_rib,
            "notifications" => &mut self.notifications,
            "health" => &mut self.health,
            "plugins" => &mut self.plugins,
            _ => return false,
        };
        *flag = true;
        true
    }
}

/// One `[[plugin]]` block.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// What the runtime needs.
    pub spec: PluginSpec,
    /// Routes driven by the health verdict.
    pub routes: Vec<HealthRoute>,
    /// Exporter: what it receives (`None` for other worlds).
    pub subscription: Option<Subscription>,
}

/// Reads every `[[plugin]]` block.
pub(super) fn parse_plugins(
    item: Option<&Item>,
    base: &Path,
    known: &HashSet<IpAddr>,
    sink: &mut Sink,
    interner: &mut Interner,
    check_plugin: super::PluginCheck,
) -> Vec<PluginConfig> {
    let mut out = Vec::new();
    let mut names = HashSet::new();
    for_each_table(item, "plugin", sink, |t, name, sink| {
        if let Some(p) = parse_plugin(t, name, base, known, sink, interner) {
            if p.spec.component.is_file()
                && let Err(e) = check_plugin(&p.spec)
            {
                let span = t.get("component").and_then(Item::span);
                sink.error(span, format!("plugin {:?} refused: {e:#}", p.spec.name));
            }
            if names.insert(p.spec.name.clone()) {
                out.push(p);
            } else {
                let span = t.get("name").and_then(Item::span);
                sink.error(span, format!("duplicate plugin name {:?}", p.spec.name));
            }
        }
    });
    out
}

fn degraded(
    r: &mut TableReader,
    med_key: &str,
    withdraw_key: Option<&str>,
    sink: &mut Sink,
) -> Option<Degraded> {
    let withdraw = withdraw_key.and_then(|k| r.opt_bool(k, sink));
    let med = r
        .opt_int(med_key, 0, u32::MAX as i64, sink)
        .map(|m| m as u32);
    match (withdraw, med) {
        (Some(true), _) => Some(Degraded::Withdraw),
        (_, Some(m)) => Some(Degraded::Med(m)),
        (Some(false), None) => None,
        (None, None) => None,
    }
}

fn parse_plugin(
    t: &Table,
    label: String,
    base: &Path,
    known: &HashSet<IpAddr>,
    sink: &mut Sink,
    interner: &mut Interner,
) -> Option<PluginConfig> {
    let mut r = TableReader::new(t, label.clone());
    let name = r.req_str("name", sink);
    let world = r.req_str("world", sink).and_then(|(s, span)| {
        s.parse::<World>()
            .map_err(|e| sink.error(span, e.to_string()))
            .ok()
    });
    let component = r
        .req_str("component", sink)
        .map(|(s, span)| (base.join(s), span));
    let mut spec = PluginSpec::new(
        name.as_ref().map(|n| n.0.clone()).unwrap_or_default(),
        world.unwrap_or(World::Healthcheck),
        component.as_ref().map(|c| c.0.clone()).unwrap_or_default(),
    );
    if let Some((path, span)) = &component
        && !path.is_file()
    {
        sink.error(
            span.clone(),
            format!(
                "component {} does not exist (build plugins with scripts/build-plugins.sh)",
                path.display()
            ),
        );
    }
    if let Some(d) = r.opt_duration("interval", sink) {
        spec.interval = d;
    }
    spec.fast_interval = r
        .opt_duration("fast-interval", sink)
        .unwrap_or(spec.interval.min(spec.fast_interval));
    if let Some(n) = r.opt_int("rise", 1, 1000, sink) {
        spec.rise = n as u32;
    }
    if let Some(n) = r.opt_int("fall", 1, 1000, sink) {
        spec.fall = n as u32;
    }
    if let Some((s, span)) = r.opt_str("on-failure", sink) {
        match s.parse::<OnFailure>() {
            Ok(o) if OnFailure::known_for(spec.world).contains(&o) => spec.on_failure = o,
            Ok(o) => {
                let known: Vec<&str> = OnFailure::known_for(spec.world)
                    .iter()
                    .map(|k| k.name())
                    .collect();
                sink.error(
                    span,
                    format!(
                        "on-failure {:?} is not for a {} plugin (use {})",
                        o.name(),
                        spec.world,
                        known.join(" or ")
                    ),
                );
            }
            Err(e) => sink.error(span, e.to_string()),
        }
    }
    let exporter_only = |r: &TableReader, key: &str, sink: &mut Sink| {
        if world.is_some_and(|w| w != World::Exporter) {
            sink.error(
                r.span_of(key),
                format!("{label}.{key} is for exporters (world = \"exporter\")"),
            );
        }
    };
    let mut subscription = Subscription::ALL;
    if let Some(list) = r.opt_str_list("subscribe", sink) {
        exporter_only(&r, "subscribe", sink);
        subscription = Subscription::nothing();
        for (kind, span) in list {
            if !subscription.set(&kind) {
                sink.error(
                    span,
                    format!(
                        "{label}.subscribe: unknown kind {} (known: {})",
                        quote(&kind),
                        Subscription::KINDS.join(", ")
                    ),
                );
            }
        }
    }
    if let Some((s, span)) = r.opt_str("received-routes", sink) {
        exporter_only(&r, "received-routes", sink);
        match s.as_str() {
            "post-policy" => subscription.pre_policy = false,
            "pre-policy" => subscription.pre_policy = true,
            _ => sink.error(
                span,
                format!(
                    "{label}.received-routes must be \"post-policy\" or \"pre-policy\", not {}",
                    quote(&s)
                ),
            ),
        }
    }
    if let Some(n) = r.opt_int("queue", 1, 1 << 20, sink) {
        exporter_only(&r, "queue", sink);
        spec.queue = n as usize;
    }
    let plugin_down =
        degraded(&mut r, "med-down", Some("withdraw-on-down"), sink).unwrap_or(Degraded::Withdraw);
    let plugin_disabled =
        degraded(&mut r, "med-disabled", None, sink).unwrap_or(Degraded::Withdraw);
    if let Some(item) = r.item("settings") {
        match item.as_table_like() {
            Some(settings) => {
                for (k, v) in settings.iter() {
                    let value = match v.as_value() {
                        Some(v) if v.as_str().is_some() => {
                            v.as_str().unwrap_or_default().to_string()
                        }
                        Some(v)
                            if v.as_integer().is_some()
                                || v.as_bool().is_some()
                                || v.as_float().is_some() =>
                        {
                            v.to_string().trim().to_string()
                        }
                        _ => {
                            sink.error(
                                v.span(),
                                format!("{label}.settings.{k} must be a string, number or boolean"),
                            );
                            continue;
                        }
                    };
                    spec.settings.push((k.to_string(), value));
                }
            }
            None => sink.error(item.span(), format!("{label}.settings must be a table")),
        }
    }
    for (key, span) in r.opt_str_list("secret-settings", sink).unwrap_or_default() {
        if spec.settings.iter().any(|(k, _)| *k == key) {
            spec.secret_settings.push(key);
        } else {
            sink.error(
                span,
                format!(
                    "{label}.secret-settings: {} is not in {label}.settings",
                    quote(&key)
                ),
            );
        }
    }
    if let Some(item) = r.item("grants") {
        match item.as_table() {
            Some(g) => spec.grants = parse_grants(g, &format!("{label}.grants"), base, known, sink),
            None => sink.error(item.span(), format!("{label}.grants must be a table")),
        }
    }
    let mut routes = Vec::new();
    for_each_table(
        r.item("route"),
        &format!("{label}.route"),
        sink,
        |t, name, sink| {
            let mut rr = TableReader::new(t, name);
            let prefix = rr.req_str("prefix", sink);
            let attrs = parse_attributes(&mut rr, sink);
            let down = degraded(&mut rr, "med-down", Some("withdraw-on-down"), sink)
                .unwrap_or(plugin_down);
            let disabled = degraded(&mut rr, "med-disabled", None, sink).unwrap_or(plugin_disabled);
            let neighbors = parse_route_neighbors(&mut rr, known, sink);
            let span = rr.span();
            rr.finish(sink);
            let Some((prefix, pspan)) = prefix else {
                return;
            };
            match prefix.parse::<Prefix>() {
                Ok(p) => {
                    if let Err(e) = words::check_next_hop_family(&p, attrs.next_hop.as_ref()) {
                        sink.error(span, e);
                    }
                    routes.push(HealthRoute {
                        prefix: p,
                        up: interner.intern(attrs),
                        down,
                        disabled,
                        neighbors,
                    });
                }
                Err(e) => sink.error(pspan, e.0),
            }
        },
    );
    if let Some(w @ (World::Policy | World::Exporter)) = world
        && !routes.is_empty()
    {
        sink.error(
            r.span_of("route"),
            format!("{label}: a {w} drives no routes; [[plugin.route]] is for health checks"),
        );
    }
    r.finish(sink);
    name?;
    let world = world?;
    component?;
    Some(PluginConfig {
        spec,
        routes,
        subscription: (world == World::Exporter).then_some(subscription),
    })
}

fn parse_grants(
    t: &Table,
    label: &str,
    base: &Path,
    known: &HashSet<IpAddr>,
    sink: &mut Sink,
) -> Grants {
    let mut r = TableReader::new(t, label);
    let mut g = Grants::default();
    let endpoints = |r: &mut TableReader, key: &str, sink: &mut Sink| -> Vec<String> {
        let list = r.opt_str_list(key, sink).unwrap_or_default();
        let mut out = Vec::new();
        for (s, span) in list {
            let bare = s.trim_start_matches("http://");
            let bare = bare.split('/').next().unwrap_or_default();
            if bare.parse::<std::net::SocketAddr>().is_err() {
                sink.error(
                    span,
                    format!("{label}.{key} entries must be IP:PORT, not {}", quote(&s)),
                );
            } else {
                out.push(s);
            }
        }
        out
    };
    g.tcp = endpoints(&mut r, "tcp", sink);
    g.dns = endpoints(&mut r, "dns", sink);
    g.http = endpoints(&mut r, "http", sink);
    // Read here for a diagnostic at the key, and again when the plugin is loaded.
    if let Some((s, span)) = r.opt_str("http-ca", sink) {
        let path = base.join(&s);
        match wasmbgp_runtime::grants::read_ca_file(&path) {
            Ok(_) => g.http_ca = Some(path),
            Err(e) => sink.error(span, format!("{label}.http-ca: {e}")),
        }
    }
    for (s, span) in r.opt_str_list("neighbors", sink).unwrap_or_default() {
        match s.parse::<IpAddr>() {
            Ok(a) if known.contains(&a) => g.neighbors.push(a),
            Ok(a) => sink.error(span, format!("{a} is not a configured neighbor")),
            Err(_) => sink.error(
                span,
                format!(
                    "{label}.neighbors must list IP addresses, not {}",
                    quote(&s)
                ),
            ),
        }
    }
    for (s, span) in r.opt_str_list("files", sink).unwrap_or_default() {
        let path = base.join(&s);
        if path.is_file() {
            g.files.push(GrantedFile { name: s, path });
        } else {
            sink.error(
                span,
                format!("{label}.files: {} is not a readable file", path.display()),
            );
        }
    }
    g.max_routes = r
        .opt_int("max-routes", 0, u32::MAX as i64, sink)
        .map(|n| n as u32);
    for (s, span) in r.opt_str_list("http-out", sink).unwrap_or_default() {
        match wasmbgp_runtime::grants::UrlGrant::parse(&s) {
            Ok(_) => g.http_out.push(s),
            Err(e) => sink.error(span, format!("{label}.http-out: {e}")),
        }
    }
    for (s, span) in r.opt_str_list("tcp-out", sink).unwrap_or_default() {
        if s.parse::<std::net::SocketAddr>().is_ok() {
            g.tcp_out.push(s);
        } else {
            sink.error(
                span,
                format!(
                    "{label}.tcp-out entries must be IP:PORT (names are not resolved), not {}",
                    quote(&s)
                ),
            );
        }
    }
    for (s, span) in r.opt_str_list("append-files", sink).unwrap_or_default() {
        let path = base.join(&s);
        match path.parent() {
            Some(dir) if dir.is_dir() && !path.is_dir() => {
                g.append_files.push(GrantedFile { name: s, path })
            }
            _ => sink.error(
                span,
                format!(
                    "{label}.append-files: {} is not a file in an existing folder",
                    path.display()
                ),
            ),
        }
    }
    if let Some(n) = r.opt_int("max-series", 0, 100_000, sink) {
        g.max_series = n as u32;
    }
    if let Some((s, span)) = r.opt_str("memory", sink) {
        match parse_size(&s) {
            Some(n) if n >= 1 << 20 => g.memory = n,
            _ => sink.error(
                span,
                format!(
                    "{label}.memory must be a size of at least 1MiB such as \"16MiB\", not {}",
                    quote(&s)
                ),
            ),
        }
    }
    if let Some(d) = r.opt_duration("deadline", sink) {
        if d.is_zero() {
            sink.error(
                r.span_of("deadline"),
                format!("{label}.deadline must be above 0"),
            );
        } else {
            g.deadline = d;
        }
    }
    r.finish(sink);
    g
}

/// Parses `16MiB`, `512KiB`, `1GiB`, `64MB` or a number of bytes.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `grants.http-ca`: a PEM file beside the config, checked at the key.
    #[test]
    fn http_ca_is_read_beside_the_config() {
        let dir = std::env::temp_dir().join(format!("wasmbgp-http-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("check.wasm"), b"\0asm").unwrap();
        std::fs::write(dir.join("notes.txt"), "no certificate here\n").unwrap();
        std::fs::write(
            dir.join("ca.pem"),
            "-----BEGIN CERTIFICATE-----\nMAMBAgM=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let config = |ca: &str| {
            format!(
                "router-id = \"127.0.0.1\"\nlocal-as = 65001\n[[plugin]]\nname = \"vip\"\n\
                 world = \"healthcheck\"\ncomponent = \"check.wasm\"\n[plugin.grants]\n\
                 http = [\"127.0.0.1:8443\"]\nhttp-ca = \"{ca}\"\n"
            )
        };
        let path = dir.join("wasmbgp.toml");
        let file = path.display().to_string();
        let c = super::super::Config::parse(&config("ca.pem"), &path).unwrap();
        assert_eq!(c.plugins[0].spec.grants.http_ca, Some(dir.join("ca.pem")));

        for (ca, why) in [
            ("missing.pem", "missing.pem: No such file"),
            ("notes.txt", "notes.txt holds no PEM certificate"),
        ] {
            let d = super::super::Config::parse(&config(ca), &path).unwrap_err();
            let text = d.to_string();
            assert!(
                text.contains(&format!("{file}:9:11: plugin[1].grants.http-ca: ")),
                "{text}"
            );
            assert!(text.contains(why), "{text}");
            assert_eq!(d.items.len(), 1, "{text}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16MiB"), Some(16 << 20));
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("2 GiB"), Some(2 << 30));
        assert_eq!(parse_size("lots"), None);
    }
}
