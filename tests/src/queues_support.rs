//! Support for the queue-bound test (`tests/hardening_queues.rs`): a wasmbgp with one
//! neighbor (the [`GrBird`](crate::graceful_support::GrBird) of a [`LimitBlock`]) and
//! `[[plugin]]` blocks, owned with its [`Daemon`] so that the test can read its memory
//! in `/proc`; a control connection held open and spoken directly (JSON lines), that
//! times each answer; `VmRSS`; and the summaries the test reports.
//!
//! Addresses: block `N` ([`LimitBlock`]) as in the other hardening tests, BIRD on `.2`
//! port 0, wasmbgp on `.1` port 1.
//!
//! Every query is strict: a failing `ctl`, a reply that is not JSON or a control
//! connection that closes is an error.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::limits_support::LimitBlock;
use crate::peers::bird;
use crate::plugin_support::Plugin;
use crate::policy_support::metric_value;
use crate::process::Daemon;
use crate::wasmbgp::{read_log, spawn_checked, wait_started};

/// The longest [`FloodSpeaker::start`] waits for one answer on the control socket: a
/// daemon whose speaker never answers fails the start instead of hanging it.
pub const START_ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// A wasmbgp whose one neighbor is the BIRD of `block`, running `plugins`.
pub struct FloodSpeaker {
    dir: PathBuf,
    socket: PathBuf,
    daemon: Daemon,
}

impl FloodSpeaker {
    /// Writes the config into `dir`, runs `wasmbgp check` and `wasmbgp run` and waits
    /// (at most [`crate::wait::DEFAULT_TIMEOUT`], each try at most
    /// [`START_ANSWER_TIMEOUT`]) for `show neighbors` to be answered on the control
    /// socket.
    pub fn start(dir: &Path, block: LimitBlock, plugins: &[Plugin]) -> Result<Self> {
        let config = crate::graceful_support::bird_neighbor_config(block);
        let socket = dir.join("wasmbgp.sock");
        let text = config.render(&socket) + &plugins.iter().map(Plugin::render).collect::<String>();
        let (_, mut daemon) = spawn_checked(dir, &text, &[], "info")?;
        wait_started(
            &mut daemon,
            "wasmbgp to answer on its control socket",
            || {
                Ok(socket.exists()
                    && CtlConn::connect(&socket, START_ANSWER_TIMEOUT)
                        .and_then(|mut c| c.ok("show neighbors --json"))
                        .is_ok())
            },
        )
        .with_context(|| format!("wasmbgp did not start; log:\n{}", read_log(dir)))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            socket,
            daemon,
        })
    }

    /// The control socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The daemon's pid.
    pub fn pid(&self) -> Result<u32> {
        self.daemon.pid().context("wasmbgp was reaped")
    }

    /// Whether the daemon still runs.
    pub fn is_running(&mut self) -> bool {
        self.daemon.is_running()
    }

    /// wasmbgp's log.
    pub fn log(&self) -> String {
        read_log(&self.dir)
    }
}

/// One answer on a [`CtlConn`], with the time it took.
#[derive(Debug, Clone)]
pub struct Answer {
    /// `ok`.
    pub ok: bool,
    /// `output` (success).
    pub output: String,
    /// `error` (failure).
    pub error: String,
    /// From just before the command was written to just after its answer line was
    /// read.
    pub took: Duration,
}

/// A control connection held open: one command line out, one JSON answer line back.
pub struct CtlConn {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl CtlConn {
    /// Connects to `socket`; a command whose answer takes longer than `timeout` is
    /// an error (the connection is then out of step: make a new one).
    pub fn connect(socket: &Path, timeout: Duration) -> Result<Self> {
        let writer = UnixStream::connect(socket)
            .with_context(|| format!("cannot connect to {}", socket.display()))?;
        writer.set_read_timeout(Some(timeout))?;
        writer.set_write_timeout(Some(timeout))?;
        let reader = BufReader::new(writer.try_clone()?);
        Ok(Self { reader, writer })
    }

    /// Sends `command` and reads its answer.
    pub fn request(&mut self, command: &str) -> Result<Answer> {
        let start = Instant::now();
        writeln!(self.writer, "{command}").with_context(|| format!("sending {command:?}"))?;
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .with_context(|| format!("no answer to {command:?} after {:?}", start.elapsed()))?;
        let took = start.elapsed();
        ensure!(
            n > 0,
            "the daemon closed the control connection after {command:?}"
        );
        let json: Value = serde_json::from_str(&line)
            .with_context(|| format!("the answer to {command:?} is not JSON: {line:?}"))?;
        let text = |key: &str| json[key].as_str().unwrap_or_default().to_owned();
        Ok(Answer {
            ok: json["ok"]
                .as_bool()
                .with_context(|| format!("no `ok` in the answer to {command:?}: {line}"))?,
            output: text("output"),
            error: text("error"),
            took,
        })
    }

    /// A command that must succeed: its output.
    pub fn ok(&mut self, command: &str) -> Result<String> {
        let answer = self.request(command)?;
        ensure!(answer.ok, "`{command}` failed: {}", answer.error);
        Ok(answer.output)
    }

    /// A command that must succeed and print JSON.
    pub fn json(&mut self, command: &str) -> Result<Value> {
        let out = self.ok(command)?;
        serde_json::from_str(&out).with_context(|| format!("`{command}` printed bad JSON: {out}"))
    }

    /// `show metrics`.
    pub fn metrics(&mut self) -> Result<String> {
        self.ok("show metrics")
    }

    /// The entry of plugin `name` in `show plugins --json`.
    pub fn plugin(&mut self, name: &str) -> Result<Value> {
        let json = self.json("show plugins --json")?;
        json.as_array()
            .context("show plugins --json is not an array")?
            .iter()
            .find(|e| e["name"].as_str() == Some(name))
            .cloned()
            .with_context(|| format!("no plugin {name} in {json}"))
    }
}

/// `(state, established-count)` of the one neighbor in a `show neighbors --json`
/// output.
pub fn session_of(neighbors: &str) -> Result<(String, u64)> {
    let json: Value = serde_json::from_str(neighbors)
        .with_context(|| format!("show neighbors --json printed bad JSON: {neighbors}"))?;
    let n = json
        .as_array()
        .and_then(|a| a.first())
        .with_context(|| format!("no neighbor in {json}"))?;
    Ok((
        n["state"]
            .as_str()
            .with_context(|| format!("no state in {n}"))?
            .to_owned(),
        n["established-count"]
            .as_u64()
            .with_context(|| format!("no established-count in {n}"))?,
    ))
}

/// `VmRSS` of process `pid`, in KiB.
pub fn vm_rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .with_context(|| format!("no VmRSS in {path}"))?;
    let mut words = line.split_whitespace().skip(1);
    let value: u64 = words
        .next()
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("bad {line:?}"))?;
    ensure!(words.next() == Some("kB"), "unexpected unit in {line:?}");
    Ok(value)
}

/// A metric of a `show metrics` exposition, which must be there.
pub fn metric(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Result<f64> {
    metric_value(exposition, name, labels)
        .with_context(|| format!("no {name}{labels:?} in show metrics"))
}

/// The sum of every series of metric `name` that has `labels` (0 when there is none).
pub fn metric_sum(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    crate::policy_support::metric_samples(exposition, name, labels).sum()
}

/// The count, maximum, 99th and 50th percentile (nearest rank) of `samples`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spread {
    /// Samples.
    pub count: usize,
    /// The largest.
    pub max: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Median.
    pub p50: Duration,
}

impl Spread {
    /// Of `samples`, in any order.
    pub fn of(samples: &[Duration]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort();
        let rank = |q: f64| -> Duration {
            if sorted.is_empty() {
                return Duration::ZERO;
            }
            let at = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            sorted[at - 1]
        };
        Self {
            count: sorted.len(),
            max: sorted.last().copied().unwrap_or_default(),
            p99: rank(0.99),
            p50: rank(0.5),
        }
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} answers, max {:.1?}, p99 {:.1?}, p50 {:.1?}",
            self.count, self.max, self.p99, self.p50
        )
    }
}

/// The MED the flood fixture (`fixture-faulty` in mode `flood`) last gave each of its
/// `count` prefixes after `announced` announcements (announcement `k` is prefix `k mod
/// count` with MED `k + 1`): prefix index → MED, for the prefixes announced at all.
pub fn flood_last_meds(count: u64, announced: u64) -> BTreeMap<u64, u32> {
    (0..count.min(announced))
        .map(|i| {
            let last = i + count * ((announced - 1 - i) / count);
            (i, (last as u32).wrapping_add(1))
        })
        .collect()
}

/// What BIRD at `dir` holds from protocol `protocol`: prefix → MED (strict `birdc`;
/// a route without a MED is an error).
pub fn bird_meds(dir: &Path, protocol: &str) -> Result<BTreeMap<String, u32>> {
    let out = bird::birdc(dir, &["show", "route", "protocol", protocol, "all"])?;
    let mut meds = BTreeMap::new();
    for route in bird::parse_show_route_all(&out)? {
        let med = route
            .med
            .with_context(|| format!("BIRD's route {} has no MED", route.prefix))?;
        if meds.insert(route.prefix.clone(), med).is_some() {
            bail!("BIRD has two routes for {} from {protocol}", route.prefix);
        }
    }
    Ok(meds)
}

#[cfg(test)]
mod tests {
    use super::{Spread, flood_last_meds};
    use std::time::Duration;

    #[test]
    fn last_meds_follow_the_cycle() {
        // 10 announcements over 4 prefixes: k = 0..9, prefix k % 4, MED k + 1.
        let meds = flood_last_meds(4, 10);
        assert_eq!(
            meds.into_iter().collect::<Vec<_>>(),
            vec![(0, 9), (1, 10), (2, 7), (3, 8)]
        );
        // Fewer announcements than prefixes: only those announced.
        assert_eq!(flood_last_meds(4, 2).len(), 2);
        assert!(flood_last_meds(4, 0).is_empty());
    }

    #[test]
    fn spread_is_nearest_rank() {
        let samples: Vec<Duration> = (1..=200).map(Duration::from_millis).collect();
        let s = Spread::of(&samples);
        assert_eq!(s.count, 200);
        assert_eq!(s.max, Duration::from_millis(200));
        assert_eq!(s.p99, Duration::from_millis(198));
        assert_eq!(s.p50, Duration::from_millis(100));
    }
}
