//! A private Prometheus server (Debian `prometheus`) for the observability
//! tests, and the tools around it: `promtool`, the shipped Grafana dashboard's
//! queries, and a `wasmbgp` started with `metrics = "ADDR:PORT"`.
//!
//! Prometheus runs in the foreground on loopback, on a free port, with its
//! own config and TSDB in the test's directory (the packaged service is never
//! used), and is killed on drop like every other daemon. It is asked over its
//! HTTP API (`/api/v1/...`) with a minimal HTTP/1.0 client on a
//! [`TcpStream`], bounded by timeouts.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::plugin_support::strip_ansi;
use crate::process::Daemon;
use crate::wait::{DEFAULT_TIMEOUT, wait_until};
use crate::wasmbgp::{Config, answers, ctl, read_log, spawn_checked, wait_started};
use crate::workspace_root;

/// The Prometheus server binary.
pub const PROMETHEUS: &str = "prometheus";
/// Its rule and config checker.
pub const PROMTOOL: &str = "promtool";

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0 by
/// the kernel, then released).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Runs `promtool ARGS` from `dir` and returns its output whatever the exit
/// status (the caller checks it, and prints the output on failure).
pub fn promtool(dir: &Path, args: &[&str]) -> Result<Output> {
    Command::new(PROMTOOL)
        .args(args)
        .current_dir(dir)
        .output()
        .with_context(|| format!("cannot run {PROMTOOL} {args:?} (Debian package prometheus)"))
}

/// `dist/` of the workspace.
pub fn dist_dir() -> PathBuf {
    workspace_root().join("dist")
}

/// A running Prometheus scraping one target.
#[derive(Debug)]
pub struct Prometheus {
    dir: PathBuf,
    addr: SocketAddr,
    daemon: Option<Daemon>,
}

impl Prometheus {
    /// Writes `prometheus.yml` into `dir` (job `wasmbgp` scraping `target`
    /// every `interval`, rules evaluated as often, `rule_files` loaded),
    /// checks it with `promtool check config`, starts Prometheus on a free
    /// loopback port with its TSDB in `dir/data`, and waits for `/-/ready`.
    /// A port taken between choosing and binding it is retried (3 times).
    pub fn start(dir: &Path, target: &str, interval: &str, rule_files: &[PathBuf]) -> Result<Self> {
        let mut config = String::new();
        let _ = writeln!(
            config,
            "global:\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\n  evaluation_interval: {interval}"
        );
        if !rule_files.is_empty() {
            config.push_str("rule_files:\n");
            for file in rule_files {
                let _ = writeln!(config, "  - {}", yaml_str(&file.display().to_string()));
            }
        }
        let _ = writeln!(
            config,
            "scrape_configs:\n  - job_name: wasmbgp\n    static_configs:\n      - targets: [{}]",
            yaml_str(target)
        );
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, &config)
            .with_context(|| format!("cannot write {}", config_path.display()))?;
        let check = promtool(dir, &["check", "config", "prometheus.yml"])?;
        ensure!(
            check.status.success(),
            "promtool check config failed ({}):\n{}{}\nconfig:\n{config}",
            check.status,
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let mut last_error = None;
        for attempt in 0..3 {
            match Self::spawn(dir, &config_path, attempt) {
                Ok(prometheus) => return Ok(prometheus),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.expect("three attempts were made"))
    }

    fn spawn(dir: &Path, config_path: &Path, attempt: u32) -> Result<Self> {
        let port = free_port()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let log = dir.join(format!("prometheus-{attempt}.log"));
        let mut cmd = Command::new(PROMETHEUS);
        cmd.arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join(format!("data-{attempt}")).display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=info")
            .current_dir(dir);
        let daemon = Daemon::spawn("prometheus", cmd, &log)?;
        let mut prometheus = Self {
            dir: dir.to_path_buf(),
            addr,
            daemon: Some(daemon),
        };
        let ready = wait_until("Prometheus to be ready", DEFAULT_TIMEOUT, || {
            if let Some(daemon) = prometheus.daemon.as_mut()
                && !daemon.is_running()
            {
                let status = daemon.wait_exit(Duration::from_secs(1));
                bail!("prometheus exited ({status:?})");
            }
            Ok(prometheus
                .get("/-/ready")
                .is_ok_and(|(status, _)| status == 200))
        });
        if let Err(error) = ready {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            bail!("{error:#}; prometheus log:\n{}", tail(&log, 30));
        }
        Ok(prometheus)
    }

    /// `http://127.0.0.1:PORT` of the web UI and API.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every log Prometheus wrote in this test.
    pub fn log(&self) -> String {
        let mut out = String::new();
        for attempt in 0..3 {
            if let Ok(text) =
                std::fs::read_to_string(self.dir.join(format!("prometheus-{attempt}.log")))
            {
                out.push_str(&text);
            }
        }
        out
    }

    /// Whether the server still runs (it must, for the whole test).
    pub fn is_running(&mut self) -> bool {
        self.daemon.as_mut().is_some_and(Daemon::is_running)
    }

    /// `GET path` (path and query, already encoded): `(status, body)`.
    pub fn get(&self, path: &str) -> Result<(u16, String)> {
        http_get(self.addr, path)
    }

    /// `GET /api/v1/...`: the `data` of a `"status": "success"` answer.
    pub fn api(&self, path_and_query: &str) -> Result<Value> {
        let (status, body) = self.get(&format!("/api/v1/{path_and_query}"))?;
        let json: Value = serde_json::from_str(&body).with_context(|| {
            format!("/api/v1/{path_and_query} answered {status} non-JSON: {body}")
        })?;
        if status != 200 || json["status"] != "success" {
            bail!(
                "/api/v1/{path_and_query} answered {status}: {} {}",
                json["errorType"].as_str().unwrap_or_default(),
                json["error"].as_str().unwrap_or(&body)
            );
        }
        Ok(json["data"].clone())
    }

    /// An instant query (now): the result vector's samples (each with
    /// `metric` and `value`). A query Prometheus refuses is an error.
    pub fn query(&self, expr: &str) -> Result<Vec<Value>> {
        let data = self.api(&format!("query?query={}", url_encode(expr)))?;
        ensure!(
            data["resultType"] == "vector" || data["resultType"] == "scalar",
            "query {expr} returned a {} ({data})",
            data["resultType"]
        );
        if data["resultType"] == "scalar" {
            return Ok(vec![
                serde_json::json!({"metric": {}, "value": data["result"]}),
            ]);
        }
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// The values of an instant query, with the labels of each sample.
    pub fn query_values(&self, expr: &str) -> Result<Vec<(Value, f64)>> {
        self.query(expr)?
            .into_iter()
            .map(|sample| {
                let value = sample["value"][1]
                    .as_str()
                    .with_context(|| format!("sample without value: {sample}"))?;
                let value: f64 = match value {
                    "NaN" => f64::NAN,
                    "+Inf" => f64::INFINITY,
                    "-Inf" => f64::NEG_INFINITY,
                    v => v.parse().with_context(|| format!("bad value {v}"))?,
                };
                Ok((sample["metric"].clone(), value))
            })
            .collect()
    }

    /// `(health, lastError)` of the scrape target of job `wasmbgp`.
    pub fn target_health(&self) -> Result<(String, String)> {
        let data = self.api("targets?state=active")?;
        let target = data["activeTargets"]
            .as_array()
            .and_then(|targets| {
                targets
                    .iter()
                    .find(|t| t["labels"]["job"].as_str() == Some("wasmbgp"))
            })
            .with_context(|| format!("no active target of job wasmbgp in {data}"))?;
        Ok((
            target["health"].as_str().unwrap_or_default().to_owned(),
            target["lastError"].as_str().unwrap_or_default().to_owned(),
        ))
    }

    /// Every loaded rule: `(group, name, health, lastError)`.
    pub fn rules(&self) -> Result<Vec<(String, String, String, String)>> {
        let data = self.api("rules")?;
        let mut out = Vec::new();
        for group in data["groups"].as_array().into_iter().flatten() {
            for rule in group["rules"].as_array().into_iter().flatten() {
                out.push((
                    group["name"].as_str().unwrap_or_default().to_owned(),
                    rule["name"].as_str().unwrap_or_default().to_owned(),
                    rule["health"].as_str().unwrap_or_default().to_owned(),
                    rule["lastError"].as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
        Ok(out)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            let _ = daemon.kill();
        }
    }
}

/// A YAML double-quoted string.
fn yaml_str(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// `GET path` over HTTP/1.0 (the server closes the connection after the
/// body): `(status, body)`. Connect, read and write are bounded by 5 s each.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )
    .with_context(|| format!("cannot send GET {path} to {addr}"))?;
    let mut raw = Vec::new();
    // Bounded: at most 64 MiB, each read at most 5 s.
    stream
        .take(64 << 20)
        .read_to_end(&mut raw)
        .with_context(|| format!("cannot read the answer to GET {path} from {addr}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("GET {path} from {addr}: no HTTP header in {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("GET {path} from {addr}: bad status line in {head:?}"))?;
    ensure!(
        !head.lines().any(|l| l
            .to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")),
        "GET {path} from {addr}: chunked answer to an HTTP/1.0 request"
    );
    Ok((status, body.to_owned()))
}

/// `GET /metrics` of a wasmbgp serving it on `metrics`: the exposition (status 200
/// required).
pub fn scrape(metrics: SocketAddr) -> Result<String> {
    let (status, body) = http_get(metrics, "/metrics")?;
    ensure!(status == 200, "GET /metrics answered {status}: {body}");
    Ok(body)
}

// ---------------------------------------------------------------------------
// The Grafana dashboard's queries.

/// One query of a dashboard panel.
#[derive(Debug, Clone)]
pub struct PanelQuery {
    /// The panel's title.
    pub panel: String,
    /// The target's `refId`.
    pub ref_id: String,
    /// The PromQL as written in the dashboard.
    pub expr: String,
}

/// Every `expr` of every panel (rows' nested panels included) of a Grafana
/// dashboard JSON.
pub fn dashboard_queries(dashboard: &Value) -> Vec<PanelQuery> {
    fn walk(panels: &Value, out: &mut Vec<PanelQuery>) {
        for panel in panels.as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push(PanelQuery {
                        panel: panel["title"].as_str().unwrap_or_default().to_owned(),
                        ref_id: target["refId"].as_str().unwrap_or_default().to_owned(),
                        expr: expr.to_owned(),
                    });
                }
            }
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// The names of the dashboard's template variables.
pub fn dashboard_variables(dashboard: &Value) -> Vec<String> {
    dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str().map(str::to_owned))
        .collect()
}

/// `expr` with Grafana's variables replaced by concrete values: each
/// `$name` / `${name}` of `values` (longest names first, so that `$__interval`
/// never eats `$__interval_ms`). Fails if a `$` is left.
pub fn substitute(expr: &str, values: &[(&str, &str)]) -> Result<String> {
    let mut sorted = values.to_vec();
    sorted.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    let mut out = expr.to_owned();
    for (name, value) in sorted {
        out = out.replace(&format!("${{{name}}}"), value);
        out = out.replace(&format!("${name}"), value);
    }
    ensure!(
        !out.contains('$'),
        "unknown Grafana variable left in {out:?} (from {expr:?})"
    );
    Ok(out)
}

// ---------------------------------------------------------------------------
// wasmbgp with its metrics endpoint.

/// `wasmbgp run` of `config` with `metrics = "ADDR"` and `extra` TOML (such
/// as `[[plugin]]` blocks) appended; killed on drop.
#[derive(Debug)]
pub struct MetricsSpeaker {
    dir: PathBuf,
    socket: PathBuf,
    metrics: SocketAddr,
    daemon: Daemon,
}

impl MetricsSpeaker {
    /// Writes the config into `dir`, runs `wasmbgp check`, starts
    /// `wasmbgp run`, and waits for the control socket and for `/metrics`.
    pub fn start(dir: &Path, config: &Config, metrics: SocketAddr, extra: &str) -> Result<Self> {
        let socket = dir.join("wasmbgp.sock");
        let text = config.render_with_metrics(&socket, metrics) + extra;
        let (_, mut daemon) = spawn_checked(dir, &text, &[], "info")?;
        wait_started(
            &mut daemon,
            "wasmbgp control socket and /metrics to answer",
            || Ok(answers(&socket) && scrape(metrics).is_ok()),
        )
        .with_context(|| {
            format!(
                "wasmbgp did not start; log:\n{}",
                tail(&strip_ansi(&read_log(dir)), 40)
            )
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            socket,
            metrics,
            daemon,
        })
    }

    /// `wasmbgp ctl --socket SOCK ARGS...`.
    pub fn ctl(&self, args: &[&str]) -> Result<String> {
        ctl(&self.socket, args)
    }

    /// `GET /metrics`: the exposition (status 200 required).
    pub fn scrape(&self) -> Result<String> {
        scrape(self.metrics)
    }

    /// `(state, established-count)` of neighbor `address`.
    pub fn session(&self, address: &str) -> Result<(String, u64)> {
        let out = self.ctl(&["show", "neighbors", "--json"])?;
        let json: Value = serde_json::from_str(&out).context("show neighbors --json")?;
        let entry = json
            .as_array()
            .into_iter()
            .flatten()
            .find(|n| n["address"].as_str() == Some(address))
            .with_context(|| format!("no neighbor {address} in {json}"))?;
        Ok((
            entry["state"].as_str().unwrap_or_default().to_owned(),
            entry["established-count"].as_u64().unwrap_or_default(),
        ))
    }

    /// `show plugins --json`: the `health` and `state` of plugin `name`.
    pub fn plugin_state(&self, name: &str) -> Result<(String, Option<String>)> {
        let out = self.ctl(&["show", "plugins", "--json"])?;
        let json: Value = serde_json::from_str(&out).context("show plugins --json")?;
        let entry = json
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"].as_str() == Some(name))
            .with_context(|| format!("no plugin {name} in {json}"))?;
        Ok((
            entry["state"].as_str().unwrap_or_default().to_owned(),
            entry["health"].as_str().map(str::to_owned),
        ))
    }

    /// The daemon's log so far (colours stripped).
    pub fn log(&self) -> String {
        strip_ansi(&read_log(&self.dir))
    }
}

impl Drop for MetricsSpeaker {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::{substitute, url_encode};

    #[test]
    fn substitutes_grafana_variables() {
        let values = [
            ("__rate_interval", "1m"),
            ("__interval", "15s"),
            ("job", ".*"),
        ];
        assert_eq!(
            substitute(
                "rate(x{job=~\"$job\"}[$__rate_interval]) + y[${__interval}]",
                &values
            )
            .unwrap(),
            "rate(x{job=~\".*\"}[1m]) + y[15s]"
        );
        assert!(substitute("x{a=\"$unknown\"}", &values).is_err());
    }

    #[test]
    fn encodes_queries() {
        assert_eq!(
            url_encode("up{a=~\".*\"} [1m]"),
            "up%7Ba%3D~%22.%2A%22%7D%20%5B1m%5D"
        );
    }
}
