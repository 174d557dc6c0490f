//! `capture-vectors [OUT_DIR]`: records what real BGP daemons send and writes every
//! message as a codec test vector (`OUT_DIR/<peer>/<session>-<what>.hex`, default
//! `host/bgp/tests/vectors`), read back by `host/bgp/tests/peer_vectors.rs` and used
//! as fuzzing seeds. Run through `scripts/capture-vectors.sh` (as root: one session
//! runs in network namespaces).
//!
//! Sessions, each toward a [`Recorder`] (which sends nothing but OPEN, KEEPALIVEs and
//! a final NOTIFICATION), on the test blocks 50 to 53 (`127.0.N.x`, see
//! `wasmbgp_e2e::scenario`):
//! - `bird/ebgp-*` (block 50): BIRD 2, AS 4200000050, eBGP over loopback, IPv4 and
//!   IPv6 routes with ORIGIN, a prepended AS_PATH, MED, LOCAL_PREF (`allow bgp_local_pref`),
//!   communities, large and extended communities; then two routes withdrawn
//!   (reconfiguration), then BIRD stopped (its Cease).
//! - `bird/as2-*` (block 52): BIRD 2, AS 65052 with `enable as4 off`, a path holding
//!   4200000001: AS_TRANS in AS_PATH and an AS4_PATH, decoded with a 2-octet context.
//! - `bird/linklocal-*` (block 53, addresses `fd00:53::/64`): BIRD 2 on a direct IPv6
//!   session over a veth pair between two network namespaces (link-local addresses
//!   fixed: `fe80::53:2` for BIRD), where it sends 32-octet next hops (global and
//!   link-local).
//! - `gobgp/ebgp-*` and `gobgp/ibgp-*` (block 51): GoBGP, AS 65051, routes added with
//!   `gobgp global rib add ...` (every attribute above), toward an eBGP and an iBGP
//!   recorder (GoBGP sends LOCAL_PREF on iBGP only); then two routes deleted, then
//!   gobgpd stopped.
//!
//! Every message received is written: OPEN, the first KEEPALIVE (the others are the
//! same 19 octets), every UPDATE (named after what it does: `announce-PREFIX`,
//! `withdraw-PREFIX`, `eor-FAMILY`) and a NOTIFICATION if any.

use std::fmt::Write as _;
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use wasmbgp_bgp::packet::attributes::community_to_string;
use wasmbgp_bgp::packet::{self, Context, Message, MpNlri, Update};
use wasmbgp_bgp::{Family, Prefix};
use wasmbgp_e2e::netns::{self, Netns};
use wasmbgp_e2e::peers::bird;
use wasmbgp_e2e::peers::recorder::Recorder;
use wasmbgp_e2e::process::Daemon;
use wasmbgp_e2e::scenario::Block;
use wasmbgp_e2e::wait::wait_until;
use wasmbgp_e2e::workdir::WorkDir;
use wasmbgp_e2e::{run_command, workspace_root};

/// The recorders' AS (eBGP sessions).
const RECORDER_AS: u32 = 65001;
/// Bound on a session coming up, routes arriving, a daemon stopping.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Quiet time after the last expected route, for anything that follows (End-of-RIB).
const SETTLE: Duration = Duration::from_secs(2);

fn main() {
    if let Err(error) = run() {
        eprintln!("capture-vectors: {error:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let out = match std::env::args_os().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("host/bgp/tests/vectors"),
    };
    let date = today();
    let bird_version = version("bird", "BIRD version")?;
    let gobgp_version = version("gobgpd", "gobgpd version")?;
    let work = WorkDir::new("capture-vectors")?;
    let mut written = Vec::new();
    let header = |session: &str| Header {
        peer: bird_version.clone(),
        session: session.to_owned(),
        date: date.clone(),
    };
    written.extend(capture_bird_ebgp(
        &work.subdir("bird-ebgp")?,
        &out,
        header("eBGP AS 4200000050 -> AS 65001 over 127.0.50.0/24 (multihop), 4-octet AS"),
    )?);
    written.extend(capture_bird_as2(
        &work.subdir("bird-as2")?,
        &out,
        header("eBGP AS 65052 -> AS 65001 over 127.0.52.0/24, `enable as4 off`: 2-octet AS"),
    )?);
    written.extend(capture_bird_link_local(
        &work.subdir("bird-linklocal")?,
        &out,
        header(
            "eBGP AS 65053 -> AS 65001, direct IPv6 session fd00:53::2 -> fd00:53::1 over a veth pair, 4-octet AS",
        ),
    )?);
    let gobgp_header = |session: &str| Header {
        peer: gobgp_version.clone(),
        session: session.to_owned(),
        date: date.clone(),
    };
    written.extend(capture_gobgp(
        &work.subdir("gobgp")?,
        &out,
        gobgp_header("eBGP AS 65051 -> AS 65001 over 127.0.51.0/24 (multihop), 4-octet AS"),
        gobgp_header("iBGP AS 65051 -> AS 65051 over 127.0.51.0/24, 4-octet AS"),
    )?);
    for path in &written {
        println!("{}", path.display());
    }
    Ok(())
}

/// What every file of one session says in its comment.
#[derive(Debug, Clone)]
struct Header {
    peer: String,
    session: String,
    date: String,
}

/// The first line of `program --version` starting with `prefix` (BIRD prints it on
/// stderr); fails if the program fails.
fn version(program: &str, prefix: &str) -> Result<String> {
    let output = Command::new(program)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {program} --version"))?;
    ensure!(
        output.status.success(),
        "{program} --version failed ({})",
        output.status
    );
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    text.lines()
        .find(|l| l.starts_with(prefix))
        .map(|l| l.trim().to_owned())
        .with_context(|| format!("{program} --version printed no version: {text:?}"))
}

/// Today's date (UTC) as `YYYY-MM-DD`.
fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0) as i64;
    // Days since 1970-01-01 to a civil date (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Waits until `recorder` has seen every prefix of `prefixes` announced (or, with
/// `withdrawn`, withdrawn), then [`SETTLE`]s.
fn wait_prefixes(recorder: &Recorder, prefixes: &[&str], withdrawn: bool) -> Result<()> {
    let what = if withdrawn { "withdrawn" } else { "announced" };
    wait_until(
        &format!("{prefixes:?} to be {what} to {}", recorder.local_addr()),
        TIMEOUT,
        || {
            for prefix in prefixes {
                let seen = if withdrawn {
                    recorder.withdrawals_of(prefix)?
                } else {
                    recorder.announcements_of(prefix)?
                };
                if seen == 0 {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )
    .with_context(|| format!("recorder errors: {:?}", recorder.errors()))?;
    std::thread::sleep(SETTLE);
    Ok(())
}

/// Waits (bounded) for the NOTIFICATION a stopped daemon sends, if it sends one.
fn wait_notification(recorder: &Recorder) {
    let _ = wait_until("a NOTIFICATION", Duration::from_secs(5), || {
        Ok(!recorder.notifications().is_empty())
    });
}

// ---------------------------------------------------------------------------
// BIRD

/// The static routes and BGP protocol of the loopback BIRD sessions.
fn bird_ebgp_config(dir: &Path, block: Block, with_withdrawn: bool) -> String {
    let mut conf = bird::config_head(dir, block.peer());
    let extra4 = if with_withdrawn {
        "  route 192.0.2.128/26 blackhole;\n"
    } else {
        ""
    };
    let extra6 = if with_withdrawn {
        "  route 2001:db8:cafe::/48 blackhole;\n"
    } else {
        ""
    };
    let _ = write!(
        conf,
        "protocol static static4 {{\n  ipv4;\n  route 203.0.113.0/24 blackhole;\n  route 198.51.100.0/25 blackhole;\n  route 198.51.100.128/25 blackhole;\n{extra4}}}\n"
    );
    let _ = write!(
        conf,
        "protocol static static6 {{\n  ipv6;\n  route 2001:db8:beef::/48 blackhole;\n{extra6}}}\n"
    );
    let _ = write!(
        conf,
        r#"protocol bgp capture_ebgp {{
  local {local} port {port} as 4200000050;
  neighbor {remote} port {remote_port} as {RECORDER_AS};
  multihop;
  hold time 30;
  connect retry time 1;
  connect delay time 1;
  error wait time 1, 5;
  allow bgp_local_pref yes;
  ipv4 {{
    import none;
    export filter {{
      if source != RTS_STATIC then reject;
      if net = 203.0.113.0/24 then {{
        bgp_origin = ORIGIN_EGP;
        bgp_path.prepend(65010);
        bgp_med = 10;
        bgp_local_pref = 200;
        bgp_community.add((65050, 7));
        bgp_community.add((65050, 8));
        bgp_large_community.add((4200000050, 7, 7));
        bgp_ext_community.add((rt, 65050, 100));
        bgp_ext_community.add((rt, 4200000050, 5));
        bgp_ext_community.add((ro, 192.0.2.50, 7));
      }}
      if net = 192.0.2.128/26 then bgp_med = 1;
      accept;
    }};
    next hop address 192.0.2.50;
  }};
  ipv6 {{
    import none;
    export filter {{
      if source != RTS_STATIC then reject;
      if net = 2001:db8:beef::/48 then {{
        bgp_med = 20;
        bgp_local_pref = 300;
        bgp_community.add((65050, 66));
        bgp_large_community.add((4200000050, 6, 6));
        bgp_ext_community.add((rt, 65050, 600));
      }}
      accept;
    }};
    next hop address 2001:db8::50;
  }};
}}
"#,
        local = block.peer(),
        port = block.port(1),
        remote = block.local(),
        remote_port = block.port(0),
    );
    conf
}

fn capture_bird_ebgp(dir: &Path, out: &Path, header: Header) -> Result<Vec<PathBuf>> {
    let block = Block(50);
    let recorder = Recorder::listen(&format!("{}:{}", block.local(), block.port(0)), RECORDER_AS)?;
    recorder.keep_raw();
    let mut daemon = bird::start_daemon(dir, &bird_ebgp_config(dir, block, true))?;
    bird::wait_daemon_up(dir, TIMEOUT)?;
    recorder.wait_established(TIMEOUT)?;
    wait_prefixes(
        &recorder,
        &[
            "203.0.113.0/24",
            "198.51.100.0/25",
            "198.51.100.128/25",
            "192.0.2.128/26",
            "2001:db8:beef::/48",
            "2001:db8:cafe::/48",
        ],
        false,
    )?;
    bird::reconfigure(dir, &bird_ebgp_config(dir, block, false))?;
    wait_prefixes(&recorder, &["192.0.2.128/26", "2001:db8:cafe::/48"], true)?;
    let status = daemon.terminate(TIMEOUT)?;
    wait_notification(&recorder);
    ensure!(status.success(), "BIRD exited with {status}");
    save(out, "bird", "ebgp", &header, &recorder.raw_messages())
}

fn capture_bird_as2(dir: &Path, out: &Path, header: Header) -> Result<Vec<PathBuf>> {
    let block = Block(52);
    let recorder = Recorder::listen(&format!("{}:{}", block.local(), block.port(0)), RECORDER_AS)?;
    recorder.keep_raw();
    let mut conf = bird::config_head(dir, block.peer());
    let _ = write!(
        conf,
        r#"protocol static static4 {{
  ipv4;
  route 203.0.113.0/24 blackhole;
}}
protocol bgp capture_as2 {{
  local {local} port {port} as 65052;
  neighbor {remote} port {remote_port} as {RECORDER_AS};
  multihop;
  enable as4 off;
  hold time 30;
  connect retry time 1;
  connect delay time 1;
  error wait time 1, 5;
  ipv4 {{
    import none;
    export filter {{
      if source != RTS_STATIC then reject;
      bgp_path.prepend(4200000001);
      bgp_path.prepend(65020);
      accept;
    }};
    next hop address 192.0.2.52;
  }};
}}
"#,
        local = block.peer(),
        port = block.port(1),
        remote = block.local(),
        remote_port = block.port(0),
    );
    let mut daemon = bird::start_daemon(dir, &conf)?;
    bird::wait_daemon_up(dir, TIMEOUT)?;
    recorder.wait_established(TIMEOUT)?;
    wait_prefixes(&recorder, &["203.0.113.0/24"], false)?;
    let status = daemon.terminate(TIMEOUT)?;
    wait_notification(&recorder);
    ensure!(status.success(), "BIRD exited with {status}");
    save(out, "bird", "as2", &header, &recorder.raw_messages())
}

/// Runs `body` on a thread that first moves into network namespace `ns`: sockets it
/// opens, and threads it starts (a recorder's), live there.
fn in_netns<T: Send + 'static>(
    ns: &Netns,
    body: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let path = Path::new("/run/netns").join(ns.name());
    std::thread::spawn(move || -> Result<T> {
        let file = std::fs::File::open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        // SAFETY: setns(2) on an open namespace file; it only changes this thread's
        // network namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("cannot enter {}", path.display()));
        }
        body()
    })
    .join()
    .map_err(|_| anyhow!("the thread in the namespace panicked"))?
}

fn capture_bird_link_local(dir: &Path, out: &Path, header: Header) -> Result<Vec<PathBuf>> {
    let block = Block(53);
    let bird_ns = Netns::create("cap-bird")?;
    let recorder_ns = Netns::create("cap-rec")?;
    // Fixed link-local addresses (none generated from the random MAC addresses of the
    // veth pair), so that a new capture sends the same next hop.
    for ns in [&bird_ns, &recorder_ns] {
        ns.sysctl("net.ipv6.conf.default.addr_gen_mode", "1")?;
    }
    netns::veth(&bird_ns, "wb53a", &recorder_ns, "wb53b")?;
    bird_ns.add_address("wb53a", "fe80::53:2/64")?;
    bird_ns.add_address("wb53a", "fd00:53::2/64")?;
    recorder_ns.add_address("wb53b", "fe80::53:1/64")?;
    recorder_ns.add_address("wb53b", "fd00:53::1/64")?;
    let listen = format!("[fd00:53::1]:{}", block.port(0));
    let recorder = in_netns(&recorder_ns, move || Recorder::listen(&listen, RECORDER_AS))?;
    recorder.keep_raw();
    let mut conf = bird::config_head(dir, block.peer());
    let _ = write!(
        conf,
        r#"protocol static static6 {{
  ipv6;
  route 2001:db8:53::/48 blackhole;
}}
protocol bgp capture_ll {{
  local fd00:53::2 port {port} as 65053;
  neighbor fd00:53::1 port {remote_port} as {RECORDER_AS};
  hold time 30;
  connect retry time 1;
  connect delay time 1;
  error wait time 1, 5;
  ipv6 {{
    import none;
    export where source = RTS_STATIC;
  }};
}}
"#,
        port = block.port(1),
        remote_port = block.port(0),
    );
    let mut daemon = bird::start_daemon_with(dir, &conf, &bird_ns.prefix())?;
    bird::wait_daemon_up(dir, TIMEOUT)?;
    recorder.wait_established(TIMEOUT)?;
    wait_prefixes(&recorder, &["2001:db8:53::/48"], false)?;
    let status = daemon.terminate(TIMEOUT)?;
    wait_notification(&recorder);
    ensure!(status.success(), "BIRD exited with {status}");
    let raw = recorder.raw_messages();
    drop(recorder);
    save(out, "bird", "linklocal", &header, &raw)
}

// ---------------------------------------------------------------------------
// GoBGP

fn capture_gobgp(
    dir: &Path,
    out: &Path,
    ebgp_header: Header,
    ibgp_header: Header,
) -> Result<Vec<PathBuf>> {
    let block = Block(51);
    let asn = 65051;
    let ebgp = Recorder::listen(&format!("{}:{}", block.local(), block.port(0)), RECORDER_AS)?;
    ebgp.keep_raw();
    let ibgp_addr = block.addr(3);
    let ibgp = Recorder::listen(&format!("{ibgp_addr}:{}", block.port(3)), asn)?;
    ibgp.keep_raw();
    let mut conf = String::new();
    let _ = write!(
        conf,
        "[global.config]\n  as = {asn}\n  router-id = \"{id}\"\n  port = {port}\n  local-address-list = [\"{id}\"]\n\n",
        id = block.peer(),
        port = block.port(1),
    );
    for (address, port, peer_as) in [
        (block.local(), block.port(0), RECORDER_AS),
        (ibgp_addr, block.port(3), asn),
    ] {
        let _ = write!(
            conf,
            "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{address}\"\n    peer-as = {peer_as}\n  [neighbors.transport.config]\n    remote-port = {port}\n    local-address = \"{}\"\n  [neighbors.timers.config]\n    connect-retry = 1\n    hold-time = 30\n    keepalive-interval = 10\n    idle-hold-time-after-reset = 1\n",
            block.peer()
        );
        if peer_as != asn {
            conf.push_str(
                "  [neighbors.ebgp-multihop.config]\n    enabled = true\n    multihop-ttl = 255\n",
            );
        }
        for family in ["ipv4-unicast", "ipv6-unicast"] {
            let _ = write!(
                conf,
                "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{family}\"\n"
            );
        }
    }
    let conf_path = dir.join("gobgpd.toml");
    std::fs::write(&conf_path, conf)
        .with_context(|| format!("cannot write {}", conf_path.display()))?;
    let mut cmd = Command::new("gobgpd");
    cmd.arg("-f")
        .arg(&conf_path)
        .arg("-t")
        .arg("toml")
        .arg("-p")
        .arg("-l")
        .arg("info")
        .arg("--pprof-disable")
        .arg("--api-hosts")
        .arg(format!("{}:{}", block.peer(), block.port(2)));
    let mut daemon = Daemon::spawn("gobgpd", cmd, &dir.join("gobgpd.log"))?;
    let gobgp = |args: &[&str]| -> Result<String> {
        run_command(
            Command::new("gobgp")
                .arg("-u")
                .arg(block.peer().to_string())
                .arg("-p")
                .arg(block.port(2).to_string())
                .args(args),
        )
    };
    wait_until("gobgpd's API to answer", TIMEOUT, || {
        Ok(gobgp(&["global", "-j"]).is_ok())
    })?;
    let routes: [&[&str]; 6] = [
        &[
            "203.0.113.0/24",
            "origin",
            "egp",
            "aspath",
            "65010",
            "nexthop",
            "192.0.2.51",
            "med",
            "10",
            "local-pref",
            "200",
            "community",
            "65051:7,65051:8",
            "large-community",
            "4200000051:7:7",
            "rt",
            "65051:100",
            "-a",
            "ipv4",
        ],
        &["198.51.100.0/25", "nexthop", "192.0.2.51", "-a", "ipv4"],
        &["198.51.100.128/25", "nexthop", "192.0.2.51", "-a", "ipv4"],
        &[
            "192.0.2.128/26",
            "nexthop",
            "192.0.2.51",
            "med",
            "1",
            "-a",
            "ipv4",
        ],
        &[
            "2001:db8:beef::/48",
            "nexthop",
            "2001:db8::51",
            "med",
            "20",
            "local-pref",
            "300",
            "community",
            "65051:66",
            "large-community",
            "4200000051:6:6",
            "rt",
            "65051:600",
            "-a",
            "ipv6",
        ],
        &[
            "2001:db8:cafe::/48",
            "nexthop",
            "2001:db8::51",
            "-a",
            "ipv6",
        ],
    ];
    for route in routes {
        let mut args = vec!["global", "rib", "add"];
        args.extend_from_slice(route);
        gobgp(&args).with_context(|| format!("gobgp {args:?}"))?;
    }
    let prefixes = [
        "203.0.113.0/24",
        "198.51.100.0/25",
        "198.51.100.128/25",
        "192.0.2.128/26",
        "2001:db8:beef::/48",
        "2001:db8:cafe::/48",
    ];
    for recorder in [&ebgp, &ibgp] {
        recorder.wait_established(TIMEOUT)?;
        wait_prefixes(recorder, &prefixes, false)?;
    }
    gobgp(&["global", "rib", "del", "192.0.2.128/26", "-a", "ipv4"])?;
    gobgp(&["global", "rib", "del", "2001:db8:cafe::/48", "-a", "ipv6"])?;
    for recorder in [&ebgp, &ibgp] {
        wait_prefixes(recorder, &["192.0.2.128/26", "2001:db8:cafe::/48"], true)?;
    }
    let status = daemon.terminate(TIMEOUT)?;
    wait_notification(&ebgp);
    wait_notification(&ibgp);
    ensure!(status.success(), "gobgpd exited with {status}");
    let mut written = save(out, "gobgp", "ebgp", &ebgp_header, &ebgp.raw_messages())?;
    written.extend(save(
        out,
        "gobgp",
        "ibgp",
        &ibgp_header,
        &ibgp.raw_messages(),
    )?);
    Ok(written)
}

// ---------------------------------------------------------------------------
// Writing the vectors

/// Writes `messages` (one session's, in order, starting with the peer's OPEN) as
/// `OUT/<peer>/<session>-<what>.hex`, after removing that session's old files;
/// returns the paths written. Fails on a message the codec cannot decode (the file
/// is still written, named `undecodable-N`: a bug to look at).
fn save(
    out: &Path,
    peer: &str,
    session: &str,
    header: &Header,
    messages: &[Vec<u8>],
) -> Result<Vec<PathBuf>> {
    let dir = out.join(peer);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with(&format!("{session}-")) && name.ends_with(".hex") {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    ensure!(
        !messages.is_empty(),
        "nothing recorded for {peer}/{session}"
    );
    let mut context = Context::default();
    let mut written = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut undecodable = Vec::new();
    let mut keepalive_kept = false;
    for (index, bytes) in messages.iter().enumerate() {
        let (name, lines) = match packet::decode(bytes, &context) {
            Ok(Message::Open(open)) => {
                context.four_octet_as = open.four_octet_as();
                (
                    "open".to_owned(),
                    vec![format!(
                        "OPEN: AS {}, hold time {}, BGP id {}, capabilities {:?}",
                        open.asn, open.hold_time, open.bgp_id, open.capabilities
                    )],
                )
            }
            Ok(Message::Keepalive) if keepalive_kept => continue,
            Ok(Message::Keepalive) => {
                keepalive_kept = true;
                ("keepalive".to_owned(), vec!["KEEPALIVE".to_owned()])
            }
            Ok(Message::Update(update)) => (update_name(&update), describe_update(&update)),
            Ok(Message::Notification(n)) => (
                "notification".to_owned(),
                vec![format!("NOTIFICATION: {}", n.describe())],
            ),
            Ok(Message::RouteRefresh(r)) => (
                "route-refresh".to_owned(),
                vec![format!("ROUTE-REFRESH {r:?}")],
            ),
            Err(error) => {
                undecodable.push(format!("message {index}: {error}"));
                (
                    format!("undecodable-{index}"),
                    vec![format!("NOT DECODED by wasmbgp: {error}")],
                )
            }
        };
        let mut name = name;
        let taken = names.iter().filter(|n| n.as_str() == name).count();
        names.push(name.clone());
        if taken > 0 {
            name = format!("{name}-{}", taken + 1);
        }
        let path = dir.join(format!("{session}-{name}.hex"));
        let mut text = String::new();
        let _ = writeln!(
            text,
            "# Captured from a real peer by scripts/capture-vectors.sh (tests/src/bin/capture-vectors.rs)."
        );
        let _ = writeln!(text, "# Peer: {}", header.peer);
        let _ = writeln!(text, "# Session: {}", header.session);
        let _ = writeln!(text, "# Captured: {}", header.date);
        let _ = writeln!(
            text,
            "# Message {index} of the session ({} octets); decode context: four_octet_as = {}",
            bytes.len(),
            context.four_octet_as
        );
        for line in lines {
            let _ = writeln!(text, "# {line}");
        }
        for chunk in bytes.chunks(16) {
            let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
            let _ = writeln!(text, "{}", hex.join(" "));
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    if !undecodable.is_empty() {
        bail!("{peer}/{session}: the codec refused {undecodable:?}");
    }
    Ok(written)
}

/// A file name for what `update` does.
fn update_name(update: &Update) -> String {
    if let Some(family) = update.end_of_rib_family() {
        return format!("eor-{}", family_word(family));
    }
    // The smallest prefix (as text): the name does not depend on the order a peer
    // packs routes in.
    let announced = update
        .nlri
        .iter()
        .map(|&p| Prefix::from(p).to_string())
        .chain(
            update
                .mp_reach
                .iter()
                .flat_map(|m| m.nlri.prefixes().map(|p| p.to_string())),
        )
        .min();
    let withdrawn = update
        .withdrawn
        .iter()
        .map(|&p| Prefix::from(p).to_string())
        .chain(
            update
                .mp_unreach
                .iter()
                .flat_map(|m| m.withdrawn.prefixes().map(|p| p.to_string())),
        )
        .min();
    let (verb, prefix) = match (announced, withdrawn) {
        (Some(p), _) => ("announce", p),
        (None, Some(p)) => ("withdraw", p),
        (None, None) => return "update-empty".to_owned(),
    };
    let text = prefix.replace('/', "_").replace(':', "-");
    format!("update-{verb}-{text}")
}

fn family_word(family: Family) -> String {
    match family {
        Family::IPV4_UNICAST => "ipv4".to_owned(),
        Family::IPV6_UNICAST => "ipv6".to_owned(),
        other => format!("{}-{}", other.afi, other.safi),
    }
}

fn nlri_text(nlri: &MpNlri) -> Vec<String> {
    nlri.prefixes().map(|p| p.to_string()).collect()
}

/// Comment lines saying what `update` holds.
fn describe_update(update: &Update) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(family) = update.end_of_rib_family() {
        lines.push(format!("UPDATE: End-of-RIB {}", family_word(family)));
        return lines;
    }
    lines.push("UPDATE".to_owned());
    if !update.withdrawn.is_empty() {
        let w: Vec<String> = update.withdrawn.iter().map(|p| p.to_string()).collect();
        lines.push(format!("withdrawn: {}", w.join(" ")));
    }
    if let Some(unreach) = &update.mp_unreach {
        lines.push(format!(
            "MP_UNREACH {}: {}",
            family_word(unreach.family),
            nlri_text(&unreach.withdrawn).join(" ")
        ));
    }
    if !update.nlri.is_empty() {
        let n: Vec<String> = update.nlri.iter().map(|p| p.to_string()).collect();
        lines.push(format!("NLRI: {}", n.join(" ")));
    }
    if let Some(reach) = &update.mp_reach {
        let hops: Vec<String> = reach.next_hop.iter().map(|a| a.to_string()).collect();
        lines.push(format!(
            "MP_REACH {}: next hop {} ({} octets); {}",
            family_word(reach.family),
            hops.join(" + "),
            reach
                .next_hop
                .iter()
                .map(|a| if a.is_ipv4() { 4 } else { 16 })
                .sum::<usize>(),
            nlri_text(&reach.nlri).join(" ")
        ));
    }
    if update.nlri.is_empty() && update.mp_reach.is_none() {
        return lines;
    }
    let a = &update.attributes;
    let mut attrs = vec![
        format!("origin {}", a.origin.name()),
        format!("AS_PATH [{}]", a.as_path),
    ];
    if let Some(nh) = &a.next_hop {
        attrs.push(format!("next hop {nh}"));
    }
    if let Some(med) = a.med {
        attrs.push(format!("MED {med}"));
    }
    if let Some(lp) = a.local_pref {
        attrs.push(format!("LOCAL_PREF {lp}"));
    }
    if !a.communities.is_empty() {
        let c: Vec<String> = a
            .communities
            .iter()
            .map(|&c| community_to_string(c))
            .collect();
        attrs.push(format!("communities {}", c.join(" ")));
    }
    if !a.large_communities.is_empty() {
        let c: Vec<String> = a.large_communities.iter().map(|c| c.to_string()).collect();
        attrs.push(format!("large communities {}", c.join(" ")));
    }
    if !a.extended_communities.is_empty() {
        let c: Vec<String> = a
            .extended_communities
            .iter()
            .map(|c| c.to_string())
            .collect();
        attrs.push(format!("extended communities {}", c.join(" ")));
    }
    if let Some(agg) = a.aggregator {
        attrs.push(format!("aggregator {} {}", agg.asn, agg.address));
    }
    if a.atomic_aggregate {
        attrs.push("atomic aggregate".to_owned());
    }
    for raw in &a.unknown {
        attrs.push(format!(
            "attribute {} ({} octets)",
            raw.code,
            raw.value.len()
        ));
    }
    lines.push(format!("attributes: {}", attrs.join(", ")));
    if let Some(why) = &update.treat_as_withdraw {
        lines.push(format!("TREATED AS WITHDRAW by wasmbgp: {why}"));
    }
    if !update.discarded.is_empty() {
        lines.push(format!("DISCARDED by wasmbgp: {:?}", update.discarded));
    }
    lines
}
