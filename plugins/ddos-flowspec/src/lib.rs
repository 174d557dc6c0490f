//! `ddos-flowspec`: turns a DDoS detector's list of attacks into FlowSpec
//! rules (RFC 8955 / RFC 8956) that the speaker announces to its neighbors.
//!
//! A health check (world `healthcheck`): each `check` fetches the
//! detector's JSON (`url`, through the `http` probe grant), announces one
//! rule per listed attack (rate limit, discard or redirect), withdraws the
//! rules of attacks no longer listed, never holds more than `max-rules`
//! rules, and when the detector cannot be read keeps its rules until their
//! `ttl` runs out. The table is saved in the `state` store, so a restarted
//! instance carries on with it. Healthy means the detector answered with an
//! attack list and the host accepted every rule it asked for. Settings, the
//! JSON schema and an example config: README.md.
//!
//! The pure parts are plain modules tested natively: `attacks` (the JSON,
//! the rule and action of each attack), `table` (the rules held: the diff,
//! the cap, the TTL, the saved form). This file reads the settings and
//! connects them to the host.

mod attacks;
mod table;

use std::time::Duration;

use wasmbgp_sdk::flow::{self, FlowRule, RouteTarget};
use wasmbgp_sdk::metrics::{Counter, Gauge, Series};
use wasmbgp_sdk::routes::RouteError;
use wasmbgp_sdk::types::IpAddress;
use wasmbgp_sdk::{Attributes, Error, HealthCheck, Settings, clock, log, probe, state};

use crate::attacks::{Defaults, Mitigation, parse_feed, parse_mitigation};
use crate::table::{FlowRoutes, Limits, Outcome, Table};

/// The settings the plugin knows.
const SETTINGS: &[&str] = &[
    "url",
    "tls-server-name",
    "timeout",
    "ttl",
    "max-rules",
    "default-action",
    "redirect-target",
    "neighbors",
];

/// The detector's answer is read up to this size (the probe's largest).
const MAX_BODY: u32 = 1 << 20;

/// The largest `max-rules`: a saved table of this many rules still fits the
/// state store's 1 MiB.
const MAX_RULES_LIMIT: usize = 5_000;

/// The saved table is split into values of at most this size (the state
/// store takes 64 KiB a value), under `rules.0`, `rules.1`...
const STATE_CHUNK: usize = 60 * 1024;
const STATE_PREFIX: &str = "rules.";

/// At most this many ids or reasons are quoted in one log line or verdict.
const QUOTED: usize = 5;

/// The settings, read and checked.
#[derive(Debug, Clone, PartialEq)]
struct Config {
    url: String,
    server_name: Option<String>,
    timeout: Duration,
    limits: Limits,
    defaults: Defaults,
    /// Where the rules go (empty: every granted neighbor).
    neighbors: Vec<IpAddress>,
}

fn config(settings: &Settings) -> Result<Config, Error> {
    settings.only(SETTINGS)?;
    let url = settings.required("url")?.trim().to_string();
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Err(format!(
            "setting `url` = {url:?} is invalid: expected http://IP:PORT/path or https://IP:PORT/path"
        )
        .into());
    }
    let server_name = settings
        .get("tls-server-name")
        .map(|n| n.trim().to_string());
    if server_name.is_some() && !url.starts_with("https://") {
        return Err(format!(
            "setting `tls-server-name` is for https:// URLs, and `url` is {url:?}"
        )
        .into());
    }
    if server_name.as_deref() == Some("") {
        return Err("setting `tls-server-name` is empty".into());
    }
    let timeout = settings.duration_or("timeout", Duration::from_secs(2))?;
    if timeout.is_zero() || timeout > Duration::from_secs(10) {
        return Err("setting `timeout` must be above 0 and at most 10s (the probe's limit)".into());
    }
    let ttl = settings.duration_or("ttl", Duration::from_secs(300))?;
    if ttl < Duration::from_secs(1) {
        return Err("setting `ttl` must be at least 1s".into());
    }
    let max_rules: usize = settings.parse_or("max-rules", 100)?;
    if !(1..=MAX_RULES_LIMIT).contains(&max_rules) {
        return Err(format!("setting `max-rules` must be from 1 to {MAX_RULES_LIMIT}").into());
    }
    let redirect_target: Option<RouteTarget> = settings.parse_text("redirect-target")?;
    let mitigation = parse_mitigation(
        settings.get_or("default-action", "discard"),
        redirect_target,
    )
    .map_err(|why| Error::new(format!("setting `default-action`: {why}")))?;
    Ok(Config {
        url,
        server_name,
        timeout,
        limits: Limits {
            max_rules,
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
        },
        defaults: Defaults {
            mitigation,
            redirect_target,
        },
        neighbors: settings.parse_list("neighbors")?,
    })
}

/// The host's `routes` interface, to the configured neighbors.
struct HostRoutes<'a> {
    neighbors: &'a [IpAddress],
}

impl FlowRoutes for HostRoutes<'_> {
    fn announce(&mut self, rule: &FlowRule, mitigation: &Mitigation) -> Result<(), RouteError> {
        flow::announce(
            rule,
            &mitigation.actions(),
            &Attributes::new(),
            self.neighbors,
        )
    }

    fn withdraw(&mut self, rule: &FlowRule) -> Result<(), RouteError> {
        flow::withdraw(rule, self.neighbors)
    }
}

/// `n thing` or `n things`.
fn count(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// The first few of `items`, joined, with how many more there are.
fn quote(items: &[String], separator: &str) -> String {
    let mut text = items
        .iter()
        .take(QUOTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(separator);
    if items.len() > QUOTED {
        text.push_str(&format!("{separator}and {} more", items.len() - QUOTED));
    }
    text
}

/// "4m10s", "12s": for the TTL left.
fn human(ms: u64) -> String {
    let secs = ms.div_ceil(1000);
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

/// The verdict after the detector answered: healthy unless the host
/// refused rules (then the mitigation the detector asks for is not in
/// force).
fn answered(
    listed: usize,
    malformed: usize,
    outcome: &Outcome,
    rules: usize,
    max_rules: usize,
) -> Result<String, Error> {
    let mut detail = format!(
        "detector listed {}: {} in force ({} announced, {} withdrawn)",
        count(listed, "attack"),
        count(rules, "rule"),
        outcome.announced,
        outcome.withdrawn
    );
    if !outcome.over_cap.is_empty() {
        detail.push_str(&format!(
            "; {} over max-rules {max_rules}",
            outcome.over_cap.len()
        ));
    }
    if malformed > 0 {
        detail.push_str(&format!("; {} malformed", malformed));
    }
    if outcome.failed_withdrawals > 0 {
        detail.push_str(&format!(
            "; {} the host would not withdraw (retried)",
            outcome.failed_withdrawals
        ));
    }
    if outcome.refused.is_empty() {
        Ok(detail)
    } else {
        Err(format!(
            "the host refused {}: {}; {detail}",
            count(outcome.refused.len(), "rule"),
            quote(&outcome.refused, "; ")
        )
        .into())
    }
}

/// The verdict when the detector could not be read: unhealthy, with what
/// is kept.
fn silent(url: &str, why: &str, rules: usize, next_expiry_ms: Option<u64>) -> Error {
    let kept = match next_expiry_ms {
        Some(ms) => format!(
            "keeping {} until their TTL (the first in {})",
            count(rules, "rule"),
            human(ms)
        ),
        None => "no rule in force".to_string(),
    };
    Error::new(format!("detector {url}: {why}; {kept}"))
}

/// The plugin's counters.
struct Metrics {
    rules: Series,
    over_cap: Series,
    malformed: Series,
    detector_failures: Series,
}

impl Metrics {
    fn register() -> Result<Metrics, Error> {
        let rules = Gauge::register(
            "flowspec_rules",
            "FlowSpec rules announced for attacks.",
            &[],
        )?;
        let skipped = Counter::register(
            "flowspec_attacks_skipped_total",
            "Listed attacks not announced, by reason: max-rules (over the cap) or malformed.",
            &["reason"],
        )?;
        let failures = Counter::register(
            "flowspec_detector_failures_total",
            "Polls where the detector did not answer with an attack list.",
            &[],
        )?;
        Ok(Metrics {
            rules: rules.series(&[]),
            over_cap: skipped.series(&["max-rules"]),
            malformed: skipped.series(&["malformed"]),
            detector_failures: failures.series(&[]),
        })
    }
}

/// Reads the saved table: `rules.0`, `rules.1`... joined.
fn load_saved() -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    for i in 0.. {
        match state::get(&format!("{STATE_PREFIX}{i}")) {
            Some(chunk) => bytes.extend_from_slice(&chunk),
            None => break,
        }
    }
    (!bytes.is_empty()).then_some(bytes)
}

/// Saves `bytes` in chunks, and drops the chunks of a longer table.
fn store_saved(bytes: &[u8]) -> Result<(), String> {
    let chunks: Vec<&[u8]> = bytes.chunks(STATE_CHUNK).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        state::set(&format!("{STATE_PREFIX}{i}"), chunk)?;
    }
    for key in state::keys() {
        let stale = key
            .strip_prefix(STATE_PREFIX)
            .and_then(|i| i.parse::<usize>().ok())
            .is_some_and(|i| i >= chunks.len());
        if stale {
            state::delete(&key);
        }
    }
    Ok(())
}

/// The health check.
struct DdosFlowspec {
    config: Config,
    table: Table,
    metrics: Metrics,
    /// Why the detector failed last, while it does: its log says only
    /// what changes.
    failing: Option<String>,
    /// What the state store holds.
    saved: Vec<u8>,
}

impl DdosFlowspec {
    /// The detector's answer, if it is a whole 2xx one.
    fn fetch(&self) -> Result<Vec<u8>, String> {
        let response = probe::http_fetch(
            &self.config.url,
            self.config.server_name.as_deref(),
            self.config.timeout,
            MAX_BODY,
        )
        .map_err(|e| probe::describe(&e))?;
        if !(200..300).contains(&response.status) {
            return Err(format!("answered HTTP {}", response.status));
        }
        if response.truncated {
            return Err(format!("the answer is over {} KiB", MAX_BODY / 1024));
        }
        Ok(response.body)
    }

    fn save(&mut self) {
        let bytes = self.table.save();
        if bytes == self.saved {
            return;
        }
        match store_saved(&bytes) {
            Ok(()) => self.saved = bytes,
            // The rules stay in force; only a restart would forget them.
            Err(why) => log::warn(&format!("cannot save the rule table: {why}")),
        }
    }
}

impl HealthCheck for DdosFlowspec {
    fn init(settings: &Settings) -> Result<Self, Error> {
        let config = config(settings)?;
        let metrics = Metrics::register()?;
        let saved = load_saved().unwrap_or_default();
        let table = if saved.is_empty() {
            Table::new(config.limits)
        } else {
            match Table::restore(&saved, config.limits, &config.defaults) {
                Ok(table) => {
                    log::info(&format!(
                        "restored {} from the state store",
                        count(table.len(), "rule")
                    ));
                    table
                }
                Err(why) => {
                    log::warn(&format!("saved rule table left out: {why}"));
                    Table::new(config.limits)
                }
            }
        };
        Ok(DdosFlowspec {
            config,
            table,
            metrics,
            failing: None,
            saved,
        })
    }

    fn check(&mut self) -> Result<String, Error> {
        let now_ms = clock::now_ms();
        let answer = self
            .fetch()
            .and_then(|body| parse_feed(&body, &self.config.defaults));
        let mut routes = HostRoutes {
            neighbors: &self.config.neighbors,
        };
        let verdict = match answer {
            Ok(feed) => {
                if let Some(why) = self.failing.take() {
                    log::info(&format!("detector answers again (it failed: {why})"));
                }
                if !feed.invalid.is_empty() {
                    log::warn(&format!(
                        "{} skipped: {}",
                        count(feed.invalid.len(), "malformed attack"),
                        quote(&feed.invalid, "; ")
                    ));
                    let _ = self.metrics.malformed.add(feed.invalid.len() as f64);
                }
                let listed = feed.attacks.len();
                let outcome = self.table.update(feed.attacks, now_ms, &mut routes);
                if !outcome.over_cap.is_empty() {
                    log::warn(&format!(
                        "{} over max-rules {} not announced: {}",
                        count(outcome.over_cap.len(), "attack"),
                        self.config.limits.max_rules,
                        quote(&outcome.over_cap, ", ")
                    ));
                    let _ = self.metrics.over_cap.add(outcome.over_cap.len() as f64);
                }
                answered(
                    listed + feed.invalid.len(),
                    feed.invalid.len(),
                    &outcome,
                    self.table.len(),
                    self.config.limits.max_rules,
                )
            }
            Err(why) => {
                let _ = self.metrics.detector_failures.add(1.0);
                if self.failing.as_deref() != Some(why.as_str()) {
                    log::warn(&format!(
                        "detector {}: {why}; keeping {} until their TTL",
                        self.config.url,
                        count(self.table.len(), "rule")
                    ));
                }
                self.failing = Some(why.clone());
                self.table.expire(now_ms, &mut routes);
                Err(silent(
                    &self.config.url,
                    &why,
                    self.table.len(),
                    self.table.next_expiry_ms(now_ms),
                ))
            }
        };
        self.save();
        let _ = self.metrics.rules.set(self.table.len() as f64);
        verdict
    }
}

wasmbgp_sdk::export_healthcheck!(DdosFlowspec);

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Config, Error> {
        config(&Settings::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ))
    }

    const URL: (&str, &str) = ("url", "http://127.0.0.1:8080/attacks");

    #[test]
    fn settings_and_their_defaults() {
        let c = parse(&[URL]).unwrap();
        assert_eq!(c.url, "http://127.0.0.1:8080/attacks");
        assert_eq!(c.timeout, Duration::from_secs(2));
        assert_eq!(
            c.limits,
            Limits {
                max_rules: 100,
                ttl_ms: 300_000
            }
        );
        assert_eq!(c.defaults.mitigation, Mitigation::Discard);
        assert!(c.neighbors.is_empty() && c.server_name.is_none());

        let c = parse(&[
            ("url", "https://192.0.2.5/api/attacks"),
            ("tls-server-name", "detector.example.net"),
            ("ttl", "90s"),
            ("max-rules", "20"),
            ("default-action", "redirect"),
            ("redirect-target", "65001:999"),
            ("neighbors", "127.0.0.2, ::1"),
            ("timeout", "500ms"),
        ])
        .unwrap();
        assert_eq!(
            c.limits,
            Limits {
                max_rules: 20,
                ttl_ms: 90_000
            }
        );
        assert_eq!(
            c.defaults.mitigation,
            Mitigation::Redirect("65001:999".parse().unwrap())
        );
        assert_eq!(c.neighbors.len(), 2);
        assert_eq!(c.server_name.as_deref(), Some("detector.example.net"));
        let c = parse(&[URL, ("default-action", "rate-limit:9600")]).unwrap();
        assert_eq!(c.defaults.mitigation, Mitigation::RateLimit(9600.0));
    }

    #[test]
    fn settings_errors_name_the_setting() {
        for (pairs, needle) in [
            (vec![], "`url` is required"),
            (vec![("url", "ftp://x/")], "`url`"),
            (vec![URL, ("colour", "red")], "colour"),
            (vec![URL, ("tls-server-name", "x")], "https://"),
            (vec![URL, ("ttl", "soon")], "`ttl`"),
            (vec![URL, ("ttl", "0s")], "`ttl`"),
            (vec![URL, ("timeout", "11s")], "`timeout`"),
            (vec![URL, ("max-rules", "0")], "`max-rules`"),
            (vec![URL, ("max-rules", "5001")], "`max-rules`"),
            (vec![URL, ("max-rules", "many")], "`max-rules`"),
            (vec![URL, ("default-action", "drop")], "`default-action`"),
            (vec![URL, ("default-action", "redirect")], "redirect-target"),
            (vec![URL, ("redirect-target", "65001")], "`redirect-target`"),
            (vec![URL, ("neighbors", "127.0.0.2, nope")], "`neighbors`"),
        ] {
            let e = parse(&pairs).unwrap_err().to_string();
            assert!(e.contains(needle), "{pairs:?}: {e}");
        }
    }

    #[test]
    fn verdicts() {
        let outcome = Outcome {
            announced: 2,
            withdrawn: 1,
            over_cap: vec!["a9".into()],
            ..Outcome::default()
        };
        assert_eq!(
            answered(4, 1, &outcome, 2, 2).unwrap(),
            "detector listed 4 attacks: 2 rules in force (2 announced, 1 withdrawn); 1 over max-rules 2; 1 malformed"
        );
        assert_eq!(
            answered(0, 0, &Outcome::default(), 0, 10).unwrap(),
            "detector listed 0 attacks: 0 rules in force (0 announced, 0 withdrawn)"
        );
        let refused = Outcome {
            refused: vec!["a1: route limit exceeded: max-routes 1".into()],
            ..Outcome::default()
        };
        let e = answered(1, 0, &refused, 0, 10).unwrap_err().to_string();
        assert!(
            e.starts_with("the host refused 1 rule: a1: route limit exceeded"),
            "{e}"
        );
        assert_eq!(
            silent("http://x/", "timed out", 3, Some(250_000)).to_string(),
            "detector http://x/: timed out; keeping 3 rules until their TTL (the first in 4m10s)"
        );
        assert_eq!(
            silent("http://x/", "answered HTTP 500", 0, None).to_string(),
            "detector http://x/: answered HTTP 500; no rule in force"
        );
        let many: Vec<String> = (1..=7).map(|i| format!("a{i}")).collect();
        assert_eq!(quote(&many, ", "), "a1, a2, a3, a4, a5, and 2 more");
        assert_eq!(human(60_000), "1m");
        assert_eq!(human(1), "1s");
    }
}
