//! The shipped observability files (`dist/`) against the real thing: a
//! private Prometheus (Debian `prometheus`) scrapes a wasmbgp peering with
//! BIRD 2 and running a health check and an export policy; every query of
//! the Grafana dashboard must answer, and the alert rules load and evaluate
//! there. `promtool` checks and unit-tests the alert rules without daemons.
//!
//! Block 233 (`plugin_support::PluginBlock`): BIRD on `127.0.233.2`, wasmbgp
//! on `127.0.233.1`, the health-checked service on `127.0.233.10`; wasmbgp's
//! `/metrics` and Prometheus on free ports of 127.0.0.1.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use wasmbgp_e2e::peers::bird::{Bird, PROTOCOL};
use wasmbgp_e2e::peers::prometheus::{
    MetricsSpeaker, Prometheus, dashboard_queries, dashboard_variables, dist_dir, free_port,
    promtool, substitute, tail,
};
use wasmbgp_e2e::peers::{Peer, PeerSpec, Remote};
use wasmbgp_e2e::plugin_support::{
    BIRD_AS, Plugin, PluginBlock, PluginSpeaker, TcpService, WASMBGP_AS, component, wait_fast,
};
use wasmbgp_e2e::policy_support::PolicyPlugin;
use wasmbgp_e2e::route::Route;
use wasmbgp_e2e::step;
use wasmbgp_e2e::wasmbgp::RouteAttrs;
use wasmbgp_e2e::workdir::WorkDir;

const TEST: &str = "observability-prometheus";
const BLOCK: PluginBlock = PluginBlock(233);
const POLL: Duration = Duration::from_millis(100);

/// The values the dashboard's variables take in the test: every job,
/// instance, neighbor and plugin; Grafana's intervals for a 1 s scrape.
const VARIABLES: [(&str, &str); 9] = [
    ("DS_PROMETHEUS", "prometheus"),
    ("job", ".*"),
    ("instance", ".*"),
    ("neighbor", ".*"),
    ("plugin", ".*"),
    ("__rate_interval", "1m"),
    ("__interval", "15s"),
    ("__range", "5m"),
    ("__interval_ms", "15000"),
];

fn dashboard() -> Result<Value> {
    let path = dist_dir().join("grafana/wasmbgp-dashboard.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

// ---------------------------------------------------------------------------
// Without daemons.

/// `promtool check rules` and `promtool test rules` accept the shipped rules
/// and their unit tests (each alert fires in its scenario, the healthy series
/// do not).
#[test]
fn promtool_checks_and_tests_the_alert_rules() {
    let dir = dist_dir().join("prometheus");
    for args in [
        ["check", "rules", "wasmbgp-alerts.yml"],
        ["test", "rules", "wasmbgp-alerts.test.yml"],
    ] {
        let output = promtool(&dir, &args).expect("promtool runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success(),
            "promtool {} failed ({}):\n{text}",
            args.join(" "),
            output.status
        );
        step(
            TEST,
            format!("promtool {}: {}", args.join(" "), text.trim()),
        );
    }
    // Every alert the rules promise is there and has a unit test.
    let rules = std::fs::read_to_string(dir.join("wasmbgp-alerts.yml")).expect("rules");
    let tests = std::fs::read_to_string(dir.join("wasmbgp-alerts.test.yml")).expect("tests");
    for alert in [
        "WasmbgpBGPSessionDown",
        "WasmbgpRouteCountDropped",
        "WasmbgpHighNotificationRate",
        "WasmbgpNoRouteAnnouncements",
        "WasmbgpPluginFailed",
        "WasmbgpPluginRestarting",
        "WasmbgpPluginDenied",
        "WasmbgpExporterDroppingEvents",
        "WasmbgpConfigReloadRefused",
    ] {
        assert!(
            rules.contains(&format!("- alert: {alert}\n")),
            "no alert {alert} in wasmbgp-alerts.yml"
        );
        assert!(
            tests.contains(&format!("alertname: {alert}\n")),
            "no unit test of {alert} in wasmbgp-alerts.test.yml"
        );
    }
}

/// The dashboard is a Grafana dashboard for a `${DS_PROMETHEUS}` data
/// source, every panel on it, and its queries use only its own variables.
#[test]
fn dashboard_is_self_contained() {
    let dashboard = dashboard().expect("dashboard");
    let schema = dashboard["schemaVersion"].as_u64().unwrap_or_default();
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");
    let variables = dashboard_variables(&dashboard);
    for name in ["DS_PROMETHEUS", "job", "instance", "neighbor", "plugin"] {
        assert!(
            variables.iter().any(|v| v == name),
            "no variable {name}: {variables:?}"
        );
    }
    let mut panels = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        if panel["type"] == "row" {
            continue;
        }
        panels += 1;
        assert_eq!(
            panel["datasource"]["uid"], "${DS_PROMETHEUS}",
            "panel {} does not use ${{DS_PROMETHEUS}}",
            panel["title"]
        );
        assert!(
            panel["targets"].as_array().is_some_and(|t| !t.is_empty()),
            "panel {} has no query",
            panel["title"]
        );
    }
    let queries = dashboard_queries(&dashboard);
    assert!(
        panels >= 10 && queries.len() >= panels,
        "{panels} panels, {} queries",
        queries.len()
    );
    let mut values: Vec<(&str, &str)> = VARIABLES.to_vec();
    values.retain(|(name, _)| name.starts_with("__") || variables.iter().any(|v| v == name));
    for query in &queries {
        substitute(&query.expr, &values)
            .unwrap_or_else(|e| panic!("panel {} {}: {e:#}", query.panel, query.ref_id));
    }
    // The metrics the dashboard is about are all on it.
    let all: String = queries
        .iter()
        .map(|q| q.expr.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for metric in [
        "wasmbgp_bgp_session_up",
        "wasmbgp_bgp_session_established_total",
        "wasmbgp_active_routes",
        "wasmbgp_prefixes_received",
        "wasmbgp_routes_received_total",
        "wasmbgp_routes_announced_total",
        "wasmbgp_routes_withdrawn_total",
        "wasmbgp_withdrawals_received_total",
        "wasmbgp_notifications_total",
        "wasmbgp_plugin_up",
        "wasmbgp_plugin_restarts_total",
        "wasmbgp_plugin_faults_total",
        "wasmbgp_plugin_denied_total",
        "wasmbgp_plugin_events_dropped_total",
        "wasmbgp_plugin_call_duration_seconds_bucket",
        "wasmbgp_policy_routes_total",
    ] {
        assert!(all.contains(metric), "no panel queries {metric}");
    }
}

// ---------------------------------------------------------------------------
// Against a real Prometheus.

/// The `wasmbgp_*` metric names in a PromQL expression.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("wasmbgp_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        names.insert(name);
    }
    names
}

/// Whether `exposition` (OpenMetrics text) has a sample of `name`.
fn served(exposition: &str, name: &str) -> bool {
    exposition.lines().filter(|l| !l.starts_with('#')).any(|l| {
        l.strip_prefix(name)
            .is_some_and(|r| r.starts_with(['{', ' ']))
    })
}

struct Daemons {
    speaker: MetricsSpeaker,
    bird: Bird,
    prometheus: Prometheus,
    service: TcpService,
}

impl Daemons {
    fn dump(&mut self) {
        eprintln!(
            "[{TEST}] --- BIRD log tail ---\n{}",
            tail(&self.bird.log().unwrap_or_default(), 30)
        );
        eprintln!(
            "[{TEST}] --- wasmbgp log tail ---\n{}",
            tail(&self.speaker.log(), 60)
        );
        eprintln!(
            "[{TEST}] --- prometheus (running: {}) log tail ---\n{}",
            self.prometheus.is_running(),
            tail(&self.prometheus.log(), 30)
        );
        match self.speaker.scrape() {
            Ok(text) => eprintln!("[{TEST}] --- wasmbgp /metrics ---\n{text}"),
            Err(e) => eprintln!("[{TEST}] --- wasmbgp /metrics: {e:#}"),
        }
    }
}

fn start(dir: &WorkDir) -> Result<Daemons> {
    let service_addr = BLOCK.sock(10, 2);
    let service = TcpService::start(&service_addr)?;
    let web = Plugin::tcp(
        "web",
        component("tcp-check")?,
        &service_addr,
        &BLOCK.vip(100),
        100,
    );
    let tagger = PolicyPlugin::new("tagger", "community-tagger")?
        .setting("prefixes", "100.10.0.0/16")
        .setting("communities", "65001:233");

    let mut bird = Bird::new(PeerSpec {
        dir: dir.subdir("bird")?,
        address: BLOCK.addr(2),
        port: BLOCK.port(0),
        asn: BIRD_AS,
        remote: Remote {
            address: BLOCK.addr(1),
            port: BLOCK.port(1),
            asn: WASMBGP_AS,
        },
        hold_time: 30,
        next_hop4: Ipv4Addr::new(192, 0, 2, 233),
        next_hop6: "2001:db8::e9".parse()?,
        originate: [
            "20.233.0.0/24",
            "20.233.1.0/24",
            "20.233.2.0/24",
            "2001:db8:e9::/48",
        ]
        .into_iter()
        .map(Route::new)
        .collect::<Result<_>>()?,
        api_port: BLOCK.port(2),
    });
    bird.start()?;

    let mut config =
        PluginSpeaker::base_config(BLOCK.addr(1), BLOCK.port(1), BLOCK.addr(2), BLOCK.port(0));
    config.neighbors[0].families = vec!["ipv4-unicast".to_owned(), "ipv6-unicast".to_owned()];
    config.neighbors[0].export_policy = vec!["tagger".to_owned()];
    config
        .routes
        .push((format!("100.10.{}.0/24", BLOCK.0), RouteAttrs::default()));
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let extra = web.render() + &tagger.render();
    // An exporter, so that the exporter series exist; a wasmbgp without the
    // exporter world yet runs without it (the exporter panel then fails).
    let events = dir.path().join("events.jsonl");
    let exporter = format!(
        "\n[[plugin]]\nname = \"events\"\nworld = \"exporter\"\ncomponent = \"{}\"\n\
         [plugin.settings]\npath = \"{}\"\n[plugin.grants]\nappend-files = [\"{}\"]\n",
        component("fixture-exporter")?.display(),
        events.display(),
        events.display()
    );
    let wasmbgp_dir = dir.subdir("wasmbgp")?;
    let speaker =
        match MetricsSpeaker::start(&wasmbgp_dir, &config, metrics, &(extra.clone() + &exporter)) {
            Ok(speaker) => speaker,
            Err(e) => {
                step(
                    TEST,
                    format!("wasmbgp refused the exporter, running without it: {e:#}"),
                );
                MetricsSpeaker::start(&wasmbgp_dir, &config, metrics, &extra)?
            }
        };
    step(TEST, format!("wasmbgp serves /metrics on {metrics}"));

    let prometheus = Prometheus::start(
        &dir.subdir("prometheus")?,
        &metrics.to_string(),
        "1s",
        &[dist_dir().join("prometheus/wasmbgp-alerts.yml")],
    )?;
    step(TEST, format!("prometheus on {}", prometheus.addr()));
    Ok(Daemons {
        speaker,
        bird,
        prometheus,
        service,
    })
}

/// Makes wasmbgp produce every series the dashboard shows: routes announced
/// and withdrawn both ways, a health check going down and up, a plugin
/// reload, and a NOTIFICATION (BIRD restarting the session).
fn exercise(d: &mut Daemons) -> Result<()> {
    let neighbor = BLOCK.addr(2).to_string();
    d.bird.wait_established(Duration::from_secs(30))?;
    wait_fast(
        "wasmbgp session Established",
        POLL,
        Duration::from_secs(30),
        || Ok(d.speaker.session(&neighbor)?.0 == "established"),
    )?;
    wait_fast("the health check up", POLL, Duration::from_secs(20), || {
        Ok(d.speaker.plugin_state("web")?.1.as_deref() == Some("up"))
    })?;
    step(TEST, "session up, health check up");

    // Routes through ctl.
    let ctl_route = format!("100.10.{}.50/32", BLOCK.0);
    d.speaker
        .ctl_line_checked(&format!("announce route {ctl_route} next-hop self"))?;
    wait_fast(
        "the ctl route at BIRD",
        POLL,
        Duration::from_secs(10),
        || Ok(d.bird.received_route(&ctl_route)?.is_some()),
    )?;
    d.speaker
        .ctl_line_checked(&format!("withdraw route {ctl_route}"))?;
    wait_fast(
        "the ctl route gone from BIRD",
        POLL,
        Duration::from_secs(10),
        || Ok(d.bird.received_route(&ctl_route)?.is_none()),
    )?;
    step(TEST, "ctl route announced and withdrawn");

    // BIRD withdraws its IPv4 routes and announces them again.
    d.bird.birdc(&["disable", "originate_ipv4"])?;
    wait_fast(
        "BIRD's routes withdrawn",
        POLL,
        Duration::from_secs(10),
        || Ok(d.speaker.prefixes_received(&neighbor)? <= 1),
    )?;
    d.bird.birdc(&["enable", "originate_ipv4"])?;
    wait_fast("BIRD's routes back", POLL, Duration::from_secs(10), || {
        Ok(d.speaker.prefixes_received(&neighbor)? == 4)
    })?;
    step(TEST, "BIRD withdrew and re-announced its routes");

    // The health check goes down and up: the VIP is withdrawn and returns.
    d.service.stop();
    wait_fast(
        "the health check down",
        POLL,
        Duration::from_secs(15),
        || Ok(d.speaker.plugin_state("web")?.1.as_deref() == Some("down")),
    )?;
    d.service.restart()?;
    wait_fast(
        "the health check up again",
        POLL,
        Duration::from_secs(15),
        || Ok(d.speaker.plugin_state("web")?.1.as_deref() == Some("up")),
    )?;
    step(TEST, "health check went down and up");

    let reply = d.speaker.ctl(&["plugin", "reload", "web"])?;
    step(TEST, format!("plugin reload web: {}", reply.trim()));

    // A NOTIFICATION: BIRD resets the session (Cease), both sides come back.
    let (_, before) = d.speaker.session(&neighbor)?;
    d.bird.birdc(&["restart", PROTOCOL])?;
    wait_fast(
        "the session re-established",
        POLL,
        Duration::from_secs(30),
        || {
            let (state, count) = d.speaker.session(&neighbor)?;
            Ok(state == "established" && count > before)
        },
    )?;
    d.bird.wait_established(Duration::from_secs(30))?;
    step(TEST, "BIRD restarted the session (NOTIFICATION received)");
    Ok(())
}

/// Prometheus scrapes wasmbgp every second; the session-up query answers 1
/// for BIRD; every query of the shipped Grafana dashboard returns a
/// non-empty result; the shipped alert rules load and evaluate without error.
#[test]
fn prometheus_scrapes_wasmbgp_and_the_dashboard_answers() {
    let dir = WorkDir::new(TEST).expect("work dir");
    let mut daemons = match start(&dir) {
        Ok(d) => d,
        Err(e) => panic!("[{TEST}] cannot start the daemons: {e:#}"),
    };
    if let Err(e) = check(&mut daemons) {
        daemons.dump();
        panic!("[{TEST}] {e:#}");
    }
}

fn check(d: &mut Daemons) -> Result<()> {
    let neighbor = BLOCK.addr(2).to_string();
    wait_fast(
        "Prometheus to scrape wasmbgp",
        POLL,
        Duration::from_secs(20),
        || Ok(d.prometheus.target_health()?.0 == "up"),
    )
    .with_context(|| format!("target: {:?}", d.prometheus.target_health()))?;
    step(TEST, "Prometheus scrapes wasmbgp");

    exercise(d)?;

    // (a) the session is up, as Prometheus sees it.
    let session_up = format!("wasmbgp_bgp_session_up{{job=\"wasmbgp\", neighbor=\"{neighbor}\"}}");
    wait_fast(
        "Prometheus to see the session up",
        POLL,
        Duration::from_secs(20),
        || {
            let values = d.prometheus.query_values(&session_up)?;
            Ok(values.len() == 1 && values[0].1 == 1.0)
        },
    )
    .with_context(|| {
        format!(
            "{session_up} = {:?}",
            d.prometheus.query_values(&session_up)
        )
    })?;
    step(TEST, format!("{session_up} = 1"));

    // (b) every dashboard query answers. Series born during the scenario need
    // two scrapes inside the rate window: poll for a bounded while.
    let dashboard = dashboard()?;
    let variables = dashboard_variables(&dashboard);
    let mut values: Vec<(&str, &str)> = VARIABLES.to_vec();
    values.retain(|(name, _)| name.starts_with("__") || variables.iter().any(|v| v == name));
    let queries = dashboard_queries(&dashboard);
    ensure!(!queries.is_empty(), "the dashboard has no query");
    let started = Instant::now();
    let failing = loop {
        let mut failing = Vec::new();
        for query in &queries {
            let expr = substitute(&query.expr, &values)?;
            match d.prometheus.query(&expr) {
                Ok(result) if !result.is_empty() => {}
                Ok(_) => failing.push((query, expr, "empty result".to_owned())),
                Err(e) => failing.push((query, expr, format!("{e:#}"))),
            }
        }
        if failing.is_empty() || started.elapsed() > Duration::from_secs(15) {
            break failing;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    step(
        TEST,
        format!(
            "{} of {} dashboard queries answer",
            queries.len() - failing.len(),
            queries.len()
        ),
    );

    // The shipped rules loaded into this Prometheus and evaluate cleanly.
    let rules_ok = wait_fast(
        "every rule evaluated",
        POLL,
        Duration::from_secs(15),
        || {
            let rules = d.prometheus.rules()?;
            Ok(rules.len() == 9 && rules.iter().all(|(_, _, health, _)| health == "ok"))
        },
    );
    let rules = d.prometheus.rules()?;
    ensure!(
        d.prometheus.is_running(),
        "prometheus exited; log:\n{}",
        tail(&d.prometheus.log(), 30)
    );

    let mut problems = Vec::new();
    if let Err(e) = rules_ok {
        problems.push(format!("alert rules not all healthy ({e:#}): {rules:?}"));
    }
    if !failing.is_empty() {
        let exposition = d.speaker.scrape()?;
        let mut report = String::new();
        for (query, expr, why) in &failing {
            let missing: Vec<String> = metric_names(expr)
                .into_iter()
                .filter(|name| !served(&exposition, name))
                .collect();
            report.push_str(&format!(
                "\n  - panel {:?} {}: {why}; not served by wasmbgp: {missing:?}\n      {expr}",
                query.panel, query.ref_id
            ));
        }
        problems.push(format!(
            "{} of {} dashboard queries return nothing:{report}",
            failing.len(),
            queries.len()
        ));
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    step(
        TEST,
        format!("{} alert rules loaded, all healthy", rules.len()),
    );
    Ok(())
}

/// Small helpers on the speaker for this test.
trait SpeakerExt {
    fn ctl_line_checked(&self, line: &str) -> Result<()>;
    fn prefixes_received(&self, neighbor: &str) -> Result<u64>;
}

impl SpeakerExt for MetricsSpeaker {
    fn ctl_line_checked(&self, line: &str) -> Result<()> {
        let args: Vec<&str> = line.split_whitespace().collect();
        let out = self.ctl(&args)?;
        ensure!(
            !out.trim_start().starts_with("error"),
            "`wasmbgp ctl {line}` answered {out}"
        );
        Ok(())
    }

    fn prefixes_received(&self, neighbor: &str) -> Result<u64> {
        let out = self.ctl(&["show", "neighbors", "--json"])?;
        let json: Value = serde_json::from_str(&out)?;
        json.as_array()
            .into_iter()
            .flatten()
            .find(|n| n["address"].as_str() == Some(neighbor))
            .and_then(|n| n["prefixes-received"].as_u64())
            .with_context(|| format!("no prefixes-received for {neighbor} in {json}"))
    }
}
