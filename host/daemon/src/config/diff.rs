//! What a config reload changes: the running config against the new one, as a plan the
//! speaker carries out. Pure: every decision (which neighbor needs a new session, which
//! plugin is swapped) is made and tested here; the daemon only applies it.

use std::net::IpAddr;

use serde::Serialize;

use super::{Config, Diagnostic, Diagnostics, Globals, NeighborConfig, PluginConfig, RouteGroup};

/// The difference between what runs and a new config, with the new config's parts.
#[derive(Debug)]
pub struct ReloadPlan {
    /// The new neighbor list, in file order.
    pub neighbors: Vec<NeighborConfig>,
    /// Neighbors to start.
    pub added: Vec<IpAddr>,
    /// Neighbors to stop (Cease/Peer De-configured).
    pub removed: Vec<IpAddr>,
    /// Neighbors whose session must be new (Cease/Other Configuration Change), and the
    /// setting that needs it.
    pub reset: Vec<(IpAddr, &'static str)>,
    /// Neighbors with settings applied live (description, limits, policies, retry).
    pub changed: Vec<IpAddr>,
    /// The static routes and route files, to diff against what each neighbor has.
    pub routes: Vec<RouteGroup>,
    /// The shutdown communication.
    pub shutdown_message: Option<String>,
    /// The new plugin list, in file order.
    pub plugins: Vec<PluginConfig>,
    /// Plugins to start.
    pub plugins_added: Vec<String>,
    /// Plugins to stop (their routes are withdrawn).
    pub plugins_removed: Vec<String>,
    /// Plugins whose instance is swapped for their new spec (component, settings,
    /// grants, schedule), `state` carried over.
    pub plugins_swapped: Vec<String>,
    /// Plugins whose spec is the same but whose routes or subscription changed.
    pub plugins_reconfigured: Vec<String>,
}

impl ReloadPlan {
    /// True if the new config is the running one.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.reset.is_empty()
            && self.changed.is_empty()
            && self.plugins_added.is_empty()
            && self.plugins_removed.is_empty()
            && self.plugins_swapped.is_empty()
            && self.plugins_reconfigured.is_empty()
    }
}

/// What a reload did: `ctl reload`'s answer and the log line.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ReloadSummary {
    /// Time from the request to the last change handed to the neighbors.
    pub ms: f64,
    /// Neighbors started.
    pub neighbors_added: Vec<IpAddr>,
    /// Neighbors stopped.
    pub neighbors_removed: Vec<IpAddr>,
    /// Neighbors given a new session.
    pub neighbors_reset: Vec<IpAddr>,
    /// Neighbors reconfigured live.
    pub neighbors_changed: Vec<IpAddr>,
    /// Prefixes announced to kept neighbors because a static route or route file
    /// changed (counted once per neighbor).
    pub routes_announced: usize,
    /// Prefixes withdrawn from kept neighbors for the same reason.
    pub routes_withdrawn: usize,
    /// Plugins started.
    pub plugins_added: Vec<String>,
    /// Plugins stopped.
    pub plugins_removed: Vec<String>,
    /// Plugins swapped to a new instance.
    pub plugins_swapped: Vec<String>,
    /// Plugins whose routes or subscription changed.
    pub plugins_reconfigured: Vec<String>,
    /// What could not be applied (a swap refused by the plugin after the check).
    pub errors: Vec<String>,
}

impl ReloadSummary {
    /// The one-line text answer.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "config reloaded in {:.0} ms: neighbors +{} -{} reset {} changed {}; \
             routes announced {} withdrawn {}; plugins +{} -{} swapped {} reconfigured {}",
            self.ms,
            self.neighbors_added.len(),
            self.neighbors_removed.len(),
            self.neighbors_reset.len(),
            self.neighbors_changed.len(),
            self.routes_announced,
            self.routes_withdrawn,
            self.plugins_added.len(),
            self.plugins_removed.len(),
            self.plugins_swapped.len(),
            self.plugins_reconfigured.len(),
        );
        for e in &self.errors {
            text.push_str("\nnot applied: ");
            text.push_str(e);
        }
        text
    }
}

/// Compares the running config with `new`. Settings only a restart changes are refused
/// with their place in `text` (the new file's content).
pub fn plan(
    running: &Globals,
    neighbors: &[NeighborConfig],
    plugins: &[PluginConfig],
    new: Config,
    file: &str,
    text: &str,
) -> Result<ReloadPlan, Diagnostics> {
    let globals = new.globals();
    let mut refused = Vec::new();
    let mut refuse = |key: &str, changed: bool| {
        if changed {
            let (line, col) = locate_key(text, key);
            refused.push(Diagnostic {
                line,
                col,
                message: format!(
                    "{key} cannot change while wasmbgp runs: restart it to apply this"
                ),
            });
        }
    };
    refuse("router-id", globals.router_id != running.router_id);
    refuse("local-as", globals.local_as != running.local_as);
    refuse("listen", globals.listen != running.listen);
    refuse(
        "graceful-restart",
        globals.graceful_restart != running.graceful_restart,
    );
    refuse("control", globals.control != running.control);
    refuse("metrics", globals.metrics != running.metrics);
    if !refused.is_empty() {
        refused.sort_by_key(|d| (d.line, d.col));
        return Err(Diagnostics {
            file: file.to_string(),
            items: refused,
        });
    }
    let mut plan = ReloadPlan {
        neighbors: Vec::new(),
        added: Vec::new(),
        removed: Vec::new(),
        reset: Vec::new(),
        changed: Vec::new(),
        routes: new.routes,
        shutdown_message: new.shutdown_message,
        plugins: Vec::new(),
        plugins_added: Vec::new(),
        plugins_removed: Vec::new(),
        plugins_swapped: Vec::new(),
        plugins_reconfigured: Vec::new(),
    };
    for old in neighbors {
        if !new.neighbors.iter().any(|n| n.address == old.address) {
            plan.removed.push(old.address);
        }
    }
    for n in &new.neighbors {
        match neighbors.iter().find(|o| o.address == n.address) {
            None => plan.added.push(n.address),
            Some(old) => match reset_reason(old, n) {
                Some(why) => plan.reset.push((n.address, why)),
                None if old != n => plan.changed.push(n.address),
                None => {}
            },
        }
    }
    plan.neighbors = new.neighbors;
    for old in plugins {
        let kept = new
            .plugins
            .iter()
            .any(|p| p.spec.name == old.spec.name && p.spec.world == old.spec.world);
        if !kept {
            plan.plugins_removed.push(old.spec.name.clone());
        }
    }
    for p in &new.plugins {
        let old = plugins
            .iter()
            .find(|o| o.spec.name == p.spec.name && o.spec.world == p.spec.world);
        match old {
            None => plan.plugins_added.push(p.spec.name.clone()),
            Some(old) if old.spec != p.spec => plan.plugins_swapped.push(p.spec.name.clone()),
            Some(old) if old != p => plan.plugins_reconfigured.push(p.spec.name.clone()),
            Some(_) => {}
        }
    }
    plan.plugins = new.plugins;
    Ok(plan)
}

/// The setting whose change needs a new session (what was negotiated in the OPEN or
/// decided when connecting), if any. Description, limits, policies and retry delays
/// apply to the running session.
pub fn reset_reason(old: &NeighborConfig, new: &NeighborConfig) -> Option<&'static str> {
    let checks: [(&'static str, bool); 9] = [
        ("port", old.port != new.port),
        ("peer-as", old.peer_as != new.peer_as),
        ("local-address", old.local_address != new.local_address),
        ("next-hop-ipv6", old.next_hop_ipv6 != new.next_hop_ipv6),
        ("hold-time", old.hold_time != new.hold_time),
        ("passive", old.passive != new.passive),
        ("families", old.families != new.families),
        ("ttl-security", old.ttl_security != new.ttl_security),
        ("md5", old.md5 != new.md5),
    ];
    checks.into_iter().find(|c| c.1).map(|c| c.0)
}

/// Where a top-level key (or `[table]`) is written in `text`, 1-based; the file's
/// start if it is not written (its default is what changed).
fn locate_key(text: &str, key: &str) -> (usize, usize) {
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let col = line.len() - trimmed.len() + 1;
        if trimmed.starts_with('[') {
            if trimmed
                .trim_start_matches('[')
                .trim_start()
                .starts_with(key)
            {
                return (i + 1, col);
            }
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix(key)
            && rest.trim_start().starts_with('=')
        {
            return (i + 1, col);
        }
    }
    (1, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const BASE: &str = r#"router-id = "127.0.0.1"
local-as = 65001
listen = "127.0.0.1:1790"
[control]
socket = "/tmp/x.sock"
[[neighbor]]
address = "127.0.0.2"
peer-as = 65000
description = "first"
[[neighbor]]
address = "127.0.0.3"
peer-as = 65000
[[neighbor]]
address = "127.0.0.4"
peer-as = 65000
[[route]]
prefix = "100.10.0.0/24"
med = 100
"#;

    fn parse(text: &str) -> Config {
        Config::parse(text, Path::new("test.toml")).expect("valid")
    }

    fn plan_of(old: &str, new: &str) -> Result<ReloadPlan, Diagnostics> {
        let old = parse(old);
        plan(
            &old.globals(),
            &old.neighbors,
            &old.plugins,
            parse(new),
            "test.toml",
            new,
        )
    }

    #[test]
    fn the_same_config_changes_nothing() {
        let plan = plan_of(BASE, BASE).unwrap();
        assert!(plan.is_empty(), "{plan:?}");
        assert_eq!(plan.neighbors.len(), 3);
    }

    #[test]
    fn description_and_policy_are_live_session_settings_reset() {
        let new = BASE
            .replace("description = \"first\"", "description = \"renamed\"")
            .replace(
                "address = \"127.0.0.3\"\npeer-as = 65000",
                "address = \"127.0.0.3\"\npeer-as = 65009",
            )
            .replace(
                "address = \"127.0.0.4\"\npeer-as = 65000",
                "address = \"127.0.0.4\"\npeer-as = 65000\nhold-time = 30\nconnect-retry = \"5s\"",
            );
        let plan = plan_of(BASE, &new).unwrap();
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(plan.changed, vec![a("127.0.0.2")]);
        assert_eq!(
            plan.reset,
            vec![(a("127.0.0.3"), "peer-as"), (a("127.0.0.4"), "hold-time")]
        );
        assert!(plan.added.is_empty() && plan.removed.is_empty());
        // A retry delay alone is applied live.
        let retry = BASE.replace(
            "address = \"127.0.0.4\"\npeer-as = 65000",
            "address = \"127.0.0.4\"\npeer-as = 65000\nconnect-retry = \"5s\"",
        );
        let plan = plan_of(BASE, &retry).unwrap();
        assert_eq!(plan.changed, vec![a("127.0.0.4")]);
        assert!(plan.reset.is_empty());
    }

    #[test]
    fn neighbors_added_and_removed() {
        let new = BASE.replace("127.0.0.4", "127.0.0.5");
        let plan = plan_of(BASE, &new).unwrap();
        assert_eq!(plan.added, vec!["127.0.0.5".parse::<IpAddr>().unwrap()]);
        assert_eq!(plan.removed, vec!["127.0.0.4".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn a_global_change_is_refused_with_its_place() {
        let new = BASE
            .replace("local-as = 65001", "local-as = 65002")
            .replace("/tmp/x.sock", "/tmp/y.sock");
        let d = plan_of(BASE, &new).unwrap_err().to_string();
        assert!(
            d.contains("test.toml:2:1: local-as cannot change while wasmbgp runs"),
            "{d}"
        );
        assert!(d.contains("test.toml:4:1: control cannot change"), "{d}");
        // A key left to its default is placed at the file's start.
        let new = format!("{BASE}");
        let d = plan_of(&format!("graceful-restart = 60\n{BASE}"), &new)
            .unwrap_err()
            .to_string();
        assert!(
            d.contains("test.toml:1:1: graceful-restart cannot change"),
            "{d}"
        );
    }

    #[test]
    fn plugins_added_removed_swapped_and_reconfigured() {
        let dir = std::env::temp_dir().join(format!("wasmbgp-diff-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["a.wasm", "b.wasm"] {
            std::fs::write(dir.join(f), b"\0asm").unwrap();
        }
        let block = |name: &str, component: &str, extra: &str| {
            format!(
                "[[plugin]]\nname = \"{name}\"\nworld = \"healthcheck\"\ncomponent = \"{component}\"\n{extra}"
            )
        };
        let route =
            |med: u32| format!("[[plugin.route]]\nprefix = \"100.10.0.100/32\"\nmed = {med}\n");
        let old = format!(
            "{BASE}{}{}{}{}",
            block("same", "a.wasm", &route(10)),
            block("gone", "a.wasm", ""),
            block("swapped", "a.wasm", ""),
            block("rerouted", "a.wasm", &route(10)),
        );
        let new = format!(
            "{BASE}{}{}{}{}",
            block("same", "a.wasm", &route(10)),
            block("swapped", "b.wasm", ""),
            block("rerouted", "a.wasm", &route(20)),
            block("new", "a.wasm", ""),
        );
        let parse_in = |text: &str| Config::parse(text, &dir.join("c.toml")).expect("valid");
        let running = parse_in(&old);
        let plan = plan(
            &running.globals(),
            &running.neighbors,
            &running.plugins,
            parse_in(&new),
            "c.toml",
            &new,
        )
        .unwrap();
        assert_eq!(plan.plugins_added, vec!["new"]);
        assert_eq!(plan.plugins_removed, vec!["gone"]);
        assert_eq!(plan.plugins_swapped, vec!["swapped"]);
        assert_eq!(plan.plugins_reconfigured, vec!["rerouted"]);
        assert!(plan.changed.is_empty() && plan.reset.is_empty());
        std::fs::remove_dir_all(dir).ok();
    }
}
