//! wasmbgp 1,000-session benchmark (issue 14, "Scale"; not a test): prints a results
//! table and writes bench/results-sessions.md (method in detail: bench/README.md,
//! "Sessions benchmark").
//!
//! One "peers" BIRD 2 with `--sessions` N (1000) BGP protocols `p0…`, each on its own
//! loopback address (peer `i` at 127.91.(1 + i/250).(1 + i%250)) and port (22000 + i:
//! BIRD listens with a backlog of 8 per port; `--shared-port` puts them all on one),
//! `passive on`, hold time 9, each in its own table `tI` fed by its own static protocol
//! `sI` with `--routes` R (100) distinct /24s (peer `i`'s route `k` is 20.0.0.0/24 +
//! (i·R + k)·256), `import all`, exporting only its statics. Per-peer tables keep BIRD's
//! work per peer small: with one shared table every export filter would see every peer's
//! routes (N × N·R evaluations).
//!
//! The same N neighbors and R routes (60.0.0.0/24 + k·256, next hop self) are then
//! served by each speaker in turn, with a fresh peers BIRD each time; the speaker's end
//! of session `i` is 127.91.(128 + i/250).(1 + i%250) (BIRD locks a neighbor address and
//! port to one protocol at a time):
//!
//! - **wasmbgp**: N `[[neighbor]]`s (`local-address`, `hold-time = 9`, `families =
//!   ["ipv4-unicast"]`, `connect-retry = "1s"`) and one `[[route-file]]`;
//! - **BIRD 2** (its own instance and control socket): N BGP protocols `nI` (`connect
//!   delay time 1`, the least BIRD allows, `connect retry time 1`, hold time 9) on the
//!   shared `master4`, `import all`, exporting only a static protocol's R routes.
//!
//! Per speaker:
//!
//! 1. **Baselines**: the speaker with no neighbor, then with the N neighbors and no peer
//!    (the peers BIRD not started): VmRSS / VmHWM `--settle` s after it answers its
//!    control socket. Each is then stopped.
//! 2. The peers BIRD is started and waited for (N protocols, their ports listening).
//! 3. The speaker is spawned; polled every 250 ms: spawn → all N Established as the
//!    speaker says (wasmbgp `show neighbors --json`, BIRD `show protocols "n*"`) and as
//!    the peers say (`show protocols "p*"`, Info `Established`); then every 500 ms →
//!    all routes exchanged: every peer has imported R and exported R (`show protocols
//!    all "p*"`), and the speaker holds N·R (wasmbgp: every neighbor's
//!    `prefixes-received` = R and `prefixes-sent` = R; BIRD: `show route count` = N·R +
//!    its R statics). The speaker's CPU (utime + stime since spawn) at both points.
//! 4. `--settle` s later: VmRSS / VmHWM with the sessions up, CPU, wasmbgp's metrics
//!    (`/metrics`), every peer's `Since` and every neighbor's `established-count` /
//!    `Since`.
//! 5. **Window** of `--hold-window` s (600): every `--sample` s (5) the peers BIRD's
//!    `show protocols all "p*"`: a peer not Established or with a new `Since` is a
//!    drop; its `Hold timer: LEFT/9`, whose lowest value says whether a keepalive was
//!    late (BIRD restarts the timer at 6.75–9 s on each message); the speaker's VmRSS;
//!    every 30 s the speaker's own view as in 3 (a neighbor down, a new
//!    `established-count` or `Since`).
//! 6. End: CPU and RSS again; wasmbgp's metrics again (NOTIFICATIONs by direction and
//!    code, `established_total`, keepalives per neighbor); the speaker's own view;
//!    `birdc show protocols` (a `birdc` process, exit status checked) on the peers and
//!    (BIRD) the speaker, `wasmbgp ctl show neighbors --json` (a `wasmbgp ctl` process)
//!    for wasmbgp: N Established each; `Hold timer expired` and `Error:` lines in both
//!    BIRD logs; WARN/ERROR lines in wasmbgp's log.
//!
//! A control-socket call that fails (an error reply, a timeout) is an error counted as
//! such (and the connection renewed), never read as "up" or "down". Loopback only
//! (127.91.0.0/16), a fresh /tmp/wasmbgp-bench-sessions.PID, every wait bounded in time,
//! every process started here stopped at the end (also on error or Ctrl-C / SIGTERM;
//! PR_SET_PDEATHSIG if this dies).

#[path = "../harness.rs"]
#[macro_use]
mod harness;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::*;

/// The speaker's router id and metrics address (wasmbgp, or the BIRD speaker); each
/// session has its own address on the speaker's side too ([`speaker_addr`]).
const SPEAKER: Ipv4Addr = Ipv4Addr::new(127, 91, 0, 1);
/// The peers BIRD's router id (its protocols use their own addresses).
const PEERS_ID: Ipv4Addr = Ipv4Addr::new(127, 91, 0, 2);
const PEER_AS: u32 = 65000;
const SPEAKER_AS: u32 = 65001;
const HOLD: u32 = 9;
/// The issue's target: every session Established within this many seconds of start.
const UP_TARGET: f64 = 30.0;
/// The lowest `Hold timer` left at a peer when every keepalive comes on time: BIRD
/// restarts its hold timer at a random 3/4–1 of the hold time on every message
/// (`bgp_start_timer`, RFC 4271 §10 jitter), i.e. at 6.75–9 s, so a speaker whose messages
/// are at most 3 s apart (the keepalive interval) leaves at least 3.75 s; 0.5 s of slack
/// for scheduling. Below this, a keepalive was late.
const ON_TIME_LEFT: f64 = HOLD as f64 * 0.75 - HOLD as f64 / 3.0 - 0.5;
/// How long a BIRD or wasmbgp control-socket reply may take (a BIRD busy with 100,000
/// routes and 1,000 export filters answers only between its events).
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// Others using more than this share of one CPU during the window make it "busy".
const BUSY_SHARE: f64 = 0.25;

fn peer_addr(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(127, 91, (1 + i / 250) as u8, (1 + i % 250) as u8)
}

/// The speaker's end of session `i`: BIRD serialises protocols with the same neighbor
/// address and port (an object lock on them; all but one wait in `Idle`), so each peer
/// must see the speaker at an address of its own.
fn speaker_addr(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(127, 91, (128 + i / 250) as u8, (1 + i % 250) as u8)
}

fn speaker_prefix(k: u32) -> Ipv4Addr {
    Ipv4Addr::from((60u32 << 24) + (k << 8))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Wasmbgp,
    Bird,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Wasmbgp => "wasmbgp",
            Kind::Bird => "BIRD 2",
        }
    }
    fn slug(self) -> &'static str {
        match self {
            Kind::Wasmbgp => "wasmbgp",
            Kind::Bird => "bird",
        }
    }
}

struct Opts {
    wasmbgp: PathBuf,
    bird: String,
    birdc: String,
    sessions: u32,
    routes: u32,
    window: Duration,
    sample: Duration,
    settle: Duration,
    timeout: Duration,
    kinds: Vec<Kind>,
    keep: bool,
    shared_port: bool,
    out: Option<PathBuf>,
    tree_at_start: (String, bool),
}

fn parse_opts() -> Result<Opts> {
    let root = root();
    let mut o = Opts {
        wasmbgp: root.join("target/release/wasmbgp"),
        bird: "bird".into(),
        birdc: "birdc".into(),
        sessions: 1000,
        routes: 100,
        window: Duration::from_secs(600),
        sample: Duration::from_secs(5),
        settle: Duration::from_secs(5),
        timeout: Duration::from_secs(120),
        kinds: vec![Kind::Wasmbgp, Kind::Bird],
        keep: false,
        shared_port: false,
        out: Some(root.join("bench/results-sessions.md")),
        tree_at_start: tree_state(sh),
    };
    let mut args = cli_args();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sessions" => o.sessions = args.num("--sessions")? as u32,
            "--routes" => o.routes = args.num("--routes")? as u32,
            "--hold-window" => o.window = Duration::from_secs(args.num("--hold-window")?),
            "--sample" => o.sample = Duration::from_secs(args.num("--sample")?),
            "--settle" => o.settle = Duration::from_secs(args.num("--settle")?),
            "--timeout" => o.timeout = Duration::from_secs(args.num("--timeout")?),
            "--no-bird" => o.kinds.retain(|k| *k != Kind::Bird),
            "--no-wasmbgp" => o.kinds.retain(|k| *k != Kind::Wasmbgp),
            "--wasmbgp" => o.wasmbgp = args.val("--wasmbgp")?.into(),
            "--bird" => o.bird = args.val("--bird")?,
            "--birdc" => o.birdc = args.val("--birdc")?,
            "--out" => o.out = Some(args.val("--out")?.into()),
            "--no-results" => o.out = None,
            "--keep" => o.keep = true,
            "--shared-port" => o.shared_port = true,
            "-h" | "--help" => {
                println!(
                    "usage: wasmbgp-bench-sessions [--sessions N (1000)] [--routes R (100)] [--hold-window SECS (600)]\n\
                     \x20   [--sample SECS (5)] [--settle SECS (5)] [--timeout SECS (120): bound of each wait]\n\
                     \x20   [--no-bird] [--no-wasmbgp] [--shared-port: every peer on one port] [--wasmbgp PATH] [--bird PATH] [--birdc PATH]\n\
                     \x20   [--out FILE (bench/results-sessions.md) | --no-results] [--keep]\n\
                     N BGP sessions between one speaker (wasmbgp, then BIRD 2) and a BIRD 2 with N protocols on\n\
                     127.91.x.y, hold time 9, R routes each way per session: time until all are Established and all\n\
                     routes exchanged, sessions dropped and keepalive gaps over the window, CPU and RSS per session.\n\
                     Loopback 127.91.0.0/16 only. Development: --sessions 50 --hold-window 20."
                );
                std::process::exit(0);
            }
            _ => bail!("unknown argument {a:?} (try --help)"),
        }
    }
    if o.sessions == 0
        || o.sessions > 10_000
        || o.routes == 0
        || o.routes > 10_000
        || (o.sessions as u64) * (o.routes as u64) > 10_000_000
        || o.sample.is_zero()
        || o.timeout < Duration::from_secs(10)
    {
        bail!(
            "--sessions 1..=10000, --routes 1..=10000 (sessions × routes ≤ 10M), --sample ≥ 1, --timeout ≥ 10"
        );
    }
    if o.kinds.is_empty() {
        bail!("--no-bird and --no-wasmbgp leave nothing to run");
    }
    if o.kinds.contains(&Kind::Wasmbgp) && !o.wasmbgp.is_file() {
        bail!(
            "{} not found: run `cargo build --release -p wasmbgp` first",
            o.wasmbgp.display()
        );
    }
    Ok(o)
}

fn mkdir(d: &Path) -> Result<()> {
    std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))
}

/// The ports: the peers' (`pI` listens on `peers + I`, or with `--shared-port` every
/// `pI` on `peers`), the BIRD speaker's and wasmbgp's metrics.
#[derive(Clone, Copy)]
struct Ports {
    peers: u16,
    shared: bool,
    speaker: u16,
    metrics: u16,
}

impl Ports {
    /// Where peer `i` listens. BIRD opens one listening socket per port (on the wildcard
    /// address), with a backlog of 8: one port for every peer makes that queue the
    /// bottleneck of a speaker that connects to all at once (bench/README.md).
    fn peer(&self, i: u32) -> u16 {
        if self.shared {
            self.peers
        } else {
            self.peers + i as u16
        }
    }
}

/// `n` consecutive ports free on the wildcard address, below the ephemeral range (so that
/// no outgoing connection takes one meanwhile): the first of them.
fn free_port_range(n: u16) -> Result<u16> {
    // Above the end-to-end tests' ports (10000–21099): BIRD listens on the wildcard address.
    let mut base = 22_000u16;
    while base as u32 + n as u32 <= 32_000 {
        let mut held = Vec::with_capacity(n as usize);
        let mut ok = true;
        for port in base..base + n {
            match std::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)) {
                Ok(l) => held.push(l),
                Err(_) => {
                    ok = false;
                    base = port + 1;
                    break;
                }
            }
        }
        if ok {
            return Ok(base);
        }
    }
    bail!("no {n} consecutive free ports in 22000..32000")
}

// ---------------------------------------------------------------------------------------
// Configs

fn peers_conf(o: &Opts, p: Ports) -> String {
    let r = o.routes;
    let mut s = String::with_capacity(o.sessions as usize * (r as usize * 36 + 300));
    let _ = write!(
        s,
        "router id {PEERS_ID};\ntimeformat protocol \"%s.%6f\";\nprotocol device {{}}\n\
         template bgp peer {{ local as {PEER_AS}; neighbor port {} as {SPEAKER_AS};\n\
         \x20 passive on; multihop; hold time {HOLD}; }}\n",
        p.speaker
    );
    for i in 0..o.sessions {
        let _ = writeln!(
            s,
            "ipv4 table t{i};\nprotocol static s{i} {{ ipv4 {{ table t{i}; }};"
        );
        for k in 0..r {
            let _ = writeln!(s, "route {}/24 blackhole;", table_prefix(i * r + k));
        }
        let _ = writeln!(
            s,
            "}}\nprotocol bgp p{i} from peer {{ local {} port {}; neighbor {}; ipv4 {{ table t{i}; \
             import all; export where source = RTS_STATIC; next hop self; }}; }}",
            peer_addr(i),
            p.peer(i),
            speaker_addr(i)
        );
    }
    s
}

/// The BIRD speaker with `n` neighbors (0: the empty baseline).
fn bird_speaker_conf(o: &Opts, p: Ports, n: u32) -> String {
    let mut s = String::with_capacity(n as usize * 80 + o.routes as usize * 36 + 600);
    let _ = write!(
        s,
        "router id {SPEAKER};\ntimeformat protocol \"%s.%6f\";\nprotocol device {{}}\n\
         protocol static orig {{ ipv4;\n"
    );
    for k in 0..o.routes {
        let _ = writeln!(s, "route {}/24 blackhole;", speaker_prefix(k));
    }
    let _ = write!(
        s,
        "}}\ntemplate bgp sp {{ local port {} as {SPEAKER_AS}; neighbor as {PEER_AS};\n\
         \x20 multihop; hold time {HOLD}; connect delay time 1; connect retry time 1;\n\
         \x20 ipv4 {{ import all; export where source = RTS_STATIC; next hop self; }}; }}\n",
        p.speaker
    );
    for i in 0..n {
        let _ = writeln!(
            s,
            "protocol bgp n{i} from sp {{ local {}; neighbor {} port {}; }}",
            speaker_addr(i),
            peer_addr(i),
            p.peer(i)
        );
    }
    s
}

/// wasmbgp with `n` neighbors (0: the empty baseline).
fn wasmbgp_conf(o: &Opts, d: &Path, p: Ports, n: u32) -> Result<String> {
    let mut routes = String::new();
    for k in 0..o.routes {
        let _ = writeln!(routes, "{}/24", speaker_prefix(k));
    }
    std::fs::write(d.join("speaker.routes"), routes).map_err(|e| e.to_string())?;
    let mut s = format!(
        "router-id = \"{SPEAKER}\"\nlocal-as = {SPEAKER_AS}\nmetrics = \"{SPEAKER}:{}\"\n\
         [control]\nsocket = \"{}\"\n\
         [[route-file]]\npath = \"speaker.routes\"\nnext-hop = \"self\"\n",
        p.metrics,
        d.join("wasmbgp.sock").display()
    );
    for i in 0..n {
        let _ = write!(
            s,
            "[[neighbor]]\naddress = \"{}\"\nport = {}\npeer-as = {PEER_AS}\nlocal-address = \"{}\"\n\
             hold-time = {HOLD}\nfamilies = [\"ipv4-unicast\"]\nconnect-retry = \"1s\"\n",
            peer_addr(i),
            p.peer(i),
            speaker_addr(i)
        );
    }
    Ok(s)
}

// ---------------------------------------------------------------------------------------
// BIRD's `show protocols`

#[derive(Clone, Debug, Default)]
struct BirdProto {
    name: String,
    state: String,
    since: String,
    info: String,
    imported: Option<u64>,
    exported: Option<u64>,
    /// `Hold timer: LEFT/9`: seconds left.
    hold_left: Option<f64>,
}

impl BirdProto {
    fn established(&self) -> bool {
        self.state == "up" && self.info.starts_with("Established")
    }
}

/// `show protocols [all] "PATTERN"`, parsed: a `1002` line per protocol, `1006` lines
/// with its details (continuation lines start with a space instead of the code).
fn bird_protocols(b: &mut Birdc, cmd: &str) -> Result<Vec<BirdProto>> {
    let r = b.cmd_ok(cmd)?;
    let mut out: Vec<BirdProto> = Vec::new();
    let mut code = String::new();
    for l in r.lines() {
        let bs = l.as_bytes();
        let rest = if bs.len() >= 5
            && bs[..4].iter().all(u8::is_ascii_digit)
            && (bs[4] == b'-' || bs[4] == b' ')
        {
            code = l[..4].to_string();
            &l[5..]
        } else {
            l.strip_prefix(' ').unwrap_or(l)
        };
        match code.as_str() {
            "1002" => {
                let f: Vec<&str> = rest.split_whitespace().collect();
                if f.len() >= 5 {
                    out.push(BirdProto {
                        name: f[0].to_string(),
                        state: f[3].to_string(),
                        since: f[4].to_string(),
                        info: f[5..].join(" "),
                        ..BirdProto::default()
                    });
                }
            }
            "1006" => {
                let Some(p) = out.last_mut() else { continue };
                let t = rest.trim();
                if let Some(v) = t.strip_prefix("Hold timer:") {
                    p.hold_left = v.trim().split('/').next().and_then(|x| x.parse().ok());
                } else if let Some(v) = t.strip_prefix("Routes:") {
                    // `100 imported, 100 exported, 100 preferred`
                    let w: Vec<&str> = v.split_whitespace().collect();
                    for pair in w.windows(2) {
                        let n = pair[0].parse::<u64>().ok();
                        match pair[1].trim_end_matches(',') {
                            "imported" => p.imported = n,
                            "exported" => p.exported = n,
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// `show route count` of master4: `N of N routes for N networks in table master4`.
fn bird_route_count(b: &mut Birdc) -> Result<u64> {
    let r = b.cmd_ok("show route count")?;
    r.lines()
        .find(|l| l.contains(" routes for "))
        .and_then(|l| {
            let b = l.as_bytes();
            let coded = b.len() > 5 && b[..4].iter().all(u8::is_ascii_digit);
            l[if coded { 5 } else { 0 }..]
                .split_whitespace()
                .next()
                .map(str::to_string)
        })
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no count in BIRD's `show route count`: {:?}", r.trim()))
}

/// A command run as its own process (`birdc`, `wasmbgp ctl`), bounded to 60 s; its
/// stdout, or `Err` when it fails.
fn run_checked(what: &str, cmd: &mut Command) -> Result<String> {
    let out = Command::new("timeout")
        .arg("60")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        bail!(
            "{what}: {}: {} {}",
            out.status,
            text.trim().chars().take(300).collect::<String>(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(text)
}

/// Lines of a log file holding `needle`.
fn count_lines(path: &Path, needle: &str) -> usize {
    log_lines(path)
        .iter()
        .filter(|l| l.contains(needle))
        .count()
}

fn first_line(path: &Path, needle: &str) -> Option<String> {
    log_lines(path)
        .into_iter()
        .find(|l| l.contains(needle))
        .map(|l| l.chars().take(200).collect())
}

/// A log file's lines without terminal colours (`ESC [ … m`).
fn log_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            let mut out = String::with_capacity(l.len());
            let mut it = l.chars().peekable();
            while let Some(c) = it.next() {
                if c == '\u{1b}' && it.peek() == Some(&'[') {
                    for d in it.by_ref() {
                        if d.is_ascii_alphabetic() {
                            break;
                        }
                    }
                } else {
                    out.push(c);
                }
            }
            out
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// wasmbgp's metrics

/// The samples of metric `name` (`wasmbgp_` + name): labels and value.
fn metric_samples(text: &str, name: &str) -> Vec<(HashMap<String, String>, f64)> {
    let head = format!("wasmbgp_{name}{{");
    let mut out = Vec::new();
    for l in text.lines() {
        let Some(rest) = l.strip_prefix(&head) else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let Ok(v) = value.trim().parse::<f64>() else {
            continue;
        };
        let mut m = HashMap::new();
        for kv in labels.split("\",") {
            if let Some((k, v)) = kv.split_once("=\"") {
                m.insert(k.to_string(), v.trim_end_matches('"').to_string());
            }
        }
        out.push((m, v));
    }
    out
}

/// `(direction, code, subcode)` → NOTIFICATIONs, summed over neighbors.
fn notifications(text: &str) -> HashMap<(String, String, String), f64> {
    let mut m: HashMap<(String, String, String), f64> = HashMap::new();
    for (l, v) in metric_samples(text, "notifications_total") {
        let key = (
            l.get("direction").cloned().unwrap_or_default(),
            l.get("code").cloned().unwrap_or_default(),
            l.get("subcode").cloned().unwrap_or_default(),
        );
        *m.entry(key).or_default() += v;
    }
    m
}

/// neighbor → value of a per-neighbor counter (with extra label filters).
fn per_neighbor(text: &str, name: &str, filters: &[(&str, &str)]) -> HashMap<String, f64> {
    metric_samples(text, name)
        .into_iter()
        .filter(|(l, _)| {
            filters
                .iter()
                .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .filter_map(|(l, v)| Some((l.get("neighbor")?.clone(), v)))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Speakers

/// What the speaker says of its neighbors.
#[derive(Default)]
struct SpeakerView {
    known: usize,
    up: usize,
    /// Neighbors that sent all R routes / were sent all R (wasmbgp only; BIRD: see
    /// `rx_total`).
    rx_full: usize,
    tx_full: usize,
    /// Routes held from the neighbors (BIRD: master4's count minus its own statics).
    rx_total: u64,
    /// neighbor → what changes when its session is re-established (wasmbgp's
    /// `established-count`, BIRD's `Since`).
    marks: HashMap<String, String>,
}

enum Speaker {
    Wasm {
        proc: Proc,
        ctl: Ctl,
        sock: PathBuf,
        log: PathBuf,
        metrics: String,
    },
    Bird {
        bird: Bird,
        sock: PathBuf,
        log: PathBuf,
    },
}

impl Speaker {
    /// The speaker with `n` neighbors, in `d`.
    fn start(o: &Opts, kind: Kind, d: &Path, p: Ports, n: u32) -> Result<Speaker> {
        mkdir(d)?;
        match kind {
            Kind::Wasmbgp => {
                let conf = d.join("wasmbgp.toml");
                std::fs::write(&conf, wasmbgp_conf(o, d, p, n)?).map_err(|e| e.to_string())?;
                let log = d.join("wasmbgp.log");
                let mut proc = start_wasmbgp(&o.wasmbgp, &conf, &d.join("cache"), &log)?;
                let sock = d.join("wasmbgp.sock");
                let deadline = Instant::now() + o.timeout;
                while !sock.exists() {
                    if let Some(e) = proc.exited() {
                        bail!(
                            "{e}: {}",
                            std::fs::read_to_string(&log).unwrap_or_default().trim()
                        );
                    }
                    if Instant::now() > deadline {
                        bail!("wasmbgp made no control socket within {:?}", o.timeout);
                    }
                    pause(Duration::from_millis(20))?;
                }
                let ctl = Ctl::connect(&sock, Duration::from_secs(10), REPLY_TIMEOUT)?;
                Ok(Speaker::Wasm {
                    proc,
                    ctl,
                    sock,
                    log,
                    metrics: format!("{SPEAKER}:{}", p.metrics),
                })
            }
            Kind::Bird => {
                let bird = Bird::start_within(
                    &o.bird,
                    d,
                    "bird speaker",
                    &bird_speaker_conf(o, p, n),
                    o.timeout,
                )?;
                let mut bird = bird;
                bird.ctl.set_reply_timeout(REPLY_TIMEOUT)?;
                Ok(Speaker::Bird {
                    bird,
                    sock: d.join("bird.ctl"),
                    log: d.join("bird.log"),
                })
            }
        }
    }

    /// A new control connection (after a failed reply left the old one out of step).
    fn reconnect(&mut self) -> Result<()> {
        match self {
            Speaker::Wasm { ctl, sock, .. } => {
                *ctl = Ctl::connect(sock, Duration::from_secs(10), REPLY_TIMEOUT)?;
            }
            Speaker::Bird { bird, sock, .. } => {
                bird.ctl = Birdc::connect(sock, Duration::from_secs(10))?;
                bird.ctl.set_reply_timeout(REPLY_TIMEOUT)?;
            }
        }
        Ok(())
    }

    fn pid(&self) -> u32 {
        match self {
            Speaker::Wasm { proc, .. } => proc.pid(),
            Speaker::Bird { bird, .. } => bird.proc.pid(),
        }
    }

    fn exited(&mut self) -> Option<String> {
        match self {
            Speaker::Wasm { proc, .. } => proc.exited(),
            Speaker::Bird { bird, .. } => bird.proc.exited(),
        }
    }

    fn stop(&mut self) {
        match self {
            Speaker::Wasm { proc, .. } => proc.stop(),
            Speaker::Bird { bird, .. } => bird.proc.stop(),
        }
    }

    /// The speaker's view. `routes`: also count the routes held (BIRD: `show route
    /// count`; wasmbgp's answer has them anyway).
    fn view(&mut self, o: &Opts, routes: bool) -> Result<SpeakerView> {
        let mut v = SpeakerView::default();
        match self {
            Speaker::Wasm { ctl, .. } => {
                let j = ctl.json("show neighbors --json")?;
                let list = j
                    .as_array()
                    .ok_or("`show neighbors --json` is not an array")?;
                for n in list {
                    let addr = n["address"].as_str().ok_or("a neighbor without address")?;
                    let state = n["state"].as_str().ok_or("a neighbor without state")?;
                    let rx = n["prefixes-received"]
                        .as_u64()
                        .ok_or("no prefixes-received")?;
                    let tx = n["prefixes-sent"].as_u64().ok_or("no prefixes-sent")?;
                    let est = n["established-count"]
                        .as_u64()
                        .ok_or("no established-count")?;
                    v.known += 1;
                    v.up += (state == "established") as usize;
                    v.rx_full += (rx == o.routes as u64) as usize;
                    v.tx_full += (tx == o.routes as u64) as usize;
                    v.rx_total += rx;
                    v.marks.insert(addr.to_string(), est.to_string());
                }
            }
            Speaker::Bird { bird, .. } => {
                for p in bird_protocols(&mut bird.ctl, "show protocols \"n*\"")? {
                    v.known += 1;
                    v.up += p.established() as usize;
                    v.marks.insert(p.name, p.since);
                }
                if routes {
                    v.rx_total = bird_route_count(&mut bird.ctl)?.saturating_sub(o.routes as u64);
                }
            }
        }
        Ok(v)
    }
}

/// What the peers BIRD says of its protocols `p*`.
#[derive(Default)]
struct PeersView {
    known: usize,
    up: usize,
    /// Peers that imported R routes from the speaker and exported their R.
    full: usize,
    min_hold_left: Option<f64>,
    since: HashMap<String, String>,
    not_up: Vec<String>,
}

fn peers_view(peers: &mut Bird, o: &Opts, all: bool) -> Result<PeersView> {
    let cmd = if all {
        "show protocols all \"p*\""
    } else {
        "show protocols \"p*\""
    };
    let mut v = PeersView::default();
    for p in bird_protocols(&mut peers.ctl, cmd)? {
        v.known += 1;
        if p.established() {
            v.up += 1;
        } else {
            v.not_up.push(format!("{} {} {}", p.name, p.state, p.info));
        }
        let r = Some(o.routes as u64);
        v.full += (p.imported == r && p.exported == r) as usize;
        if let Some(h) = p.hold_left {
            v.min_hold_left = Some(v.min_hold_left.map_or(h, |m: f64| m.min(h)));
        }
        v.since.insert(p.name, p.since);
    }
    Ok(v)
}

fn start_peers(o: &Opts, d: &Path, p: Ports) -> Result<Bird> {
    let t0 = Instant::now();
    let mut peers = Bird::start_within(&o.bird, d, "bird peers", &peers_conf(o, p), o.timeout)?;
    peers.ctl.set_reply_timeout(REPLY_TIMEOUT)?;
    loop {
        let v = peers_view(&mut peers, o, false)?;
        let listening = if v.known == o.sessions as usize {
            let l = tcp_listening_ports();
            (0..o.sessions).filter(|i| l.contains(&p.peer(*i))).count()
        } else {
            0
        };
        if v.known == o.sessions as usize && listening == o.sessions as usize {
            eprintln!(
                "bench: peers BIRD ready in {:.1} s ({} protocols, {} listening)",
                t0.elapsed().as_secs_f64(),
                v.known,
                if p.shared {
                    format!("one port, {}", p.peers)
                } else {
                    format!("ports {}–{}", p.peer(0), p.peer(o.sessions - 1))
                }
            );
            return Ok(peers);
        }
        if let Some(e) = peers.proc.exited() {
            bail!("{e}");
        }
        if t0.elapsed() > o.timeout {
            bail!(
                "peers BIRD: {} of {} protocols, {listening} of their ports listening, after {:?}",
                v.known,
                o.sessions,
                o.timeout
            );
        }
        pause(Duration::from_millis(200))?;
    }
}

// ---------------------------------------------------------------------------------------
// One speaker's run

#[derive(Default)]
struct Phase {
    kind: Option<Kind>,
    /// VmRSS with no neighbor configured.
    empty_rss: u64,
    base_rss: u64,
    base_hwm: u64,
    /// Spawn → all N Established: the speaker's view, the peers' view.
    up_speaker: Option<f64>,
    up_peers: Option<f64>,
    /// When not all came up: how many did, by each view.
    up_reached: (usize, usize),
    cpu_at_up: Option<f64>,
    routes_at: Option<f64>,
    routes_reached: String,
    cpu_at_routes: Option<f64>,
    peers_cpu_routes: Option<f64>,
    rss_up: u64,
    hwm_up: u64,
    rss_end: u64,
    hwm_end: u64,
    rss_max: u64,
    threads: u64,
    window: f64,
    cpu_window: f64,
    peers_cpu_window: f64,
    samples: u64,
    sample_errors: Vec<String>,
    /// Polls that failed before the window (timeouts while a daemon was busy).
    poll_errors: Vec<String>,
    /// Why the phase ended early, if it did.
    failed: Option<String>,
    /// Peers whose session dropped (not Established in a sample, or a new Since).
    dropped_peers: Vec<String>,
    /// Neighbors the speaker saw drop (down in a sample, new established-count/Since).
    dropped_speaker: Vec<String>,
    speaker_samples: u64,
    min_hold_left: Option<f64>,
    /// wasmbgp: NOTIFICATIONs over the window, by direction, code, subcode.
    notifs: Vec<String>,
    hold_expiry_notifs: f64,
    established_delta: f64,
    ka_sent: Option<(f64, f64)>,
    ka_received: Option<(f64, f64)>,
    /// Lines of the logs: hold timer expired (BIRD peers + BIRD speaker), errors.
    hold_expired_logs: usize,
    log_errors: usize,
    log_first_error: Option<String>,
    final_checks: Vec<String>,
    problems: Vec<String>,
    others: (f64, bool),
}

fn cpu(pid: u32) -> Result<f64> {
    cpu_seconds(pid)
}

fn phase(o: &Opts, dir: &Path, kind: Kind, p: Ports) -> Result<Phase> {
    let d = dir.join(kind.slug());
    mkdir(&d)?;
    let n = o.sessions as usize;
    let mut ph = Phase {
        kind: Some(kind),
        ..Phase::default()
    };

    // 1. Baselines: the speaker with no neighbor, then with the N neighbors but no peer.
    for neighbors in [0, o.sessions] {
        eprintln!(
            "bench: {}: baseline with {neighbors} neighbors (no peer)",
            kind.label()
        );
        let mut s = Speaker::start(
            o,
            kind,
            &d.join(format!("baseline-{neighbors}")),
            p,
            neighbors,
        )?;
        let t0 = Instant::now();
        // With no neighbor, answering its control socket (`Speaker::start`) is enough (BIRD
        // answers `show protocols "n*"` with an error then).
        while neighbors > 0 {
            let v = s.view(o, false)?;
            if v.known == neighbors as usize {
                break;
            }
            if t0.elapsed() > o.timeout {
                bail!(
                    "{}: {} of {neighbors} neighbors known after {:?}",
                    kind.label(),
                    v.known,
                    o.timeout
                );
            }
            pause(Duration::from_millis(100))?;
        }
        pause(o.settle)?;
        if let Some(e) = s.exited() {
            bail!("{e}");
        }
        let (rss, hwm) = (vm_status(s.pid(), "VmRSS:")?, vm_status(s.pid(), "VmHWM:")?);
        eprintln!(
            "bench: {}: VmRSS {} VmHWM {}",
            kind.label(),
            mib(rss),
            mib(hwm)
        );
        if neighbors == 0 {
            ph.empty_rss = rss;
        } else {
            (ph.base_rss, ph.base_hwm) = (rss, hwm);
        }
        s.stop();
    }

    // 2. The peers.
    let mut peers = start_peers(o, &d.join("peers"), p)?;
    let ppid = peers.proc.pid();
    let peers_cpu0 = cpu(ppid)?;

    // 3. The speaker, timed from its spawn.
    eprintln!("bench: {}: {n} sessions", kind.label());
    let t0 = Instant::now();
    let mut s = Speaker::start(o, kind, &d.join("run"), p, o.sessions)?;
    let spid = s.pid();
    let mut last = (0, 0);
    let peers_sock = d.join("peers").join("bird.ctl");
    while ph.up_speaker.is_none() || ph.up_peers.is_none() {
        let (sv, pv) = match poll_both(o, &mut s, &mut peers, &peers_sock, false, &mut ph) {
            Some(x) => x,
            None if t0.elapsed() > o.timeout => break,
            None => continue,
        };
        let t = t0.elapsed().as_secs_f64();
        if ph.up_speaker.is_none() && sv.up == n {
            ph.up_speaker = Some(t);
        }
        if ph.up_peers.is_none() && pv.up == n {
            ph.up_peers = Some(t);
        }
        if ph.up_speaker.is_some() && ph.up_peers.is_some() {
            ph.cpu_at_up = Some(cpu(spid)?);
            break;
        }
        if (sv.up, pv.up) != last && (sv.up / 100 != last.0 / 100 || sv.up == n) {
            eprintln!(
                "bench: {t:.1} s: {} up (speaker), {} up (peers)",
                sv.up, pv.up
            );
        }
        last = (sv.up, pv.up);
        ph.up_reached = last;
        if let Some(e) = s.exited().or_else(|| peers.proc.exited()) {
            bail!("{e}");
        }
        if t0.elapsed() > o.timeout {
            let msg = format!(
                "not all {n} Established after {:?}: {} (speaker's view), {} (peers'); first peers down: {:?}",
                o.timeout,
                sv.up,
                pv.up,
                pv.not_up.iter().take(5).collect::<Vec<_>>()
            );
            eprintln!("bench: {msg}");
            ph.problems.push(msg);
            break;
        }
        pause(Duration::from_millis(250))?;
    }
    eprintln!(
        "bench: {}: all up at {:?} s (speaker) / {:?} s (peers)",
        kind.label(),
        ph.up_speaker,
        ph.up_peers
    );

    // … and until every route is exchanged.
    let want_rx = (n as u64) * (o.routes as u64);
    loop {
        let (sv, pv) = match poll_both(o, &mut s, &mut peers, &peers_sock, true, &mut ph) {
            Some(x) => x,
            None if t0.elapsed() > o.timeout * 2 => {
                ph.problems.push(format!(
                    "routes not all exchanged after {:?}",
                    o.timeout * 2
                ));
                break;
            }
            None => continue,
        };
        let speaker_ok = sv.rx_total == want_rx
            && match kind {
                Kind::Wasmbgp => sv.rx_full == n && sv.tx_full == n,
                Kind::Bird => true,
            };
        ph.routes_reached = format!(
            "the speaker holds {} of {want_rx} routes; {} of {n} peers imported and exported {}",
            sv.rx_total, pv.full, o.routes
        );
        if speaker_ok && pv.full == n {
            ph.routes_at = Some(t0.elapsed().as_secs_f64());
            ph.cpu_at_routes = Some(cpu(spid)?);
            ph.peers_cpu_routes = Some(cpu(ppid)? - peers_cpu0);
            break;
        }
        if let Some(e) = s.exited().or_else(|| peers.proc.exited()) {
            bail!("{e}");
        }
        if t0.elapsed() > o.timeout * 2 {
            let msg = format!(
                "routes not all exchanged after {:?}: {}",
                o.timeout * 2,
                ph.routes_reached
            );
            eprintln!("bench: {msg}");
            ph.problems.push(msg);
            break;
        }
        pause(Duration::from_millis(500))?;
    }
    eprintln!(
        "bench: {}: routes exchanged at {:?} s: {}",
        kind.label(),
        ph.routes_at,
        ph.routes_reached
    );

    // 4. Settled: the start of the window.
    pause(o.settle)?;
    ph.rss_up = vm_status(spid, "VmRSS:")?;
    ph.hwm_up = vm_status(spid, "VmHWM:")?;
    ph.threads = threads(spid);
    ph.rss_max = ph.rss_up;
    let metrics0 = match &s {
        Speaker::Wasm { metrics, .. } => Some(http_metrics(metrics)?),
        Speaker::Bird { .. } => None,
    };
    let sv0 = s.view(o, false)?;
    let pv0 = peers_view(&mut peers, o, true)?;
    let others = Others::start(&[ppid, spid]);
    let w0 = Instant::now();
    let cpu0 = cpu(spid)?;
    let pcpu0 = cpu(ppid)?;

    // 5. The window.
    eprintln!(
        "bench: {}: window of {} s (VmRSS {})",
        kind.label(),
        o.window.as_secs(),
        mib(ph.rss_up)
    );
    let mut dropped_peers: std::collections::BTreeSet<String> = Default::default();
    let mut dropped_speaker: std::collections::BTreeSet<String> = Default::default();
    let mut last_speaker = Instant::now();
    let mut consecutive_errors = 0;
    ph.min_hold_left = pv0.min_hold_left;
    let mut next = w0 + o.sample;
    loop {
        let end = w0 + o.window;
        let until = next.min(end);
        let now = Instant::now();
        if until > now {
            pause(until - now)?;
        }
        if Instant::now() >= end {
            break;
        }
        next += o.sample;
        if let Some(e) = s.exited().or_else(|| peers.proc.exited()) {
            bail!("{e}");
        }
        if let Ok(r) = vm_status(spid, "VmRSS:") {
            ph.rss_max = ph.rss_max.max(r);
        }
        match peers_view(&mut peers, o, true) {
            Ok(v) => {
                consecutive_errors = 0;
                ph.samples += 1;
                for x in &v.not_up {
                    let name = x.split_whitespace().next().unwrap_or("").to_string();
                    if dropped_peers.insert(name) {
                        eprintln!("bench: peer down in the window: {x}");
                    }
                }
                for (name, since) in &v.since {
                    if mark_changed(pv0.since.get(name), since)
                        && dropped_peers.insert(name.clone())
                    {
                        eprintln!(
                            "bench: peer {name} re-established in the window (Since {since})"
                        );
                    }
                }
                if v.known != n {
                    ph.problems
                        .push(format!("a sample listed {} peers, not {n}", v.known));
                }
                if let Some(h) = v.min_hold_left {
                    ph.min_hold_left = Some(ph.min_hold_left.map_or(h, |m: f64| m.min(h)));
                }
            }
            Err(e) => {
                consecutive_errors += 1;
                eprintln!("bench: a sample of the peers failed: {e}");
                ph.sample_errors.push(e);
                if let Ok(mut c) = Birdc::connect(&peers_sock, Duration::from_secs(10)) {
                    let _ = c.set_reply_timeout(REPLY_TIMEOUT);
                    peers.ctl = c;
                }
                if consecutive_errors >= 3 {
                    bail!(
                        "3 samples of the peers BIRD failed in a row: {:?}",
                        ph.sample_errors.last()
                    );
                }
            }
        }
        if last_speaker.elapsed() >= Duration::from_secs(30) {
            last_speaker = Instant::now();
            match s.view(o, false) {
                Ok(v) => {
                    ph.speaker_samples += 1;
                    note_speaker_drops(&sv0, &v, &mut dropped_speaker);
                }
                Err(e) => {
                    eprintln!("bench: a sample of the speaker failed: {e}");
                    ph.sample_errors.push(format!("speaker: {e}"));
                    let _ = s.reconnect();
                }
            }
        }
    }
    // 6. The end of the window.
    ph.window = w0.elapsed().as_secs_f64();
    ph.cpu_window = cpu(spid)? - cpu0;
    ph.peers_cpu_window = cpu(ppid)? - pcpu0;
    ph.others = others.end();
    ph.rss_end = vm_status(spid, "VmRSS:")?;
    ph.hwm_end = vm_status(spid, "VmHWM:")?;
    ph.rss_max = ph.rss_max.max(ph.rss_end);
    let sv1 = s.view(o, false)?;
    ph.speaker_samples += 1;
    note_speaker_drops(&sv0, &sv1, &mut dropped_speaker);
    let pv1 = peers_view(&mut peers, o, true)?;
    for (name, since) in &pv1.since {
        if mark_changed(pv0.since.get(name), since) {
            dropped_peers.insert(name.clone());
        }
    }
    for x in &pv1.not_up {
        dropped_peers.insert(x.split_whitespace().next().unwrap_or("").to_string());
    }
    if let Some(h) = pv1.min_hold_left {
        ph.min_hold_left = Some(ph.min_hold_left.map_or(h, |m: f64| m.min(h)));
    }
    ph.dropped_peers = dropped_peers.into_iter().collect();
    ph.dropped_speaker = dropped_speaker.into_iter().collect();

    // Counters and logs.
    match &s {
        Speaker::Wasm { metrics, log, .. } => {
            let m1 = http_metrics(metrics)?;
            let m0 = metrics0.as_deref().unwrap_or("");
            let (n0, n1) = (notifications(m0), notifications(&m1));
            let mut keys: Vec<_> = n1.keys().collect();
            keys.sort();
            for k in keys {
                let delta = n1[k] - n0.get(k).copied().unwrap_or(0.0);
                if delta > 0.0 {
                    ph.notifs
                        .push(format!("{} code {} subcode {}: {delta:.0}", k.0, k.1, k.2));
                    if k.1 == "4" {
                        ph.hold_expiry_notifs += delta;
                    }
                }
            }
            let est = |t: &str| -> f64 {
                per_neighbor(t, "bgp_session_established_total", &[])
                    .values()
                    .sum()
            };
            ph.established_delta = est(&m1) - est(m0);
            let ka = |dir: &str| -> Option<(f64, f64)> {
                let a = per_neighbor(
                    m0,
                    "bgp_messages_total",
                    &[("direction", dir), ("type", "keepalive")],
                );
                let b = per_neighbor(
                    &m1,
                    "bgp_messages_total",
                    &[("direction", dir), ("type", "keepalive")],
                );
                let d: Vec<f64> = b
                    .iter()
                    .map(|(k, v)| v - a.get(k).copied().unwrap_or(0.0))
                    .collect();
                if d.len() != n {
                    return None;
                }
                Some((
                    d.iter().copied().fold(f64::INFINITY, f64::min),
                    d.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                ))
            };
            ph.ka_sent = ka("sent");
            ph.ka_received = ka("received");
            ph.log_errors = count_lines(log, " WARN ") + count_lines(log, " ERROR ");
            ph.log_first_error = first_line(log, " WARN ").or_else(|| first_line(log, " ERROR "));
        }
        Speaker::Bird { log, .. } => {
            ph.hold_expired_logs += count_lines(log, "Hold timer expired");
            ph.log_errors += count_lines(log, "Error:");
            ph.log_first_error = first_line(log, "Error:");
        }
    }
    let peers_log = d.join("peers").join("bird.log");
    ph.hold_expired_logs += count_lines(&peers_log, "Hold timer expired");
    ph.log_errors += count_lines(&peers_log, "Error:");
    if ph.log_first_error.is_none() {
        ph.log_first_error = first_line(&peers_log, "Error:");
    }

    // Final checks by separate processes, exit status checked.
    let count_est = |t: &str| t.lines().filter(|l| l.contains("Established")).count();
    let peers_sock = d.join("peers").join("bird.ctl");
    match run_checked(
        "birdc show protocols (peers)",
        Command::new(&o.birdc)
            .arg("-s")
            .arg(&peers_sock)
            .args(["show", "protocols", "\"p*\""]),
    ) {
        Ok(t) => ph.final_checks.push(format!(
            "peers `birdc show protocols`: {} of {n} Established",
            count_est(&t)
        )),
        Err(e) => ph.problems.push(e),
    }
    match &s {
        Speaker::Wasm { sock, .. } => match run_checked(
            "wasmbgp ctl show neighbors --json",
            Command::new(&o.wasmbgp)
                .args(["ctl", "--socket"])
                .arg(sock)
                .args(["show", "neighbors", "--json"]),
        ) {
            Ok(t) => {
                let up = serde_json::from_str::<serde_json::Value>(&t)
                    .ok()
                    .and_then(|v| {
                        v.as_array()
                            .map(|l| l.iter().filter(|x| x["state"] == "established").count())
                    });
                ph.final_checks.push(format!(
                    "`wasmbgp ctl show neighbors --json`: {} of {n} established",
                    up.map_or("?".into(), |u| u.to_string())
                ))
            }
            Err(e) => ph.problems.push(e),
        },
        Speaker::Bird { sock, .. } => match run_checked(
            "birdc show protocols (speaker)",
            Command::new(&o.birdc)
                .arg("-s")
                .arg(sock)
                .args(["show", "protocols", "\"n*\""]),
        ) {
            Ok(t) => ph.final_checks.push(format!(
                "speaker `birdc show protocols`: {} of {n} Established",
                count_est(&t)
            )),
            Err(e) => ph.problems.push(e),
        },
    }
    if let Speaker::Bird { bird, .. } = &mut s {
        // Per protocol, now that the window is over (a heavy command).
        let list = bird_protocols(&mut bird.ctl, "show protocols all \"n*\"")?;
        let full = list
            .iter()
            .filter(|x| x.imported == Some(o.routes as u64) && x.exported == Some(o.routes as u64))
            .count();
        ph.final_checks.push(format!(
            "BIRD speaker: {full} of {n} protocols imported and exported {}",
            o.routes
        ));
    }
    s.stop();
    peers.proc.stop();
    Ok(ph)
}

/// Whether a session's mark changed: wasmbgp's `established-count` (any increase), or
/// BIRD's `Since` by more than 0.5 s (BIRD prints its monotonic time converted to wall
/// time at each command, so the same instant reads a few µs apart; it also stamps a
/// session again a millisecond after it comes up).
fn mark_changed(before: Option<&String>, now: &str) -> bool {
    match (
        before.and_then(|b| b.parse::<f64>().ok()),
        now.parse::<f64>().ok(),
    ) {
        (Some(a), Some(b)) => (a - b).abs() > 0.5,
        _ => before.map(String::as_str) != Some(now),
    }
}

/// The speaker's and the peers' views, or `None` after a failed poll (counted, the
/// connection renewed; a daemon that exited ends the run through the next poll).
fn poll_both(
    o: &Opts,
    s: &mut Speaker,
    peers: &mut Bird,
    peers_sock: &Path,
    all: bool,
    ph: &mut Phase,
) -> Option<(SpeakerView, PeersView)> {
    let sv = match s.view(o, all) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("bench: a poll of the speaker failed: {e}");
            ph.poll_errors.push(format!("speaker: {e}"));
            if let Err(e) = s.reconnect() {
                ph.poll_errors.push(format!("speaker: reconnect: {e}"));
            }
            return None;
        }
    };
    match peers_view(peers, o, all) {
        Ok(pv) => Some((sv, pv)),
        Err(e) => {
            eprintln!("bench: a poll of the peers failed: {e}");
            ph.poll_errors.push(format!("peers: {e}"));
            match Birdc::connect(peers_sock, Duration::from_secs(10)) {
                Ok(mut c) => {
                    let _ = c.set_reply_timeout(REPLY_TIMEOUT);
                    peers.ctl = c;
                }
                Err(e) => ph.poll_errors.push(format!("peers: reconnect: {e}")),
            }
            None
        }
    }
}

fn note_speaker_drops(
    v0: &SpeakerView,
    v: &SpeakerView,
    dropped: &mut std::collections::BTreeSet<String>,
) {
    for (k, m) in &v.marks {
        if mark_changed(v0.marks.get(k), m) && dropped.insert(k.clone()) {
            eprintln!("bench: the speaker re-established {k} in the window");
        }
    }
    if v.up < v.known {
        eprintln!("bench: the speaker has {} of {} up", v.up, v.known);
        dropped.insert(format!("({} down in a sample)", v.known - v.up));
    }
}

// ---------------------------------------------------------------------------------------
// Report

fn secs(x: f64) -> String {
    if x < 0.1 {
        format!("{:.1} ms", x * 1e3)
    } else {
        format!("{x:.2} s")
    }
}

fn kib(b: f64) -> String {
    if b.abs() >= 1024.0 * 10.0 {
        format!("{:.0} KiB", b / 1024.0)
    } else {
        format!("{:.1} KiB", b / 1024.0)
    }
}

fn header(o: &Opts) -> String {
    let tree = tree_since(&o.tree_at_start, sh);
    let when = sh(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]));
    let built = sh(Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC", "-r"])
        .arg(&o.wasmbgp));
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!(
        "wasmbgp sessions benchmark — HEAD {tree}; wasmbgp built {built}; {}; {cpus} CPUs ({}); {when}; \
         {} sessions, {} routes each way per session, hold time {HOLD} s, a {} s window; load average at the end: {}\n\n",
        bird_version(&o.bird),
        cpu_model(),
        o.sessions,
        o.routes,
        o.window.as_secs(),
        load_average(),
    )
}

fn report(o: &Opts, phases: &[Phase]) -> String {
    let n = o.sessions as f64;
    let mut s = header(o);
    let get = |k: Kind| phases.iter().find(|p| p.kind == Some(k));
    let (w, b) = (get(Kind::Wasmbgp), get(Kind::Bird));
    s += &format!(
        "| {} sessions × {} routes each way, hold time {HOLD} s | wasmbgp | BIRD 2 |\n|---|---|---|\n",
        o.sessions, o.routes
    );
    let mut row = |what: &str, f: &dyn Fn(&Phase) -> String| {
        let cell = |p: Option<&Phase>| match p {
            None => "—".to_string(),
            Some(p) if p.failed.is_some() => "**failed** (below)".to_string(),
            Some(p) => f(p),
        };
        s += &format!("| {what} | {} | {} |\n", cell(w), cell(b));
    };
    let opt = |x: Option<f64>, f: &dyn Fn(f64) -> String| x.map_or("—".to_string(), f);
    row(
        &format!(
            "**spawn → all {} Established** (the speaker's view; target ≤ {UP_TARGET:.0} s)",
            o.sessions
        ),
        &|p| match p.up_speaker {
            Some(t) => format!(
                "**{}**{}",
                secs(t),
                if t <= UP_TARGET {
                    ""
                } else {
                    " (target missed)"
                }
            ),
            None => format!("**not all**: {} up", p.up_reached.0),
        },
    );
    row(
        "… the peers' view (BIRD `show protocols`, Info `Established`)",
        &|p| match p.up_peers {
            Some(t) => secs(t),
            None => format!("not all: {} up", p.up_reached.1),
        },
    );
    row(
        &format!(
            "spawn → all routes exchanged (every peer imported {r} and exported {r}; the speaker holds {})",
            o.sessions as u64 * o.routes as u64,
            r = o.routes
        ),
        &|p| opt(p.routes_at, &secs),
    );
    row(
        "speaker's CPU, spawn → all Established / → all routes",
        &|p| {
            format!(
                "{} / {}",
                opt(p.cpu_at_up, &|x| format!("{x:.2} s")),
                opt(p.cpu_at_routes, &|x| format!("{x:.2} s"))
            )
        },
    );
    row(
        &format!(
            "**sessions dropped in the {} s window** (peers' view / speaker's view)",
            o.window.as_secs()
        ),
        &|p| {
            format!(
                "**{} / {}**",
                p.dropped_peers.len(),
                p.dropped_speaker.len()
            )
        },
    );
    row(
        "hold-timer expiries (NOTIFICATION code 4 in wasmbgp's metrics; `Hold timer expired` in the BIRD logs)",
        &|p| {
            if p.kind == Some(Kind::Wasmbgp) {
                format!(
                    "{:.0} (BIRD peers' log: {})",
                    p.hold_expiry_notifs, p.hold_expired_logs
                )
            } else {
                format!("{} (logs)", p.hold_expired_logs)
            }
        },
    );
    row(
        "NOTIFICATIONs in the window (wasmbgp: metrics; BIRD: `Error:` log lines, both BIRDs)",
        &|p| {
            if p.kind == Some(Kind::Wasmbgp) {
                if p.notifs.is_empty() {
                    "0".into()
                } else {
                    p.notifs.join("; ")
                }
            } else {
                p.log_errors.to_string()
            }
        },
    );
    row(
        &format!(
            "**keepalives on time**: lowest `Hold timer` left at any peer, over every sample (expiry at 0; on time ≥ {ON_TIME_LEFT:.2} s: see below)"
        ),
        &|p| match p.min_hold_left {
            Some(h) => {
                format!(
                    "**{}** ({h:.2} s of {HOLD}, {} samples × {} peers)",
                    if h >= ON_TIME_LEFT && p.dropped_peers.is_empty() {
                        "yes"
                    } else {
                        "no"
                    },
                    p.samples,
                    o.sessions
                )
            }
            None => "—".into(),
        },
    );
    row(
        &format!(
            "keepalives sent / received per session in the window (min–max; wasmbgp metrics; one per 3 s would be {:.0})",
            o.window.as_secs_f64() / 3.0
        ),
        &|p| match (p.ka_sent, p.ka_received) {
            (Some(a), Some(b)) => format!("{:.0}–{:.0} / {:.0}–{:.0}", a.0, a.1, b.0, b.1),
            _ => "—".into(),
        },
    );
    row(
        "**speaker's CPU over the window** (utime + stime; % of one core)",
        &|p| {
            format!(
                "**{:.2} s** ({:.2} %)",
                p.cpu_window,
                100.0 * p.cpu_window / p.window.max(1e-3)
            )
        },
    );
    row("… per session per minute", &|p| {
        format!(
            "{:.2} ms",
            1e3 * p.cpu_window / n / (p.window / 60.0).max(1e-6)
        )
    });
    row(
        "speaker's VmRSS: no neighbor / the N neighbors, no peer (baseline) / all up and routes exchanged / end of window",
        &|p| {
            format!(
                "{} / {} / {} / {}",
                mib(p.empty_rss),
                mib(p.base_rss),
                mib(p.rss_up),
                mib(p.rss_end)
            )
        },
    );
    row(
        "**RSS per session** (VmRSS all up − baseline, / N: what an Established session with its routes adds)",
        &|p| format!("**{}**", kib((p.rss_up as f64 - p.base_rss as f64) / n)),
    );
    row("… at the end of the window", &|p| {
        kib((p.rss_end as f64 - p.base_rss as f64) / n)
    });
    row(
        "**RSS per neighbor, configured and Established** (VmRSS all up − no neighbor, / N)",
        &|p| format!("**{}**", kib((p.rss_up as f64 - p.empty_rss as f64) / n)),
    );
    row(
        "… of which configured, not connected ((baseline − no neighbor) / N)",
        &|p| kib((p.base_rss as f64 - p.empty_rss as f64) / n),
    );
    row("VmRSS all up / N (the whole process)", &|p| {
        kib(p.rss_up as f64 / n)
    });
    row(
        "peak RSS (VmHWM): baseline / end of the window; highest VmRSS sampled",
        &|p| {
            format!(
                "{} / {}; {}",
                mib(p.base_hwm),
                mib(p.hwm_end),
                mib(p.rss_max)
            )
        },
    );
    row("speaker's threads", &|p| p.threads.to_string());
    row(
        "peers BIRD's CPU: spawn → all routes / over the window (context)",
        &|p| {
            format!(
                "{} / {:.2} s",
                opt(p.peers_cpu_routes, &|x| format!("{x:.2} s")),
                p.peers_cpu_window
            )
        },
    );
    row("others' CPU over the window (share of one CPU)", &|p| {
        format!(
            "{:.0} %{}{}",
            p.others.0 * 100.0,
            if p.others.0 > BUSY_SHARE {
                " (busy)"
            } else {
                ""
            },
            if p.others.1 {
                ", a rustc/cargo ran"
            } else {
                ""
            }
        )
    });
    let mut notes = String::new();
    for p in phases {
        let k = p.kind.map_or("?", |k| k.label());
        if let Some(e) = &p.failed {
            let _ = writeln!(notes, "\n**{k}**: **failed**: {e}");
            continue;
        }
        if !p.poll_errors.is_empty() {
            let _ = write!(
                notes,
                "\n**{k}**: {} polls failed before the window and were retried on a new connection (the first: {}).",
                p.poll_errors.len(),
                p.poll_errors[0]
            );
        }
        let _ = write!(
            notes,
            "\n**{k}**: final checks: {}.",
            p.final_checks.join("; ")
        );
        let _ = write!(
            notes,
            " Log lines: {} {} (the first: {}).",
            p.log_errors,
            if p.kind == Some(Kind::Wasmbgp) {
                "WARN/ERROR in wasmbgp's log, and `Error:` in the peers BIRD's"
            } else {
                "`Error:` in the BIRD logs"
            },
            p.log_first_error
                .as_deref()
                .map_or("none".to_string(), |l| format!("`{l}`"))
        );
        if !p.dropped_peers.is_empty() || !p.dropped_speaker.is_empty() {
            let _ = write!(
                notes,
                " Dropped: peers {:?}; speaker {:?}.",
                p.dropped_peers.iter().take(10).collect::<Vec<_>>(),
                p.dropped_speaker.iter().take(10).collect::<Vec<_>>()
            );
        }
        if !p.sample_errors.is_empty() {
            let _ = write!(
                notes,
                " Failed samples: {} (the first: {}).",
                p.sample_errors.len(),
                p.sample_errors[0]
            );
        }
        if !p.problems.is_empty() {
            let _ = write!(notes, " **Problems**: {}.", p.problems.join("; "));
        }
        let _ = writeln!(notes);
    }
    s += &notes;
    s += &format!(
        "\nMethod (bench/README.md, \"Sessions benchmark\"): one BIRD 2 (the peers) with {n} passive BGP protocols at \
         127.91.1.1… (one address and one listening port each: BIRD's backlog is 8 per port), each with its own table and static protocol of {r} /24s; the speaker's end of each \
         session at an address of its own, 127.91.128.1… (BIRD holds one lock per neighbor address and port: protocols \
         sharing one wait in Idle). wasmbgp: one `[[neighbor]]` per peer (`local-address`, `hold-time = 9`) and one \
         `[[route-file]]`; BIRD: one protocol per peer on master4 with `connect delay time 1` (BIRD's least: it connects \
         0.75–1 s after start), exporting a static protocol's {r} routes. A fresh peers BIRD for each speaker. Baseline = \
         the same speaker and config with no peer running (and \"no neighbor\": the speaker with none configured), \
         {settle} s after it answers its control socket. Times from the \
         speaker's spawn, polled every 250 ms (Established) and 500 ms (routes). The window samples the peers every {sample} s \
         (`show protocols all \"p*\"`: state, `Since`, `Hold timer`) and the speaker every 30 s. Keepalives on time: BIRD \
         restarts a peer's hold timer at a random 6.75–9 s on every message it receives (RFC 4271 jitter), so with a message \
         at least every 3 s the timer never reads below 3.75 s; the verdict allows 0.5 s of slack ({ON_TIME_LEFT:.2} s) and needs \
         no drop. CPU = utime + stime (/proc/PID/stat, all threads); RSS from /proc/PID/status.\n",
        n = o.sessions,
        r = o.routes,
        settle = o.settle.as_secs(),
        sample = o.sample.as_secs()
    );
    s
}

fn run(o: &Opts, dir: &Path) -> Result<String> {
    let want = 4 * o.sessions as u64 + 1024;
    let got = raise_nofile(want)?;
    if got < want {
        bail!(
            "RLIMIT_NOFILE is {got}, below the {want} that {} sessions need (ulimit -Hn)",
            o.sessions
        );
    }
    let p = Ports {
        peers: free_port_range(if o.shared_port { 1 } else { o.sessions as u16 })?,
        shared: o.shared_port,
        speaker: free_port(Ipv4Addr::UNSPECIFIED)?,
        metrics: free_port(SPEAKER)?,
    };
    let mut phases = Vec::new();
    for &k in &o.kinds {
        match phase(o, dir, k, p) {
            Ok(ph) => phases.push(ph),
            Err(e) => {
                if stop_requested() {
                    return Err(e);
                }
                eprintln!("bench: {}: FAILED: {e}", k.label());
                phases.push(Phase {
                    kind: Some(k),
                    failed: Some(e),
                    ..Phase::default()
                });
            }
        }
    }
    Ok(report(o, &phases))
}

fn main() {
    let o = opts_or_exit("wasmbgp-bench-sessions", parse_opts());
    catch_stop_signals();
    bench_main(
        "wasmbgp-bench-sessions",
        "wasmbgp sessions benchmark results",
        "bench/run-sessions.sh",
        o.keep,
        o.out.as_deref(),
        |dir| run(&o, dir),
    );
}
