//! Support for the prefix-limit and shutdown tests (`tests/hardening_limits.rs`): a
//! BIRD 2 with one passive `protocol bgp` per wasmbgp neighbor, each exporting its own
//! static routes (IPv4 and IPv6 over the IPv4 session, some held back in a `disabled`
//! static protocol until [`LimitBird::enable`]); a wasmbgp whose config is
//! [`crate::wasmbgp::Config`] plus raw lines per neighbor (`max-prefixes = ...`) and at
//! the top (`shutdown-message = ...`), owned with its [`Daemon`] so that the test can
//! signal it and read its exit status; and strict readers of BIRD's log, wasmbgp's
//! metrics and `show neighbors`.
//!
//! Addresses: block `N` ([`LimitBlock`]) is `127.(N / 256).(N % 256).x` with ports
//! `10000 + 10 N + k` (`k < 10`), the interop blocks' rule ([`crate::scenario::Block`])
//! carried past 255 (block 258 is `127.1.2.x`, ports 12580-12589).
//!
//! Every query is strict: a failing `birdc` or `ctl` is an error, never "absent".

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::peers::bird::{self, ProtocolLine};
use crate::plugin_support::strip_ansi;
use crate::policy_support::{metric_value, tail};
use crate::process::Daemon;
use crate::wait::DEFAULT_TIMEOUT;
use crate::wasmbgp::{
    Config, Launch, ctl, ctl_batch, ctl_json, spawn_checked_with, toml_str, wait_socket,
};

/// wasmbgp's AS in these tests.
pub const WASMBGP_AS: u32 = 65001;
/// BIRD's AS in these tests.
pub const BIRD_AS: u32 = 65300;
/// The IPv6 next hop BIRD puts on the IPv6 routes it sends over an IPv4 session.
pub const BIRD_NEXT_HOP6: &str = "2001:db8:ffff::2";

/// A test block past the interop blocks' `u8`: `127.(N / 256).(N % 256).host`, ports
/// `10000 + 10 N + k`.
#[derive(Debug, Clone, Copy)]
pub struct LimitBlock(pub u16);

impl LimitBlock {
    /// `127.(N / 256).(N % 256).host`.
    pub fn addr(self, host: u8) -> Ipv4Addr {
        let [hi, lo] = self.0.to_be_bytes();
        Ipv4Addr::new(127, hi, lo, host)
    }

    /// Port `k` (0..10) of this block.
    pub fn port(self, k: u16) -> u16 {
        assert!(k < 10, "a block has 10 ports");
        10000 + 10 * self.0 + k
    }
}

/// `count` distinct IPv4 /24s `100.B.C.0/24`, numbered from `base * 256`
/// (`base` < 64, `count` ≤ 4096 each).
pub fn v4_prefixes(base: u32, count: u32) -> Vec<String> {
    (0..count)
        .map(|i| {
            let n = base * 256 + i;
            format!("100.{}.{}.0/24", 64 + n / 256, n % 256)
        })
        .collect()
}

/// `count` distinct IPv6 /64s `2001:db8:G:I::/64` (`G` = 0x100 + `base`), written as
/// BIRD prints them.
pub fn v6_prefixes(base: u16, count: u16) -> Vec<String> {
    (0..count)
        .map(|i| {
            format!(
                "{}/64",
                Ipv6Addr::new(0x2001, 0xdb8, 0x100 + base, i, 0, 0, 0, 0)
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------
// BIRD: one passive `protocol bgp` per neighbor, each exporting its own routes.

/// One `protocol bgp` of a [`LimitBird`]: BIRD listens on `address:port` (passive: it
/// never connects, so every session is one wasmbgp opened).
#[derive(Debug, Clone)]
pub struct LimitSession {
    /// Protocol name; its static protocols are `NAME_s4`, `NAME_s6` and `NAME_l4`.
    pub name: String,
    /// BIRD's address for this session.
    pub address: Ipv4Addr,
    /// BIRD's port for this session.
    pub port: u16,
    /// The port BIRD's config gives wasmbgp. BIRD never dials it (passive), but
    /// protocols toward the same address and port take turns (one object lock), so
    /// each protocol needs its own.
    pub remote_port: u16,
    /// IPv4 routes exported at once (static `NAME_s4`).
    pub routes4: Vec<String>,
    /// IPv6 routes exported at once (static `NAME_s6`, channel `ipv6` with next hop
    /// [`BIRD_NEXT_HOP6`]).
    pub routes6: Vec<String>,
    /// IPv4 routes of static `NAME_l4`, `disabled` until [`LimitBird::enable`].
    pub later4: Vec<String>,
    /// wasmbgp's address for this session, when not the one given to
    /// [`LimitBird::start`] (a second wasmbgp).
    pub remote: Option<Ipv4Addr>,
}

impl LimitSession {
    /// A session `name` at `address:port` exporting nothing.
    pub fn new(name: &str, address: Ipv4Addr, port: u16, remote_port: u16) -> Self {
        Self {
            name: name.to_owned(),
            address,
            port,
            remote_port,
            routes4: Vec::new(),
            routes6: Vec::new(),
            later4: Vec::new(),
            remote: None,
        }
    }

    fn render(&self, remote: Ipv4Addr) -> String {
        let mut conf = String::new();
        let statics = [
            ("s4", "ipv4", &self.routes4, false),
            ("l4", "ipv4", &self.later4, true),
            ("s6", "ipv6", &self.routes6, false),
        ];
        for (suffix, channel, routes, disabled) in statics {
            if routes.is_empty() {
                continue;
            }
            let _ = writeln!(conf, "protocol static {}_{suffix} {{", self.name);
            if disabled {
                conf.push_str("  disabled;\n");
            }
            let _ = writeln!(conf, "  {channel};");
            for prefix in routes {
                let _ = writeln!(conf, "  route {prefix} blackhole;");
            }
            conf.push_str("}\n");
        }
        let name = &self.name;
        let remote = self.remote.unwrap_or(remote);
        let _ = writeln!(conf, "protocol bgp {name} {{");
        let _ = writeln!(
            conf,
            "  local {} port {} as {BIRD_AS};",
            self.address, self.port
        );
        let _ = writeln!(
            conf,
            "  neighbor {remote} port {} as {WASMBGP_AS};",
            self.remote_port
        );
        conf.push_str("  passive on;\n  multihop;\n  hold time 30;\n");
        conf.push_str("  debug { states, events };\n");
        // Short and capped: a Cease received does not hold the next session back
        // longer than wasmbgp's restart delay.
        conf.push_str("  error wait time 1, 2;\n");
        let _ = writeln!(
            conf,
            "  ipv4 {{ import all; export where proto = \"{name}_s4\" || proto = \"{name}_l4\"; }};"
        );
        let _ = writeln!(
            conf,
            "  ipv6 {{ import all; export where proto = \"{name}_s6\"; next hop address {BIRD_NEXT_HOP6}; }};"
        );
        conf.push_str("}\n");
        conf
    }
}

/// A BIRD 2 with one passive BGP protocol per wasmbgp neighbor (IPv4 and IPv6 channels
/// over an IPv4 session), killed on drop.
#[derive(Debug)]
pub struct LimitBird {
    dir: PathBuf,
    /// The sessions.
    pub sessions: Vec<LimitSession>,
    _daemon: Daemon,
}

impl LimitBird {
    /// Writes the config (router id `router_id`, every session toward `remote` as
    /// [`WASMBGP_AS`] unless it names another [`LimitSession::remote`]), has `bird -p` accept it, starts BIRD and waits for `birdc`.
    pub fn start(
        dir: &Path,
        router_id: Ipv4Addr,
        remote: Ipv4Addr,
        sessions: Vec<LimitSession>,
    ) -> Result<Self> {
        let mut conf = bird::config_head(dir, router_id);
        for s in &sessions {
            conf.push_str(&s.render(remote));
        }
        let daemon = bird::start_daemon(dir, &conf)?;
        let bird = Self {
            dir: dir.to_path_buf(),
            sessions,
            _daemon: daemon,
        };
        bird::wait_daemon_up(dir, DEFAULT_TIMEOUT)?;
        Ok(bird)
    }

    /// `birdc -s SOCK ARGS`, which must exit 0 and reach BIRD.
    pub fn birdc(&self, args: &[&str]) -> Result<String> {
        bird::birdc(&self.dir, args)
    }

    /// Protocol `name`'s line of `show protocols` (it must be there and be BGP).
    pub fn line(&self, name: &str) -> Result<ProtocolLine> {
        let line = bird::protocol_line(&self.birdc(&["show", "protocols", name])?, name)?;
        ensure!(line.proto == "BGP", "protocol {name} is not BGP: {line:?}");
        Ok(line)
    }

    /// Whether protocol `name` is Established.
    pub fn established(&self, name: &str) -> Result<bool> {
        Ok(self.line(name)?.info.starts_with("Established"))
    }

    /// `Last error:` of protocol `name`, if any.
    pub fn last_error(&self, name: &str) -> Result<Option<String>> {
        let out = self.birdc(&["show", "protocols", "all", name])?;
        bird::protocol_line(&out, name)?;
        Ok(out
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Last error:"))
            .next_back()
            .map(|rest| rest.trim().to_owned()))
    }

    /// How many routes BIRD holds from protocol `name` (`show route protocol NAME
    /// count`, which must answer).
    pub fn count(&self, name: &str) -> Result<u64> {
        bird::parse_count(&self.birdc(&["show", "route", "protocol", name, "count"])?)
    }

    /// The prefixes BIRD holds from protocol `name`, sorted.
    pub fn prefixes(&self, name: &str) -> Result<Vec<String>> {
        let out = self.birdc(&["show", "route", "all", "protocol", name])?;
        let mut prefixes: Vec<String> = bird::parse_show_route_all(&out)?
            .into_iter()
            .map(|r| r.prefix)
            .collect();
        prefixes.sort();
        Ok(prefixes)
    }

    /// The MED of the route BIRD holds for `prefix` from protocol `name` (the route must
    /// be there).
    pub fn med(&self, name: &str, prefix: &str) -> Result<Option<u32>> {
        let out = self.birdc(&["show", "route", "for", prefix, "all", "protocol", name])?;
        let route = bird::parse_show_route_all(&out)?
            .into_iter()
            .next()
            .with_context(|| format!("BIRD has no route for {prefix} from {name}: {out}"))?;
        Ok(route.med)
    }

    /// `birdc enable PROTOCOL`, which must answer `PROTOCOL: enabled`.
    pub fn enable(&self, protocol: &str) -> Result<()> {
        let out = self.birdc(&["enable", protocol])?;
        ensure!(
            out.lines()
                .any(|l| l.trim() == format!("{protocol}: enabled")),
            "birdc enable {protocol} answered {out:?}"
        );
        Ok(())
    }

    /// BIRD's log file so far (`bird.log`, which BIRD writes from its start: a file
    /// that cannot be read is an error, not an empty log).
    pub fn log(&self) -> Result<String> {
        let path = self.dir.join("bird.log");
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
    }

    /// The lines of BIRD's log where protocol `name` reports a NOTIFICATION received
    /// (`<RMT> NAME: Received: ...`), each from `Received:` on.
    pub fn received(&self, name: &str) -> Result<Vec<String>> {
        Ok(received_lines(&self.log()?, name))
    }

    /// The lines of BIRD's log about protocol `name` ([`protocol_log`]).
    pub fn protocol_log(&self, name: &str) -> Result<Vec<BirdLogLine>> {
        Ok(protocol_log(&self.log()?, name))
    }

    /// `show protocols` and the log's tail (and BIRD's output), for a failure.
    pub fn diagnostics(&self) -> String {
        format!(
            "--- BIRD:\n{}\n{}\n",
            self.birdc(&["show", "protocols"])
                .unwrap_or_else(|e| format!("{e:#}")),
            tail(&bird::read_log(&self.dir), 40)
        )
    }
}

/// One line of a BIRD log about a protocol: `YYYY-MM-DD HH:MM:SS.mmm <CLASS> NAME: TEXT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirdLogLine {
    /// The time, in milliseconds since 1970-01-01 in BIRD's time zone (only compared
    /// with other lines of the same log).
    pub millis: i64,
    /// `RMT`, `TRACE`, `INFO`, ...
    pub class: String,
    /// What follows `NAME: `.
    pub text: String,
}

/// The lines of a BIRD log about protocol `name`, in order (lines without a time of
/// the form BIRD writes, `YYYY-MM-DD HH:MM:SS.mmm`, are left out).
pub fn protocol_log(log: &str, name: &str) -> Vec<BirdLogLine> {
    let tag = format!("> {name}: ");
    log.lines()
        .filter_map(|line| {
            let millis = bird_log_millis(line)?;
            let open = line.find(" <")?;
            let at = line.find(&tag)?;
            (open < at).then(|| BirdLogLine {
                millis,
                class: line[open + 2..at].to_owned(),
                text: line[at + tag.len()..].to_owned(),
            })
        })
        .collect()
}

/// The time of a BIRD log line (`YYYY-MM-DD HH:MM:SS.mmm ...`), in milliseconds since
/// 1970-01-01.
pub fn bird_log_millis(line: &str) -> Option<i64> {
    let date = line.get(..10)?;
    let time = line.get(11..23)?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, ms) = time.split_once('.')?;
    let mut t = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min, sec) = (t.next()??, t.next()??, t.next()??);
    let ms: i64 = ms.parse().ok()?;
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((((days * 24 + h) * 60 + min) * 60 + sec) * 1000 + ms)
}

/// The lines of a BIRD log where protocol `name` reports a NOTIFICATION received
/// (`... <RMT> NAME: Received: ...`), each from `Received:` on.
pub fn received_lines(log: &str, name: &str) -> Vec<String> {
    protocol_log(log, name)
        .into_iter()
        .filter(|l| l.class == "RMT" && l.text.starts_with("Received: "))
        .map(|l| l.text)
        .collect()
}

// ---------------------------------------------------------------------------
// wasmbgp: `Config` plus raw lines, with its daemon at hand.

/// [`Config::render`] with `top` lines before the first table (such as
/// `shutdown-message = "..."`) and, for each `(address, lines)` of `neighbors`, the
/// lines right after that neighbor's `address = "..."` (such as `max-prefixes = 10`).
pub fn render_config(
    config: &Config,
    socket: &Path,
    top: &[String],
    neighbors: &[(String, Vec<String>)],
) -> Result<String> {
    let mut text = config.render(socket);
    for (address, lines) in neighbors {
        let key = format!("\naddress = \"{address}\"\n");
        let at = text
            .find(&key)
            .with_context(|| format!("no neighbor {address} in the config"))?
            + key.len();
        ensure!(
            text[at..].find(&key).is_none(),
            "neighbor {address} is in the config twice"
        );
        let block: String = lines.iter().map(|l| format!("{l}\n")).collect();
        text.insert_str(at, &block);
    }
    let at = text.find("\n[").unwrap_or(text.len());
    let top: String = top.iter().map(|l| format!("{l}\n")).collect();
    text.insert_str(at, &format!("\n{top}"));
    Ok(text)
}

/// `shutdown-message = "TEXT"` (TOML-quoted).
pub fn shutdown_message_line(text: &str) -> String {
    format!("shutdown-message = {}", toml_str(text))
}

/// A running `wasmbgp run`, owned with its process so that it can be signalled and its
/// exit status read; killed on drop.
#[derive(Debug)]
pub struct LimitSpeaker {
    dir: PathBuf,
    socket: PathBuf,
    daemon: Daemon,
}

impl LimitSpeaker {
    /// Where the config of an instance in `dir` puts its control socket.
    pub fn socket_in(dir: &Path) -> PathBuf {
        dir.join("wasmbgp.sock")
    }

    /// Writes `text` (control socket at [`LimitSpeaker::socket_in`]) into `dir`, has
    /// `wasmbgp check` accept it, starts `wasmbgp run` (text log at `log_level`) and
    /// waits for the control socket.
    pub fn start(dir: &Path, text: &str, log_level: &str) -> Result<Self> {
        let socket = Self::socket_in(dir);
        let launch = Launch {
            log_level: log_level.to_owned(),
            ..Launch::default()
        };
        let (_, mut daemon) = spawn_checked_with(dir, text, &[], &launch)?;
        wait_socket(&mut daemon, dir, &socket)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            socket,
            daemon,
        })
    }

    /// `wasmbgp ctl --socket SOCK ARGS...`, which must exit 0.
    pub fn ctl(&self, args: &[&str]) -> Result<String> {
        ctl(&self.socket, args)
    }

    /// `wasmbgp ctl --socket SOCK -` with `commands` on stdin (one per line, written
    /// from a thread while the answers are read); the answer lines (one per command,
    /// or an error) and the exit status.
    pub fn ctl_batch(&self, commands: &[String]) -> Result<(Vec<String>, ExitStatus)> {
        ctl_batch(&self.socket, commands)
    }

    /// `show neighbors --json`, entry `address`.
    pub fn neighbor(&self, address: Ipv4Addr) -> Result<Value> {
        let json = ctl_json(&self.socket, &["show", "neighbors", "--json"])?;
        let want = address.to_string();
        json.as_array()
            .with_context(|| format!("show neighbors --json is not an array: {json}"))?
            .iter()
            .find(|n| n["address"].as_str() == Some(want.as_str()))
            .cloned()
            .with_context(|| format!("neighbor {address} missing from show neighbors: {json}"))
    }

    /// `(state, established-count)` of neighbor `address`.
    pub fn session(&self, address: Ipv4Addr) -> Result<(String, u64)> {
        let n = self.neighbor(address)?;
        Ok((
            n["state"]
                .as_str()
                .with_context(|| format!("neighbor without state: {n}"))?
                .to_owned(),
            n["established-count"]
                .as_u64()
                .with_context(|| format!("neighbor without established-count: {n}"))?,
        ))
    }

    /// The line of neighbor `address` in `show neighbors` (text).
    pub fn neighbor_line(&self, address: Ipv4Addr) -> Result<String> {
        let out = self.ctl(&["show", "neighbors"])?;
        let want = address.to_string();
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(want.as_str()))
            .map(str::to_owned)
            .with_context(|| format!("no line for {address} in show neighbors: {out}"))
    }

    /// `show metrics` (the Prometheus exposition).
    pub fn metrics(&self) -> Result<String> {
        self.ctl(&["show", "metrics"])
    }

    /// The value of `name{labels}` in `show metrics` (`None`: no such series).
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Result<Option<f64>> {
        Ok(metric_value(&self.metrics()?, name, labels))
    }

    /// Sends `signal` to the daemon.
    pub fn signal(&self, signal: libc::c_int) -> Result<()> {
        self.daemon.signal(signal)
    }

    /// Waits up to `timeout` for the daemon to exit; its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        self.daemon.wait_exit(timeout)
    }

    /// The daemon's log so far (`DIR/wasmbgp.log`, which must be readable), colours
    /// stripped.
    pub fn log(&self) -> Result<String> {
        let path = self.dir.join("wasmbgp.log");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Ok(strip_ansi(&text))
    }

    /// `show neighbors` and the log's tail, for a failure.
    pub fn diagnostics(&self) -> String {
        format!(
            "--- wasmbgp:\n{}\n{}\n",
            self.ctl(&["show", "neighbors"])
                .unwrap_or_else(|e| format!("{e:#}")),
            tail(&self.log().unwrap_or_else(|e| format!("{e:#}")), 40)
        )
    }
}

/// Fails unless `status` is a clean exit 0.
pub fn ensure_exit_0(status: ExitStatus, what: &str) -> Result<()> {
    if status.success() {
        return Ok(());
    }
    bail!("{what}: wasmbgp exited with {status}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_past_255() {
        assert_eq!(LimitBlock(258).addr(1), Ipv4Addr::new(127, 1, 2, 1));
        assert_eq!(LimitBlock(261).port(9), 12619);
        assert_eq!(v4_prefixes(0, 2), vec!["100.64.0.0/24", "100.64.1.0/24"]);
        assert_eq!(v4_prefixes(1, 1), vec!["100.65.0.0/24"]);
        assert_eq!(
            v6_prefixes(1, 2),
            vec!["2001:db8:101::/64", "2001:db8:101:1::/64"]
        );
    }

    #[test]
    fn bird_received_lines() {
        let log = "2026-12-02 01:00:00.123 <RMT> over: Received: Maximum number of prefixes reached: 0001010000000a\n2026-12-02 01:00:00.124 <RMT> other: Received: Administrative shutdown\n2026-12-02 01:00:00.200 <TRACE> over: State changed to stop\n";
        assert_eq!(
            received_lines(log, "over"),
            vec!["Received: Maximum number of prefixes reached: 0001010000000a"]
        );
        assert!(received_lines(log, "ove").is_empty());
        let lines = protocol_log(log, "over");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].class, "TRACE");
        assert_eq!(lines[1].millis - lines[0].millis, 77);
        assert_eq!(
            bird_log_millis("1970-01-02 00:00:01.002 x"),
            Some(86_401_002)
        );
        assert_eq!(
            bird_log_millis("2026-03-01 00:00:00.000 x").unwrap()
                - bird_log_millis("2026-02-28 23:59:59.999 x").unwrap(),
            1
        );
    }

    #[test]
    fn config_lines_go_where_they_belong() {
        let config = Config {
            router_id: "127.1.2.1".into(),
            local_as: WASMBGP_AS,
            listen: None,
            neighbors: vec![
                crate::wasmbgp::NeighborConfig::new("127.1.2.2", 12580, BIRD_AS, "127.1.2.1"),
                crate::wasmbgp::NeighborConfig::new("127.1.2.3", 12581, BIRD_AS, "127.1.2.1"),
            ],
            routes: Vec::new(),
            route_files: Vec::new(),
        };
        let text = render_config(
            &config,
            Path::new("/s.sock"),
            &[shutdown_message_line("a \"b\"")],
            &[("127.1.2.3".into(), vec!["max-prefixes = 10".into()])],
        )
        .unwrap();
        let top = text.find("shutdown-message = \"a \\\"b\\\"\"").unwrap();
        assert!(top < text.find("[control]").unwrap(), "{text}");
        let second = text.find("address = \"127.1.2.3\"\nmax-prefixes = 10\n");
        assert!(second.is_some(), "{text}");
        assert_eq!(text.matches("max-prefixes").count(), 1, "{text}");
    }
}
