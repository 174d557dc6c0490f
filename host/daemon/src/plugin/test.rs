//! `wasmbgp plugin test`: a component run as the daemon runs it, without BGP.
//!
//! The flags become a `[[plugin]]` table read by the daemon's own config loader, so
//! settings and grants are checked exactly as in a config, and the plugin is started by
//! the same runtime: the same host interfaces, grants, memory cap and deadline. What
//! differs is only where its inputs come from (a route file, an event file) and that
//! its decisions are printed instead of acted on.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use toml_edit::{Array, DocumentMut, Item, Table, value};
use wasmbgp_bgp::packet::attributes::PathAttributes;
use wasmbgp_bgp::rib::Interner;
use wasmbgp_runtime::export::PluginChange;
use wasmbgp_runtime::{
    Direction, EventSender, MetricValue, PluginEvent, PluginHandle, PluginSpec, PolicySession,
    Runtime, Verdict, World,
};

use super::WorldArg;
use crate::config::{self, Config};
use crate::ctl::json::RouteRow;

/// Grant keys whose value is a list: each `--grant KEY=VALUE` adds one entry.
const LIST_GRANTS: &[&str] = &[
    "tcp",
    "dns",
    "http",
    "neighbors",
    "files",
    "http-out",
    "tcp-out",
    "append-files",
];
/// Grant keys whose value is a number.
const NUMBER_GRANTS: &[&str] = &["max-routes", "max-series"];

/// `wasmbgp plugin test`.
#[derive(Args)]
pub struct TestArgs {
    /// The component (`.wasm`).
    pub component: PathBuf,
    /// Its world.
    #[arg(long, value_enum)]
    pub world: WorldArg,
    /// A setting, as in the `[[plugin]]` table's `settings` (repeat for more).
    #[arg(long = "setting", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    /// A grant, as in the `[[plugin]]` table's `grants`: `tcp=127.0.0.1:80`,
    /// `http=https://example.com/`, `files=data.txt`, `memory=32MiB`, `deadline=50ms`...
    /// List grants take the key once per entry.
    #[arg(long = "grant", value_name = "KEY=VALUE")]
    pub grants: Vec<String>,
    /// Health check: how many checks to run.
    #[arg(long, default_value_t = 3)]
    pub checks: u32,
    /// Health check: time between checks.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Health check: fail (exit 1) unless every check answers this.
    #[arg(long, value_enum)]
    pub expect: Option<Expect>,
    /// Policy: the routes to judge, one per line in ExaBGP's route words as a
    /// `[[route-file]]` holds them (`10.0.0.0/24 next-hop 192.0.2.1 as-path [ 65001 ]`).
    #[arg(long)]
    pub routes: Option<PathBuf>,
    /// Policy: which way the routes go.
    #[arg(long, value_enum, default_value_t = DirectionArg::Import)]
    pub direction: DirectionArg,
    /// Policy and exporter: the neighbor of the session (events files set their own).
    #[arg(long, default_value = "127.0.0.2")]
    pub neighbor: IpAddr,
    /// Policy: the neighbor's AS.
    #[arg(long, default_value_t = 65001)]
    pub peer_as: u32,
    /// Policy: our AS.
    #[arg(long, default_value_t = 65000)]
    pub local_as: u32,
    /// Exporter: the events to deliver, one per line (see `wasmbgp plugin test --help`
    /// and docs/plugins.md: `neighbor`, `state`, `received announce ...`).
    #[arg(long)]
    pub events: Option<PathBuf>,
}

/// What a health check is expected to answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Expect {
    /// Every check passes.
    Up,
    /// Every check fails.
    Down,
}

/// A policy's direction on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DirectionArg {
    /// Received from the neighbor.
    Import,
    /// About to be sent to the neighbor.
    Export,
}

/// Runs `plugin test`.
pub fn run(args: TestArgs, cache_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let world = World::from(args.world);
    // Inputs first: a typo in a file name is not the plugin's fault.
    let input = match world {
        World::Healthcheck => Input::Checks,
        World::Policy => {
            let path = args
                .routes
                .as_ref()
                .context("a policy needs --routes FILE")?;
            Input::Routes(read_routes(path)?)
        }
        World::Exporter => {
            let path = args
                .events
                .as_ref()
                .context("an exporter needs --events FILE")?;
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let events = super::events_file::parse(&text)
                .map_err(|(line, e)| anyhow::anyhow!("{}:{line}: {e}", path.display()))?;
            Input::Events(events)
        }
    };
    let runtime = super::runtime(cache_dir)?;
    let mut spec = match plugin_spec(&args, &runtime)? {
        Ok(spec) => spec,
        Err(refused) => {
            println!("{refused}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if world == World::Healthcheck {
        // Every answer is reported, not only transitions.
        spec.rise = 1;
        spec.fall = 1;
        spec.interval = args.interval;
        spec.fast_interval = args.interval;
    }
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let outcome = tokio.block_on(async {
        let (events, mut rx) = EventSender::channel();
        let handle = runtime.start(spec, events)?;
        let mut out = Output::new();
        let result = match input {
            Input::Checks => checks(&args, &handle, &mut rx, &mut out).await,
            Input::Routes(routes) => policy(&args, &handle, &routes, &mut rx, &mut out).await,
            Input::Events(events) => exporter(&handle, events, &mut rx, &mut out).await,
        };
        // What the plugin reported on the way (a denied probe, an announce) is printed
        // in order before the summary.
        while let Ok(event) = rx.try_recv() {
            out.event(&event);
        }
        print_metrics(&handle, &mut out);
        let status = handle.status();
        out.note(&format!(
            "{} calls, p50 {} µs, p99 {} µs; {} denied by grants",
            status.calls, status.p50_us, status.p99_us, status.denied
        ));
        handle.stop().await;
        out.flush();
        result.map(|ok| ok && !out.failed)
    });
    Ok(if outcome? {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

enum Input {
    Checks,
    Routes(config::Routes),
    Events(Vec<wasmbgp_runtime::export::ExportEvent>),
}

/// The route file: the daemon's `[[route-file]]` reader, so what passes here passes there.
fn read_routes(path: &Path) -> anyhow::Result<config::Routes> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    config::parse_route_lines(&text, &PathAttributes::default(), &mut Interner::new())
        .map_err(|(line, e)| anyhow::anyhow!("{}:{line}: {e}", path.display()))
}

/// The spec the flags describe, read by the config loader and checked by the runtime
/// (`init` included); `Err` is the refusal to print.
fn plugin_spec(args: &TestArgs, runtime: &Runtime) -> anyhow::Result<Result<PluginSpec, String>> {
    let component = std::path::absolute(&args.component)?;
    let name = component
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("plugin")
        .to_string();
    let mut doc = DocumentMut::new();
    doc["router-id"] = value("192.0.2.255");
    doc["local-as"] = value(i64::from(args.local_as));
    let mut plugin = Table::new();
    plugin["name"] = value(&name);
    plugin["world"] = value(World::from(args.world).name());
    plugin["component"] = value(component.to_string_lossy().as_ref());
    let mut settings = Table::new();
    for kv in &args.settings {
        let (k, v) = split_kv(kv, "--setting")?;
        settings[k] = value(v);
    }
    plugin["settings"] = Item::Table(settings);
    let mut grants = Table::new();
    let mut neighbors = Vec::new();
    for kv in &args.grants {
        let (k, v) = split_kv(kv, "--grant")?;
        if LIST_GRANTS.contains(&k) {
            let entry = grants.entry(k).or_insert_with(|| value(Array::new()));
            if let Some(list) = entry.as_array_mut() {
                list.push(v);
            }
            if k == "neighbors" {
                neighbors.push(v.to_string());
            }
        } else if NUMBER_GRANTS.contains(&k) {
            let n: i64 = v
                .parse()
                .with_context(|| format!("--grant {k}={v}: a number is expected"))?;
            grants[k] = value(n);
        } else {
            grants[k] = value(v);
        }
    }
    plugin["grants"] = Item::Table(grants);
    // A `neighbors` grant names configured neighbors.
    let mut neighbor_tables = toml_edit::ArrayOfTables::new();
    for address in neighbors {
        let mut t = Table::new();
        t["address"] = value(address);
        t["peer-as"] = value(i64::from(args.peer_as));
        neighbor_tables.push(t);
    }
    if !neighbor_tables.is_empty() {
        doc["neighbor"] = Item::ArrayOfTables(neighbor_tables);
    }
    let mut plugins = toml_edit::ArrayOfTables::new();
    plugins.push(plugin);
    doc["plugin"] = Item::ArrayOfTables(plugins);
    let text = doc.to_string();
    // Relative paths in grants resolve against the working directory, as written.
    let path = std::env::current_dir()?.join("plugin-test.toml");
    match Config::parse_with(&text, &path, &|spec| runtime.check_init(spec)) {
        Ok(mut config) => Ok(Ok(config.plugins.remove(0).spec)),
        Err(diagnostics) => {
            let mut refused = String::new();
            for d in &diagnostics.items {
                refused += &format!("FAIL refused: {}\n", d.message);
            }
            // A setting or grant the config loader refused is best seen in the table
            // the flags made (the plugin's own refusal of its settings speaks for itself).
            if diagnostics
                .items
                .iter()
                .any(|d| !d.message.contains("init refused"))
            {
                refused += "the flags as the [[plugin]] table the daemon would read:\n";
                for (i, line) in text.lines().enumerate() {
                    refused += &format!("{:>4} | {line}\n", i + 1);
                }
            }
            Ok(Err(refused.trim_end().to_string()))
        }
    }
}

fn split_kv<'a>(kv: &'a str, flag: &str) -> anyhow::Result<(&'a str, &'a str)> {
    match kv.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.trim(), v)),
        _ => bail!("{flag} {kv:?}: KEY=VALUE is expected"),
    }
}

/// Health check: `--checks` answers, each printed.
async fn checks(
    args: &TestArgs,
    handle: &PluginHandle,
    rx: &mut tokio::sync::mpsc::Receiver<PluginEvent>,
    out: &mut Output,
) -> anyhow::Result<bool> {
    let limit = args.interval * args.checks + Duration::from_secs(30);
    let started = Instant::now();
    let mut seen = 0u64;
    let mut ok = true;
    while seen < u64::from(args.checks) {
        if started.elapsed() > limit {
            out.fail(&format!(
                "only {seen} of {} checks answered in {limit:?}",
                args.checks
            ));
            return Ok(false);
        }
        if !next_event(rx, out).await {
            return Ok(false);
        }
        let status = handle.status();
        if status.checks > seen
            && let Some(check) = status.last_check
        {
            seen = status.checks;
            let word = if check.passed { "up" } else { "down" };
            out.line(&format!("check {seen}: {word}: {}", check.detail));
            if let Some(expect) = args.expect
                && (expect == Expect::Up) != check.passed
            {
                out.fail(&format!(
                    "check {seen} is {word}; expected {}",
                    if expect == Expect::Up { "up" } else { "down" }
                ));
                ok = false;
            }
        }
    }
    Ok(ok)
}

/// Policy: every route judged (in batches as the daemon makes them), one line each.
async fn policy(
    args: &TestArgs,
    handle: &PluginHandle,
    routes: &config::Routes,
    rx: &mut tokio::sync::mpsc::Receiver<PluginEvent>,
    out: &mut Output,
) -> anyhow::Result<bool> {
    let client = handle.policy().context("not a policy")?.clone();
    let direction = match args.direction {
        DirectionArg::Import => Direction::Import,
        DirectionArg::Export => Direction::Export,
    };
    let session = PolicySession {
        neighbor: args.neighbor,
        peer_as: args.peer_as,
        local_as: args.local_as,
    };
    let refs: Vec<(wasmbgp_bgp::Prefix, &PathAttributes)> = routes
        .iter()
        .map(|(p, a)| (p.clone(), a.as_ref()))
        .collect();
    let verdicts = match client.evaluate(direction, session, &refs).await {
        Ok(v) => v,
        Err(e) => {
            while let Ok(event) = rx.try_recv() {
                out.event(&event);
            }
            out.fail(&format!("the policy could not judge the routes: {e}"));
            return Ok(false);
        }
    };
    let mut counts = [0usize; 3];
    for (i, (prefix, attrs)) in routes.iter().enumerate() {
        let (kind, word, attrs) = match verdicts.get(i) {
            Verdict::Accept => (0, "accept", attrs),
            Verdict::Reject => (1, "reject", attrs),
            Verdict::Replace(new) => (2, "modify", new),
        };
        counts[kind] += 1;
        let row = RouteRow::new(args.neighbor, prefix.clone(), attrs, None);
        out.line(&format!("{word} {}", row.route_text()));
    }
    out.note(&format!(
        "{} routes: {} accepted, {} rejected, {} modified",
        routes.len(),
        counts[0],
        counts[1],
        counts[2]
    ));
    Ok(true)
}

/// Exporter: the events delivered as the daemon delivers them (after the snapshot the
/// exporter asks for when it starts, here an empty one).
async fn exporter(
    handle: &PluginHandle,
    events: Vec<wasmbgp_runtime::export::ExportEvent>,
    rx: &mut tokio::sync::mpsc::Receiver<PluginEvent>,
    out: &mut Output,
) -> anyhow::Result<bool> {
    let client = handle.exporter().context("not an exporter")?.clone();
    let limit = Duration::from_secs(60);
    let started = Instant::now();
    // The exporter starts by asking for a snapshot of the sessions.
    loop {
        let event = tokio::time::timeout(limit, rx.recv())
            .await
            .context("the exporter did not start")?;
        match event {
            Some(PluginEvent::SnapshotWanted { .. }) => break,
            Some(PluginEvent::Failed { error, .. }) => {
                out.fail(&format!("fault: {error}"));
                return Ok(false);
            }
            Some(event) => out.event(&event),
            None => return Ok(false),
        }
    }
    client.snapshot(Vec::new());
    let batch: Vec<_> = events.into_iter().map(Arc::new).collect();
    let weight: u64 = batch.iter().map(|e| e.weight()).sum();
    let count = batch.len();
    if !client.deliver(batch) {
        out.fail("the exporter's queue refused the events");
        return Ok(false);
    }
    // Delivered once the exporter has taken them all (or dropped them at a fault).
    loop {
        let status = handle.status();
        if status.events_delivered >= weight || status.events_dropped > 0 {
            if status.events_dropped > 0 {
                while let Ok(event) = rx.try_recv() {
                    out.event(&event);
                }
                out.fail(&format!(
                    "{} of {weight} events dropped: {}",
                    status.events_dropped,
                    status.last_error.unwrap_or_default()
                ));
                return Ok(false);
            }
            out.line(&format!(
                "delivered {count} events ({weight} counting each route) in {} calls, the snapshot's included",
                status.calls.saturating_sub(1)
            ));
            return Ok(true);
        }
        if started.elapsed() > limit {
            out.fail(&format!("events not delivered in {limit:?}"));
            return Ok(false);
        }
        if !next_event(rx, out).await {
            return Ok(false);
        }
    }
}

/// Waits up to 2 ms for what the plugin tells the host, printing it; false once it
/// faulted (or its events stopped).
async fn next_event(rx: &mut tokio::sync::mpsc::Receiver<PluginEvent>, out: &mut Output) -> bool {
    tokio::select! {
        event = rx.recv() => match event {
            Some(PluginEvent::Failed { error, .. }) => {
                out.fail(&format!("fault: {error}"));
                false
            }
            Some(event) => {
                out.event(&event);
                true
            }
            None => false,
        },
        () = tokio::time::sleep(Duration::from_millis(2)) => true,
    }
}

/// The plugin's own metrics, one line per series.
fn print_metrics(handle: &PluginHandle, out: &mut Output) {
    for metric in handle.status_source().metrics() {
        for (labels, v) in &metric.series {
            let labels: Vec<String> = metric
                .label_names
                .iter()
                .zip(labels)
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect();
            let labels = if labels.is_empty() {
                String::new()
            } else {
                format!("{{{}}}", labels.join(","))
            };
            match v {
                MetricValue::Number(n) => {
                    out.line(&format!("metric {}{labels} {n}", metric.name));
                }
                MetricValue::Histogram { sum, count, .. } => {
                    out.line(&format!(
                        "metric {}{labels} count {count} sum {sum}",
                        metric.name
                    ));
                }
            }
        }
    }
}

/// Standard output (buffered: a policy prints a line per route), and a verdict.
struct Output {
    stdout: std::io::BufWriter<std::io::Stdout>,
    failed: bool,
}

impl Output {
    fn new() -> Self {
        Output {
            stdout: std::io::BufWriter::new(std::io::stdout()),
            failed: false,
        }
    }

    fn line(&mut self, text: &str) {
        let _ = writeln!(self.stdout, "{text}");
    }

    /// A summary line, on standard error (standard output stays one line per decision).
    fn note(&mut self, text: &str) {
        self.flush();
        eprintln!("plugin test: {text}");
    }

    fn fail(&mut self, text: &str) {
        self.failed = true;
        self.line(&format!("FAIL {text}"));
    }

    /// What the plugin asked of the host on the way.
    fn event(&mut self, event: &PluginEvent) {
        match event {
            PluginEvent::Announce { route, .. } => {
                let row = RouteRow::new(
                    std::net::Ipv4Addr::UNSPECIFIED.into(),
                    route.prefix.clone(),
                    &Arc::new(route.attrs.clone()),
                    None,
                );
                self.line(&format!("announce {}", row.route_text()));
            }
            PluginEvent::Withdraw { prefix, .. } => self.line(&format!("withdraw {prefix}")),
            PluginEvent::Lifecycle {
                change: PluginChange::Denied,
                detail,
                ..
            } => self.line(&format!("denied: {detail}")),
            PluginEvent::Failed { error, .. } => self.fail(&format!("fault: {error}")),
            // Transitions after hysteresis: the checks themselves are printed.
            PluginEvent::Health { .. }
            | PluginEvent::Lifecycle { .. }
            | PluginEvent::PolicyChanged { .. }
            | PluginEvent::SnapshotWanted { .. } => {}
        }
    }

    fn flush(&mut self) {
        let _ = self.stdout.flush();
    }
}
