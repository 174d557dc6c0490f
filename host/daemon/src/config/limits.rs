//! A neighbor's session protections: prefix limits in both directions and its TCP-MD5
//! key (read from a file or the environment, never written in the config).

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml_edit::{Item, Value};
use wasmbgp_bgp::Family;
use wasmbgp_bgp::text::quote;

use super::reader::{Sink, TableReader};

/// A number of prefixes per family: one for every family, or some families each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FamilyLimits {
    /// The limit of every family not listed.
    pub all: Option<u32>,
    /// Per family.
    pub families: Vec<(Family, u32)>,
}

impl FamilyLimits {
    /// The limit for `family`, if any.
    pub fn get(&self, family: Family) -> Option<u32> {
        self.families
            .iter()
            .find(|(f, _)| *f == family)
            .map(|(_, n)| *n)
            .or(self.all)
    }

    /// True if no family is limited.
    pub fn is_empty(&self) -> bool {
        self.all.is_none() && self.families.is_empty()
    }
}

/// What exceeding `max-prefixes` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitAction {
    /// Cease/Maximum Number of Prefixes Reached, then a new session after `restart`.
    Cease,
    /// Log and count only.
    Warn,
}

/// The limit on prefixes received from a neighbor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixLimit {
    /// The limits.
    pub limits: FamilyLimits,
    /// What exceeding one does.
    pub action: LimitAction,
    /// After a Cease, when to try a new session (`None`: not until a reload resets it).
    pub restart: Option<Duration>,
    /// A warning is logged (once per crossing) at this percentage of the limit.
    pub warning_percent: u8,
}

impl Default for PrefixLimit {
    fn default() -> Self {
        PrefixLimit {
            limits: FamilyLimits::default(),
            action: LimitAction::Cease,
            restart: Some(Duration::from_secs(30)),
            warning_percent: 90,
        }
    }
}

/// A TCP-MD5 key and where it came from (said in logs and `ctl`, never the key).
#[derive(Clone, PartialEq, Eq)]
pub struct Md5Key {
    /// `file PATH` or `env NAME`.
    pub origin: String,
    key: Vec<u8>,
}

impl Md5Key {
    /// The key's bytes, for the socket option only.
    pub fn bytes(&self) -> &[u8] {
        &self.key
    }
}

impl fmt::Debug for Md5Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Md5Key({}, <secret>)", self.origin)
    }
}

/// The longest key Linux takes (`TCP_MD5SIG_MAXKEYLEN`).
pub const MD5_MAX_KEY: usize = 80;

/// Reads `max-prefixes` (a number, or a table of family = number) and its companions.
pub(super) fn parse_prefix_limit(r: &mut TableReader, sink: &mut Sink) -> PrefixLimit {
    let mut limit = PrefixLimit {
        limits: parse_family_limits(r, "max-prefixes", sink),
        ..PrefixLimit::default()
    };
    if let Some((s, span)) = r.opt_str("max-prefixes-action", sink) {
        match s.as_str() {
            "cease" => limit.action = LimitAction::Cease,
            "warn" => limit.action = LimitAction::Warn,
            other => sink.error(
                span,
                format!(
                    "max-prefixes-action must be \"cease\" or \"warn\", not {}",
                    quote(other)
                ),
            ),
        }
    }
    let restart_span = r.span_of("max-prefixes-restart");
    match r.item("max-prefixes-restart").and_then(Item::as_str) {
        Some("never") => limit.restart = None,
        _ => {
            if let Some(d) = r.opt_duration("max-prefixes-restart", sink) {
                if d < Duration::from_secs(1) {
                    sink.error(
                        restart_span,
                        "max-prefixes-restart must be at least 1s (or \"never\")",
                    );
                }
                limit.restart = Some(d);
            }
        }
    }
    if let Some(p) = r.opt_int("max-prefixes-warning", 1, 100, sink) {
        limit.warning_percent = p as u8;
    }
    limit
}

/// Reads `key` as a number for every family or a table `{ "ipv4-unicast" = N, ... }`.
pub(super) fn parse_family_limits(r: &mut TableReader, key: &str, sink: &mut Sink) -> FamilyLimits {
    let mut out = FamilyLimits::default();
    let in_range = |n: i64, span: Option<Range<usize>>, sink: &mut Sink| -> Option<u32> {
        match u32::try_from(n) {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                sink.error(span, format!("{key} must be between 1 and {}", u32::MAX));
                None
            }
        }
    };
    let entries: Vec<(String, Option<Range<usize>>, Option<&Value>)> = match r.item(key) {
        None => return out,
        Some(Item::Value(Value::Integer(n))) => {
            out.all = in_range(*n.value(), n.span(), sink);
            return out;
        }
        Some(Item::Value(Value::InlineTable(t))) => t
            .iter()
            .map(|(k, v)| (k.to_string(), v.span(), Some(v)))
            .collect(),
        Some(Item::Table(t)) => t
            .iter()
            .map(|(k, v)| (k.to_string(), v.span(), v.as_value()))
            .collect(),
        Some(other) => {
            sink.error(
                other.span(),
                format!("{key} must be a number, or a table of family = number"),
            );
            return out;
        }
    };
    for (family, span, value) in entries {
        let Ok(f) = family.parse::<Family>() else {
            sink.error(span, format!("{key}: unknown family {}", quote(&family)));
            continue;
        };
        match value.and_then(Value::as_integer) {
            Some(n) => {
                if let Some(n) = in_range(n, span, sink) {
                    out.families.push((f, n));
                }
            }
            None => sink.error(span, format!("{key}.{family} must be a number")),
        }
    }
    out
}

/// Reads `md5-password-file` or `md5-password-env`: the key itself never appears in the
/// config, and errors never quote it.
pub(super) fn parse_md5(r: &mut TableReader, base: &Path, sink: &mut Sink) -> Option<Md5Key> {
    let file = r.opt_str("md5-password-file", sink);
    let env = r.opt_str("md5-password-env", sink);
    let (origin, key, span) = match (file, env) {
        (None, None) => return None,
        (Some(_), Some((_, span))) => {
            sink.error(
                span,
                "md5-password-file and md5-password-env are alternatives: give one",
            );
            return None;
        }
        (Some((path, span)), None) => {
            let full = base.join(&path);
            match std::fs::read(&full) {
                // One trailing newline is the file's, not the key's.
                Ok(mut bytes) => {
                    if bytes.last() == Some(&b'\n') {
                        bytes.pop();
                        if bytes.last() == Some(&b'\r') {
                            bytes.pop();
                        }
                    }
                    (format!("file {}", full.display()), bytes, span)
                }
                Err(e) => {
                    sink.error(
                        span,
                        format!("cannot read md5-password-file {}: {e}", full.display()),
                    );
                    return None;
                }
            }
        }
        (None, Some((name, span))) => match std::env::var_os(&name) {
            Some(v) => (
                format!("env {name}"),
                std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()).to_vec(),
                span,
            ),
            None => {
                sink.error(
                    span,
                    format!("md5-password-env: the environment has no {}", quote(&name)),
                );
                return None;
            }
        },
    };
    if key.is_empty() || key.len() > MD5_MAX_KEY {
        sink.error(
            span,
            format!(
                "the TCP-MD5 key from {origin} must be 1 to {MD5_MAX_KEY} bytes (it has {})",
                key.len()
            ),
        );
        return None;
    }
    Some(Md5Key { origin, key })
}
