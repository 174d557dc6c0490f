//! Driver for our own daemon: config writer, `wasmbgp run`, `wasmbgp ctl`.

use std::fmt::{Display, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

use crate::process::Daemon;
use crate::route::{Origin, Route, canonical_addr};
use crate::wait::{DEFAULT_TIMEOUT, wait_until};
use crate::{run_command, workspace_root};

/// Path of the `wasmbgp` binary: `$WASMBGP_BIN`, else `target/release/wasmbgp`
/// next to this test executable's `deps/` directory. When that binary is
/// missing or older than the sources under `host/`, it is built once per
/// process with `cargo build --release -p wasmbgp` (if that fails and an
/// older binary exists, the older binary is tested, with a warning).
pub fn binary() -> Result<PathBuf> {
    static BINARY: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BINARY
        .get_or_init(|| locate_or_build().map_err(|error| format!("{error:#}")))
        .clone()
        .map_err(|error| anyhow!(error))
}

fn locate_or_build() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("WASMBGP_BIN") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("WASMBGP_BIN={} does not exist", path.display());
        }
        return Ok(path);
    }
    let exe = std::env::current_exe().context("cannot find the test executable")?;
    // target/release/deps/interop_x-HASH → target/release
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .with_context(|| format!("unexpected test executable path {}", exe.display()))?;
    let path = profile_dir.join("wasmbgp");
    let built = std::fs::metadata(&path)
        .and_then(|meta| meta.modified())
        .ok();
    let sources = newest_mtime(&workspace_root().join("host"));
    let stale = match (built, sources) {
        (None, _) => true,
        (Some(built), Some(sources)) => sources > built,
        (Some(_), None) => false,
    };
    if stale {
        eprintln!("building wasmbgp (cargo build --release -p wasmbgp) ...");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
            .args(["build", "--release", "-p", "wasmbgp"])
            .current_dir(workspace_root())
            .status()
            .context("cannot run cargo build")?;
        match (status.success(), built.is_some()) {
            (true, _) => {}
            // Sources being edited while tests run: test the last good build.
            (false, true) => eprintln!(
                "warning: `cargo build --release -p wasmbgp` failed ({status}); testing the previous build {}",
                path.display()
            ),
            (false, false) => bail!(
                "`cargo build --release -p wasmbgp` failed ({status}); build it and rerun the tests"
            ),
        }
    }
    if !path.is_file() {
        bail!(
            "{} does not exist; run `cargo build --release -p wasmbgp` or set WASMBGP_BIN",
            path.display()
        );
    }
    Ok(path)
}

/// Newest modification time of the source files below `dir`.
fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                if path.file_name().is_some_and(|name| name != "target") {
                    stack.push(path);
                }
            } else if path
                .extension()
                .is_some_and(|ext| ext == "rs" || ext == "toml")
            {
                newest = newest.max(meta.modified().ok());
            }
        }
    }
    newest
}

/// A TOML basic string.
pub fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML array of basic strings.
pub fn toml_list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| toml_str(s)).collect();
    format!("[{}]", items.join(", "))
}

/// One `[[neighbor]]` of the wasmbgp config.
#[derive(Debug, Clone)]
pub struct NeighborConfig {
    /// Neighbor address.
    pub address: String,
    /// Neighbor's BGP port.
    pub port: u16,
    /// Neighbor AS.
    pub peer_as: u32,
    /// Source address for outgoing sessions.
    pub local_address: Option<String>,
    /// Proposed hold time in seconds.
    pub hold_time: Option<u16>,
    /// Never connect, only accept.
    pub passive: bool,
    /// Initial reconnect backoff, e.g. `1s`.
    pub connect_retry: Option<String>,
    /// Longest reconnect backoff, e.g. `2s`.
    pub connect_retry_max: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// Families, e.g. `ipv4-unicast`.
    pub families: Vec<String>,
    /// `import-policy`: policy plugins judging the routes received, in order.
    pub import_policy: Vec<String>,
    /// `export-policy`: policy plugins judging the routes about to be sent, in order.
    pub export_policy: Vec<String>,
    /// `md5-password-file`: the TCP-MD5 key's file, relative to the config file.
    pub md5_password_file: Option<String>,
    /// `md5-password-env`: the environment variable holding the TCP-MD5 key.
    pub md5_password_env: Option<String>,
    /// `ttl-security`: GTSM, the peer at most this many hops away.
    pub ttl_security: Option<u8>,
}

impl NeighborConfig {
    /// An active IPv4-unicast neighbor at `address:port`, AS `peer_as`, reached from
    /// `local`, retrying every second; wasmbgp's default hold time, no policy.
    pub fn new(address: impl Display, port: u16, peer_as: u32, local: impl Display) -> Self {
        Self {
            address: address.to_string(),
            port,
            peer_as,
            local_address: Some(local.to_string()),
            hold_time: None,
            passive: false,
            connect_retry: Some("1s".to_owned()),
            connect_retry_max: None,
            description: None,
            families: vec!["ipv4-unicast".to_owned()],
            import_policy: Vec::new(),
            export_policy: Vec::new(),
            md5_password_file: None,
            md5_password_env: None,
            ttl_security: None,
        }
    }
}

/// Attributes of a `[[route]]`, or the defaults of a `[[route-file]]`.
#[derive(Debug, Clone, Default)]
pub struct RouteAttrs {
    /// `self` or an address.
    pub next_hop: Option<String>,
    /// MED.
    pub med: Option<u32>,
    /// LOCAL_PREF.
    pub local_pref: Option<u32>,
    /// ORIGIN.
    pub origin: Option<Origin>,
    /// AS_PATH to prepend before our own AS.
    pub as_path: Vec<u32>,
    /// Standard communities `ASN:VALUE`.
    pub communities: Vec<String>,
    /// Large communities `A:B:C`.
    pub large_communities: Vec<String>,
    /// Extended communities, e.g. `target:65001:7`.
    pub extended_communities: Vec<String>,
    /// Restrict to these neighbors (empty: every neighbor of the family).
    pub neighbors: Vec<String>,
}

impl RouteAttrs {
    fn render(&self, out: &mut String) {
        let list = |items: &[String]| {
            items
                .iter()
                .map(|item| format!("\"{item}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(next_hop) = &self.next_hop {
            let _ = writeln!(out, "next-hop = \"{next_hop}\"");
        }
        if let Some(med) = self.med {
            let _ = writeln!(out, "med = {med}");
        }
        if let Some(pref) = self.local_pref {
            let _ = writeln!(out, "local-preference = {pref}");
        }
        if let Some(origin) = self.origin {
            let _ = writeln!(out, "origin = \"{origin}\"");
        }
        if !self.as_path.is_empty() {
            let path = self
                .as_path
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(out, "as-path = [{path}]");
        }
        if !self.communities.is_empty() {
            let _ = writeln!(out, "communities = [{}]", list(&self.communities));
        }
        if !self.large_communities.is_empty() {
            let _ = writeln!(
                out,
                "large-communities = [{}]",
                list(&self.large_communities)
            );
        }
        if !self.extended_communities.is_empty() {
            let _ = writeln!(
                out,
                "extended-communities = [{}]",
                list(&self.extended_communities)
            );
        }
        if !self.neighbors.is_empty() {
            let _ = writeln!(out, "neighbors = [{}]", list(&self.neighbors));
        }
    }
}

/// A `[[route-file]]`: the file's lines plus default attributes.
#[derive(Debug, Clone)]
pub struct RouteFile {
    /// File name, relative to the config file.
    pub name: String,
    /// One route per line: `PREFIX [attribute words as in ctl]`.
    pub lines: Vec<String>,
    /// Defaults for every line.
    pub defaults: RouteAttrs,
}

/// A wasmbgp configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Router id.
    pub router_id: String,
    /// Our AS.
    pub local_as: u32,
    /// Address to accept sessions on, `ADDR:PORT`.
    pub listen: Option<String>,
    /// Neighbors.
    pub neighbors: Vec<NeighborConfig>,
    /// Static routes: prefix and attributes.
    pub routes: Vec<(String, RouteAttrs)>,
    /// Bulk route files.
    pub route_files: Vec<RouteFile>,
}

impl Config {
    /// Renders the TOML with the control socket at `socket`.
    pub fn render(&self, socket: &Path) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "router-id = \"{}\"\nlocal-as = {}",
            self.router_id, self.local_as
        );
        if let Some(listen) = &self.listen {
            let _ = writeln!(out, "listen = \"{listen}\"");
        }
        let _ = writeln!(out, "\n[control]\nsocket = \"{}\"", socket.display());
        for neighbor in &self.neighbors {
            let _ = writeln!(out, "\n[[neighbor]]\naddress = \"{}\"", neighbor.address);
            let _ = writeln!(
                out,
                "port = {}\npeer-as = {}",
                neighbor.port, neighbor.peer_as
            );
            if let Some(local) = &neighbor.local_address {
                let _ = writeln!(out, "local-address = \"{local}\"");
            }
            if let Some(hold) = neighbor.hold_time {
                let _ = writeln!(out, "hold-time = {hold}");
            }
            let _ = writeln!(out, "passive = {}", neighbor.passive);
            if let Some(retry) = &neighbor.connect_retry {
                let _ = writeln!(out, "connect-retry = \"{retry}\"");
            }
            if let Some(retry) = &neighbor.connect_retry_max {
                let _ = writeln!(out, "connect-retry-max = \"{retry}\"");
            }
            if let Some(description) = &neighbor.description {
                let _ = writeln!(out, "description = {}", toml_str(description));
            }
            let families = neighbor
                .families
                .iter()
                .map(|f| format!("\"{f}\""))
                .collect::<Vec<_>>();
            let _ = writeln!(out, "families = [{}]", families.join(", "));
            for (key, chain) in [
                ("import-policy", &neighbor.import_policy),
                ("export-policy", &neighbor.export_policy),
            ] {
                if !chain.is_empty() {
                    let names: Vec<String> = chain.iter().map(|n| format!("\"{n}\"")).collect();
                    let _ = writeln!(out, "{key} = [{}]", names.join(", "));
                }
            }
            if let Some(file) = &neighbor.md5_password_file {
                let _ = writeln!(out, "md5-password-file = {}", toml_str(file));
            }
            if let Some(name) = &neighbor.md5_password_env {
                let _ = writeln!(out, "md5-password-env = {}", toml_str(name));
            }
            if let Some(hops) = neighbor.ttl_security {
                let _ = writeln!(out, "ttl-security = {hops}");
            }
        }
        for (prefix, attrs) in &self.routes {
            let _ = writeln!(out, "\n[[route]]\nprefix = \"{prefix}\"");
            attrs.render(&mut out);
        }
        for file in &self.route_files {
            let _ = writeln!(out, "\n[[route-file]]\npath = \"{}\"", file.name);
            file.defaults.render(&mut out);
        }
        out
    }

    /// [`Config::render`] listening on every address of `listen` (`listen = [...]`, in
    /// place of [`Config::listen`]).
    pub fn render_with_listen(&self, socket: &Path, listen: &[String]) -> String {
        let config = Config {
            listen: None,
            ..self.clone()
        };
        let rendered = config.render(socket);
        let (top, tables) = match rendered.find("\n[") {
            Some(at) => rendered.split_at(at),
            None => (rendered.as_str(), ""),
        };
        format!("{top}listen = {}\n{tables}", toml_list(listen))
    }

    /// [`Config::render`] with `metrics = "ADDR"` (a top-level key: before the first
    /// table).
    pub fn render_with_metrics(&self, socket: &Path, metrics: SocketAddr) -> String {
        let rendered = self.render(socket);
        let (top, tables) = match rendered.find("\n[") {
            Some(at) => rendered.split_at(at),
            None => (rendered.as_str(), ""),
        };
        format!("{top}\nmetrics = \"{metrics}\"\n{tables}")
    }
}

// ---------------------------------------------------------------------------
// Starting `wasmbgp run` and asking it, shared by every driver of the daemon.

/// Writes `text` as `DIR/wasmbgp.toml` and `route_files` beside it, has `wasmbgp
/// check` accept it and starts `wasmbgp run` on it (text log at `log_level`, into
/// `DIR/wasmbgp.log`); returns the config file and the daemon.
pub fn spawn_checked(
    dir: &Path,
    text: &str,
    route_files: &[RouteFile],
    log_level: &str,
) -> Result<(PathBuf, Daemon)> {
    let launch = Launch {
        log_level: log_level.to_owned(),
        ..Launch::default()
    };
    spawn_checked_with(dir, text, route_files, &launch)
}

/// How [`spawn_checked_with`] runs `wasmbgp check` and `wasmbgp run`.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Put before the binary (such as `ip netns exec NS`, see
    /// [`crate::netns::Netns::prefix`]).
    pub prefix: Vec<String>,
    /// Environment variables added (such as the one `md5-password-env` names).
    pub env: Vec<(String, String)>,
    /// `--log-level`.
    pub log_level: String,
}

impl Default for Launch {
    fn default() -> Self {
        Self {
            prefix: Vec::new(),
            env: Vec::new(),
            log_level: "info".to_owned(),
        }
    }
}

impl Launch {
    /// `wasmbgp SUBCOMMAND` as this launch runs it.
    fn command(&self, binary: &Path, subcommand: &str) -> Command {
        let mut cmd = match self.prefix.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(binary);
                cmd
            }
            None => Command::new(binary),
        };
        cmd.arg(subcommand);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }
}

/// [`spawn_checked`], with `wasmbgp check` and `wasmbgp run` started as `launch` says
/// (log level, environment, a prefix such as `ip netns exec NS`).
pub fn spawn_checked_with(
    dir: &Path,
    text: &str,
    route_files: &[RouteFile],
    launch: &Launch,
) -> Result<(PathBuf, Daemon)> {
    let binary = binary()?;
    let config_path = dir.join("wasmbgp.toml");
    std::fs::write(&config_path, text)
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    for file in route_files {
        let path = dir.join(&file.name);
        std::fs::write(&path, file.lines.join("\n") + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    run_command(launch.command(&binary, "check").arg(&config_path))
        .context("`wasmbgp check` rejected the test configuration")?;
    let mut cmd = launch.command(&binary, "run");
    cmd.arg(&config_path)
        .args(["--log-format", "text", "--log-level", &launch.log_level]);
    let daemon = Daemon::spawn("wasmbgp", cmd, &dir.join("wasmbgp.log"))?;
    Ok((config_path, daemon))
}

/// Polls, for at most [`DEFAULT_TIMEOUT`], until `ready` holds for the `wasmbgp run`
/// just started as `daemon` (such as [`answers`] on its socket); its exit is reported
/// as the last error.
pub fn wait_started(
    daemon: &mut Daemon,
    what: &str,
    mut ready: impl FnMut() -> Result<bool>,
) -> Result<()> {
    wait_until(what, DEFAULT_TIMEOUT, || {
        if !daemon.is_running() {
            bail!("wasmbgp exited");
        }
        ready()
    })
}

/// Whether a wasmbgp answers `show neighbors` on its control socket `socket`.
pub fn answers(socket: &Path) -> bool {
    socket.exists() && ctl(socket, &["show", "neighbors", "--json"]).is_ok()
}

/// [`wait_started`] until the `wasmbgp run` of `dir` just started as `daemon` answers
/// on its control socket `socket`; on failure, with its log so far.
pub fn wait_socket(daemon: &mut Daemon, dir: &Path, socket: &Path) -> Result<()> {
    wait_started(daemon, "wasmbgp control socket to answer", || {
        Ok(answers(socket))
    })
    .with_context(|| format!("wasmbgp did not start; log:\n{}", read_log(dir)))
}

/// `wasmbgp ctl --socket SOCKET -` with `commands` on stdin (one per line, written from
/// a thread while the answers are read): the answer lines (`ok` or `error: ...`), which
/// must be one per command, and the exit status (a failed command may make it
/// non-zero). It must finish within [`CTL_TIMEOUT`].
pub fn ctl_batch<S: AsRef<str>>(
    socket: &Path,
    commands: &[S],
) -> Result<(Vec<String>, ExitStatus)> {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = Command::new(binary()?)
        .arg("ctl")
        .arg("--socket")
        .arg(socket)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run wasmbgp ctl -")?;
    let mut stdin = child.stdin.take().context("no stdin for wasmbgp ctl -")?;
    let input: String = commands
        .iter()
        .map(|c| format!("{}\n", c.as_ref()))
        .collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    // Bounded like `ctl`: a daemon that stops answering is an error, not a hung test.
    let pid = child.id();
    let (done, waited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let output = match waited.recv_timeout(CTL_TIMEOUT) {
        Ok(output) => output.context("cannot wait for wasmbgp ctl -")?,
        Err(_) => {
            // SAFETY: kill(2) on our own child, which has not been reaped (it has not
            // exited).
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
            bail!("wasmbgp ctl - did not finish within {CTL_TIMEOUT:?}");
        }
    };
    writer
        .join()
        .map_err(|_| anyhow!("the stdin writer panicked"))?
        .context("cannot write to wasmbgp ctl -")?;
    let answers: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    if answers.len() != commands.len() {
        bail!(
            "wasmbgp ctl - ({}) gave {} answers to {} commands: {answers:?}; stderr: {}",
            output.status,
            answers.len(),
            commands.len(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok((answers, output.status))
}

/// The longest a `wasmbgp ctl` command may take: a daemon that stops answering is an
/// error, not a hung test.
pub const CTL_TIMEOUT: Duration = Duration::from_secs(30);

/// `wasmbgp ctl --socket SOCKET ARGS...`, which must exit 0 within [`CTL_TIMEOUT`]; its
/// stdout.
pub fn ctl(socket: &Path, args: &[&str]) -> Result<String> {
    crate::run_bounded(
        Command::new(binary()?)
            .arg("ctl")
            .arg("--socket")
            .arg(socket)
            .args(args),
        CTL_TIMEOUT,
    )
}

/// [`ctl`] of a command whose output is JSON.
pub fn ctl_json(socket: &Path, args: &[&str]) -> Result<Value> {
    let out = ctl(socket, args)?;
    serde_json::from_str(&out)
        .with_context(|| format!("`wasmbgp ctl {}` printed bad JSON: {out}", args.join(" ")))
}

/// The log of the wasmbgp of `dir` so far (`DIR/wasmbgp.log`; empty when it cannot be
/// read).
pub fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("wasmbgp.log")).unwrap_or_default()
}

/// One entry of `wasmbgp ctl show neighbors --json`.
#[derive(Debug, Clone)]
pub struct NeighborStatus {
    /// Neighbor address.
    pub address: String,
    /// FSM state: idle|connect|active|opensent|openconfirm|established.
    pub state: String,
    /// Times the session reached Established.
    pub established_count: u64,
    /// Prefixes received.
    pub prefixes_received: u64,
    /// Prefixes sent.
    pub prefixes_sent: u64,
    /// Last error, if any.
    pub last_error: Option<String>,
    /// The raw JSON object.
    pub raw: Value,
}

/// A running `wasmbgp run` daemon.
#[derive(Debug)]
pub struct WasmBgp {
    dir: PathBuf,
    socket: PathBuf,
    daemon: Option<Daemon>,
}

impl WasmBgp {
    /// Writes `config` (and its route files) into `dir`, validates it with
    /// `wasmbgp check`, starts `wasmbgp run` and waits for the control socket.
    pub fn start(dir: &Path, config: &Config) -> Result<Self> {
        let socket = dir.join("wasmbgp.sock");
        let (_, mut daemon) =
            spawn_checked(dir, &config.render(&socket), &config.route_files, "info")?;
        wait_socket(&mut daemon, dir, &socket)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            socket,
            daemon: Some(daemon),
        })
    }

    /// Like [`WasmBgp::start`] for a config rendered by the caller, whose control socket
    /// is [`WasmBgp::socket_in`] `dir`, started as `launch` says.
    pub fn start_text(
        dir: &Path,
        text: &str,
        route_files: &[RouteFile],
        launch: &Launch,
    ) -> Result<Self> {
        let socket = Self::socket_in(dir);
        let (_, mut daemon) = spawn_checked_with(dir, text, route_files, launch)?;
        wait_socket(&mut daemon, dir, &socket)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            socket,
            daemon: Some(daemon),
        })
    }

    /// The control socket of a wasmbgp whose files are in `dir`.
    pub fn socket_in(dir: &Path) -> PathBuf {
        dir.join("wasmbgp.sock")
    }

    /// The config file (`DIR/wasmbgp.toml`).
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("wasmbgp.toml")
    }

    /// Whether the daemon is still running.
    pub fn is_running(&mut self) -> bool {
        self.daemon.as_mut().is_some_and(Daemon::is_running)
    }

    /// Runs `wasmbgp ctl --socket SOCK ARGS...` and returns its stdout.
    pub fn ctl(&self, args: &[&str]) -> Result<String> {
        ctl(&self.socket, args)
    }

    /// Runs `wasmbgp ctl --socket SOCK -` with `commands` on stdin (one per
    /// line) and returns the answer lines (`ok` or `error: ...`), one per command.
    pub fn ctl_batch(&self, commands: &[&str]) -> Result<Vec<String>> {
        Ok(ctl_batch(&self.socket, commands)?.0)
    }

    /// Runs a ctl command given as one string (split on whitespace).
    pub fn ctl_line(&self, line: &str) -> Result<String> {
        let args: Vec<&str> = line.split_whitespace().collect();
        self.ctl(&args)
    }

    fn ctl_json(&self, args: &[&str]) -> Result<Value> {
        ctl_json(&self.socket, args)
    }

    /// `show neighbors --json`.
    pub fn neighbors(&self) -> Result<Vec<NeighborStatus>> {
        let json = self.ctl_json(&["show", "neighbors", "--json"])?;
        json.as_array()
            .context("show neighbors --json is not an array")?
            .iter()
            .map(|entry| {
                Ok(NeighborStatus {
                    address: entry["address"]
                        .as_str()
                        .context("neighbor without address")?
                        .to_owned(),
                    state: entry["state"]
                        .as_str()
                        .context("neighbor without state")?
                        .to_owned(),
                    established_count: entry["established-count"].as_u64().unwrap_or_default(),
                    prefixes_received: entry["prefixes-received"].as_u64().unwrap_or_default(),
                    prefixes_sent: entry["prefixes-sent"].as_u64().unwrap_or_default(),
                    last_error: entry["last-error"].as_str().map(str::to_owned),
                    raw: entry.clone(),
                })
            })
            .collect()
    }

    /// The status of neighbor `address`.
    pub fn neighbor(&self, address: &str) -> Result<NeighborStatus> {
        self.neighbors()?
            .into_iter()
            .find(|n| n.address == address)
            .with_context(|| format!("neighbor {address} missing from show neighbors"))
    }

    /// Whether wasmbgp reports the session with `address` as established.
    pub fn is_established(&self, address: &str) -> Result<bool> {
        Ok(self.neighbor(address)?.state == "established")
    }

    /// `show adj-rib-in NEIGHBOR --json`.
    pub fn adj_rib_in(&self, neighbor: &str) -> Result<Vec<Route>> {
        parse_rib(&self.ctl_json(&["show", "adj-rib-in", neighbor, "--json"])?)
    }

    /// `show adj-rib-out NEIGHBOR --json`.
    pub fn adj_rib_out(&self, neighbor: &str) -> Result<Vec<Route>> {
        parse_rib(&self.ctl_json(&["show", "adj-rib-out", neighbor, "--json"])?)
    }

    /// SIGTERM; waits up to 30 s for the exit status.
    pub fn terminate(&mut self) -> Result<ExitStatus> {
        let mut daemon = self.daemon.take().context("wasmbgp is not running")?;
        daemon.terminate(Duration::from_secs(30))
    }

    /// The daemon's output so far.
    pub fn log(&self) -> Result<String> {
        crate::peers::read_optional(&self.dir.join("wasmbgp.log"))
    }
}

/// Parses the JSON of `show adj-rib-in/out --json`.
pub fn parse_rib(json: &Value) -> Result<Vec<Route>> {
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let number = |value: &Value| value.as_u64().and_then(|n| u32::try_from(n).ok());
    json.as_array()
        .context("RIB JSON is not an array")?
        .iter()
        .map(|entry| {
            let mut route = Route::new(entry["prefix"].as_str().context("entry without prefix")?)?;
            // Adj-RIB-Out may show the configured `self` rather than an address.
            route.next_hop = entry["next-hop"]
                .as_str()
                .map(|hop| {
                    if hop == "self" {
                        Ok(hop.to_owned())
                    } else {
                        canonical_addr(hop)
                    }
                })
                .transpose()?;
            route.origin = entry["origin"].as_str().map(Origin::parse).transpose()?;
            route.as_path = entry["as-path"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(number)
                .collect();
            route.med = number(&entry["med"]);
            route.local_pref = number(&entry["local-pref"]);
            route.communities = strings(&entry["communities"]);
            route.large_communities = strings(&entry["large-communities"]);
            route.extended_communities = strings(&entry["extended-communities"]);
            Ok(route)
        })
        .collect()
}
