//! Support for the `ddos-flowspec` end-to-end test (`tests/flowspec_ddos.rs`): a GoBGP
//! negotiating ipv4-flowspec and ipv6-flowspec, a wasmbgp peering with it that runs the
//! `ddos-flowspec` plugin against a [`Detector`] served by the test, and the timing
//! helpers the test quotes its figures from.
//!
//! Addresses ([`LimitBlock`] `B`): wasmbgp on `.1` (BGP port 0, metrics port 4), GoBGP
//! on `.2` (BGP port 1, API port 2), the detector on `.3` (port 3).
//!
//! wasmbgp logs at [`LOG_LEVEL`] (info, plus each check's verdict at debug), so the
//! plugin's verdicts can be quoted from its log ([`DdosRig::plugin_log`]).
//!
//! Every query is strict and bounded in time: a failing or hanging `gobgp` or `ctl` is an
//! error, never "no route".

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::detector::Detector;
use crate::flowspec_support::{FlowFamily, FlowRoute, describe_difference, parse_gobgp_rib};
use crate::limits_support::LimitBlock;
use crate::peers::gobgp::GoBgp;
use crate::peers::prometheus::scrape;
use crate::peers::{Peer, PeerSpec, Remote};
use crate::plugin_support::{PluginSpeaker, PluginStatus};
use crate::policy_support::{metric_value, tail};
use crate::reload_support::LOG_LEVEL;
use crate::wait::{DEFAULT_TIMEOUT, wait_until};
use crate::wasmbgp::{Config, NeighborConfig, toml_list, toml_str};
use crate::workdir::WorkDir;

/// wasmbgp's AS.
pub const WASMBGP_AS: u32 = 65001;
/// GoBGP's AS.
pub const GOBGP_AS: u32 = 65281;
/// The longest a `gobgp` query may take.
pub const GOBGP_TIMEOUT: Duration = Duration::from_secs(10);
/// The plugin's name in the config (its metrics' `plugin` label, its log lines'
/// `plugin=`).
pub const PLUGIN: &str = "ddos";

/// `target/plugins/ddos-flowspec.wasm`, built by `scripts/build-plugins.sh` when needed
/// ([`crate::plugin_support::component`]). When that build fails (sources of other
/// plugins or of the SDK being edited while tests run) and a component built before
/// exists, that one is tested, with a warning, as [`crate::wasmbgp::binary`] does for
/// the daemon.
pub fn ddos_component() -> Result<PathBuf> {
    match crate::plugin_support::component("ddos-flowspec") {
        Ok(path) => Ok(path),
        Err(error) => {
            let path = crate::workspace_root().join("target/plugins/ddos-flowspec.wasm");
            if !path.is_file() {
                return Err(error);
            }
            eprintln!(
                "warning: {error:#}\nwarning: testing the previous build {}",
                path.display()
            );
            Ok(path)
        }
    }
}

/// The `[[plugin]]` block of `ddos-flowspec`: settings and grants.
#[derive(Debug, Clone)]
pub struct DdosPlugin {
    /// The component.
    pub component: PathBuf,
    /// `interval`.
    pub interval: Duration,
    /// `[plugin.settings]`, in order (`url` is added from the detector).
    pub settings: Vec<(String, String)>,
    /// `grants.max-routes`.
    pub max_routes: u32,
}

impl DdosPlugin {
    /// The TOML block, the detector at `detector` (granted), the rules to `neighbor`
    /// (granted).
    pub fn render(&self, detector: SocketAddr, neighbor: Ipv4Addr) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\n[[plugin]]\nname = {}", toml_str(PLUGIN));
        let _ = writeln!(out, "world = \"healthcheck\"");
        let _ = writeln!(
            out,
            "component = {}",
            toml_str(&self.component.display().to_string())
        );
        let _ = writeln!(
            out,
            "interval = \"{}ms\"\nrise = 1\nfall = 1",
            self.interval.as_millis()
        );
        out.push_str("[plugin.settings]\n");
        let _ = writeln!(
            out,
            "url = {}",
            toml_str(&format!("http://{detector}/attacks"))
        );
        for (k, v) in &self.settings {
            let _ = writeln!(out, "{k} = {}", toml_str(v));
        }
        out.push_str("[plugin.grants]\n");
        let _ = writeln!(out, "http = {}", toml_list(&[detector.to_string()]));
        let _ = writeln!(out, "neighbors = {}", toml_list(&[neighbor.to_string()]));
        let _ = writeln!(out, "max-routes = {}", self.max_routes);
        out
    }
}

/// GoBGP, wasmbgp with the plugin, and the detector, the session Established.
pub struct DdosRig {
    /// Test name (for progress lines).
    pub test: String,
    /// The block.
    pub block: LimitBlock,
    /// wasmbgp (dropped first: killed).
    pub speaker: PluginSpeaker,
    /// GoBGP.
    pub gobgp: GoBgp,
    /// The detector; `None` while stopped ([`DdosRig::stop_detector`]).
    pub detector: Option<Detector>,
    /// Where the detector listens.
    pub detector_addr: SocketAddr,
    /// wasmbgp's metrics endpoint.
    pub metrics: SocketAddr,
    /// The plugin's check interval.
    pub interval: Duration,
    /// The work directory (dropped last: kept when the test panics).
    pub dir: WorkDir,
}

impl DdosRig {
    /// Starts the detector answering `body`, GoBGP, and wasmbgp running `plugin`; waits
    /// for the session on both sides.
    pub fn start(test: &str, block: LimitBlock, plugin: &DdosPlugin, body: &str) -> Result<Self> {
        let dir = WorkDir::new(test)?;
        let (wasm_addr, gobgp_addr) = (block.addr(1), block.addr(2));
        let detector_addr = SocketAddr::new(block.addr(3).into(), block.port(3));
        let metrics = SocketAddr::new(wasm_addr.into(), block.port(4));
        let detector = Detector::start(&detector_addr.to_string(), body)?;

        let gobgp_dir = dir.subdir("gobgp")?;
        let mut gobgp = GoBgp::new(PeerSpec {
            dir: gobgp_dir,
            address: gobgp_addr,
            port: block.port(1),
            asn: GOBGP_AS,
            remote: Remote {
                address: wasm_addr,
                port: block.port(0),
                asn: WASMBGP_AS,
            },
            hold_time: 30,
            next_hop4: Ipv4Addr::new(192, 0, 2, 1),
            next_hop6: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
            originate: Vec::new(),
            api_port: block.port(2),
        })
        .with_flowspec();
        gobgp.start()?;

        let mut neighbor = NeighborConfig::new(gobgp_addr, block.port(1), GOBGP_AS, wasm_addr);
        neighbor.families = ["ipv4-unicast", "ipv4-flowspec", "ipv6-flowspec"]
            .map(str::to_owned)
            .to_vec();
        let config = Config {
            router_id: wasm_addr.to_string(),
            local_as: WASMBGP_AS,
            listen: Some(format!("{wasm_addr}:{}", block.port(0))),
            neighbors: vec![neighbor],
            routes: Vec::new(),
            route_files: Vec::new(),
        };
        let wasm_dir = dir.subdir("wasmbgp")?;
        let mut text = config.render_with_metrics(&PluginSpeaker::socket_in(&wasm_dir), metrics);
        text.push_str(&plugin.render(detector_addr, gobgp_addr));
        let speaker = PluginSpeaker::start_text(&wasm_dir, &text, &[], LOG_LEVEL)?;
        let rig = Self {
            test: test.to_owned(),
            block,
            speaker,
            gobgp,
            detector: Some(detector),
            detector_addr,
            metrics,
            interval: plugin.interval,
            dir,
        };
        wait_until("GoBGP session Established", DEFAULT_TIMEOUT, || {
            rig.gobgp_established()
        })?;
        wait_until("wasmbgp session Established", DEFAULT_TIMEOUT, || {
            Ok(rig.speaker.session()?.0 == "established")
        })?;
        rig.step("session Established on both sides");
        Ok(rig)
    }

    /// Progress line.
    pub fn step(&self, message: impl std::fmt::Display) {
        crate::step(&self.test, message);
    }

    /// The running detector.
    pub fn detector(&self) -> Result<&Detector> {
        self.detector.as_ref().context("the detector is stopped")
    }

    /// Has the detector answer `body` from now on; returns the moment it does (any
    /// request the detector times at or after it got `body`).
    pub fn serve(&self, body: &str) -> Result<Instant> {
        self.detector()?.set(body);
        Ok(Instant::now())
    }

    /// Stops the detector: its port refuses connections. Returns the moment it does.
    pub fn stop_detector(&mut self) -> Instant {
        self.detector = None;
        Instant::now()
    }

    /// Starts the detector again on its address, answering `body`.
    pub fn restart_detector(&mut self, body: &str) -> Result<Instant> {
        self.detector = Some(Detector::start(&self.detector_addr.to_string(), body)?);
        Ok(Instant::now())
    }

    /// `gobgp -u ADDR -p PORT ARGS...` against this GoBGP's API, which must exit 0
    /// within [`GOBGP_TIMEOUT`]; its stdout.
    pub fn gobgp_cli(&self, args: &[&str]) -> Result<String> {
        let spec = self.gobgp.spec();
        crate::run_bounded(
            Command::new("gobgp")
                .arg("-u")
                .arg(spec.address.to_string())
                .arg("-p")
                .arg(spec.api_port.to_string())
                .args(args),
            GOBGP_TIMEOUT,
        )
    }

    /// The flow routes GoBGP learned from wasmbgp in `family` (`gobgp global rib -a
    /// FAMILY -j`), sorted.
    pub fn flow_routes_of(&self, family: FlowFamily) -> Result<Vec<FlowRoute>> {
        let out = self.gobgp_cli(&["global", "rib", "-a", family.name(), "-j"])?;
        let mut routes = parse_gobgp_rib(&out, family, &self.block.addr(1).to_string())?;
        routes.sort();
        Ok(routes)
    }

    /// The flow routes of both families GoBGP learned from wasmbgp, sorted.
    pub fn flow_routes(&self) -> Result<Vec<FlowRoute>> {
        let mut routes = Vec::new();
        for family in FlowFamily::ALL {
            routes.extend(self.flow_routes_of(family)?);
        }
        routes.sort();
        Ok(routes)
    }

    /// Whether GoBGP's session to wasmbgp is Established (`gobgp neighbor ADDR -j`).
    pub fn gobgp_established(&self) -> Result<bool> {
        let out = self.gobgp_cli(&["neighbor", &self.block.addr(1).to_string(), "-j"])?;
        let json: serde_json::Value =
            serde_json::from_str(&out).context("gobgp neighbor -j printed bad JSON")?;
        // 6: BGP_FSM_ESTABLISHED in GoBGP's API.
        Ok(json["state"]["session_state"].as_u64() == Some(6))
    }

    /// Fails unless GoBGP holds exactly `want` (both families).
    pub fn expect_routes(&self, want: &[FlowRoute]) -> Result<()> {
        let mut want = want.to_vec();
        want.sort();
        let got = self.flow_routes()?;
        ensure!(
            got == want,
            "GoBGP holds {} flow routes, not the {} expected:{}",
            got.len(),
            want.len(),
            describe_difference(&got, &want)
        );
        Ok(())
    }

    /// Polls GoBGP's `families` every `every` until they hold exactly `want`; fails
    /// after `timeout`. Returns when that was seen, measured from `since` (an upper
    /// bound: the time the query that saw it returned).
    pub fn wait_routes(
        &self,
        what: &str,
        since: Instant,
        families: &[FlowFamily],
        want: &[FlowRoute],
        timeout: Duration,
    ) -> Result<Duration> {
        let mut want: Vec<FlowRoute> = want
            .iter()
            .filter(|r| families.contains(&r.family))
            .cloned()
            .collect();
        want.sort();
        loop {
            let mut got = Vec::new();
            for family in families {
                got.extend(self.flow_routes_of(*family)?);
            }
            got.sort();
            let seen = since.elapsed();
            if got == want {
                return Ok(seen);
            }
            if seen >= timeout {
                bail!(
                    "timed out after {timeout:?} waiting for {what}:{}",
                    describe_difference(&got, &want)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `show plugins --json`, the plugin's entry.
    pub fn plugin(&self) -> Result<PluginStatus> {
        self.speaker.plugin(PLUGIN)
    }

    /// wasmbgp's metrics (`GET /metrics`, status 200 required).
    pub fn scrape(&self) -> Result<String> {
        scrape(self.metrics)
    }

    /// The plugin's metric `wasmbgp_plugin_NAME{plugin="ddos", labels...}` in the
    /// exposition `text`.
    pub fn plugin_metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut all = vec![("plugin", PLUGIN)];
        all.extend_from_slice(labels);
        metric_value(text, &format!("wasmbgp_plugin_{name}"), &all)
    }

    /// The session never reset: Established on both sides, wasmbgp's
    /// `established-count` still 1.
    pub fn assert_session_untouched(&self) -> Result<()> {
        let (state, count) = self.speaker.session()?;
        ensure!(
            state == "established" && count == 1,
            "wasmbgp's session is {state} (established {count} times)"
        );
        ensure!(
            self.gobgp_established()?,
            "GoBGP's session is not Established"
        );
        Ok(())
    }

    /// The plugin's log records containing `needle`, each on one line: the host's own
    /// (`plugin=ddos`) and the plugin's (`plugin="ddos"`, through `log`).
    pub fn plugin_log(&self, needle: &str) -> Vec<String> {
        let tags = [format!("plugin={PLUGIN}"), format!("plugin=\"{PLUGIN}\"")];
        crate::plugin_support::log_records(&self.speaker.log())
            .into_iter()
            .map(|record| {
                record
                    .split('\n')
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|r| r.split_whitespace().any(|w| tags.iter().any(|t| w == t)))
            .filter(|r| r.contains(needle))
            .collect()
    }

    /// Both daemons' log tails, for a failure's message.
    pub fn logs(&self) -> String {
        format!(
            "--- wasmbgp log tail ---\n{}\n--- gobgpd log tail ---\n{}",
            tail(&crate::plugin_support::strip_ansi(&self.speaker.log()), 60),
            tail(&self.gobgp.log().unwrap_or_default(), 30)
        )
    }
}

/// One attack of the detector's document, rendered as JSON.
pub fn attack(fields: &[(&str, serde_json::Value)]) -> String {
    let object: serde_json::Map<String, serde_json::Value> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    serde_json::Value::Object(object).to_string()
}

/// Milliseconds, for the figures printed.
pub fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// Samples `probe` every `every` for `duration`; fails at the first sample that does
/// not hold, naming when it was taken (from the start) and what it saw.
pub fn holds_for(
    what: &str,
    every: Duration,
    duration: Duration,
    mut probe: impl FnMut() -> Result<std::result::Result<(), String>>,
) -> Result<usize> {
    let start = Instant::now();
    let mut samples = 0;
    while start.elapsed() < duration {
        samples += 1;
        if let Err(seen) = probe()? {
            bail!(
                "{what} stopped holding {:?} into the {:?} watched: {seen}",
                start.elapsed(),
                duration
            );
        }
        std::thread::sleep(every);
    }
    Ok(samples)
}
