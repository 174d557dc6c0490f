//! Process, BIRD and /proc helpers for the plugin and policy benchmarks
//! (`src/bin/plugins.rs`, `src/bin/policy.rs`).
//! A trimmed copy of the helpers in `src/main.rs` (left untouched so the 1M-route bench
//! keeps its exact behaviour). Every wait here is bounded in time and iterations.

// Shared by two benchmark binaries; each uses a different part.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub type Result<T> = std::result::Result<T, String>;

#[macro_export]
macro_rules! bail {
    ($($t:tt)*) => { return Err(format!($($t)*)) };
}

/// A child process, killed when dropped (SIGTERM, then SIGKILL after 3 s) and when
/// this process dies (PR_SET_PDEATHSIG).
pub struct Proc {
    pub name: String,
    pub child: Child,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command) -> Result<Proc> {
        // SAFETY: prctl is async-signal-safe; the child dies with this (spawning) thread.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(Proc {
            name: name.to_string(),
            child,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("bench: {} did not stop on SIGTERM, killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(st)) => Some(format!("{} exited: {st}", self.name)),
            _ => None,
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `kB` line of /proc/PID/status, in bytes.
pub fn vm_status(pid: u32, key: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    for l in status.lines() {
        if let Some(v) = l.strip_prefix(key) {
            let kb: u64 = v
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .map_err(|e| format!("{key} {e}"))?;
            return Ok(kb * 1024);
        }
    }
    bail!("no {key} in /proc/{pid}/status")
}

/// utime + stime of a process (all its threads), in seconds.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').ok_or("bad /proc stat")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime 15.
    let utime: u64 = f.get(11).and_then(|x| x.parse().ok()).ok_or("no utime")?;
    let stime: u64 = f.get(12).and_then(|x| x.parse().ok()).ok_or("no stime")?;
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((utime + stime) as f64 / tck)
}

/// Threads of a process.
pub fn threads(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:").map(|v| v.trim().parse().ok()))
        })
        .flatten()
        .unwrap_or(0)
}

pub fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

/// An ephemeral TCP port free on `addr` right now.
pub fn free_port(addr: Ipv4Addr) -> Result<u16> {
    let l = TcpListener::bind((addr, 0)).map_err(|e| format!("bind {addr}:0: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// BIRD's control socket protocol, without a birdc process per poll.
pub struct Birdc {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl Birdc {
    pub fn connect(sock: &Path, timeout: Duration) -> Result<Birdc> {
        let deadline = Instant::now() + timeout;
        loop {
            match UnixStream::connect(sock) {
                Ok(s) => {
                    s.set_read_timeout(Some(Duration::from_secs(10)))
                        .map_err(|e| e.to_string())?;
                    let w = s.try_clone().map_err(|e| e.to_string())?;
                    let mut b = Birdc {
                        r: BufReader::new(s),
                        w,
                    };
                    b.reply()?;
                    return Ok(b);
                }
                Err(e) if Instant::now() > deadline => {
                    bail!("cannot reach BIRD at {}: {e}", sock.display())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    fn reply(&mut self) -> Result<String> {
        let mut out = String::new();
        for _ in 0..100_000 {
            let mut line = String::new();
            let n = self
                .r
                .read_line(&mut line)
                .map_err(|e| format!("reading from BIRD: {e}"))?;
            if n == 0 {
                bail!("BIRD closed its control socket");
            }
            let b = line.as_bytes();
            let last = b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b' ';
            out.push_str(&line);
            if last || (b.len() == 5 && b[..4].iter().all(u8::is_ascii_digit)) {
                return Ok(out);
            }
        }
        bail!("BIRD reply too long")
    }

    pub fn cmd(&mut self, c: &str) -> Result<String> {
        writeln!(self.w, "{c}").map_err(|e| format!("writing to BIRD: {e}"))?;
        self.reply()
    }

    /// Routes imported by a protocol's channel (`show protocols all NAME`).
    pub fn imported(&mut self, proto: &str) -> Result<u64> {
        let r = self.cmd(&format!("show protocols all {proto}"))?;
        for l in r.lines() {
            if let Some(rest) = l
                .trim_start_matches(|c: char| c.is_ascii_digit() || c == '-')
                .trim()
                .strip_prefix("Routes:")
            {
                let n = rest.split_whitespace().next().unwrap_or("0");
                return n.parse().map_err(|e| format!("Routes: {e}"));
            }
        }
        Ok(0)
    }
}

/// A BIRD process in its own directory with its own socket, pid file and log.
pub struct Bird {
    pub proc: Proc,
    pub ctl: Birdc,
}

impl Bird {
    pub fn start(bird: &str, dir: &Path, name: &str, conf: &str) -> Result<Bird> {
        Self::start_within(bird, dir, name, conf, Duration::from_secs(30))
    }

    /// As [`Bird::start`], waiting up to `timeout` for the control socket (a config
    /// with a 1M-route static protocol takes BIRD seconds to parse).
    pub fn start_within(
        bird: &str,
        dir: &Path,
        name: &str,
        conf: &str,
        timeout: Duration,
    ) -> Result<Bird> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let full = format!(
            "log \"{}\" all;\ntimeformat log \"%s.%6f\";\n{conf}",
            dir.join("bird.log").display()
        );
        let conf_path = dir.join("bird.conf");
        std::fs::write(&conf_path, full).map_err(|e| e.to_string())?;
        let sock = dir.join("bird.ctl");
        let mut proc = Proc::spawn(
            name,
            Command::new(bird)
                .arg("-c")
                .arg(&conf_path)
                .arg("-s")
                .arg(&sock)
                .arg("-P")
                .arg(dir.join("bird.pid"))
                .arg("-f")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("bird.stderr")).map_err(|e| e.to_string())?),
        )?;
        let deadline = Instant::now() + timeout;
        while !sock.exists() && Instant::now() < deadline {
            if let Some(e) = proc.exited() {
                let err = std::fs::read_to_string(dir.join("bird.stderr")).unwrap_or_default();
                bail!("{e}: {}", err.trim());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let ctl = Birdc::connect(&sock, Duration::from_secs(5))?;
        Ok(Bird { proc, ctl })
    }

    /// Polls until the protocol's imported count is exactly `n` (every `poll`), bounded
    /// by `timeout`; returns the time it took.
    pub fn wait_imported(
        &mut self,
        proto: &str,
        n: u64,
        poll: Duration,
        timeout: Duration,
    ) -> Result<Duration> {
        let t0 = Instant::now();
        let max_polls = (timeout.as_micros() / poll.as_micros().max(1)) as u64 + 10;
        let mut last = 0;
        for _ in 0..max_polls {
            last = self.ctl.imported(proto)?;
            if last == n {
                return Ok(t0.elapsed());
            }
            if t0.elapsed() > timeout {
                break;
            }
            if let Some(e) = self.proc.exited() {
                bail!("{e}");
            }
            std::thread::sleep(poll);
        }
        bail!("{proto}: {last} routes, not {n}, after {timeout:?}")
    }
}

/// A BIRD 2 receiver at `rx` (state in `dir`) for a wasmbgp at `w`, on free ports; also
/// the ports: wasmbgp's, then the receiver's.
pub fn start_bird_receiver(
    bird: &str,
    dir: &Path,
    rx: Ipv4Addr,
    w: Ipv4Addr,
) -> Result<(Bird, u16, u16)> {
    let (wp, rp) = (free_port(w)?, free_port(rx)?);
    let b = Bird::start(
        bird,
        dir,
        "bird receiver",
        &bird_receiver_conf(rx, rp, w, wp),
    )?;
    Ok((b, wp, rp))
}

pub fn bird_receiver_conf(me: Ipv4Addr, my_port: u16, peer: Ipv4Addr, peer_port: u16) -> String {
    format!(
        "router id {me};\nprotocol device {{}}\n\
         protocol bgp wasm {{ local {me} port {my_port} as 65000; neighbor {peer} port {peer_port} as 65001; \
         multihop; connect delay time 1; connect retry time 1; ipv4 {{ import all; export none; }}; }}\n"
    )
}

/// wasmbgp `run` with its own config, cache dir and log file (stderr).
pub fn start_wasmbgp(bin: &Path, conf: &Path, cache: &Path, log: &Path) -> Result<Proc> {
    Proc::spawn(
        "wasmbgp",
        Command::new(bin)
            .arg("run")
            .arg(conf)
            .arg("--cache-dir")
            .arg(cache)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).map_err(|e| e.to_string())?),
    )
}

/// GET /metrics over plain HTTP/1.1 (loopback, 5 s timeout).
pub fn http_metrics(addr: &str) -> Result<String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("metrics {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut body = String::new();
    s.read_to_string(&mut body)
        .map_err(|e| format!("metrics {addr}: {e}"))?;
    Ok(body)
}

/// A Prometheus histogram's cumulative buckets (upper bound in s, count) and count.
#[derive(Debug, Clone, Default)]
pub struct Hist {
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
}

pub fn parse_hist(text: &str, name: &str) -> Hist {
    let mut h = Hist::default();
    let bucket = format!("{name}_bucket{{");
    let count = format!("{name}_count");
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix(&bucket) {
            let Some(le) = rest.split("le=\"").nth(1).and_then(|x| x.split('"').next()) else {
                continue;
            };
            let le = if le.contains("Inf") {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::NAN)
            };
            let n = l.rsplit(' ').next().and_then(|x| x.parse::<f64>().ok());
            if let Some(n) = n {
                h.buckets.push((le, n as u64));
            }
        } else if let Some(rest) = l.strip_prefix(&count) {
            if let Some(n) = rest
                .split_whitespace()
                .last()
                .and_then(|x| x.parse::<f64>().ok())
            {
                h.count = n as u64;
            }
        }
    }
    h
}

impl Hist {
    /// `self - before`, bucket by bucket.
    pub fn minus(&self, before: &Hist) -> Hist {
        Hist {
            buckets: self
                .buckets
                .iter()
                .map(|(le, n)| {
                    let b = before
                        .buckets
                        .iter()
                        .find(|(l, _)| l == le)
                        .map(|x| x.1)
                        .unwrap_or(0);
                    (*le, n.saturating_sub(b))
                })
                .collect(),
            count: self.count.saturating_sub(before.count),
        }
    }

    /// The upper bound of the bucket holding quantile `q`.
    pub fn quantile(&self, q: f64) -> f64 {
        let target = (q * self.count as f64).ceil() as u64;
        for (le, n) in &self.buckets {
            if *n >= target.max(1) {
                return *le;
            }
        }
        f64::NAN
    }
}

/// Value at quantile `q` of samples (nearest rank).
pub fn pct(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let i = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1;
    s[i]
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

// ---------------------------------------------------------------------------------------
/// Wall clock in epoch seconds (to compare with the daemons' log timestamps).
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `2026-11-24T15:39:00.078524Z` -> epoch seconds.
pub fn parse_rfc3339_utc(s: &str) -> Option<f64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':');
    let (hh, mm) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let ss = t.next()?.parse::<f64>().ok()?;
    // days from civil (Howard Hinnant)
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some((days * 86400 + hh * 3600 + mm * 60) as f64 + ss)
}

/// The 1M-route bench's table (`src/main.rs`): route `i` is the /24 at 20.0.0.0 + i·256
/// (20.0.0.0/24 .. 35.66.63.0/24 for 1M), all outside bogon space.
pub fn table_prefix(i: u32) -> Ipv4Addr {
    Ipv4Addr::from((20u32 << 24) + (i << 8))
}

/// Writes `n` lines made by `f` (which adds the newline) to `path`.
pub fn write_lines(path: &Path, n: u32, f: impl Fn(u32) -> String) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    for i in 0..n {
        w.write_all(f(i).as_bytes()).map_err(|e| e.to_string())?;
    }
    w.flush().map_err(|e| e.to_string())
}

/// Median (upper median for an even count); NaN when empty.
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[s.len() / 2]
}

/// A JSON log line, with its timestamp (epoch seconds).
pub type LogLine = (f64, serde_json::Value);

/// Follows a daemon's JSON log on its stderr: every line is copied to `log_copy`, and each
/// one that parses arrives on the returned channel with its timestamp.
pub fn follow_json_log(
    proc: &mut Proc,
    log_copy: &Path,
) -> Result<std::sync::mpsc::Receiver<LogLine>> {
    let stderr = proc.child.stderr.take().ok_or("no stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    let mut copy = std::fs::File::create(log_copy).map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(copy, "{line}");
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                let ts = v["timestamp"]
                    .as_str()
                    .and_then(parse_rfc3339_utc)
                    .unwrap_or_else(now);
                if tx.send((ts, v)).is_err() {
                    break;
                }
            }
        }
    });
    Ok(rx)
}

/// Spawns wasmbgp `run CONF --log-format json --cache-dir CACHE` and follows its JSON
/// log (copied to `log_copy`); also when it was spawned (epoch seconds).
pub fn spawn_json_daemon(
    bin: &Path,
    conf: &Path,
    cache: &Path,
    log_copy: &Path,
) -> Result<(Proc, f64, std::sync::mpsc::Receiver<LogLine>)> {
    let mut cmd = Command::new(bin);
    cmd.arg("run")
        .arg(conf)
        .args(["--log-format", "json", "--cache-dir"])
        .arg(cache)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let spawned_at = now();
    let mut proc = Proc::spawn("wasmbgp", &mut cmd)?;
    let rx = follow_json_log(&mut proc, log_copy)?;
    Ok((proc, spawned_at, rx))
}

/// wasmbgp `run --log-format json` with its own config and cache dir; its JSON log is
/// copied to a file and followed, so that the benchmark can wait for log lines.
pub struct JsonDaemon {
    pub proc: Proc,
    /// When the process was spawned (epoch seconds).
    pub spawned_at: f64,
    log: std::sync::mpsc::Receiver<(f64, serde_json::Value)>,
    seen: Vec<(f64, serde_json::Value)>,
}

impl JsonDaemon {
    pub fn start(bin: &Path, conf: &Path, cache: &Path, log_copy: &Path) -> Result<JsonDaemon> {
        let (proc, spawned_at, rx) = spawn_json_daemon(bin, conf, cache, log_copy)?;
        Ok(JsonDaemon {
            proc,
            spawned_at,
            log: rx,
            seen: Vec::new(),
        })
    }

    /// Takes the log lines that arrived so far; WARN and ERROR lines are echoed.
    fn drain(&mut self) {
        while let Ok((ts, v)) = self.log.try_recv() {
            self.note(ts, v);
        }
    }

    fn note(&mut self, ts: f64, v: serde_json::Value) {
        if v["level"] == "ERROR" || v["level"] == "WARN" {
            eprintln!("bench: wasmbgp: {}", v["fields"]);
        }
        self.seen.push((ts, v));
    }

    /// The first log line seen so far with this message (no wait).
    pub fn logged(&mut self, message: &str) -> Option<(f64, serde_json::Value)> {
        self.drain();
        self.seen
            .iter()
            .find(|(_, v)| v["fields"]["message"] == message)
            .cloned()
    }

    /// Lines seen so far at WARN or ERROR level.
    pub fn warnings(&mut self) -> usize {
        self.drain();
        self.seen
            .iter()
            .filter(|(_, v)| v["level"] == "ERROR" || v["level"] == "WARN")
            .count()
    }

    /// The fields of the WARN and ERROR lines seen so far, as compact JSON.
    pub fn warning_lines(&mut self) -> Vec<String> {
        self.drain();
        self.seen
            .iter()
            .filter(|(_, v)| v["level"] == "ERROR" || v["level"] == "WARN")
            .map(|(_, v)| v["fields"].to_string())
            .collect()
    }

    /// Waits (bounded) for a log line with this message; returns its timestamp and fields.
    pub fn wait_log(
        &mut self,
        message: &str,
        timeout: Duration,
    ) -> Result<(f64, serde_json::Value)> {
        if let Some(x) = self.logged(message) {
            return Ok(x);
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.log.recv_timeout(Duration::from_millis(50)) {
                Ok((ts, v)) => {
                    let hit = v["fields"]["message"] == message;
                    self.note(ts, v.clone());
                    if hit {
                        return Ok((ts, v));
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(e) = self.proc.exited() {
                        bail!("{e} while waiting for {message:?}");
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    bail!("wasmbgp closed its log before {message:?}")
                }
            }
        }
        bail!("no {message:?} from wasmbgp within {timeout:?}")
    }
}

/// wasmbgp's control socket, spoken directly (one JSON reply line per command line), so
/// that polling costs no `wasmbgp ctl` process per poll.
pub struct Ctl {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl Ctl {
    /// Connects (retrying every 20 ms up to `timeout`); each reply may take `reply_timeout`.
    pub fn connect(sock: &Path, timeout: Duration, reply_timeout: Duration) -> Result<Ctl> {
        let deadline = Instant::now() + timeout;
        loop {
            match UnixStream::connect(sock) {
                Ok(s) => {
                    s.set_read_timeout(Some(reply_timeout))
                        .map_err(|e| e.to_string())?;
                    let w = s.try_clone().map_err(|e| e.to_string())?;
                    return Ok(Ctl {
                        r: BufReader::new(s),
                        w,
                    });
                }
                Err(e) if Instant::now() > deadline => {
                    bail!("cannot reach wasmbgp at {}: {e}", sock.display())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Runs one command; its output on success.
    pub fn cmd(&mut self, line: &str) -> Result<String> {
        writeln!(self.w, "{line}").map_err(|e| format!("writing to wasmbgp's socket: {e}"))?;
        let mut reply = String::new();
        let n = self
            .r
            .read_line(&mut reply)
            .map_err(|e| format!("reading wasmbgp's answer to {line:?}: {e}"))?;
        if n == 0 {
            bail!("wasmbgp closed its control socket");
        }
        let v: serde_json::Value = serde_json::from_str(reply.trim())
            .map_err(|e| format!("answer to {line:?} is not JSON: {e}"))?;
        if v["ok"] != true {
            bail!("{line:?}: {}", v["error"]);
        }
        Ok(v["output"].as_str().unwrap_or("").to_string())
    }

    /// Runs a `--json` show command; its output parsed.
    pub fn json(&mut self, line: &str) -> Result<serde_json::Value> {
        let out = self.cmd(line)?;
        serde_json::from_str(&out).map_err(|e| format!("output of {line:?} is not JSON: {e}"))
    }
}

/// The command-line arguments after the program name, for the benchmarks' option loops.
pub struct Args(std::iter::Skip<std::env::Args>);

pub fn cli_args() -> Args {
    Args(std::env::args().skip(1))
}

impl Iterator for Args {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        self.0.next()
    }
}

impl Args {
    /// The value of option `name` (the next argument).
    pub fn val(&mut self, name: &str) -> Result<String> {
        self.0.next().ok_or(format!("{name} needs a value"))
    }

    /// The value of option `name`, a whole number.
    pub fn num(&mut self, name: &str) -> Result<u64> {
        self.val(name)?
            .parse::<u64>()
            .map_err(|e| format!("{name}: {e}"))
    }
}

/// A benchmark's parsed options, or (on a usage error) the error under `name` and exit 2.
pub fn opts_or_exit<T>(name: &str, parsed: Result<T>) -> T {
    match parsed {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{name}: {e}");
            std::process::exit(2);
        }
    }
}

/// HEAD of this checkout, and whether host/ or Cargo.lock have uncommitted changes;
/// `sh` runs each `git` command and gives its output (each benchmark's own reading).
pub fn tree_state(sh: impl Fn(&mut Command) -> String) -> (String, bool) {
    let git = |args: &[&str]| {
        sh(Command::new("git")
            .args(["-C", env!("CARGO_MANIFEST_DIR")])
            .args(args))
    };
    let rev = git(&["rev-parse", "--short", "HEAD"]);
    // `:/`: from the top of the tree (plain `host` would be bench/host, never dirty).
    let dirty = !git(&[
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        ":/host",
        ":/Cargo.lock",
    ])
    .is_empty();
    (rev, dirty)
}

/// "REV (host/ clean)" for a results header, from [`tree_state`] at the start of the run
/// and now: both revisions and states when the tree moved during the run.
pub fn tree_since(start: &(String, bool), sh: impl Fn(&mut Command) -> String) -> String {
    let (rev0, dirty0) = start;
    let (rev1, dirty1) = tree_state(sh);
    let state = |d: bool| {
        if d {
            "host/ with uncommitted changes"
        } else {
            "host/ clean"
        }
    };
    let rev = if *rev0 == rev1 {
        rev0.clone()
    } else {
        format!("{rev0} at the start, {rev1} at the end")
    };
    if *dirty0 == dirty1 {
        format!("{rev} ({})", state(dirty1))
    } else {
        format!(
            "{rev} ({} at the start, {} at the end)",
            state(*dirty0),
            state(dirty1)
        )
    }
}

/// What `c` printed (its standard output, else its standard error), trimmed; empty if it
/// could not run. For the facts a results header reports.
pub fn sh(c: &mut Command) -> String {
    c.output()
        .ok()
        .map(|x| {
            let t = if x.stdout.is_empty() {
                x.stderr
            } else {
                x.stdout
            };
            String::from_utf8_lossy(&t).trim().to_string()
        })
        .unwrap_or_default()
}

/// The CPU's model name (/proc/cpuinfo), empty if unknown.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':').map(|x| x.1.trim().to_string()))
        })
        .unwrap_or_default()
}

/// The 1, 5 and 15 minute load averages (/proc/loadavg), space-separated.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `main` of every benchmark binary: runs `run` in a fresh temporary folder (kept with
/// `keep`), prints the table it returns and writes it to `results` under `title`, noting
/// the `script` that reproduces it. Exits 2 if the folder cannot be made, 1 on failure.
pub fn bench_main(
    name: &str,
    title: &str,
    script: &str,
    keep: bool,
    results: Option<&Path>,
    run: impl FnOnce(&Path) -> std::result::Result<String, String>,
) {
    let dir = std::env::temp_dir().join(format!("{name}.{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("{name}: {}: {e}", dir.display());
        std::process::exit(2);
    }
    let result = run(&dir);
    if keep {
        eprintln!("bench: kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    match result {
        Ok(table) => {
            println!("\n{table}");
            if let Some(p) = results {
                let body =
                    format!("# {title}\n\nCommand: `{script}` (see bench/README.md).\n\n{table}");
                if let Err(e) = std::fs::write(p, body) {
                    eprintln!("{name}: cannot write {}: {e}", p.display());
                }
            }
        }
        Err(e) => {
            eprintln!("{name}: {e}");
            std::process::exit(1);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Shared by the exporter benchmark (`src/bin/exporter.rs`); additive copies of helpers
// that `src/bin/policy.rs` keeps locally (its own definitions shadow these).

/// Processes named rustc, cargo or cargo-nextest running now (someone else's build or
/// tests competing for the CPUs).
pub fn rustc_running() -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm"))
                .map(|c| matches!(c.trim(), "rustc" | "cargo" | "cargo-nextest"))
                .unwrap_or(false)
        })
        .count()
}

/// CPU seconds the whole machine has spent busy (/proc/stat, every CPU: all but idle
/// and iowait).
pub fn machine_busy() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(l) = stat.lines().next() else {
        return 0.0;
    };
    let f: Vec<u64> = l
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is inside user)
    let busy: u64 = f
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    busy as f64 / tck
}

/// `wasmbgp check CONFIG --cache-dir CACHE` (bounded to 5 minutes), which compiles the
/// config's components into the on-disk cache, so that `run` loads them from it.
pub fn wasmbgp_check(bin: &Path, conf: &Path, cache: &Path) -> Result<()> {
    let out = conf.with_extension("check.out");
    let file = std::fs::File::create(&out).map_err(|e| e.to_string())?;
    let mut p = Proc::spawn(
        "wasmbgp check",
        Command::new(bin)
            .arg("check")
            .arg(conf)
            .arg("--cache-dir")
            .arg(cache)
            .stdin(Stdio::null())
            .stdout(file.try_clone().map_err(|e| e.to_string())?)
            .stderr(file),
    )?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Ok(Some(st)) = p.child.try_wait() {
            break st;
        }
        if Instant::now() > deadline {
            bail!("wasmbgp check {} took more than 5 minutes", conf.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if !status.success() {
        bail!(
            "wasmbgp check {} failed: {}",
            conf.display(),
            std::fs::read_to_string(&out).unwrap_or_default().trim()
        );
    }
    Ok(())
}

/// The epoch time of the first line of a BIRD log (written with `timeformat log
/// "%s.%6f"`, as [`Bird::start`] configures it) that contains `needle`.
pub fn bird_log_time(log: &Path, needle: &str) -> Option<f64> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .find(|l| l.contains(needle))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|t| t.parse().ok())
}

/// Everybody else's CPU over a phase: the machine's busy time minus ours (this process
/// and the processes given).
pub struct Others {
    t0: Instant,
    busy0: f64,
    mine0: f64,
    pids: Vec<u32>,
    rustc: bool,
}

impl Others {
    pub fn start(pids: &[u32]) -> Others {
        let mut o = Others {
            t0: Instant::now(),
            busy0: machine_busy(),
            mine0: 0.0,
            pids: pids.to_vec(),
            rustc: rustc_running() > 0,
        };
        o.mine0 = o.mine();
        o
    }

    fn mine(&self) -> f64 {
        cpu_seconds(std::process::id()).unwrap_or(0.0)
            + self
                .pids
                .iter()
                .map(|p| cpu_seconds(*p).unwrap_or(0.0))
                .sum::<f64>()
    }

    /// Counts a process started after [`Others::start`] as ours too.
    pub fn add(&mut self, pid: u32) {
        self.pids.push(pid);
    }

    /// Share of one CPU the others used since `start`, and whether a rustc/cargo ran.
    pub fn end(&self) -> (f64, bool) {
        let busy = machine_busy() - self.busy0;
        let mine = self.mine() - self.mine0;
        let share = ((busy - mine) / self.t0.elapsed().as_secs_f64().max(1e-3)).max(0.0);
        (share, self.rustc || rustc_running() > 0)
    }
}

// ---------------------------------------------------------------------------------------
// Shared by the sessions benchmark (`src/bin/sessions.rs`).

impl Birdc {
    /// How long a reply may take (10 s from [`Birdc::connect`]); a reply that times out
    /// leaves the connection out of step: connect again.
    pub fn set_reply_timeout(&mut self, d: Duration) -> Result<()> {
        self.r
            .get_ref()
            .set_read_timeout(Some(d))
            .map_err(|e| e.to_string())
    }

    /// As [`Birdc::cmd`], but a reply with an error code (8xxx runtime error, 9xxx parse
    /// error: `8003 No protocols match`, `9001 syntax error`) is an `Err`, never an answer.
    pub fn cmd_ok(&mut self, c: &str) -> Result<String> {
        let r = self.cmd(c)?;
        if let Some(l) = r.lines().find(|l| {
            let b = l.as_bytes();
            b.len() >= 4 && b[..4].iter().all(u8::is_ascii_digit) && matches!(b[0], b'8' | b'9')
        }) {
            bail!("BIRD answered {c:?} with {}", l.trim());
        }
        Ok(r)
    }
}

/// BIRD's `--version` line (`BIRD version 2.0.12`), empty if it cannot be run.
pub fn bird_version(bird: &str) -> String {
    Command::new(bird)
        .arg("--version")
        .output()
        .map(|x| {
            let s = if x.stdout.is_empty() {
                x.stderr
            } else {
                x.stdout
            };
            String::from_utf8_lossy(&s).trim().to_string()
        })
        .unwrap_or_default()
}

/// Raises this process's soft RLIMIT_NOFILE to at least `want` (up to the hard limit);
/// children started afterwards inherit it. The soft limit in force after.
pub fn raise_nofile(want: u64) -> Result<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        bail!("getrlimit: {}", std::io::Error::last_os_error());
    }
    if (r.rlim_cur as u64) < want {
        r.rlim_cur = (want as libc::rlim_t).min(r.rlim_max);
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } != 0 {
            bail!("setrlimit: {}", std::io::Error::last_os_error());
        }
    }
    Ok(r.rlim_cur as u64)
}

static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// SIGINT and SIGTERM set a flag instead of killing this process, so that the waits
/// ([`pause`]) return an error and every daemon is stopped by its `Drop` on the way out.
pub fn catch_stop_signals() {
    // SAFETY: the handler only stores to an atomic (async-signal-safe).
    let handler: extern "C" fn(libc::c_int) = on_stop_signal;
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
}

/// Whether SIGINT or SIGTERM arrived (after [`catch_stop_signals`]).
pub fn stop_requested() -> bool {
    STOP.load(std::sync::atomic::Ordering::SeqCst)
}

/// Sleeps `d` in steps of at most 100 ms; `Err` as soon as a stop signal arrived.
pub fn pause(d: Duration) -> Result<()> {
    let end = Instant::now() + d;
    loop {
        if stop_requested() {
            bail!("interrupted");
        }
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        std::thread::sleep((end - now).min(Duration::from_millis(100)));
    }
}

/// Whether something listens on TCP `port` (any address, IPv4 or IPv6), from
/// /proc/net/tcp{,6}.
pub fn tcp_listening(port: u16) -> bool {
    tcp_listening_ports().contains(&port)
}

/// The TCP ports something listens on (any address, IPv4 or IPv6), from /proc/net/tcp{,6}.
pub fn tcp_listening_ports() -> std::collections::HashSet<u16> {
    let mut out = std::collections::HashSet::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(t) = std::fs::read_to_string(f) else {
            continue;
        };
        for l in t.lines().skip(1) {
            let c: Vec<&str> = l.split_whitespace().collect();
            if c.len() > 3
                && c[3] == "0A"
                && let Some(p) = c[1]
                    .rsplit(':')
                    .next()
                    .and_then(|h| u16::from_str_radix(h, 16).ok())
            {
                out.insert(p);
            }
        }
    }
    out
}
