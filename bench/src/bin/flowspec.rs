//! wasmbgp FlowSpec benchmark (issue 12, "Must show" 5; not a test): prints a results
//! table.
//!
//! `--rules` (100,000) distinct flow rules of one family, rule `i` being
//! `destination D(i); protocol tcp; destination-port =80;` with the action
//! `rate-limit 9600` (traffic-rate-bytes, RFC 8955 §7), where `D(i)` is the /32 at
//! 20.0.0.0 + i (20.0.0.0 … 20.1.134.159 for 100k; IPv6: the /128 at 2a02:: + i and
//! `next-header tcp`). Per run and family, each with fresh daemons:
//!
//! 1. **ctl**: wasmbgp with no rule (`families = ["ipv4-unicast", "ipv4-flowspec"]`)
//!    peered with a BIRD 2 receiver (a `flow4` table, its channel `validate no; import
//!    all`); once Established and idle, its VmHWM / VmRSS (the baseline of 2 too). Then
//!    the N rules as `announce flow route { match { … } then { rate-limit 9600; } }`
//!    lines piped into `wasmbgp ctl -`: first write → BIRD's flow channel holds N
//!    (`show protocols all NAME`, `Routes: N imported` of the channel, polled every
//!    `--poll-ms` over BIRD's control socket), first write → the last answer (the ctl
//!    throughput), VmHWM / VmRSS growth per rule; then N `withdraw flow route` lines →
//!    BIRD holds none.
//! 2. **config**: the same rules in the config: a `[[flow-file]]` of N lines (the bulk
//!    form), or with `--form tables` N `[[flow]]` tables (`match = "…"`, `then =
//!    "rate-limit 9600"`). `wasmbgp check` of it (wall time and the
//!    process's peak RSS from `wait4`); then wasmbgp started with it toward a fresh BIRD
//!    receiver: spawn → `wasmbgp started`, `session established` → BIRD holds the first
//!    rule, 99 %, all N; the `sent the Adj-RIB-Out` figures; VmHWM / VmRSS once all are
//!    held, minus the baseline of 1 = bytes per rule.
//! 3. **BIRD → BIRD**: a BIRD 2 originator with the same N rules as static `flow4`
//!    routes (`route flow4 { dst …; proto 6; dport 80; } { bgp_ext_community.add(…); };`,
//!    its BGP protocol enabled once the static protocol holds them all) toward a BIRD 2
//!    receiver: originator's `State changed to up` → the receiver holds N; the
//!    originator's VmHWM / VmRSS minus those of the same BIRD without the routes. Each
//!    poll also wakes the originator (BIRD's 3-second tail: bench/README.md).
//!
//! Every held table is checked: BIRD's count of the table by a `birdc` process (its exit
//! status checked) must be N, and 3 sampled rules must be there with the rate-limit
//! community (`(generic, 0x80060000, 0x46160000)`).
//!
//! Loopback only (127.82.0.1–4, ephemeral ports), a fresh /tmp/wasmbgp-bench-flowspec.PID,
//! every wait bounded in time and count, every process started here stopped at the end
//! (also on error; PR_SET_PDEATHSIG if this dies).

#[path = "../harness.rs"]
#[macro_use]
mod harness;

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::*;

/// wasmbgp.
const W: Ipv4Addr = Ipv4Addr::new(127, 82, 0, 1);
/// BIRD receiving from wasmbgp.
const RX: Ipv4Addr = Ipv4Addr::new(127, 82, 0, 2);
/// BIRD originating the rules.
const BO: Ipv4Addr = Ipv4Addr::new(127, 82, 0, 3);
/// BIRD receiving from the BIRD originator.
const BR: Ipv4Addr = Ipv4Addr::new(127, 82, 0, 4);
/// Other processes using more than this share of one CPU during a phase make it "busy".
const BUSY_SHARE: f64 = 0.25;
/// BIRD's rendering of the `rate-limit 9600` extended community.
const RATE_COMMUNITY: &str = "(generic, 0x80060000, 0x46160000)";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fam {
    V4,
    V6,
}

impl Fam {
    fn label(self) -> &'static str {
        match self {
            Fam::V4 => "IPv4",
            Fam::V6 => "IPv6",
        }
    }
    fn family(self) -> &'static str {
        match self {
            Fam::V4 => "ipv4-flowspec",
            Fam::V6 => "ipv6-flowspec",
        }
    }
    fn channel(self) -> &'static str {
        match self {
            Fam::V4 => "flow4",
            Fam::V6 => "flow6",
        }
    }
    fn table(self) -> &'static str {
        match self {
            Fam::V4 => "flowtab4",
            Fam::V6 => "flowtab6",
        }
    }
    /// The destination of rule `i`.
    fn dest(self, i: u32) -> String {
        match self {
            Fam::V4 => format!("{}/32", Ipv4Addr::from((20u32 << 24) + i)),
            Fam::V6 => format!("{}/128", Ipv6Addr::from((0x2a02u128 << 112) | i as u128)),
        }
    }
    /// Rule `i`'s match conditions in wasmbgp's (ExaBGP's) words.
    fn words(self, i: u32) -> String {
        let proto = match self {
            Fam::V4 => "protocol",
            Fam::V6 => "next-header",
        };
        format!(
            "destination {}; {proto} tcp; destination-port =80;",
            self.dest(i)
        )
    }
    /// Rule `i` as BIRD writes it (`flow4 { dst …; proto 6; dport 80; }`).
    fn bird_net(self, i: u32) -> String {
        match self {
            Fam::V4 => format!("flow4 {{ dst {}; proto 6; dport 80; }}", self.dest(i)),
            Fam::V6 => format!("flow6 {{ dst {}; next header 6; dport 80; }}", self.dest(i)),
        }
    }
    fn describe(self) -> &'static str {
        match self {
            Fam::V4 => {
                "`destination 20.0.0.0/32 + i; protocol tcp; destination-port =80;` → `rate-limit 9600`"
            }
            Fam::V6 => {
                "`destination 2a02::/128 + i; next-header tcp; destination-port =80;` → `rate-limit 9600`"
            }
        }
    }
}

struct Opts {
    wasmbgp: PathBuf,
    bird: String,
    birdc: String,
    runs: usize,
    rules: u32,
    fams: Vec<Fam>,
    ctl: bool,
    config: bool,
    bird_ref: bool,
    poll: Duration,
    keep: bool,
    /// The config phase's form: one `[[flow-file]]` (the bulk form) or N `[[flow]]` tables.
    tables: bool,
    results: Option<PathBuf>,
    /// HEAD and whether host/ or Cargo.lock had uncommitted changes, at the start.
    tree_at_start: (String, bool),
}

fn parse_opts() -> Result<Opts> {
    let root = root();
    let mut o = Opts {
        wasmbgp: root.join("target/release/wasmbgp"),
        bird: "bird".into(),
        birdc: "birdc".into(),
        runs: 3,
        rules: 100_000,
        fams: vec![Fam::V4, Fam::V6],
        ctl: true,
        config: true,
        bird_ref: true,
        poll: Duration::from_millis(5),
        keep: false,
        tables: false,
        results: Some(root.join("bench/results-flowspec.md")),
        tree_at_start: tree_state(sh),
    };
    let mut args = cli_args();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--wasmbgp" => o.wasmbgp = args.val("--wasmbgp")?.into(),
            "--bird" => o.bird = args.val("--bird")?,
            "--birdc" => o.birdc = args.val("--birdc")?,
            "--runs" => o.runs = args.num("--runs")? as usize,
            "--rules" => o.rules = args.num("--rules")? as u32,
            "--family" => {
                o.fams = match args.val("--family")?.as_str() {
                    "ipv4" => vec![Fam::V4],
                    "ipv6" => vec![Fam::V6],
                    "both" => vec![Fam::V4, Fam::V6],
                    f => bail!("--family ipv4|ipv6|both, not {f:?}"),
                }
            }
            "--no-ctl" => o.ctl = false,
            "--no-config" => o.config = false,
            "--no-bird" => o.bird_ref = false,
            "--poll-ms" => o.poll = Duration::from_millis(args.num("--poll-ms")?),
            "--results" => o.results = Some(args.val("--results")?.into()),
            "--no-results" => o.results = None,
            "--keep" => o.keep = true,
            "--form" => {
                o.tables = match args.val("--form")?.as_str() {
                    "file" => false,
                    "tables" => true,
                    f => bail!("--form file|tables, not {f:?}"),
                };
                if o.results
                    .as_ref()
                    .is_some_and(|r| r.ends_with("results-flowspec.md"))
                    && o.tables
                {
                    o.results = Some(root.join("bench/results-flowspec-tables.md"));
                }
            }
            "-h" | "--help" => {
                println!(
                    "usage: wasmbgp-bench-flowspec [--runs N (3)] [--rules N (100000)] [--family ipv4|ipv6|both (both)]\n\
                     \x20   [--no-ctl] [--no-config] [--no-bird: no BIRD → BIRD reference] [--poll-ms MS (5)]\n\
                     \x20   [--form file|tables (file)] [--wasmbgp PATH] [--bird PATH] [--birdc PATH] [--results FILE | --no-results] [--keep]\n\
                     Per run and family: N rules piped into `wasmbgp ctl -` (announce, then withdraw), the same N as\n\
                     rules in the config (one [[flow-file]], or N [[flow]] tables with --form tables: results-flowspec-tables.md), and BIRD originating them (static flow routes) to another BIRD;\n\
                     time until a BIRD 2 receiver holds them all, and peak RSS per rule. Loopback 127.82.0.1-4 only."
                );
                std::process::exit(0);
            }
            _ => bail!("unknown argument {a:?} (try --help)"),
        }
    }
    if o.runs == 0
        || o.runs > 20
        || o.rules < 100
        || o.rules > 1_000_000
        || o.poll.is_zero()
        || o.poll > Duration::from_millis(100)
    {
        bail!("--runs 1..=20, --rules 100..=1000000, --poll-ms 1..=100");
    }
    if !o.wasmbgp.is_file() && (o.ctl || o.config) {
        bail!(
            "{} not found: run `cargo build --release -p wasmbgp` first",
            o.wasmbgp.display()
        );
    }
    Ok(o)
}

// ---------------------------------------------------------------------------------------
// Machine

fn is_busy(b: (f64, bool)) -> bool {
    b.1 || b.0 > BUSY_SHARE
}

// ---------------------------------------------------------------------------------------
// BIRD

/// `Routes: N imported` of one channel of a protocol (`show protocols all NAME`).
fn channel_imported(b: &mut Birdc, proto: &str, channel: &str) -> Result<u64> {
    let r = b.cmd(&format!("show protocols all {proto}"))?;
    let mut in_channel = false;
    for l in r.lines() {
        // Reply lines start with a code (`1006-`) or a space (continuation).
        let l = l
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == '-')
            .trim();
        if let Some(name) = l.strip_prefix("Channel ") {
            in_channel = name.trim() == channel;
        } else if in_channel && let Some(rest) = l.strip_prefix("Routes:") {
            let n = rest.split_whitespace().next().unwrap_or("0");
            return n.parse().map_err(|e| format!("Routes: {e}"));
        }
    }
    Ok(0)
}

/// Polls a channel's imported count every `poll` until it has met every target (`>=`
/// each, or with `down`, `<=`); the wall time (epoch) each was first met. Each poll also
/// sends `show protocols` to `wake` (a BIRD originator holding its last UPDATE until its
/// main loop wakes). Bounded by `timeout`.
#[allow(clippy::too_many_arguments)]
fn wait_channel(
    rx: &mut Bird,
    proto: &str,
    channel: &str,
    targets: &[u64],
    down: bool,
    mut wake: Option<&mut Bird>,
    poll: Duration,
    timeout: Duration,
) -> Result<Vec<f64>> {
    let t0 = Instant::now();
    let mut seen = vec![None; targets.len()];
    let mut last = 0;
    let max_polls = (timeout.as_micros() / poll.as_micros().max(1)) as u64 + 10;
    for _ in 0..max_polls {
        if let Some(w) = wake.as_deref_mut() {
            w.ctl.cmd("show protocols")?;
        }
        let n = channel_imported(&mut rx.ctl, proto, channel)?;
        let t = now();
        last = n;
        for (i, th) in targets.iter().enumerate() {
            let met = if down { n <= *th } else { n >= *th };
            if seen[i].is_none() && met {
                seen[i] = Some(t);
            }
        }
        if seen.iter().all(Option::is_some) {
            return Ok(seen.into_iter().flatten().collect());
        }
        if let Some(e) = rx.proc.exited() {
            bail!("{e}");
        }
        if t0.elapsed() > timeout {
            break;
        }
        std::thread::sleep(poll);
    }
    bail!("{proto} {channel}: {last} rules after {timeout:?}, targets {targets:?}")
}

/// The number of routes in a table by a `birdc` process (`show route table T count`),
/// failing when birdc does.
fn birdc_count(o: &Opts, sock: &Path, table: &str) -> Result<u64> {
    let out = Command::new("timeout")
        .arg("60")
        .arg(&o.birdc)
        .arg("-s")
        .arg(sock)
        .args(["show", "route", "table", table, "count"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("birdc: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "birdc show route table {table} count: {}: {}",
            out.status,
            text.trim()
        );
    }
    // `100000 of 100000 routes for 100000 networks in table flowtab4`
    text.lines()
        .find(|l| l.contains(" routes for "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("birdc count: no count in {:?}", text.trim()))
}

/// Whether 3 sampled rules (first, middle, last) are in the table with the rate-limit
/// community; `Err` names the first that is not.
fn check_samples(b: &mut Bird, fam: Fam, n: u32) -> Result<()> {
    for i in [0, n / 2, n - 1] {
        let r = b.ctl.cmd(&format!(
            "show route table {} {} all",
            fam.table(),
            fam.bird_net(i)
        ))?;
        if !r.contains(RATE_COMMUNITY) {
            bail!(
                "rule {i} ({}) is not held with {RATE_COMMUNITY}: {:?}",
                fam.bird_net(i),
                r.chars().take(300).collect::<String>()
            );
        }
    }
    Ok(())
}

/// Checks the held table: birdc's count and the samples; the problems found.
fn check_table(o: &Opts, b: &mut Bird, sock: &Path, fam: Fam, n: u32) -> Vec<String> {
    let mut problems = Vec::new();
    match birdc_count(o, sock, fam.table()) {
        Ok(c) if c == n as u64 => {}
        Ok(c) => problems.push(format!(
            "birdc counts {c} routes in {}, not {n}",
            fam.table()
        )),
        Err(e) => problems.push(e),
    }
    if let Err(e) = check_samples(b, fam, n) {
        problems.push(e);
    }
    problems
}

fn receiver_conf(
    fam: Fam,
    me: Ipv4Addr,
    my_port: u16,
    peer: Ipv4Addr,
    peer_port: u16,
    peer_as: u32,
    proto: &str,
) -> String {
    format!(
        "router id {me};\nprotocol device {{}}\n{ch} table {tab};\n\
         protocol bgp {proto} {{ local {me} port {my_port} as 65000; neighbor {peer} port {peer_port} as {peer_as};\n\
         multihop; connect delay time 1; connect retry time 1; debug {{ states }};\n\
         ipv4 {{ import all; export none; }};\n\
         {ch} {{ table {tab}; validate no; import all; export none; }};\n}}\n",
        ch = fam.channel(),
        tab = fam.table(),
    )
}

fn originator_conf(fam: Fam, statics: Option<&Path>, op: u16, rp: u16) -> String {
    let include = statics
        .map(|p| format!("include \"{}\";\n", p.display()))
        .unwrap_or_default();
    format!(
        "router id {BO};\nprotocol device {{}}\n{ch} table {tab};\n\
         protocol static orig {{ {ch} {{ table {tab}; }};\n{include}}}\n\
         protocol bgp feed {{ disabled; local {BO} port {op} as 65002; neighbor {BR} port {rp} as 65000;\n\
         multihop; connect delay time 1; connect retry time 1; debug {{ states }};\n\
         ipv4 {{ import none; export none; }};\n\
         {ch} {{ table {tab}; validate no; import none; export all; }};\n}}\n",
        ch = fam.channel(),
        tab = fam.table(),
    )
}

// ---------------------------------------------------------------------------------------
// wasmbgp

fn wasmbgp_conf(fam: Fam, d: &Path, wp: u16, rp: u16, rules: Option<u32>, tables: bool) -> String {
    let mut s = format!(
        r#"router-id = "{W}"
local-as = 65001
listen = "{W}:{wp}"
[control]
socket = "{sock}"
[[neighbor]]
address = "{RX}"
port = {rp}
peer-as = 65000
local-address = "{W}"
families = ["ipv4-unicast", "{family}"]
connect-retry = "1s"
"#,
        sock = d.join("wasmbgp.sock").display(),
        family = fam.family(),
    );
    if let Some(n) = rules.filter(|_| !tables) {
        let mut lines = String::with_capacity(n as usize * 80);
        for i in 0..n {
            lines.push_str(&fam.words(i).replace(';', ""));
            lines.push_str(" rate-limit 9600\n");
        }
        if let Err(e) = std::fs::write(d.join("rules.flows"), lines) {
            eprintln!("cannot write {}: {e}", d.join("rules.flows").display());
        }
        s.push_str("[[flow-file]]\npath = \"rules.flows\"\n");
    }
    if let Some(n) = rules.filter(|_| tables) {
        s.reserve(n as usize * 110);
        for i in 0..n {
            s.push_str(&format!(
                "[[flow]]\nmatch = \"{}\"\nthen = \"rate-limit 9600\"\n",
                fam.words(i)
            ));
        }
    }
    s
}

/// `wasmbgp check CONF`: wall time and the process's peak RSS (`wait4`'s `ru_maxrss`),
/// bounded to 5 minutes.
fn timed_check(o: &Opts, conf: &Path, cache: &Path) -> Result<(f64, u64)> {
    let out = conf.with_extension("check.out");
    let file = std::fs::File::create(&out).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&o.wasmbgp);
    cmd.arg("check")
        .arg(conf)
        .arg("--cache-dir")
        .arg(cache)
        .stdin(Stdio::null())
        .stdout(file.try_clone().map_err(|e| e.to_string())?)
        .stderr(file);
    // SAFETY: prctl is async-signal-safe; the child dies with this (spawning) thread.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let t0 = Instant::now();
    // Reaped here with wait4 (not by `Child`), for its rusage.
    let child = cmd.spawn().map_err(|e| format!("wasmbgp check: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let deadline = t0 + Duration::from_secs(300);
    let mut status = 0;
    // SAFETY: plain syscalls on our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid {
            break;
        }
        if r < 0 {
            bail!("wait4: {}", std::io::Error::last_os_error());
        }
        if Instant::now() > deadline {
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::wait4(pid, &mut status, 0, &mut ru);
            }
            bail!("wasmbgp check {} took more than 5 minutes", conf.display());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let wall = t0.elapsed().as_secs_f64();
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!(
            "wasmbgp check {} failed: {}",
            conf.display(),
            std::fs::read_to_string(&out).unwrap_or_default().trim()
        );
    }
    Ok((wall, ru.ru_maxrss as u64 * 1024))
}

/// What a `wasmbgp ctl -` batch gave: time from the first write to the last answer,
/// answers, errors (answers other than `ok`) and the first error.
#[derive(Default, Clone)]
struct Batch {
    to_bird: f64,
    answers_s: f64,
    answers: u64,
    errors: u64,
    first_error: Option<String>,
}

/// Pipes `lines` into `wasmbgp ctl --socket SOCK -` and waits until BIRD's channel meets
/// `target` (`down`: at most); times from the first write.
#[allow(clippy::too_many_arguments)]
fn ctl_batch(
    o: &Opts,
    sock: &Path,
    lines: Vec<u8>,
    expect_answers: u64,
    rx: &mut Bird,
    fam: Fam,
    target: u64,
    down: bool,
) -> Result<Batch> {
    let mut ctl = Proc::spawn(
        "wasmbgp ctl",
        Command::new(&o.wasmbgp)
            .args(["ctl", "--socket"])
            .arg(sock)
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()),
    )?;
    let mut stdin = ctl.child.stdin.take().ok_or("no ctl stdin")?;
    let stdout = ctl.child.stdout.take().ok_or("no ctl stdout")?;
    let reader = std::thread::spawn(move || {
        let (mut last, mut answers, mut errors, mut first) = (now(), 0u64, 0u64, None);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            last = now();
            answers += 1;
            if line != "ok" {
                errors += 1;
                first.get_or_insert(line);
            }
        }
        (last, answers, errors, first)
    });
    let t0 = now();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&lines);
        drop(stdin);
    });
    let seen = wait_channel(
        rx,
        "wasm",
        fam.channel(),
        &[target],
        down,
        None,
        o.poll,
        Duration::from_secs(120),
    );
    let _ = writer.join();
    let deadline = Instant::now() + Duration::from_secs(60);
    while ctl.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    ctl.stop();
    let (last, answers, errors, first) = reader.join().map_err(|_| "ctl reader panicked")?;
    let seen = seen?;
    Ok(Batch {
        to_bird: seen[0] - t0,
        answers_s: last - t0,
        answers,
        errors: errors + expect_answers.saturating_sub(answers),
        first_error: first,
    })
}

// ---------------------------------------------------------------------------------------
// Phases

/// One run of one family: every figure, `None` where the phase did not run.
#[derive(Default, Clone)]
struct Run {
    // 1. ctl (and the baseline)
    hwm_empty: Option<u64>,
    rss_empty: Option<u64>,
    announce: Option<Batch>,
    hwm_ctl: Option<u64>,
    rss_ctl: Option<u64>,
    ctl_cpu: Option<f64>,
    withdraw: Option<Batch>,
    rx_rss_before: Option<u64>,
    rx_rss_held: Option<u64>,
    ctl_machine: Option<(f64, bool)>,
    // 2. config
    check_s: Option<f64>,
    check_maxrss: Option<u64>,
    conf_bytes: Option<u64>,
    load_s: Option<f64>,
    est_first: Option<f64>,
    est_99: Option<f64>,
    est_100: Option<f64>,
    rx_up_100: Option<f64>,
    spawn_100: Option<f64>,
    cpu_to_100: Option<f64>,
    encode_ms: Option<f64>,
    messages: Option<u64>,
    bytes: Option<u64>,
    hwm_full: Option<u64>,
    rss_full: Option<u64>,
    conf_machine: Option<(f64, bool)>,
    // 3. BIRD → BIRD
    b_load: Option<f64>,
    b_first: Option<f64>,
    b_99: Option<f64>,
    b_100: Option<f64>,
    b_rx_up_100: Option<f64>,
    b_cpu: Option<f64>,
    b_hwm: Option<u64>,
    b_rss: Option<u64>,
    b_hwm_empty: Option<u64>,
    b_rss_empty: Option<u64>,
    b_rx_rss_before: Option<u64>,
    b_rx_rss_held: Option<u64>,
    b_machine: Option<(f64, bool)>,
    problems: Vec<String>,
    /// wasmbgp's WARN and ERROR log lines.
    warnings: Vec<String>,
}

fn mkdir(d: &Path) -> Result<()> {
    std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))
}

fn lines(n: u32, f: impl Fn(u32) -> String) -> Vec<u8> {
    let mut v = Vec::with_capacity(n as usize * 120);
    for i in 0..n {
        v.extend_from_slice(f(i).as_bytes());
    }
    v
}

/// 1. wasmbgp without rules (the baseline), then the rules by `wasmbgp ctl -`.
fn ctl_phase(o: &Opts, dir: &Path, fam: Fam, run: usize, r: &mut Run) -> Result<()> {
    let d = dir.join(format!("ctl-{}-{run}", fam.channel()));
    mkdir(&d)?;
    let n = o.rules;
    let (wp, rp) = (free_port(W)?, free_port(RX)?);
    let mut rx = Bird::start(
        &o.bird,
        &d.join("bird"),
        "bird receiver",
        &receiver_conf(fam, RX, rp, W, wp, 65001, "wasm"),
    )?;
    let conf = d.join("wasmbgp.toml");
    std::fs::write(&conf, wasmbgp_conf(fam, &d, wp, rp, None, o.tables))
        .map_err(|e| e.to_string())?;
    let mut w = JsonDaemon::start(
        &o.wasmbgp,
        &conf,
        &dir.join("cache"),
        &d.join("wasmbgp.log"),
    )?;
    w.wait_log("session established", Duration::from_secs(30))?;
    wait_channel(
        &mut rx,
        "wasm",
        fam.channel(),
        &[0],
        true,
        None,
        o.poll,
        Duration::from_secs(5),
    )?;
    std::thread::sleep(Duration::from_millis(500));
    let pid = w.proc.pid();
    r.hwm_empty = Some(vm_status(pid, "VmHWM:")?);
    r.rss_empty = Some(vm_status(pid, "VmRSS:")?);
    r.rx_rss_before = Some(vm_status(rx.proc.pid(), "VmRSS:")?);
    if !o.ctl {
        w.proc.stop();
        rx.proc.stop();
        return Ok(());
    }
    let others = Others::start(&[pid, rx.proc.pid()]);
    let cpu0 = cpu_seconds(pid)?;
    let announce = lines(n, |i| {
        format!(
            "announce flow route {{ match {{ {} }} then {{ rate-limit 9600; }} }}\n",
            fam.words(i)
        )
    });
    let sock = d.join("wasmbgp.sock");
    let a = ctl_batch(o, &sock, announce, n as u64, &mut rx, fam, n as u64, false)?;
    r.ctl_cpu = Some(cpu_seconds(pid)? - cpu0);
    r.ctl_machine = Some(others.end());
    eprintln!(
        "bench: {} run {run}: ctl announce: all at BIRD {:.3} s, {} answers {:.3} s, errors {}",
        fam.label(),
        a.to_bird,
        a.answers,
        a.answers_s,
        a.errors
    );
    if a.errors > 0 {
        r.problems.push(format!(
            "ctl announce: {} errors, first {:?}",
            a.errors, a.first_error
        ));
    }
    r.announce = Some(a);
    std::thread::sleep(Duration::from_millis(500));
    r.hwm_ctl = Some(vm_status(pid, "VmHWM:")?);
    r.rss_ctl = Some(vm_status(pid, "VmRSS:")?);
    r.rx_rss_held = Some(vm_status(rx.proc.pid(), "VmRSS:")?);
    r.problems
        .extend(check_table(o, &mut rx, &d.join("bird/bird.ctl"), fam, n));
    let withdraw = lines(n, |i| {
        format!("withdraw flow route {{ match {{ {} }} }}\n", fam.words(i))
    });
    let wd = ctl_batch(o, &sock, withdraw, n as u64, &mut rx, fam, 0, true)?;
    eprintln!(
        "bench: {} run {run}: ctl withdraw: none left at BIRD {:.3} s, answers {:.3} s, errors {}",
        fam.label(),
        wd.to_bird,
        wd.answers_s,
        wd.errors
    );
    if wd.errors > 0 {
        r.problems.push(format!(
            "ctl withdraw: {} errors, first {:?}",
            wd.errors, wd.first_error
        ));
    }
    r.withdraw = Some(wd);
    r.warnings.extend(w.warning_lines());
    w.proc.stop();
    rx.proc.stop();
    Ok(())
}

/// 2. The rules in the config: one `[[flow-file]]`, or `[[flow]]` tables (`--form tables`).
fn config_phase(o: &Opts, dir: &Path, fam: Fam, run: usize, r: &mut Run) -> Result<()> {
    let d = dir.join(format!("config-{}-{run}", fam.channel()));
    mkdir(&d)?;
    let n = o.rules as u64;
    let (wp, rp) = (free_port(W)?, free_port(RX)?);
    let conf = d.join("wasmbgp.toml");
    let text = wasmbgp_conf(fam, &d, wp, rp, Some(o.rules), o.tables);
    let file_bytes = std::fs::metadata(d.join("rules.flows")).map_or(0, |m| m.len());
    r.conf_bytes = Some(text.len() as u64 + file_bytes);
    std::fs::write(&conf, text).map_err(|e| e.to_string())?;
    let (check_s, maxrss) = timed_check(o, &conf, &dir.join("cache"))?;
    r.check_s = Some(check_s);
    r.check_maxrss = Some(maxrss);
    let mut rx = Bird::start(
        &o.bird,
        &d.join("bird"),
        "bird receiver",
        &receiver_conf(fam, RX, rp, W, wp, 65001, "wasm"),
    )?;
    let mut others = Others::start(&[rx.proc.pid()]);
    let mut w = JsonDaemon::start(
        &o.wasmbgp,
        &conf,
        &dir.join("cache"),
        &d.join("wasmbgp.log"),
    )?;
    let pid = w.proc.pid();
    others.add(pid);
    let (started, _) = w.wait_log("wasmbgp started", Duration::from_secs(120))?;
    r.load_s = Some(started - w.spawned_at);
    let (est, _) = w.wait_log("session established", Duration::from_secs(60))?;
    let times = wait_channel(
        &mut rx,
        "wasm",
        fam.channel(),
        &[1, n * 99 / 100, n],
        false,
        None,
        o.poll,
        Duration::from_secs(300),
    )?;
    r.cpu_to_100 = Some(cpu_seconds(pid)?);
    r.conf_machine = Some(others.end());
    r.est_first = Some(times[0] - est);
    r.est_99 = Some(times[1] - est);
    r.est_100 = Some(times[2] - est);
    r.spawn_100 = Some(times[2] - w.spawned_at);
    r.rx_up_100 =
        bird_log_time(&d.join("bird/bird.log"), "wasm: State changed to up").map(|u| times[2] - u);
    if let Ok((_, sent)) = w.wait_log("sent the Adj-RIB-Out", Duration::from_secs(5)) {
        r.encode_ms = sent["fields"]["encode_ms"].as_f64();
        r.messages = sent["fields"]["messages"].as_u64();
        r.bytes = sent["fields"]["bytes"].as_u64();
    }
    eprintln!(
        "bench: {} run {run}: config: check {check_s:.3} s, started {:.3} s after spawn, all at BIRD {:.3} s after Established",
        fam.label(),
        r.load_s.unwrap_or(f64::NAN),
        r.est_100.unwrap_or(f64::NAN)
    );
    std::thread::sleep(Duration::from_millis(500));
    r.hwm_full = Some(vm_status(pid, "VmHWM:")?);
    r.rss_full = Some(vm_status(pid, "VmRSS:")?);
    r.problems.extend(check_table(
        o,
        &mut rx,
        &d.join("bird/bird.ctl"),
        fam,
        o.rules,
    ));
    match channel_imported(&mut rx.ctl, "wasm", fam.channel())? {
        c if c == n => {}
        c => r
            .problems
            .push(format!("config: BIRD's channel holds {c}, not {n}")),
    }
    r.warnings.extend(w.warning_lines());
    w.proc.stop();
    rx.proc.stop();
    Ok(())
}

/// 3. BIRD originating the rules to BIRD; and the same BIRD without them (baseline).
fn bird_phase(o: &Opts, dir: &Path, fam: Fam, run: usize, r: &mut Run) -> Result<()> {
    let d = dir.join(format!("bird-{}-{run}", fam.channel()));
    mkdir(&d.join("orig"))?;
    let n = o.rules as u64;
    // Baseline: the originator's config without the routes, idle.
    {
        let (op, rp) = (free_port(BO)?, free_port(BR)?);
        let b = Bird::start(
            &o.bird,
            &d.join("empty"),
            "bird originator (no rules)",
            &originator_conf(fam, None, op, rp),
        )?;
        std::thread::sleep(Duration::from_millis(500));
        r.b_hwm_empty = Some(vm_status(b.proc.pid(), "VmHWM:")?);
        r.b_rss_empty = Some(vm_status(b.proc.pid(), "VmRSS:")?);
    }
    let (op, rp) = (free_port(BO)?, free_port(BR)?);
    let mut rx = Bird::start(
        &o.bird,
        &d.join("recv"),
        "bird receiver",
        &receiver_conf(fam, BR, rp, BO, op, 65002, "feed"),
    )?;
    let statics = d.join("orig/static.conf");
    let text = lines(o.rules, |i| {
        format!(
            "route {} {{ bgp_ext_community.add((generic, 0x80060000, 0x46160000)); }};\n",
            fam.bird_net(i)
        )
    });
    std::fs::write(&statics, text).map_err(|e| e.to_string())?;
    let mut others = Others::start(&[rx.proc.pid()]);
    let t_spawn = now();
    let mut orig = Bird::start_within(
        &o.bird,
        &d.join("orig"),
        "bird originator",
        &originator_conf(fam, Some(&statics), op, rp),
        Duration::from_secs(300),
    )?;
    let opid = orig.proc.pid();
    others.add(opid);
    let loaded = wait_channel(
        &mut orig,
        "orig",
        fam.channel(),
        &[n],
        false,
        None,
        Duration::from_millis(20),
        Duration::from_secs(300),
    )?;
    r.b_load = Some(loaded[0] - t_spawn);
    std::thread::sleep(Duration::from_millis(300));
    r.b_rx_rss_before = Some(vm_status(rx.proc.pid(), "VmRSS:")?);
    orig.ctl.cmd("enable feed")?;
    let times = wait_channel(
        &mut rx,
        "feed",
        fam.channel(),
        &[1, n * 99 / 100, n],
        false,
        Some(&mut orig),
        o.poll,
        Duration::from_secs(300),
    )?;
    r.b_cpu = Some(cpu_seconds(opid)?);
    r.b_machine = Some(others.end());
    let up = bird_log_time(&d.join("orig/bird.log"), "feed: State changed to up")
        .ok_or("the originator never logged `feed: State changed to up`")?;
    r.b_first = Some(times[0] - up);
    r.b_99 = Some(times[1] - up);
    r.b_100 = Some(times[2] - up);
    r.b_rx_up_100 =
        bird_log_time(&d.join("recv/bird.log"), "feed: State changed to up").map(|u| times[2] - u);
    eprintln!(
        "bench: {} run {run}: BIRD → BIRD: static protocol loaded {:.3} s after spawn, all at the receiver {:.3} s after Established",
        fam.label(),
        r.b_load.unwrap_or(f64::NAN),
        r.b_100.unwrap_or(f64::NAN)
    );
    std::thread::sleep(Duration::from_millis(500));
    r.b_hwm = Some(vm_status(opid, "VmHWM:")?);
    r.b_rss = Some(vm_status(opid, "VmRSS:")?);
    r.b_rx_rss_held = Some(vm_status(rx.proc.pid(), "VmRSS:")?);
    r.problems.extend(check_table(
        o,
        &mut rx,
        &d.join("recv/bird.ctl"),
        fam,
        o.rules,
    ));
    orig.proc.stop();
    rx.proc.stop();
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Report

/// `median (min–max)` of the values, formatted by `f`; `—` if none.
fn stat(v: &[f64], f: impl Fn(f64) -> String) -> String {
    let v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return "—".into();
    }
    if v.len() == 1 {
        return f(v[0]);
    }
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{} ({}–{})", f(median(&v)), f(min), f(max))
}

fn secs(x: f64) -> String {
    if x < 0.1 {
        format!("{:.1} ms", x * 1e3)
    } else {
        format!("{x:.3} s")
    }
}

fn mibf(x: f64) -> String {
    format!("{:.1} MiB", x / (1024.0 * 1024.0))
}

fn bytes(x: f64) -> String {
    format!("{x:.0} B")
}

fn rate(x: f64) -> String {
    if x >= 1e3 {
        format!("{:.0}k/s", x / 1e3)
    } else {
        format!("{x:.0}/s")
    }
}

fn pick<T: Copy>(runs: &[Run], f: impl Fn(&Run) -> Option<T>) -> Vec<T> {
    runs.iter().filter_map(f).collect()
}

fn pf(runs: &[Run], f: impl Fn(&Run) -> Option<f64>) -> Vec<f64> {
    pick(runs, f)
}

fn per_run(v: &[f64], f: impl Fn(f64) -> String) -> String {
    v.iter().map(|x| f(*x)).collect::<Vec<_>>().join(", ")
}

fn machine_cell(runs: &[Run], f: impl Fn(&Run) -> Option<(f64, bool)>) -> String {
    let m: Vec<(f64, bool)> = pick(runs, f);
    if m.is_empty() {
        return "—".into();
    }
    let max = m.iter().map(|x| x.0).fold(0.0, f64::max);
    let busy = m.iter().filter(|x| is_busy(**x)).count();
    let rustc = m.iter().any(|x| x.1);
    if busy == 0 {
        format!("quiet (others ≤ {:.0} % of a CPU)", max * 100.0)
    } else {
        format!(
            "**{busy} of {} runs busy** (others up to {:.0} % of a CPU{})",
            m.len(),
            max * 100.0,
            if rustc { "; a rustc/cargo ran" } else { "" }
        )
    }
}

fn header(o: &Opts) -> String {
    let tree = tree_since(&o.tree_at_start, sh);
    let when = sh(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]));
    let built = sh(Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC", "-r"])
        .arg(&o.wasmbgp));
    let bird = bird_version(&o.bird);
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!(
        "wasmbgp FlowSpec benchmark — HEAD {tree}; wasmbgp built {built}; {bird}; {cpus} CPUs ({}); {when}; \
         {} runs; load average at the end: {}\n\n",
        cpu_model(),
        o.runs,
        load_average(),
    )
}

fn family_report(o: &Opts, fam: Fam, runs: &[Run]) -> String {
    let n = o.rules as f64;
    let nn = o.rules;
    let mut s = format!(
        "### {}: {nn} flow rules ({}), wasmbgp → BIRD 2 and BIRD 2 → BIRD 2, {} runs\n\n",
        fam.label(),
        fam.describe(),
        runs.len()
    );
    s += "| Measure | wasmbgp | BIRD 2 | per run (wasmbgp; BIRD) |\n|---|---|---|---|\n";
    let row = |s: &mut String, what: &str, w: &[f64], b: &[f64], f: &dyn Fn(f64) -> String| {
        *s += &format!(
            "| {what} | {} | {} | {}{}{} |\n",
            stat(w, f),
            stat(b, f),
            per_run(w, f),
            if !w.is_empty() && !b.is_empty() {
                "; "
            } else {
                ""
            },
            per_run(b, f)
        );
    };
    let bold = |x: String| if x == "—" { x } else { format!("**{x}**") };
    // config
    if o.config {
        let conf_mib = runs
            .iter()
            .find_map(|r| r.conf_bytes)
            .map(|b| b as f64 / 1e6)
            .unwrap_or(f64::NAN);
        row(
            &mut s,
            &format!(
                "`wasmbgp check` of the config with {} ({conf_mib:.1} MB): wall time",
                match o.tables {
                    true => format!("{nn} `[[flow]]` tables"),
                    false => format!("a `[[flow-file]]` of {nn} rules"),
                }
            ),
            &pf(runs, |r| r.check_s),
            &[],
            &secs,
        );
        row(
            &mut s,
            "… its peak RSS (`ru_maxrss`)",
            &pf(runs, |r| r.check_maxrss.map(|x| x as f64)),
            &[],
            &mibf,
        );
        row(
            &mut s,
            "Spawn → ready (wasmbgp: `wasmbgp started` log line; BIRD: its static protocol holds all rules)",
            &pf(runs, |r| r.load_s),
            &pf(runs, |r| r.b_load),
            &secs,
        );
        row(
            &mut s,
            "Established (the sender's log) → the receiver holds the first rule",
            &pf(runs, |r| r.est_first),
            &pf(runs, |r| r.b_first),
            &secs,
        );
        row(
            &mut s,
            "Established → the receiver holds 99 %",
            &pf(runs, |r| r.est_99),
            &pf(runs, |r| r.b_99),
            &secs,
        );
        let (w, b) = (pf(runs, |r| r.est_100), pf(runs, |r| r.b_100));
        s += &format!(
            "| **Established → the receiver holds all {nn}** | {} | {} | {}; {} |\n",
            bold(stat(&w, secs)),
            bold(stat(&b, secs)),
            per_run(&w, secs),
            per_run(&b, secs)
        );
        row(
            &mut s,
            "… measured from the receiver's `State changed to up`",
            &pf(runs, |r| r.rx_up_100),
            &pf(runs, |r| r.b_rx_up_100),
            &secs,
        );
        row(
            &mut s,
            "Spawn → the receiver holds all",
            &pf(runs, |r| r.spawn_100),
            &[],
            &secs,
        );
        row(
            &mut s,
            "Sender's CPU (utime + stime), spawn → all held",
            &pf(runs, |r| r.cpu_to_100),
            &pf(runs, |r| r.b_cpu),
            &secs,
        );
        row(
            &mut s,
            &format!("Sender's peak RSS (VmHWM) with the {nn} rules"),
            &pf(runs, |r| r.hwm_full.map(|x| x as f64)),
            &pf(runs, |r| r.b_hwm.map(|x| x as f64)),
            &mibf,
        );
        row(
            &mut s,
            "… without them (wasmbgp: no `[[flow]]`, session up; BIRD: the same config without the static routes)",
            &pf(runs, |r| r.hwm_empty.map(|x| x as f64)),
            &pf(runs, |r| r.b_hwm_empty.map(|x| x as f64)),
            &mibf,
        );
        let w = pf(runs, |r| {
            Some((r.hwm_full? as f64 - r.hwm_empty? as f64) / n)
        });
        let b = pf(runs, |r| {
            Some((r.b_hwm? as f64 - r.b_hwm_empty? as f64) / n)
        });
        s += &format!(
            "| **Sender's peak RSS per rule** (VmHWM with − without, / {nn}) | {} | {} | {}; {} |\n",
            bold(stat(&w, bytes)),
            bold(stat(&b, bytes)),
            per_run(&w, bytes),
            per_run(&b, bytes)
        );
        row(
            &mut s,
            "Sender's current RSS (VmRSS) per rule once all are held (with − without, / N)",
            &pf(runs, |r| {
                Some((r.rss_full? as f64 - r.rss_empty? as f64) / n)
            }),
            &pf(runs, |r| {
                Some((r.b_rss? as f64 - r.b_rss_empty? as f64) / n)
            }),
            &bytes,
        );
    }
    if o.ctl {
        let (w, _) = (pf(runs, |r| r.announce.as_ref().map(|a| a.to_bird)), ());
        s += &format!(
            "| **{nn} `announce flow route {{ match {{ … }} then {{ rate-limit 9600; }} }}` lines into `wasmbgp ctl -`, session up → the receiver holds all** | {} | — | {} |\n",
            bold(stat(&w, secs)),
            per_run(&w, secs)
        );
        row(
            &mut s,
            "… first write → the last `ok` back",
            &pf(runs, |r| r.announce.as_ref().map(|a| a.answers_s)),
            &[],
            &secs,
        );
        row(
            &mut s,
            "… ctl throughput (rules / that time)",
            &pf(runs, |r| r.announce.as_ref().map(|a| n / a.answers_s)),
            &[],
            &rate,
        );
        row(
            &mut s,
            "… wasmbgp's CPU over the batch",
            &pf(runs, |r| r.ctl_cpu),
            &[],
            &secs,
        );
        row(
            &mut s,
            "… peak RSS per rule added (VmHWM after − before, / N)",
            &pf(runs, |r| {
                Some((r.hwm_ctl? as f64 - r.hwm_empty? as f64) / n)
            }),
            &[],
            &bytes,
        );
        row(
            &mut s,
            "… current RSS per rule added (VmRSS after − before, / N)",
            &pf(runs, |r| {
                Some((r.rss_ctl? as f64 - r.rss_empty? as f64) / n)
            }),
            &[],
            &bytes,
        );
        row(
            &mut s,
            &format!(
                "{nn} `withdraw flow route {{ match {{ … }} }}` lines into `wasmbgp ctl -` → the receiver holds none"
            ),
            &pf(runs, |r| r.withdraw.as_ref().map(|a| a.to_bird)),
            &[],
            &secs,
        );
        row(
            &mut s,
            "… first write → the last `ok` back",
            &pf(runs, |r| r.withdraw.as_ref().map(|a| a.answers_s)),
            &[],
            &secs,
        );
    }
    let rx_w = pf(runs, |r| {
        Some((r.rx_rss_held? as f64 - r.rx_rss_before? as f64) / n)
    });
    let rx_b = pf(runs, |r| {
        Some((r.b_rx_rss_held? as f64 - r.b_rx_rss_before? as f64) / n)
    });
    if !rx_w.is_empty() || !rx_b.is_empty() {
        row(
            &mut s,
            "Receiving BIRD's VmRSS per rule held (from wasmbgp's ctl batch; from the BIRD originator)",
            &rx_w,
            &rx_b,
            &bytes,
        );
    }
    let problems: Vec<String> = runs
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            r.problems
                .iter()
                .map(move |p| format!("run {}: {p}", i + 1))
        })
        .collect();
    let checked = if problems.is_empty() {
        format!(
            "every held table checked: **yes** (birdc `show route table {} count` = {nn}, exit 0; the first, middle and last rule held with {RATE_COMMUNITY}; ctl answers all `ok`)",
            fam.table()
        )
    } else {
        format!("**problems**: {}", problems.join("; "))
    };
    let warnings: Vec<&String> = runs.iter().flat_map(|r| &r.warnings).collect();
    let warnings = match warnings.first() {
        None => "0".to_string(),
        Some(w) => format!("**{}** (the first: `{w}`)", warnings.len()),
    };
    s += &format!(
        "\nMachine: ctl {}; config {}; BIRD → BIRD {}. wasmbgp's `sent the Adj-RIB-Out` (config): {} UPDATE messages, {} bytes, encoded in {}. \
         wasmbgp WARN/ERROR log lines: {warnings}. Correctness: {checked}.\n\n",
        machine_cell(runs, |r| r.ctl_machine),
        machine_cell(runs, |r| r.conf_machine),
        machine_cell(runs, |r| r.b_machine),
        stat(&pf(runs, |r| r.messages.map(|x| x as f64)), |x| format!(
            "{x:.0}"
        )),
        stat(&pf(runs, |r| r.bytes.map(|x| x as f64)), |x| format!(
            "{x:.0}"
        )),
        stat(&pf(runs, |r| r.encode_ms.map(|x| x / 1e3)), secs),
    );
    s
}

fn report(o: &Opts, all: &[(Fam, Vec<Run>)]) -> String {
    let mut s = header(o);
    for (fam, runs) in all {
        s += &family_report(o, *fam, runs);
    }
    s += &format!(
        "Cells: median (min–max) over runs. The receiver is polled every {} ms over BIRD's control socket (`show protocols all NAME`, \
         the flow channel's `Routes: N imported`), so times carry up to that much polling granularity. Established = the sender's \
         own log line (wasmbgp `session established`; the originating BIRD's `feed: State changed to up`). Each poll of the BIRD \
         receiver also sends the BIRD originator `show protocols`, which wakes its main loop (BIRD's 3-second tail, bench/README.md). \
         RSS = /proc/PID/status, read 0.5 s after the last rule is held. A phase is busy when a rustc/cargo ran or others used \
         more than {:.0} % of a CPU.\n",
        o.poll.as_millis(),
        BUSY_SHARE * 100.0
    );
    s
}

fn run(o: &Opts, dir: &Path) -> Result<String> {
    mkdir(&dir.join("cache"))?;
    let mut all: Vec<(Fam, Vec<Run>)> = o.fams.iter().map(|f| (*f, Vec::new())).collect();
    for i in 0..o.runs {
        for (fam, runs) in all.iter_mut() {
            let fam = *fam;
            eprintln!("bench: {} run {}", fam.label(), i + 1);
            let mut r = Run::default();
            if o.ctl || o.config {
                ctl_phase(o, dir, fam, i + 1, &mut r)?;
            }
            if o.config {
                config_phase(o, dir, fam, i + 1, &mut r)?;
            }
            if o.bird_ref {
                bird_phase(o, dir, fam, i + 1, &mut r)?;
            }
            if !r.problems.is_empty() {
                eprintln!(
                    "bench: {} run {}: problems: {:?}",
                    fam.label(),
                    i + 1,
                    r.problems
                );
            }
            runs.push(r);
        }
    }
    let _ = std::io::stderr().flush();
    Ok(report(o, &all))
}

fn main() {
    let o = opts_or_exit("wasmbgp-bench-flowspec", parse_opts());
    bench_main(
        "wasmbgp-bench-flowspec",
        "wasmbgp FlowSpec benchmark results",
        "bench/run-flowspec.sh",
        o.keep,
        o.results.as_deref(),
        |dir| run(&o, dir),
    );
}
