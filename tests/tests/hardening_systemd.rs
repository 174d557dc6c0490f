//! Running wasmbgp as the seed says (issue 11): `dist/systemd/wasmbgp.service` and
//! `scripts/install.sh`.
//!
//! This machine has no systemd as PID 1, so the unit is checked offline
//! (`systemd-analyze verify`, `systemd-analyze security --offline=true`), and its
//! sandbox is reproduced where it matters to wasmbgp: its own commands (ExecStartPre,
//! ExecStart, ExecReload, read from the unit file) run under MemoryDenyWriteExecute
//! (`prctl(PR_SET_MDWE)`), with `UMask=0077` and, when the test runs as root, as an
//! unprivileged user holding only `CAP_NET_BIND_SERVICE` (the unit's ambient and
//! bounding set) with no new privileges: listening on port 179, a TCP-MD5 session to
//! BIRD, health-check plugins compiled and loaded under MDWE whose VIPs reach BIRD,
//! a reload through ExecReload, and SIGTERM.
//!
//! Block 251 of the plugin tests: BIRD on 127.0.251.2, wasmbgp on 127.0.251.1 (port
//! 179 when root), the checked service on 127.0.251.10.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use wasmbgp_e2e::peers::bird;
use wasmbgp_e2e::plugin_support::{
    BIRD_AS, Plugin, PluginBlock, TcpService, WASMBGP_AS, component, wait_fast,
};
use wasmbgp_e2e::process::Daemon;
use wasmbgp_e2e::wasmbgp::{answers, binary};
use wasmbgp_e2e::workdir::WorkDir;
use wasmbgp_e2e::{step, workspace_root};

const UNIT: &str = "dist/systemd/wasmbgp.service";
const BLOCK: PluginBlock = PluginBlock(251);
/// The unprivileged user the daemon runs as (nobody/nogroup: the unit's `wasmbgp`).
const UID: u32 = 65534;
const GID: u32 = 65534;
const POLL: Duration = Duration::from_millis(100);
const WAIT: Duration = Duration::from_secs(30);

fn unit_text() -> String {
    std::fs::read_to_string(workspace_root().join(UNIT)).expect("reading the unit")
}

/// The values of `key=` in `text` (a unit file), in order.
fn values<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(str::trim)
        .collect()
}

fn output(cmd: &mut Command) -> Result<Output> {
    cmd.output().with_context(|| format!("cannot run {cmd:?}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `systemd-analyze verify FILE`: exit 0 and nothing said (it exits 0 on unknown keys
/// and bad values, only warning about them).
fn verify(unit: &Path) -> Result<()> {
    let out = output(Command::new("systemd-analyze").arg("verify").arg(unit))?;
    ensure!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "systemd-analyze verify {} ({}): {}",
        unit.display(),
        out.status,
        text(&out)
    );
    Ok(())
}

#[test]
fn the_unit_says_what_the_seed_asks() {
    let unit = unit_text();
    let one = |key: &str| {
        let v = values(&unit, key);
        assert_eq!(v.len(), 1, "{key}= once: {v:?}");
        v[0].to_owned()
    };
    for (key, want) in [
        ("User", "wasmbgp"),
        ("Group", "wasmbgp"),
        ("AmbientCapabilities", "CAP_NET_BIND_SERVICE"),
        ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        (
            "RestrictAddressFamilies",
            "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
        ),
        ("MemoryDenyWriteExecute", "yes"),
        ("RuntimeDirectory", "wasmbgp"),
        ("CacheDirectory", "wasmbgp"),
        ("Restart", "on-failure"),
        ("UMask", "0077"),
    ] {
        assert_eq!(one(key), want, "{key}=");
    }
    assert_eq!(values(&unit, "SystemCallFilter")[0], "@system-service");
    let config = "/etc/wasmbgp/wasmbgp.toml";
    let cache = "--cache-dir /var/cache/wasmbgp";
    assert_eq!(
        one("ExecStartPre"),
        format!("/usr/bin/wasmbgp check {cache} {config}")
    );
    assert!(
        one("ExecStart").starts_with("/usr/bin/wasmbgp run ")
            && one("ExecStart").contains(cache)
            && one("ExecStart").ends_with(config),
        "{}",
        one("ExecStart")
    );
    assert_eq!(
        values(&unit, "ExecReload"),
        [
            format!("/usr/bin/wasmbgp check {cache} {config}"),
            "/usr/bin/wasmbgp ctl --socket /run/wasmbgp/wasmbgp.sock reload".to_owned()
        ]
    );
    // The shipped config puts the control socket where ExecReload looks for it.
    let example =
        std::fs::read_to_string(workspace_root().join("dist/systemd/wasmbgp.toml")).unwrap();
    assert!(example.contains("socket = \"/run/wasmbgp/wasmbgp.sock\""));
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    let dir = WorkDir::new("hardening_systemd_verify").unwrap();
    // With the paths it runs made to exist: the built binary.
    let bin = binary().unwrap();
    let unit = dir.path().join("wasmbgp.service");
    std::fs::write(
        &unit,
        unit_text().replace("/usr/bin/wasmbgp", &bin.display().to_string()),
    )
    .unwrap();
    verify(&unit).unwrap();
    step(
        "verify",
        format!("systemd-analyze verify: clean ({})", bin.display()),
    );
}

#[test]
fn exposure_is_at_most_2() {
    let out = output(
        Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--no-pager"])
            .arg(workspace_root().join(UNIT)),
    )
    .unwrap();
    let all = text(&out);
    // `→ Overall exposure level for wasmbgp.service: 1.6 OK 🙂`
    let line = all
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no exposure line ({}):\n{all}", out.status));
    let score: f64 = line
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse {line:?}"));
    let exposed: Vec<&str> = all.lines().filter(|l| l.starts_with('✗')).collect();
    step(
        "exposure",
        format!("{}\nstill exposed:\n{}", line.trim(), exposed.join("\n")),
    );
    assert!(score <= 2.0, "{line}\n{all}");
}

#[test]
fn install_script_dry_run_and_staged() {
    let dir = WorkDir::new("hardening_systemd_install").unwrap();
    let bin = binary().unwrap();
    let plugins = component("tcp-check")
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let script = workspace_root().join("scripts/install.sh");
    let stage = dir.path().join("stage");
    let args = |cmd: &mut Command| {
        cmd.arg(&script)
            .args(["--prefix", "/usr"])
            .arg("--bin")
            .arg(&bin)
            .arg("--plugins")
            .arg(&plugins);
    };

    // --dry-run: says what it would do (user, files, ownership), changes nothing.
    let mut cmd = Command::new("bash");
    args(&mut cmd);
    cmd.arg("--dry-run").arg("--destdir").arg(&stage);
    let out = output(&mut cmd).unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    for want in [
        "usr/bin/wasmbgp",
        "etc/systemd/system/wasmbgp.service",
        "etc/wasmbgp/wasmbgp.toml",
        "usr/lib/sysusers.d/wasmbgp.conf",
        "usr/lib/wasmbgp/plugins/",
    ] {
        assert!(
            said.contains(want),
            "dry run does not mention {want}:\n{said}"
        );
    }
    assert!(!stage.exists(), "--dry-run created {}", stage.display());
    // Without DESTDIR the dry run would create the user and chown the config.
    let mut cmd = Command::new("bash");
    args(&mut cmd);
    let out = output(cmd.arg("--dry-run").env_remove("DESTDIR")).unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("chown root:wasmbgp /etc/wasmbgp")
            && (said.contains("user wasmbgp exists")
                || said.contains("systemd-sysusers")
                || said.contains("useradd")),
        "{said}"
    );

    // DESTDIR: the files, staged.
    let mut cmd = Command::new("bash");
    args(&mut cmd);
    let out = output(cmd.env("DESTDIR", &stage)).unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let staged = |p: &str| stage.join(p.trim_start_matches('/'));
    let mode = |p: &str| {
        std::fs::metadata(staged(p))
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("/usr/bin/wasmbgp"), 0o755);
    assert_eq!(mode("/etc/wasmbgp"), 0o750);
    assert_eq!(mode("/etc/wasmbgp/wasmbgp.toml"), 0o640);
    assert_eq!(mode("/etc/systemd/system/wasmbgp.service"), 0o644);
    assert!(staged("/usr/lib/wasmbgp/plugins/tcp-check.wasm").is_file());
    assert!(
        !staged("/usr/lib/wasmbgp/plugins/fixture-faulty.wasm").exists(),
        "test fixtures are not installed"
    );

    // The user, created inside the stage by systemd-sysusers (no change to this host).
    std::fs::create_dir_all(staged("/etc")).unwrap();
    for f in ["/etc/passwd", "/etc/group"] {
        std::fs::write(staged(f), "").unwrap();
    }
    let out = output(
        Command::new("systemd-sysusers")
            .arg(format!("--root={}", stage.display()))
            .arg(staged("/usr/lib/sysusers.d/wasmbgp.conf")),
    )
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let passwd = std::fs::read_to_string(staged("/etc/passwd")).unwrap();
    assert!(
        passwd.starts_with("wasmbgp:x:") && passwd.contains(":/usr/sbin/nologin"),
        "{passwd}"
    );

    // The installed unit runs the installed binary and passes verify (its paths
    // made to point into the stage).
    let unit = std::fs::read_to_string(staged("/etc/systemd/system/wasmbgp.service")).unwrap();
    assert_eq!(unit, unit_text(), "prefix /usr: the unit as shipped");
    let check_unit = dir.path().join("wasmbgp.service");
    std::fs::write(
        &check_unit,
        unit.replace(
            "/usr/bin/wasmbgp",
            &staged("/usr/bin/wasmbgp").display().to_string(),
        ),
    )
    .unwrap();
    verify(&check_unit).unwrap();

    // The installed config passes `wasmbgp check` (its plugin paths in the stage).
    let config = std::fs::read_to_string(staged("/etc/wasmbgp/wasmbgp.toml")).unwrap();
    assert!(config.contains("component = \"/usr/lib/wasmbgp/plugins/tcp-check.wasm\""));
    let check_config = dir.path().join("wasmbgp.toml");
    std::fs::write(
        &check_config,
        config.replace(
            "/usr/lib/wasmbgp/plugins",
            &staged("/usr/lib/wasmbgp/plugins").display().to_string(),
        ),
    )
    .unwrap();
    let out = output(
        Command::new(staged("/usr/bin/wasmbgp"))
            .arg("check")
            .arg("--cache-dir")
            .arg(dir.path().join("cache"))
            .arg(&check_config),
    )
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));

    // Run again: the operator's config is kept; another prefix moves the unit's paths.
    std::fs::write(staged("/etc/wasmbgp/wasmbgp.toml"), "# mine\n").unwrap();
    let out = output(
        Command::new("bash")
            .arg(&script)
            .args(["--prefix", "/opt/wasmbgp", "--no-plugins"])
            .arg("--bin")
            .arg(&bin)
            .arg("--destdir")
            .arg(&stage),
    )
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(staged("/etc/wasmbgp/wasmbgp.toml")).unwrap(),
        "# mine\n"
    );
    let unit = std::fs::read_to_string(staged("/etc/systemd/system/wasmbgp.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/opt/wasmbgp/bin/wasmbgp run ") && !unit.contains("/usr/bin/"),
        "{unit}"
    );
    assert!(staged("/opt/wasmbgp/bin/wasmbgp").is_file());
}

// ---------------------------------------------------------------------------
// The daemon in the unit's sandbox.

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The unit's sandbox where it concerns wasmbgp: `UMask=0077`, MemoryDenyWriteExecute,
/// and as root also `User=`, `AmbientCapabilities=`/`CapabilityBoundingSet=
/// CAP_NET_BIND_SERVICE` and `NoNewPrivileges=yes` (through setpriv).
fn sandboxed(argv: &[String]) -> Command {
    let mut cmd = if is_root() {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={UID}"))
            .arg(format!("--regid={GID}"))
            .arg("--clear-groups")
            .arg("--inh-caps=-all,+net_bind_service")
            .arg("--ambient-caps=-all,+net_bind_service")
            .arg("--bounding-set=-all,+net_bind_service")
            .arg("--no-new-privs")
            .arg("--")
            .args(argv);
        cmd
    } else {
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        cmd
    };
    // SAFETY: only umask and prctl between fork and exec (async-signal-safe).
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o077);
            let on = libc::PR_MDWE_REFUSE_EXEC_GAIN as libc::c_ulong;
            if libc::prctl(
                libc::PR_SET_MDWE,
                on,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// The unit's command lines for `key`, with its paths mapped into the test's.
fn unit_commands(key: &str, paths: &[(&str, &Path)]) -> Vec<Vec<String>> {
    values(&unit_text(), key)
        .into_iter()
        .map(|line| {
            line.split_whitespace()
                .map(|word| {
                    let mut word = word.to_owned();
                    for (from, to) in paths {
                        word = word.replace(from, &to.display().to_string());
                    }
                    word
                })
                .collect()
        })
        .collect()
}

fn run_sandboxed(argv: &[String]) -> Result<String> {
    let out = output(&mut sandboxed(argv))?;
    ensure!(
        out.status.success(),
        "{argv:?} ({}): {}",
        out.status,
        text(&out)
    );
    Ok(text(&out))
}

/// A directory owned by the service's user (what systemd makes of RuntimeDirectory=
/// and CacheDirectory=).
fn service_dir(path: &Path, mode: u32) -> Result<()> {
    std::fs::create_dir_all(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    if is_root() {
        std::os::unix::fs::chown(path, Some(UID), Some(GID))?;
    }
    Ok(())
}

/// A file root owns and the service's group reads (the config, the key).
fn root_file(path: &Path, content: &str) -> Result<()> {
    std::fs::write(path, content)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o640))?;
    if is_root() {
        std::os::unix::fs::chown(path, Some(0), Some(GID))?;
    }
    Ok(())
}

struct Sandbox {
    dir: WorkDir,
    bird_dir: PathBuf,
    config: PathBuf,
    run: PathBuf,
    cache: PathBuf,
    listen_port: u16,
}

impl Sandbox {
    fn paths(&self) -> Vec<(&'static str, &Path)> {
        vec![
            ("/usr/bin/wasmbgp", binary_path()),
            ("/etc/wasmbgp/wasmbgp.toml", &self.config),
            ("/var/cache/wasmbgp", &self.cache),
            ("/run/wasmbgp", &self.run),
        ]
    }

    fn birdc(&self, args: &[&str]) -> Result<String> {
        bird::birdc(&self.bird_dir, args)
    }

    fn has_route(&self, prefix: &str) -> Result<bool> {
        let out = self.birdc(&["show", "route", prefix])?;
        Ok(out.lines().any(|l| l.starts_with(prefix)))
    }

    fn session(&self) -> Result<bird::ProtocolLine> {
        bird::protocol_line(&self.birdc(&["show", "protocols", "wasmbgp"])?, "wasmbgp")
    }
}

fn binary_path() -> &'static Path {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| binary().expect("the wasmbgp binary"))
}

fn config_text(sandbox: &Sandbox, plugins: &[Plugin], routes: &[&str]) -> String {
    let mut out = format!(
        "router-id = \"{me}\"\nlocal-as = {WASMBGP_AS}\nlisten = \"{me}:{port}\"\n\n\
         [control]\nsocket = \"{socket}\"\n\n\
         [[neighbor]]\naddress = \"{bird}\"\nport = {bird_port}\npeer-as = {BIRD_AS}\n\
         local-address = \"{me}\"\nfamilies = [\"ipv4-unicast\"]\nconnect-retry = \"1s\"\n\
         md5-password-file = \"bgp.key\"\n",
        me = BLOCK.addr(1),
        port = sandbox.listen_port,
        socket = sandbox.run.join("wasmbgp.sock").display(),
        bird = BLOCK.addr(2),
        bird_port = BLOCK.port(0),
    );
    for prefix in routes {
        out.push_str(&format!(
            "\n[[route]]\nprefix = \"{prefix}\"\nnext-hop = \"self\"\n"
        ));
    }
    for plugin in plugins {
        out.push_str(&plugin.render());
    }
    out
}

const KEY: &str = "wasmbgp-e2e-md5-key";

#[test]
fn daemon_runs_in_the_units_sandbox_under_mdwe() {
    let test = "hardening_systemd_mdwe";
    let dir = WorkDir::new(test).unwrap();
    let sandbox = Sandbox {
        bird_dir: dir.subdir("bird").unwrap(),
        config: dir.subdir("etc").unwrap().join("wasmbgp.toml"),
        run: dir.path().join("run"),
        cache: dir.path().join("cache"),
        // Port 179 needs CAP_NET_BIND_SERVICE: what the unit grants, and all it grants.
        listen_port: if is_root() { 179 } else { BLOCK.port(1) },
        dir,
    };
    if let Err(e) = daemon_in_sandbox(test, &sandbox) {
        for (name, log) in [
            (
                "wasmbgp",
                std::fs::read_to_string(sandbox.dir.path().join("wasmbgp.log")),
            ),
            ("bird", Ok(bird::read_log(&sandbox.bird_dir))),
        ] {
            let log = log.unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- {name} (last lines)");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        panic!("[{test}] {e:#}");
    }
}

fn daemon_in_sandbox(test: &str, sandbox: &Sandbox) -> Result<()> {
    if !is_root() {
        step(
            test,
            "not root: MDWE and UMask only (no user switch, no port 179)",
        );
    }
    let etc = sandbox.config.parent().unwrap();
    std::fs::set_permissions(etc, std::fs::Permissions::from_mode(0o750))?;
    if is_root() {
        std::os::unix::fs::chown(etc, Some(0), Some(GID))?;
    }
    service_dir(&sandbox.run, 0o750)?;
    service_dir(&sandbox.cache, 0o700)?;
    root_file(&etc.join("bgp.key"), &format!("{KEY}\n"))?;

    let service_addr = BLOCK.sock(10, 2);
    let _service = TcpService::start(&service_addr)?;
    let vip = BLOCK.vip(100);
    let web = Plugin::tcp("web", component("tcp-check")?, &service_addr, &vip, 100);

    // BIRD with a TCP-MD5 session to wasmbgp.
    let mut conf = bird::config_head(&sandbox.bird_dir, BLOCK.addr(2));
    conf.push_str(&format!(
        "protocol bgp wasmbgp {{\n  local {bird} port {bird_port} as {BIRD_AS};\n  \
         neighbor {me} port {port} as {WASMBGP_AS};\n  multihop;\n  password \"{KEY}\";\n  \
         hold time 30;\n  connect retry time 1;\n  connect delay time 1;\n  \
         error wait time 1, 5;\n  ipv4 {{ import all; export none; }};\n}}\n",
        bird = BLOCK.addr(2),
        bird_port = BLOCK.port(0),
        me = BLOCK.addr(1),
        port = sandbox.listen_port,
    ));
    let _bird = bird::start_daemon(&sandbox.bird_dir, &conf)?;
    bird::wait_daemon_up(&sandbox.bird_dir, WAIT)?;

    // ExecStartPre: `check` compiles the plugin into the (empty) cache, under MDWE.
    root_file(
        &sandbox.config,
        &config_text(sandbox, std::slice::from_ref(&web), &[]),
    )?;
    let paths = sandbox.paths();
    let [pre] = &unit_commands("ExecStartPre", &paths)[..] else {
        bail!("one ExecStartPre")
    };
    let said = run_sandboxed(pre)?;
    step(test, format!("ExecStartPre: {}", said.trim()));
    let cached: Vec<_> = std::fs::read_dir(&sandbox.cache)?
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .collect();
    ensure!(!cached.is_empty(), "check cached no compiled component");
    for entry in &cached {
        let meta = entry.metadata()?;
        ensure!(
            meta.mode() & 0o077 == 0 && (!is_root() || meta.uid() == UID),
            "{}: mode {:o} uid {}",
            entry.path().display(),
            meta.mode() & 0o7777,
            meta.uid()
        );
    }

    // ExecStart: `run` loads it from the cache, under MDWE.
    let [start] = &unit_commands("ExecStart", &paths)[..] else {
        bail!("one ExecStart")
    };
    let log = sandbox.dir.path().join("wasmbgp.log");
    let mut daemon = Daemon::spawn("wasmbgp", sandboxed(start), &log)?;
    let socket = sandbox.run.join("wasmbgp.sock");
    wait_fast("the control socket", POLL, WAIT, || {
        ensure!(daemon.is_running(), "wasmbgp exited");
        Ok(answers(&socket))
    })?;
    let pid = daemon.pid().context("no pid")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    if is_root() {
        ensure!(
            field("Uid:").starts_with(&format!("{UID} {UID}"))
                && field("CapEff:") == "0000000000000400"
                && field("CapBnd:") == "0000000000000400"
                && field("NoNewPrivs:") == "1",
            "the daemon's credentials: Uid {} CapEff {} CapBnd {} NoNewPrivs {}",
            field("Uid:"),
            field("CapEff:"),
            field("CapBnd:"),
            field("NoNewPrivs:")
        );
    }
    step(
        test,
        format!(
            "wasmbgp run: pid {pid}, uid {}, CapEff {}, listening on {}:{}",
            field("Uid:"),
            field("CapEff:"),
            BLOCK.addr(1),
            sandbox.listen_port
        ),
    );
    let logged = std::fs::read_to_string(&log)?;
    ensure!(
        logged.contains("mapped read-execute from memfds"),
        "the daemon did not see MDWE: {logged}"
    );

    // The TCP-MD5 session, and the VIP of the health check.
    wait_fast("BIRD's session Established", POLL, WAIT, || {
        Ok(sandbox.session()?.info.starts_with("Established"))
    })?;
    let since = sandbox.session()?.since;
    let took = wait_fast("the VIP at BIRD", POLL, WAIT, || sandbox.has_route(&vip))?;
    step(
        test,
        format!("TCP-MD5 session up; {vip} at BIRD after {took:?}"),
    );

    // ExecReload: check, then `ctl reload`. A second health check (another component,
    // compiled by that check under MDWE, loaded by the daemon) and a static route.
    let vip2 = BLOCK.vip(101);
    let fixed = BLOCK.vip(200);
    let v2 = Plugin::healthcheck("v2", component("fixture-versioned-check-v2")?, &vip2);
    root_file(
        &sandbox.config,
        &config_text(sandbox, &[web, v2], &[fixed.as_str()]),
    )?;
    for argv in unit_commands("ExecReload", &paths) {
        let said = run_sandboxed(&argv)?;
        step(test, format!("ExecReload {}: {}", argv[1], said.trim()));
    }
    wait_fast(
        "the second VIP and the static route at BIRD",
        POLL,
        WAIT,
        || Ok(sandbox.has_route(&vip2)? && sandbox.has_route(&fixed)?),
    )?;
    let session = sandbox.session()?;
    ensure!(
        session.info.starts_with("Established")
            && wasmbgp_e2e::plugin_support::same_since(&session.since, &since),
        "the reload reset the session: {session:?} (since {since})"
    );
    step(
        test,
        format!("reloaded: {vip2} and {fixed} at BIRD, session untouched"),
    );

    // SIGTERM (KillSignal=): Cease to BIRD, exit 0.
    let exit = daemon.terminate(Duration::from_secs(10))?;
    ensure!(exit.success(), "wasmbgp exited {exit} on SIGTERM");
    wait_fast("BIRD to see the Cease", POLL, WAIT, || {
        Ok(!sandbox.session()?.info.starts_with("Established"))
    })?;
    Ok(())
}
