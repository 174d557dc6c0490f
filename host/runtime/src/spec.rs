//! What the daemon hands the runtime: a plugin's specification.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// Metric series a plugin may create unless `grants.max-series` says otherwise.
pub const DEFAULT_MAX_SERIES: u32 = 64;
/// Batches of events an exporter's queue holds unless `queue` says otherwise.
pub const DEFAULT_EXPORTER_QUEUE: usize = 256;

/// The longest `interval` / `fast-interval` accepted.
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// The WIT world a component is configured for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum World {
    /// `wasmbgp:plugin/healthcheck`: exports `health-check` (`init`, `check`).
    Healthcheck,
    /// `wasmbgp:plugin/policy`: exports `route-policy` (`init`, `evaluate`).
    Policy,
    /// `wasmbgp:plugin/exporter`: exports `event-sink` (`init`, `on-events`).
    Exporter,
}

impl World {
    /// The world's name as written in the config (`world = "healthcheck"`).
    pub fn name(self) -> &'static str {
        match self {
            World::Healthcheck => "healthcheck",
            World::Policy => "policy",
            World::Exporter => "exporter",
        }
    }

    /// The fully qualified name of the interface the component must export.
    pub fn export_interface(self) -> &'static str {
        match self {
            World::Healthcheck => "wasmbgp:plugin/health-check@0.2.0",
            World::Policy => "wasmbgp:plugin/route-policy@0.2.0",
            World::Exporter => "wasmbgp:plugin/event-sink@0.2.0",
        }
    }

    /// What `on-failure` means when the config does not say.
    pub fn default_on_failure(self) -> OnFailure {
        match self {
            World::Healthcheck => OnFailure::Withdraw,
            World::Policy => OnFailure::Reject,
            World::Exporter => OnFailure::Keep,
        }
    }
}

impl std::str::FromStr for World {
    type Err = anyhow::Error;

    /// Parses a config's `world = "..."`.
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "healthcheck" => Ok(World::Healthcheck),
            "policy" => Ok(World::Policy),
            "exporter" => Ok(World::Exporter),
            other => {
                anyhow::bail!("unknown world {other:?} (known: healthcheck, policy, exporter)")
            }
        }
    }
}

impl std::fmt::Display for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What happens to routes while a plugin is down after a fault: for a health check,
/// to the routes it drives (applied on [`PluginEvent::Failed`](crate::PluginEvent::Failed));
/// for a policy, to the routes it could not judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Health check: withdraw its routes until it is healthy again (the default).
    #[default]
    Withdraw,
    /// Health check: keep the routes as they are. (Exporters: the only value; the
    /// events of the time it is down are lost and it resyncs from a snapshot.)
    Keep,
    /// Policy: reject the routes (fail closed; the default).
    Reject,
    /// Policy: accept the routes unchanged (fail open).
    Accept,
}

impl OnFailure {
    /// The values a world accepts, for the config's error messages.
    pub fn known_for(world: World) -> &'static [OnFailure] {
        match world {
            World::Healthcheck => &[OnFailure::Withdraw, OnFailure::Keep],
            World::Policy => &[OnFailure::Reject, OnFailure::Accept],
            // An exporter's events are dropped while it is down; nothing to choose.
            World::Exporter => &[OnFailure::Keep],
        }
    }

    /// The config word.
    pub fn name(self) -> &'static str {
        match self {
            OnFailure::Withdraw => "withdraw",
            OnFailure::Keep => "keep",
            OnFailure::Reject => "reject",
            OnFailure::Accept => "accept",
        }
    }
}

impl std::str::FromStr for OnFailure {
    type Err = anyhow::Error;

    /// Parses a config's `on-failure = "withdraw" | "keep"`.
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "withdraw" => Ok(OnFailure::Withdraw),
            "keep" => Ok(OnFailure::Keep),
            "reject" => Ok(OnFailure::Reject),
            "accept" => Ok(OnFailure::Accept),
            other => anyhow::bail!(
                "unknown on-failure {other:?} (known: withdraw, keep for health checks; reject, accept for policies)"
            ),
        }
    }
}

/// A data file granted to a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantedFile {
    /// The path as the operator wrote it in the grant: what the plugin is told (its
    /// settings name the file the same way).
    pub name: String,
    /// Where the host reads it (relative names resolved against the config's folder).
    pub path: PathBuf,
}

/// The capabilities granted to a plugin. Everything not listed is denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    /// TCP probe targets, "IP:PORT".
    pub tcp: Vec<String>,
    /// DNS servers the plugin may query, "IP:PORT".
    pub dns: Vec<String>,
    /// HTTP origins the plugin may GET from, "IP:PORT" or "http://IP:PORT" (also
    /// reached over https:// by the `probe` interface).
    pub http: Vec<String>,
    /// A PEM file of CA certificates that HTTPS probes trust besides Mozilla's roots
    /// (a private CA), read when the plugin is loaded.
    pub http_ca: Option<PathBuf>,
    /// Data files handed to the plugin (a policy's `init`), re-read when they change.
    pub files: Vec<GrantedFile>,
    /// Neighbors the plugin may announce to through the `routes` interface.
    pub neighbors: Vec<IpAddr>,
    /// The most prefixes the plugin may own through `routes` (`None`: no cap
    /// beyond the neighbors grant).
    pub max_routes: Option<u32>,
    /// URLs (scheme, host, port, path prefix) the plugin may send `wasi:http`
    /// requests to, e.g. "https://alerts.example.net/hook".
    pub http_out: Vec<String>,
    /// Collectors ("IP:PORT") the plugin may open `wasi:sockets` TCP streams to.
    pub tcp_out: Vec<String>,
    /// Files the plugin may append to through the `output` interface.
    pub append_files: Vec<GrantedFile>,
    /// The most metric series the plugin may create through `metrics`.
    pub max_series: u32,
    /// Linear-memory cap in bytes (per instance).
    pub memory: u64,
    /// Guest execution time allowed per call (time spent waiting on host
    /// probes does not count).
    pub deadline: Duration,
}

impl Default for Grants {
    /// Nothing granted; 64 MiB of memory; 100 ms deadline.
    fn default() -> Self {
        Grants {
            tcp: Vec::new(),
            dns: Vec::new(),
            http: Vec::new(),
            http_ca: None,
            files: Vec::new(),
            neighbors: Vec::new(),
            max_routes: None,
            http_out: Vec::new(),
            tcp_out: Vec::new(),
            append_files: Vec::new(),
            max_series: DEFAULT_MAX_SERIES,
            memory: 64 << 20,
            deadline: Duration::from_millis(100),
        }
    }
}

/// Parses a memory size as written in a config: "16MiB", "512KiB", "1GiB",
/// "64MB" (decimal units), or a bare number of bytes.
pub fn parse_size(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| anyhow::anyhow!("size {text:?} does not start with a number"))?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => anyhow::bail!(
            "size {text:?} has an unknown unit {other:?} (use B, KiB, MiB, GiB, kB, MB, GB)"
        ),
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| anyhow::anyhow!("size {text:?} is too large"))
}

/// Everything needed to run one plugin instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSpec {
    /// Unique name; used in logs, events, status and state.
    pub name: String,
    /// The world the component must implement.
    pub world: World,
    /// The component file (`.wasm`).
    pub component: PathBuf,
    /// The operator's settings, handed to the plugin's `init`.
    pub settings: Vec<(String, String)>,
    /// Capabilities.
    pub grants: Grants,
    /// Delay between checks in a steady state.
    pub interval: Duration,
    /// Delay between checks while the health is changing.
    pub fast_interval: Duration,
    /// Passing checks in a row to report up.
    pub rise: u32,
    /// Failing checks in a row to report down.
    pub fall: u32,
    /// What the daemon does with the plugin's routes after a fault.
    pub on_failure: OnFailure,
    /// Exporter: batches of events waiting for the plugin; beyond this, events are
    /// dropped (counted, and reported to the plugin as `lagged`).
    pub queue: usize,
    /// Settings whose values are secret (tokens, passwords): they are handed to the
    /// plugin but never written to logs, `ctl` output or events (replaced by
    /// `<secret>` wherever the host would print them).
    pub secret_settings: Vec<String>,
}

impl PluginSpec {
    /// A spec with ExaBGP healthcheck's defaults: interval 5 s, fast
    /// interval 1 s, rise 3, fall 3, nothing granted; on failure, health checks
    /// withdraw and policies reject.
    pub fn new(name: impl Into<String>, world: World, component: impl Into<PathBuf>) -> Self {
        PluginSpec {
            name: name.into(),
            world,
            component: component.into(),
            settings: Vec::new(),
            grants: Grants::default(),
            interval: Duration::from_secs(5),
            fast_interval: Duration::from_secs(1),
            rise: 3,
            fall: 3,
            on_failure: world.default_on_failure(),
            queue: DEFAULT_EXPORTER_QUEUE,
            secret_settings: Vec::new(),
        }
    }

    /// The values of the secret settings (non-empty ones), to redact.
    pub fn secret_values(&self) -> Vec<String> {
        self.settings
            .iter()
            .filter(|(k, v)| !v.is_empty() && self.secret_settings.contains(k))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Checks the fields that need no component: name, intervals, counts.
    #[cfg_attr(not(feature = "engine"), allow(dead_code))]
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        if self.name.is_empty()
            || self
                .name
                .chars()
                .any(|c| c.is_control() || c.is_whitespace())
        {
            anyhow::bail!(
                "plugin name {:?} must be non-empty, without spaces",
                self.name
            );
        }
        if self.interval.is_zero() || self.fast_interval.is_zero() {
            anyhow::bail!(
                "plugin {}: interval and fast-interval must be above 0",
                self.name
            );
        }
        if self.interval > MAX_INTERVAL || self.fast_interval > MAX_INTERVAL {
            anyhow::bail!(
                "plugin {}: interval and fast-interval must be at most a day",
                self.name
            );
        }
        if let Some(k) = self
            .secret_settings
            .iter()
            .find(|k| !self.settings.iter().any(|(key, _)| key == *k))
        {
            anyhow::bail!(
                "plugin {}: secret setting {k:?} is not among its settings",
                self.name
            );
        }
        if self.queue == 0 || self.queue > 1 << 20 {
            anyhow::bail!("plugin {}: queue must be 1 to 1048576 batches", self.name);
        }
        if self.rise == 0 || self.fall == 0 {
            anyhow::bail!("plugin {}: rise and fall must be at least 1", self.name);
        }
        let known = OnFailure::known_for(self.world);
        if !known.contains(&self.on_failure) {
            let names: Vec<&str> = known.iter().map(|o| o.name()).collect();
            anyhow::bail!(
                "plugin {}: on-failure {:?} is not for a {} plugin (use {})",
                self.name,
                self.on_failure.name(),
                self.world,
                names.join(" or ")
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16MiB").unwrap(), 16 << 20);
        assert_eq!(parse_size("512 KiB").unwrap(), 512 << 10);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("2MB").unwrap(), 2_000_000);
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("3 parsecs").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
    }

    #[test]
    fn names_and_words() {
        assert_eq!("healthcheck".parse::<World>().unwrap(), World::Healthcheck);
        assert_eq!("policy".parse::<World>().unwrap(), World::Policy);
        assert_eq!("exporter".parse::<World>().unwrap(), World::Exporter);
        assert!("collector".parse::<World>().is_err());
        assert_eq!("keep".parse::<OnFailure>().unwrap(), OnFailure::Keep);
        let mut spec = PluginSpec::new("web", World::Healthcheck, "x.wasm");
        spec.validate().unwrap();
        spec.name = "has space".into();
        assert!(spec.validate().is_err());
        spec.name = "web".into();
        spec.interval = Duration::from_secs(100_000);
        assert!(spec.validate().is_err());
        let mut policy = PluginSpec::new("p", World::Policy, "x.wasm");
        assert_eq!(policy.on_failure, OnFailure::Reject);
        policy.validate().unwrap();
        policy.on_failure = OnFailure::Withdraw;
        assert!(
            policy
                .validate()
                .unwrap_err()
                .to_string()
                .contains("reject or accept")
        );
    }
}
