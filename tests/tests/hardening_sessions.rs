//! Session hardening end to end against real BIRD 2 (issue 11): TCP-MD5 (RFC 2385) and
//! the Generalized TTL Security Mechanism (GTSM, RFC 5082).
//!
//! **TCP-MD5** (`md5_ipv4_loopback`, block 254 on the host's loopback;
//! `md5_ipv6_namespace`, block 255's ports on `fd00:255::/64` addresses of the loopback
//! of a network namespace the test creates, IPv6 having only `::1` on the host's). One
//! BIRD with `password "..."` on five sessions, one wasmbgp:
//!
//! | protocol | who connects | wasmbgp's key |
//! |---|---|---|
//! | `good_active` | wasmbgp | `md5-password-file` (the key and a newline) |
//! | `good_passive` | BIRD (`passive = true` at wasmbgp) | `md5-password-file` (no newline) |
//! | `bad_active` | wasmbgp | `md5-password-file`, another key |
//! | `bad_passive` | BIRD | `md5-password-file`, another key |
//! | `env_active` | wasmbgp | `md5-password-env` |
//!
//! The good sessions and the env one come up at both ends and BIRD holds wasmbgp's
//! route; the bad ones are sampled for 10 s: never Established at either end, wasmbgp's
//! last error on `bad_active` ends with the TCP-MD5 hint, BIRD's log shows no session,
//! and the kernel counts MD5 failures. `show neighbors` says `md5: set` (text) and
//! `"md5": "set"` (JSON) for each; no key appears in wasmbgp's log (debug level), in
//! `show neighbors` (text and JSON), in the reload answers nor in `show metrics`. Then
//! `good_active`'s key file gets another key and `ctl reload` resets that session only:
//! BIRD logs `Received: Other configuration change`, the session stays down for 5 s,
//! the other sessions keep theirs; the right key again and `ctl reload` bring it back,
//! with its route.
//!
//! `md5_config_refused`: `wasmbgp check` refuses a missing key file, an environment
//! variable that is not set and an 81-byte key, each with `FILE:LINE:COL` at the
//! value, never quoting the key.
//!
//! **GTSM** (`gtsm_namespaces`, block 256's ports on private addresses in namespaces the
//! test creates, all deleted at the end whatever happens): wasmbgp in namespace A; BIRD
//! `b` in B, one hop away (a veth pair); BIRD `c` in C, two hops away behind a router
//! namespace R (forwarding on, routes both ways). Each BIRD has four sessions to wasmbgp:
//! IPv4 and IPv6, wasmbgp connecting (`active4`, `active6`) and BIRD connecting
//! (`passive4`, `passive6`). BIRD `c` says `multihop 2` throughout.
//!
//! 1. No GTSM anywhere: all eight sessions come up (the two-hop path works).
//! 2. BIRD `b` and `c` get `ttl security on` (`birdc configure`), wasmbgp `ttl-security
//!    = 1` for all eight (`ctl reload`, 8 reset): `b`'s four come up again (BIRD `b`
//!    drops what arrives below TTL 255, so wasmbgp sends 255, connecting and accepting);
//!    `c`'s four never do for 10 s at either end (BIRD `c` sends 255, which arrives at A
//!    as 254), and A's kernel counts `TCPMinTTLDrop`.
//! 3. wasmbgp `ttl-security = 2` for `c`'s four (`ctl reload`, 4 reset), BIRD unchanged:
//!    they come up; `b`'s sessions are untouched. The refusal in 2 was wasmbgp's GTSM.
//!
//! BIRD is asked through `birdc`, whose failures are errors; every wait and every
//! sampling loop is bounded in time and in count.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use wasmbgp_e2e::check::{check_file, line_col};
use wasmbgp_e2e::netns::{self, Netns};
use wasmbgp_e2e::peers::bird::{self, BgpProtocol, ProtocolLine};
use wasmbgp_e2e::plugin_support::{same_since, strip_ansi};
use wasmbgp_e2e::policy_support::tail;
use wasmbgp_e2e::process::Daemon;
use wasmbgp_e2e::reload_support::wait_strict;
use wasmbgp_e2e::step;
use wasmbgp_e2e::wasmbgp::{Config, Launch, NeighborConfig, RouteAttrs, WasmBgp};
use wasmbgp_e2e::workdir::{WorkDir, run_in_workdir as run};

const WASMBGP_AS: u32 = 65001;
const BIRD_AS: u32 = 65200;
/// How often a state is sampled.
const POLL: Duration = Duration::from_millis(250);
/// Bound for sessions to come up.
const UP: Duration = Duration::from_secs(20);
/// How long a refused session is watched.
const REFUSED: Duration = Duration::from_secs(10);
/// How long the session whose key a reload changed is watched.
const RELOAD_REFUSED: Duration = Duration::from_secs(5);
/// wasmbgp's log filter: its own records down to debug.
const LOG_LEVEL: &str = "info,wasmbgp=debug";

/// BIRD's key, and wasmbgp's on the good sessions.
const GOOD_KEY: &str = "e2e-Md5-Zq7xK3good";
/// wasmbgp's key on the bad sessions.
const WRONG_KEY: &str = "e2e-Md5-Wr0ng9TqP";
/// The key of `env_active`, at both ends.
const ENV_KEY: &str = "e2e-Md5-Env4hLmXv";
/// The environment variable holding it.
const ENV_VAR: &str = "WASMBGP_E2E_MD5_KEY";
/// Every key, for the secrecy checks.
const KEYS: [&str; 3] = [GOOD_KEY, WRONG_KEY, ENV_KEY];

// ---------------------------------------------------------------------------
// Rigs shared by both halves.

/// A BIRD whose sessions are [`BgpProtocol`]s, run inside a namespace or on the host.
struct HardBird {
    dir: PathBuf,
    router_id: Ipv4Addr,
    protocols: Vec<BgpProtocol>,
    _daemon: Daemon,
}

impl HardBird {
    fn config(dir: &Path, router_id: Ipv4Addr, protocols: &[BgpProtocol]) -> Result<String> {
        let mut conf = bird::config_head(dir, router_id);
        for p in protocols {
            conf.push_str(&p.render()?);
        }
        Ok(conf)
    }

    fn start(
        dir: &Path,
        router_id: Ipv4Addr,
        protocols: Vec<BgpProtocol>,
        netns: Option<&Netns>,
    ) -> Result<Self> {
        let conf = Self::config(dir, router_id, &protocols)?;
        let prefix = netns.map(Netns::prefix).unwrap_or_default();
        let daemon = bird::start_daemon_with(dir, &conf, &prefix)?;
        let bird = Self {
            dir: dir.to_path_buf(),
            router_id,
            protocols,
            _daemon: daemon,
        };
        bird::wait_daemon_up(dir, UP)?;
        Ok(bird)
    }

    /// Loads `protocols` with `birdc configure`.
    fn reconfigure(&mut self, protocols: Vec<BgpProtocol>) -> Result<()> {
        bird::reconfigure(
            &self.dir,
            &Self::config(&self.dir, self.router_id, &protocols)?,
        )?;
        self.protocols = protocols;
        Ok(())
    }

    fn birdc(&self, args: &[&str]) -> Result<String> {
        bird::birdc(&self.dir, args)
    }

    /// Every protocol's line of `show protocols` (each must be there).
    fn lines(&self) -> Result<BTreeMap<String, ProtocolLine>> {
        let out = self.birdc(&["show", "protocols"])?;
        self.protocols
            .iter()
            .map(|p| Ok((p.name.clone(), bird::protocol_line(&out, &p.name)?)))
            .collect()
    }

    /// `Last error:` of protocol `name`.
    fn last_error(&self, name: &str) -> Result<Option<String>> {
        let out = self.birdc(&["show", "protocols", "all", name])?;
        Ok(out
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Last error:"))
            .next_back()
            .map(|rest| rest.trim().to_owned()))
    }

    /// How many routes BIRD holds from protocol `name`.
    fn count(&self, name: &str) -> Result<u64> {
        bird::parse_count(&self.birdc(&["show", "route", "protocol", name, "count"])?)
    }

    fn log(&self) -> String {
        bird::read_log(&self.dir)
    }

    /// The protocol `name`.
    fn protocol(&self, name: &str) -> Result<&BgpProtocol> {
        self.protocols
            .iter()
            .find(|p| p.name == name)
            .with_context(|| format!("BIRD has no protocol {name}"))
    }
}

fn established(line: &ProtocolLine) -> bool {
    line.info.starts_with("Established")
}

/// wasmbgp's neighbors by address: (state, established-count).
fn wasmbgp_states(wasmbgp: &WasmBgp) -> Result<BTreeMap<String, (String, u64)>> {
    Ok(wasmbgp
        .neighbors()?
        .into_iter()
        .map(|n| (n.address, (n.state, n.established_count)))
        .collect())
}

/// Whether every session of `names` is Established at BIRD and at wasmbgp.
fn all_up(bird: &HardBird, wasmbgp: &WasmBgp, names: &[&str]) -> Result<bool> {
    let lines = bird.lines()?;
    let states = wasmbgp_states(wasmbgp)?;
    for name in names {
        let line = lines.get(*name).context("protocol missing")?;
        let address = bird.protocol(name)?.local.to_string();
        let (state, _) = states
            .get(&address)
            .with_context(|| format!("wasmbgp has no neighbor {address}"))?;
        if !established(line) || state != "established" {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Waits (at most `bound`) for every session of `names` to be Established at both ends.
fn wait_up(
    test: &str,
    birds: &[(&HardBird, &[&str])],
    wasmbgp: &WasmBgp,
    what: &str,
    bound: Duration,
) -> Result<Duration> {
    let took = wait_strict(what, POLL, bound, || {
        for (bird, names) in birds {
            if !all_up(bird, wasmbgp, names)? {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .with_context(|| diagnostics(birds, wasmbgp))?;
    step(test, format!("{what}: after {took:.1?}"));
    Ok(took)
}

/// Samples every session of `names` for the whole `window` (at most `window / POLL + 2`
/// samples): none may be Established at either end at any sample. Fails after the
/// window with every session seen up: when first, in how many samples, and what BIRD
/// and wasmbgp said last.
fn watch_refused(
    test: &str,
    birds: &[(&HardBird, &[&str])],
    wasmbgp: &WasmBgp,
    window: Duration,
) -> Result<u32> {
    let started = Instant::now();
    let most = (window.as_millis() / POLL.as_millis()) as u32 + 2;
    let mut samples = 0;
    // Session → (first seen up, samples up, what was seen last).
    let mut up: BTreeMap<String, (Duration, u32, String)> = BTreeMap::new();
    while samples < most {
        samples += 1;
        let states = wasmbgp_states(wasmbgp)?;
        for (bird, names) in birds {
            let lines = bird.lines()?;
            for name in *names {
                let line = lines.get(*name).context("protocol missing")?;
                let address = bird.protocol(name)?.local.to_string();
                let (state, count) = states
                    .get(&address)
                    .with_context(|| format!("wasmbgp has no neighbor {address}"))?;
                if established(line) || state == "established" {
                    let seen = format!(
                        "BIRD {} {:?} since {}, wasmbgp {state} (established {count} times)",
                        bird.router_id, line.info, line.since
                    );
                    let entry = up.entry(format!("{name} ({address})")).or_insert((
                        started.elapsed(),
                        0,
                        String::new(),
                    ));
                    entry.1 += 1;
                    entry.2 = seen;
                }
            }
        }
        if started.elapsed() >= window {
            break;
        }
        std::thread::sleep(POLL);
    }
    if !up.is_empty() {
        let list: Vec<String> = up
            .iter()
            .map(|(session, (first, n, seen))| {
                format!(
                    "{session}: up after {first:.1?}, in {n} of {samples} samples; last: {seen}"
                )
            })
            .collect();
        bail!(
            "sessions that must stay down came up:\n{}\n{}",
            list.join("\n"),
            diagnostics(birds, wasmbgp)
        );
    }
    ensure!(
        started.elapsed() >= window,
        "sampled {samples} times in {:.1?}, less than {window:?}",
        started.elapsed()
    );
    step(
        test,
        format!(
            "{samples} samples over {:.1?}: never Established",
            started.elapsed()
        ),
    );
    Ok(samples)
}

/// What the daemons say, for a failure.
fn diagnostics(birds: &[(&HardBird, &[&str])], wasmbgp: &WasmBgp) -> String {
    let mut out = String::new();
    for (bird, _) in birds {
        out.push_str(&format!(
            "--- BIRD {}: {}\n{}\n",
            bird.router_id,
            bird.birdc(&["show", "protocols"])
                .unwrap_or_else(|e| format!("{e:#}")),
            tail(&bird.log(), 30)
        ));
    }
    out.push_str(&format!(
        "--- wasmbgp: {}\n{}\n",
        wasmbgp
            .ctl(&["show", "neighbors"])
            .unwrap_or_else(|e| format!("{e:#}")),
        tail(&strip_ansi(&wasmbgp.log().unwrap_or_default()), 30)
    ));
    out
}

/// Writes `text` beside `path` and renames it onto `path` (as a config manager does).
fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename onto {}", path.display()))
}

/// `ctl reload`: the answer must say `reset N`.
fn reload(wasmbgp: &WasmBgp, reset: usize) -> Result<String> {
    let answer = wasmbgp.ctl(&["reload"])?;
    ensure!(
        answer.contains(&format!(" reset {reset} ")),
        "reload answered {answer:?}, expecting {reset} neighbors reset"
    );
    Ok(answer)
}

// ---------------------------------------------------------------------------
// TCP-MD5.

/// Where an MD5 rig runs: the host's loopback (IPv4) or a namespace's (IPv6).
struct Md5Site {
    test: &'static str,
    /// wasmbgp `.1`, BIRD's sessions `.2`..`.6`.
    addrs: Vec<IpAddr>,
    /// The block's first port.
    port: u16,
    family: &'static str,
    route: &'static str,
    netns: Option<Netns>,
}

impl Md5Site {
    fn addr(&self, host: usize) -> IpAddr {
        self.addrs[host - 1]
    }

    /// TCP-MD5 failures the kernel counted where the rig runs.
    fn md5_failures(&self) -> Result<u64> {
        match &self.netns {
            Some(ns) => ns.tcp_ext("TCPMD5Failure"),
            None => netns::host_tcp_ext("TCPMD5Failure"),
        }
    }
}

/// One MD5 session: BIRD's protocol and wasmbgp's neighbor.
struct Md5Session {
    name: &'static str,
    /// `.N` of the site.
    host: usize,
    /// BIRD's port: `port + k`.
    bird_port: u16,
    /// wasmbgp connects (BIRD passive); else BIRD connects to `port + remote_port`.
    wasmbgp_active: bool,
    /// The port BIRD's config gives wasmbgp: `port + k` (dialed when BIRD connects).
    remote_port: u16,
    /// BIRD's password.
    bird_key: &'static str,
    /// wasmbgp's key file and its contents, or `None`: the environment ([`ENV_VAR`]).
    wasmbgp_file: Option<(&'static str, String)>,
}

fn md5_sessions() -> Vec<Md5Session> {
    vec![
        Md5Session {
            name: "good_active",
            host: 2,
            bird_port: 1,
            wasmbgp_active: true,
            remote_port: 7,
            bird_key: GOOD_KEY,
            // One trailing newline is the file's, not the key's.
            wasmbgp_file: Some(("good-active.key", format!("{GOOD_KEY}\n"))),
        },
        Md5Session {
            name: "good_passive",
            host: 3,
            bird_port: 2,
            wasmbgp_active: false,
            remote_port: 0,
            bird_key: GOOD_KEY,
            wasmbgp_file: Some(("good-passive.key", GOOD_KEY.to_owned())),
        },
        Md5Session {
            name: "bad_active",
            host: 4,
            bird_port: 3,
            wasmbgp_active: true,
            remote_port: 8,
            bird_key: GOOD_KEY,
            wasmbgp_file: Some(("bad-active.key", format!("{WRONG_KEY}\n"))),
        },
        Md5Session {
            name: "bad_passive",
            host: 5,
            bird_port: 4,
            wasmbgp_active: false,
            // Its own listening port: BIRD's protocols toward one address and port
            // take turns.
            remote_port: 6,
            bird_key: GOOD_KEY,
            wasmbgp_file: Some(("bad-passive.key", format!("{WRONG_KEY}\n"))),
        },
        Md5Session {
            name: "env_active",
            host: 6,
            bird_port: 5,
            wasmbgp_active: true,
            remote_port: 9,
            bird_key: ENV_KEY,
            wasmbgp_file: None,
        },
    ]
}

fn md5_bird_protocols(site: &Md5Site, sessions: &[Md5Session]) -> Vec<BgpProtocol> {
    sessions
        .iter()
        .map(|s| BgpProtocol {
            passive: s.wasmbgp_active,
            password: Some(s.bird_key.to_owned()),
            ..BgpProtocol::new(
                s.name,
                (site.addr(s.host), site.port + s.bird_port, BIRD_AS),
                (site.addr(1), site.port + s.remote_port, WASMBGP_AS),
            )
        })
        .collect()
}

fn md5_wasmbgp_config(site: &Md5Site, sessions: &[Md5Session]) -> Config {
    let neighbors = sessions
        .iter()
        .map(|s| NeighborConfig {
            passive: !s.wasmbgp_active,
            connect_retry_max: Some("2s".to_owned()),
            families: vec![site.family.to_owned()],
            md5_password_file: s.wasmbgp_file.as_ref().map(|(f, _)| (*f).to_owned()),
            md5_password_env: s.wasmbgp_file.is_none().then(|| ENV_VAR.to_owned()),
            ..NeighborConfig::new(
                site.addr(s.host),
                site.port + s.bird_port,
                BIRD_AS,
                site.addr(1),
            )
        })
        .collect();
    Config {
        router_id: format!("127.0.{}.1", (site.port - 10000) / 10),
        local_as: WASMBGP_AS,
        listen: None,
        neighbors,
        routes: vec![(site.route.to_owned(), RouteAttrs::default())],
        route_files: Vec::new(),
    }
}

/// Waits until each of `bird`'s protocols `names` holds wasmbgp's one route (`who`
/// names that BIRD in the wait's description, such as `BIRD's`).
fn wait_routes(bird: &HardBird, who: &str, names: &[&str]) -> Result<()> {
    for name in names {
        wait_strict(
            &format!("wasmbgp's route at {who} {name}"),
            POLL,
            UP,
            || Ok(bird.count(name)? == 1),
        )?;
    }
    Ok(())
}

/// Fails if any key appears in `text` (said as `what`).
fn no_key(what: &str, text: &str) -> Result<()> {
    for key in KEYS {
        ensure!(!text.contains(key), "{what} shows a TCP-MD5 key");
    }
    Ok(())
}

fn run_md5(site: &Md5Site, work: &WorkDir) -> Result<()> {
    let test = site.test;
    let sessions = md5_sessions();
    let wdir = work.subdir("wasmbgp")?;
    for s in &sessions {
        if let Some((file, text)) = &s.wasmbgp_file {
            std::fs::write(wdir.join(file), text)?;
        }
    }
    let failures_before = site.md5_failures()?;

    step(test, "starting BIRD with a password on five sessions");
    let bird = HardBird::start(
        &work.subdir("bird")?,
        Ipv4Addr::new(127, 0, ((site.port - 10000) / 10) as u8, 2),
        md5_bird_protocols(site, &sessions),
        site.netns.as_ref(),
    )?;

    step(
        test,
        "starting wasmbgp with its keys from files and the environment",
    );
    let config = md5_wasmbgp_config(site, &sessions);
    let listen: Vec<String> = [0, 6]
        .iter()
        .map(|k| match site.addr(1) {
            IpAddr::V4(a) => format!("{a}:{}", site.port + k),
            IpAddr::V6(a) => format!("[{a}]:{}", site.port + k),
        })
        .collect();
    let text = config.render_with_listen(&WasmBgp::socket_in(&wdir), &listen);
    let launch = Launch {
        prefix: site.netns.as_ref().map(Netns::prefix).unwrap_or_default(),
        env: vec![(ENV_VAR.to_owned(), ENV_KEY.to_owned())],
        log_level: LOG_LEVEL.to_owned(),
    };
    let wasmbgp = WasmBgp::start_text(&wdir, &text, &[], &launch)?;

    let good = ["good_active", "good_passive", "env_active"];
    let bad = ["bad_active", "bad_passive"];
    wait_up(
        test,
        &[(&bird, &good)],
        &wasmbgp,
        "the right keys (file with and without a newline, environment) Established at both ends",
        UP,
    )?;
    wait_routes(&bird, "BIRD's", &good)?;

    step(test, "the wrong keys: watching for 10 s");
    watch_refused(test, &[(&bird, &bad)], &wasmbgp, REFUSED)?;
    for name in bad {
        let address = bird.protocol(name)?.local.to_string();
        let n = wasmbgp.neighbor(&address)?;
        ensure!(
            n.established_count == 0,
            "{name}: wasmbgp counts {} sessions",
            n.established_count
        );
        ensure!(bird.count(name)? == 0, "{name}: BIRD holds routes");
    }
    let hint = "(TCP-MD5 is set: a peer with another key, or none, drops the connection silently)";
    let bad_active = wasmbgp.neighbor(&bird.protocol("bad_active")?.local.to_string())?;
    // Checked again at the end, so that the checks after this one still run.
    let mut deferred = Vec::new();
    if !bad_active
        .last_error
        .as_deref()
        .is_some_and(|e| e.ends_with(hint))
    {
        deferred.push(format!(
            "after {REFUSED:?} (wasmbgp's connect attempts time out after 5 s), bad_active's last error is {:?}, not one ending with {hint:?}",
            bad_active.last_error
        ));
    }
    let bird_log = bird.log();
    for name in bad {
        // With `debug { states }` BIRD logs `NAME: State changed to up` for a session.
        ensure!(
            !bird_log
                .lines()
                .any(|l| l.contains(&format!("{name}: State changed to up"))),
            "BIRD's {name} had a session:\n{}",
            tail(&bird_log, 40)
        );
    }
    let failures = site.md5_failures()?;
    ensure!(
        failures > failures_before,
        "the kernel counted no TCP-MD5 failure ({failures_before} then {failures})"
    );
    step(
        test,
        format!(
            "refused: bad_active's last error {:?}; TCPMD5Failure {failures_before} -> {failures}",
            bad_active.last_error.unwrap_or_default()
        ),
    );

    step(test, "show neighbors says md5: set and never a key");
    let text = wasmbgp.ctl(&["show", "neighbors"])?;
    no_key("show neighbors", &text)?;
    for s in &sessions {
        let address = site.addr(s.host).to_string();
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(address.as_str()))
            .with_context(|| format!("no line for {address} in {text}"))?;
        ensure!(line.contains(" md5: set"), "{address}: {line:?}");
    }
    let json = wasmbgp.ctl(&["show", "neighbors", "--json"])?;
    no_key("show neighbors --json", &json)?;
    let json: Value = serde_json::from_str(&json)?;
    for entry in json.as_array().context("not an array")? {
        ensure!(entry["md5"] == "set", "md5 not set in {entry}");
    }
    no_key("show metrics", &wasmbgp.ctl(&["show", "metrics"])?)?;

    step(
        test,
        "a reload with another key in good_active's file resets that session",
    );
    let others = ["good_passive", "env_active"];
    let before = bird.lines()?;
    let counts_before = wasmbgp_states(&wasmbgp)?;
    let key_file = wdir.join("good-active.key");
    write_atomic(&key_file, &format!("{WRONG_KEY}\n"))?;
    let answer = reload(&wasmbgp, 1)?;
    no_key("ctl reload", &answer)?;
    wait_strict(
        "BIRD's good_active to read Cease/Other Configuration Change",
        POLL,
        UP,
        || {
            Ok(bird
                .log()
                .lines()
                .any(|l| l.contains("good_active: Received: Other configuration change")))
        },
    )?;
    let error = bird.last_error("good_active")?;
    ensure!(
        error.as_deref() == Some("Received: Other configuration change"),
        "good_active's last error at BIRD: {error:?}"
    );
    watch_refused(test, &[(&bird, &["good_active"])], &wasmbgp, RELOAD_REFUSED)?;
    let after = bird.lines()?;
    let counts_after = wasmbgp_states(&wasmbgp)?;
    for name in others {
        let address = bird.protocol(name)?.local.to_string();
        ensure!(
            established(&after[name])
                && same_since(&before[name].since, &after[name].since)
                && counts_before[&address] == counts_after[&address],
            "{name} moved: {:?} -> {:?}, {:?} -> {:?}",
            before[name],
            after[name],
            counts_before[&address],
            counts_after[&address]
        );
    }

    step(
        test,
        "the right key again: the session and its route come back",
    );
    write_atomic(&key_file, &format!("{GOOD_KEY}\n"))?;
    let answer = reload(&wasmbgp, 1)?;
    no_key("ctl reload", &answer)?;
    wait_up(
        test,
        &[(&bird, &["good_active"])],
        &wasmbgp,
        "good_active back",
        UP,
    )?;
    wait_strict("wasmbgp's route at good_active again", POLL, UP, || {
        Ok(bird.count("good_active")? == 1)
    })?;
    let address = bird.protocol("good_active")?.local.to_string();
    ensure!(
        wasmbgp.neighbor(&address)?.established_count == 2,
        "good_active: {:?}",
        wasmbgp.neighbor(&address)?.raw
    );

    let log = wasmbgp.log()?;
    no_key("wasmbgp's log", &log)?;
    ensure!(
        strip_ansi(&log).contains("setting=\"md5\""),
        "wasmbgp's log does not say why good_active was reset"
    );
    ensure!(deferred.is_empty(), "{}", deferred.join("\n"));
    Ok(())
}

/// TCP-MD5 on IPv4, the host's loopback (block 254: `127.0.254.1`..`.6`, ports
/// 12540..12549).
#[test]
fn md5_ipv4_loopback() {
    let site = Md5Site {
        test: "md5-ipv4",
        addrs: (1..=6)
            .map(|h| IpAddr::V4(Ipv4Addr::new(127, 0, 254, h)))
            .collect(),
        port: 12540,
        family: "ipv4-unicast",
        route: "100.254.0.0/24",
        netns: None,
    };
    run(site.test, |work| run_md5(&site, work));
}

/// TCP-MD5 on IPv6: `fd00:255::1`..`::6` on the loopback of a namespace of its own
/// (ports 12550..12559).
#[test]
fn md5_ipv6_namespace() {
    run("md5-ipv6", |work| {
        let ns = Netns::create("md5v6")?;
        let addrs: Vec<IpAddr> = (1..=6u16)
            .map(|h| IpAddr::V6(Ipv6Addr::new(0xfd00, 0x255, 0, 0, 0, 0, 0, h)))
            .collect();
        for a in &addrs {
            ns.add_address("lo", &format!("{a}/128"))?;
        }
        let site = Md5Site {
            test: "md5-ipv6",
            addrs,
            port: 12550,
            family: "ipv6-unicast",
            route: "2001:db8:255::/48",
            netns: Some(ns),
        };
        run_md5(&site, work)
    });
}

/// `wasmbgp check` refuses a key it cannot have, at the value, without the key.
#[test]
fn md5_config_refused() {
    run("md5-check", check_refuses);
}

fn check_refuses(work: &WorkDir) -> Result<()> {
    let long_key = format!("{GOOD_KEY}{}", "x".repeat(81 - GOOD_KEY.len()));
    std::fs::write(work.path().join("long.key"), format!("{long_key}\n"))?;
    let unset = "WASMBGP_E2E_MD5_UNSET_VARIABLE";
    ensure!(std::env::var_os(unset).is_none(), "{unset} is set");
    let text = format!(
        r#"router-id = "127.0.254.1"
local-as = 65001

[control]
socket = "{socket}"

[[neighbor]]
address = "127.0.254.2"
peer-as = 65200
md5-password-file = "missing.key"

[[neighbor]]
address = "127.0.254.3"
peer-as = 65200
md5-password-env = "{unset}"

[[neighbor]]
address = "127.0.254.4"
peer-as = 65200
md5-password-file = "long.key"
"#,
        socket = work.path().join("wasmbgp.sock").display()
    );
    let path = work.path().join("wasmbgp.toml");
    std::fs::write(&path, &text)?;
    let out = check_file(&path)?;
    let output =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(1),
        "check exited {:?}: {output}",
        out.status
    );
    for (needle, reason) in [
        ("\"missing.key\"", "cannot read md5-password-file"),
        (
            &format!("\"{unset}\""),
            "md5-password-env: the environment has no",
        ),
        ("\"long.key\"", "must be 1 to 80 bytes (it has 81)"),
    ] {
        let (line, col) = line_col(&text, needle).context("needle")?;
        let at = format!("{}:{line}:{col}: ", path.display());
        ensure!(
            output
                .lines()
                .any(|l| l.starts_with(&at) && l.contains(reason)),
            "no {at}... {reason:?} in {output}"
        );
    }
    ensure!(
        !output.contains(&long_key[..20]),
        "check quotes the key: {output}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// GTSM in namespaces.

/// The port BIRD's config gives wasmbgp on the sessions wasmbgp connects (never dialed;
/// a port of its own keeps those protocols from sharing a lock with the others).
const GTSM_UNUSED_PORT: u16 = 12569;
/// wasmbgp's listening port.
const GTSM_LISTEN: u16 = 12560;

/// One side of the GTSM topology: a BIRD's namespace and its link's addresses.
#[derive(Clone, Copy)]
struct Side {
    /// wasmbgp's addresses on this side (IPv4, IPv6).
    wasmbgp: (Ipv4Addr, Ipv6Addr),
    /// BIRD's two addresses of each family: the `active` and `passive` sessions.
    bird4: [Ipv4Addr; 2],
    bird6: [Ipv6Addr; 2],
}

fn gtsm_protocols(side: Side, multihop: Option<u8>, ttl_security: bool) -> Vec<BgpProtocol> {
    let mut out = Vec::new();
    for (name, bird, remote, wasmbgp_active) in [
        (
            "active4",
            IpAddr::V4(side.bird4[0]),
            IpAddr::V4(side.wasmbgp.0),
            true,
        ),
        (
            "passive4",
            IpAddr::V4(side.bird4[1]),
            IpAddr::V4(side.wasmbgp.0),
            false,
        ),
        (
            "active6",
            IpAddr::V6(side.bird6[0]),
            IpAddr::V6(side.wasmbgp.1),
            true,
        ),
        (
            "passive6",
            IpAddr::V6(side.bird6[1]),
            IpAddr::V6(side.wasmbgp.1),
            false,
        ),
    ] {
        let port = 12561 + out.len() as u16;
        let remote_port = if wasmbgp_active {
            GTSM_UNUSED_PORT
        } else {
            GTSM_LISTEN
        };
        out.push(BgpProtocol {
            passive: wasmbgp_active,
            multihop,
            ttl_security,
            ..BgpProtocol::new(
                name,
                (bird, port, BIRD_AS),
                (remote, remote_port, WASMBGP_AS),
            )
        });
    }
    out
}

/// wasmbgp's neighbors toward `protocols` (BIRD's side of each), GTSM `ttl`.
fn gtsm_neighbors(protocols: &[BgpProtocol], ttl: Option<u8>) -> Vec<NeighborConfig> {
    protocols
        .iter()
        .map(|p| NeighborConfig {
            passive: !p.passive,
            connect_retry_max: Some("2s".to_owned()),
            families: vec![
                if p.local.is_ipv4() {
                    "ipv4-unicast"
                } else {
                    "ipv6-unicast"
                }
                .to_owned(),
            ],
            ttl_security: ttl,
            ..NeighborConfig::new(p.local, p.port, BIRD_AS, p.neighbor)
        })
        .collect()
}

fn gtsm_config(
    b: &[BgpProtocol],
    b_ttl: Option<u8>,
    c: &[BgpProtocol],
    c_ttl: Option<u8>,
) -> Config {
    let mut neighbors = gtsm_neighbors(b, b_ttl);
    neighbors.extend(gtsm_neighbors(c, c_ttl));
    Config {
        router_id: "10.56.1.1".to_owned(),
        local_as: WASMBGP_AS,
        listen: None,
        neighbors,
        routes: vec![
            ("100.56.0.0/24".to_owned(), RouteAttrs::default()),
            ("2001:db8:56::/48".to_owned(), RouteAttrs::default()),
        ],
        route_files: Vec::new(),
    }
}

/// A: wasmbgp. B: one hop (veth `ab`/`ba`, 10.56.1.0/24, fd00:56:1::/64). R: the router
/// (`ar`/`ra` 10.56.2.0/24, fd00:56:2::/64; `rc`/`cr` 10.56.3.0/24, fd00:56:3::/64).
/// C: two hops.
struct Topology {
    a: Netns,
    b: Netns,
    c: Netns,
    _r: Netns,
    b_side: Side,
    c_side: Side,
}

fn v6(net: u16, host: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0x56, net, 0, 0, 0, 0, host)
}

fn v4(net: u8, host: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 56, net, host)
}

impl Topology {
    fn build() -> Result<Self> {
        let a = Netns::create("a")?;
        let b = Netns::create("b")?;
        let r = Netns::create("r")?;
        let c = Netns::create("c")?;
        netns::veth(&a, "ab", &b, "ba")?;
        netns::veth(&a, "ar", &r, "ra")?;
        netns::veth(&r, "rc", &c, "cr")?;
        let addresses: [(&Netns, &str, u8, &[u8]); 6] = [
            (&a, "ab", 1, &[1]),
            (&b, "ba", 1, &[2, 3]),
            (&a, "ar", 2, &[1]),
            (&r, "ra", 2, &[2]),
            (&r, "rc", 3, &[1]),
            (&c, "cr", 3, &[2, 3]),
        ];
        for (ns, dev, net, hosts) in addresses {
            for host in hosts {
                ns.add_address(dev, &format!("{}/24", v4(net, *host)))?;
                ns.add_address(dev, &format!("{}/64", v6(net.into(), (*host).into())))?;
            }
        }
        r.forward()?;
        a.add_route("10.56.3.0/24", "10.56.2.2")?;
        a.add_route("fd00:56:3::/64", "fd00:56:2::2")?;
        c.add_route("10.56.2.0/24", "10.56.3.1")?;
        c.add_route("fd00:56:2::/64", "fd00:56:3::1")?;
        Ok(Self {
            b_side: Side {
                wasmbgp: (v4(1, 1), v6(1, 1)),
                bird4: [v4(1, 2), v4(1, 3)],
                bird6: [v6(1, 2), v6(1, 3)],
            },
            c_side: Side {
                wasmbgp: (v4(2, 1), v6(2, 1)),
                bird4: [v4(3, 2), v4(3, 3)],
                bird6: [v6(3, 2), v6(3, 3)],
            },
            a,
            b,
            c,
            _r: r,
        })
    }

    /// wasmbgp's listening addresses (both sides, both families).
    fn listen(&self) -> Vec<String> {
        [self.b_side, self.c_side]
            .iter()
            .flat_map(|s| {
                [
                    format!("{}:{GTSM_LISTEN}", s.wasmbgp.0),
                    format!("[{}]:{GTSM_LISTEN}", s.wasmbgp.1),
                ]
            })
            .collect()
    }
}

/// GTSM across namespaces: one hop passes `ttl-security = 1`, two hops do not, and do
/// with `ttl-security = 2`.
#[test]
fn gtsm_namespaces() {
    run(GTSM_TEST, gtsm);
}

const GTSM_TEST: &str = "gtsm";

fn gtsm(work: &WorkDir) -> Result<()> {
    const TEST: &str = GTSM_TEST;
    step(TEST, "namespaces A - B, A - R - C");
    // Declared first, dropped last: after the daemons inside.
    let topo = Topology::build()?;
    let names = ["active4", "passive4", "active6", "passive6"];

    step(TEST, "1. no GTSM anywhere: all eight sessions come up");
    let b_plain = gtsm_protocols(topo.b_side, None, false);
    let c_plain = gtsm_protocols(topo.c_side, Some(2), false);
    let mut bird_b = HardBird::start(
        &work.subdir("bird-b")?,
        v4(1, 2),
        b_plain.clone(),
        Some(&topo.b),
    )?;
    let mut bird_c = HardBird::start(
        &work.subdir("bird-c")?,
        v4(3, 2),
        c_plain.clone(),
        Some(&topo.c),
    )?;
    let wdir = work.subdir("wasmbgp")?;
    let socket = WasmBgp::socket_in(&wdir);
    let listen = topo.listen();
    let text = gtsm_config(&b_plain, None, &c_plain, None).render_with_listen(&socket, &listen);
    let launch = Launch {
        prefix: topo.a.prefix(),
        env: Vec::new(),
        log_level: LOG_LEVEL.to_owned(),
    };
    let wasmbgp = WasmBgp::start_text(&wdir, &text, &[], &launch)?;
    wait_up(
        TEST,
        &[(&bird_b, &names), (&bird_c, &names)],
        &wasmbgp,
        "without GTSM, one hop and two hops Established",
        UP,
    )?;

    step(
        TEST,
        "2. ttl security on at both BIRDs, ttl-security = 1 at wasmbgp",
    );
    let b_gtsm = gtsm_protocols(topo.b_side, None, true);
    let c_gtsm = gtsm_protocols(topo.c_side, Some(2), true);
    bird_b.reconfigure(b_gtsm.clone())?;
    bird_c.reconfigure(c_gtsm.clone())?;
    let counts_plain = wasmbgp_states(&wasmbgp)?;
    let drops_before = topo.a.tcp_ext("TCPMinTTLDrop")?;
    let c_drops_before = topo.c.tcp_ext("TCPMinTTLDrop")?;
    let text = gtsm_config(&b_gtsm, Some(1), &c_gtsm, Some(1)).render_with_listen(&socket, &listen);
    write_atomic(&wasmbgp.config_path(), &text)?;
    reload(&wasmbgp, 8)?;
    wait_up(
        TEST,
        &[(&bird_b, &names)],
        &wasmbgp,
        "one hop with GTSM at both ends Established",
        UP,
    )?;
    let counts = wasmbgp_states(&wasmbgp)?;
    for p in &b_gtsm {
        let address = p.local.to_string();
        ensure!(
            counts[&address].1 > counts_plain[&address].1,
            "{}: no new session after the reload ({:?} -> {:?})",
            p.name,
            counts_plain[&address],
            counts[&address]
        );
    }
    step(TEST, "two hops: watching for 10 s");
    watch_refused(TEST, &[(&bird_c, &names)], &wasmbgp, REFUSED)?;
    let drops = topo.a.tcp_ext("TCPMinTTLDrop")?;
    let c_drops = topo.c.tcp_ext("TCPMinTTLDrop")?;
    ensure!(
        drops > drops_before,
        "A's kernel dropped nothing below the minimum TTL ({drops_before} then {drops})"
    );
    step(
        TEST,
        format!("TCPMinTTLDrop: A {drops_before} -> {drops}, C {c_drops_before} -> {c_drops}"),
    );
    let c_errors: Vec<String> = c_gtsm
        .iter()
        .map(|p| {
            let n = wasmbgp.neighbor(&p.local.to_string())?;
            Ok(format!(
                "{} {}: {}",
                p.name,
                n.state,
                n.last_error.unwrap_or_default()
            ))
        })
        .collect::<Result<_>>()?;
    step(TEST, format!("wasmbgp toward C: {c_errors:?}"));

    step(
        TEST,
        "3. ttl-security = 2 toward C, BIRD unchanged: two hops come up",
    );
    let b_before = bird_b.lines()?;
    let counts_before = wasmbgp_states(&wasmbgp)?;
    let text = gtsm_config(&b_gtsm, Some(1), &c_gtsm, Some(2)).render_with_listen(&socket, &listen);
    write_atomic(&wasmbgp.config_path(), &text)?;
    reload(&wasmbgp, 4)?;
    wait_up(
        TEST,
        &[(&bird_c, &names)],
        &wasmbgp,
        "two hops with ttl-security = 2 Established",
        UP,
    )?;
    wait_routes(&bird_c, "BIRD c's", &names)?;
    let b_after = bird_b.lines()?;
    let counts_after = wasmbgp_states(&wasmbgp)?;
    for p in &b_gtsm {
        let address = p.local.to_string();
        ensure!(
            established(&b_after[&p.name])
                && same_since(&b_before[&p.name].since, &b_after[&p.name].since)
                && counts_before[&address] == counts_after[&address],
            "B's {} moved: {:?} -> {:?}",
            p.name,
            b_before[&p.name],
            b_after[&p.name]
        );
    }
    Ok(())
}
