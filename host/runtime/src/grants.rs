//! Capability grants: what a plugin may reach, parsed once and checked on
//! every probe and route request. Deny by default: an empty list grants
//! nothing.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::spec::{GrantedFile, Grants};

/// The smallest memory cap accepted (a Rust guest needs about 1 MiB).
pub const MIN_MEMORY: u64 = 1 << 20;
/// The largest memory cap accepted.
pub const MAX_MEMORY: u64 = 4 << 30;
/// The largest data file a plugin may be granted.
pub const MAX_DATA_FILE: u64 = 64 << 20;
/// The longest per-call deadline accepted.
pub const MAX_DEADLINE: Duration = Duration::from_secs(60);

/// [`Grants`] parsed and validated.
#[derive(Debug, Clone, Default)]
pub struct CheckedGrants {
    tcp: BTreeSet<SocketAddr>,
    dns: BTreeSet<SocketAddr>,
    http: BTreeSet<SocketAddr>,
    neighbors: BTreeSet<IpAddr>,
    /// Data files the plugin is handed (read by the host; no WASI filesystem).
    pub files: Vec<GrantedFile>,
    /// The cap on prefixes owned through the `routes` interface.
    pub max_routes: Option<u32>,
    /// The memory cap in bytes.
    pub memory: u64,
    /// The guest-time deadline of one call.
    pub deadline: Duration,
}

/// Which allow-list a probe is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// `grants.tcp`
    Tcp,
    /// `grants.dns`
    Dns,
    /// `grants.http`
    Http,
}

impl std::fmt::Display for ProbeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProbeKind::Tcp => "tcp",
            ProbeKind::Dns => "dns",
            ProbeKind::Http => "http",
        })
    }
}

/// Parses "IP:PORT" or "[IPv6]:PORT" (also with an "http://" prefix and a
/// trailing "/" for HTTP grants).
fn parse_target(list: &str, entry: &str) -> anyhow::Result<SocketAddr> {
    let trimmed = entry.trim();
    let bare = trimmed
        .strip_prefix("http://")
        .unwrap_or(trimmed)
        .trim_end_matches('/');
    bare.parse::<SocketAddr>().with_context(|| {
        format!("grants.{list}: {entry:?} is not IP:PORT (names are not resolved; use an address)")
    })
}

impl CheckedGrants {
    /// Parses and validates `grants`.
    pub fn new(grants: &Grants) -> anyhow::Result<Self> {
        let parse_all = |list: &str, entries: &[String]| -> anyhow::Result<BTreeSet<SocketAddr>> {
            entries.iter().map(|e| parse_target(list, e)).collect()
        };
        if grants.memory < MIN_MEMORY || grants.memory > MAX_MEMORY {
            bail!(
                "grants.memory = {} bytes is out of range (1 MiB to 4 GiB)",
                grants.memory
            );
        }
        if grants.deadline.is_zero() || grants.deadline > MAX_DEADLINE {
            bail!(
                "grants.deadline = {:?} is out of range (above 0, at most 60 s)",
                grants.deadline
            );
        }
        Ok(CheckedGrants {
            tcp: parse_all("tcp", &grants.tcp)?,
            dns: parse_all("dns", &grants.dns)?,
            http: parse_all("http", &grants.http)?,
            neighbors: grants.neighbors.iter().copied().collect(),
            files: grants.files.clone(),
            max_routes: grants.max_routes,
            memory: grants.memory,
            deadline: grants.deadline,
        })
    }

    /// True when `target` is in the allow-list of `kind`.
    pub fn allows(&self, kind: ProbeKind, target: &SocketAddr) -> bool {
        match kind {
            ProbeKind::Tcp => self.tcp.contains(target),
            ProbeKind::Dns => self.dns.contains(target),
            ProbeKind::Http => self.http.contains(target),
        }
    }

    /// Resolves a route request's neighbor list against the grant: an empty
    /// request means every granted neighbor. Errors name what is denied.
    pub fn neighbors_for(&self, requested: &[IpAddr]) -> Result<Vec<IpAddr>, NeighborError> {
        if self.neighbors.is_empty() {
            return Err(NeighborError::Denied(
                "no neighbors are granted to this plugin".into(),
            ));
        }
        if requested.is_empty() {
            return Ok(self.neighbors.iter().copied().collect());
        }
        let mut out = Vec::with_capacity(requested.len());
        for ip in requested {
            if !self.neighbors.contains(ip) {
                return Err(NeighborError::Denied(format!(
                    "neighbor {ip} is not granted"
                )));
            }
            if !out.contains(ip) {
                out.push(*ip);
            }
        }
        Ok(out)
    }

    /// Reads the granted data files, each at most [`MAX_DATA_FILE`] bytes.
    pub fn read_files(&self) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        self.files
            .iter()
            .map(|GrantedFile { name, path }| {
                let size = std::fs::metadata(path)
                    .with_context(|| format!("granted file {}", path.display()))?
                    .len();
                if size > MAX_DATA_FILE {
                    bail!(
                        "granted file {} is larger than {} MiB",
                        path.display(),
                        MAX_DATA_FILE >> 20
                    );
                }
                let bytes = std::fs::read(path)
                    .with_context(|| format!("reading granted file {}", path.display()))?;
                Ok((name.clone(), bytes))
            })
            .collect()
    }
}

/// Why a route request's neighbor list was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NeighborError {
    /// Outside the grant.
    Denied(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants() -> Grants {
        Grants {
            tcp: vec!["127.0.0.1:8080".into(), "[::1]:80".into()],
            http: vec!["http://127.0.0.1:8000/".into()],
            neighbors: vec!["127.0.0.2".parse().unwrap()],
            ..Grants::default()
        }
    }

    #[test]
    fn allow_lists_are_exact() {
        let g = CheckedGrants::new(&grants()).unwrap();
        assert!(g.allows(ProbeKind::Tcp, &"127.0.0.1:8080".parse().unwrap()));
        assert!(g.allows(ProbeKind::Tcp, &"[::1]:80".parse().unwrap()));
        assert!(!g.allows(ProbeKind::Tcp, &"127.0.0.1:8081".parse().unwrap()));
        assert!(!g.allows(ProbeKind::Dns, &"127.0.0.1:8080".parse().unwrap()));
        assert!(g.allows(ProbeKind::Http, &"127.0.0.1:8000".parse().unwrap()));
    }

    #[test]
    fn insane_grants_are_refused() {
        let mut g = grants();
        g.tcp.push("localhost:80".into());
        assert!(
            CheckedGrants::new(&g)
                .unwrap_err()
                .to_string()
                .contains("localhost")
        );
        let g = Grants {
            memory: 10,
            ..Grants::default()
        };
        assert!(CheckedGrants::new(&g).is_err());
        let g = Grants {
            deadline: Duration::ZERO,
            ..Grants::default()
        };
        assert!(CheckedGrants::new(&g).is_err());
    }

    #[test]
    fn neighbors() {
        let g = CheckedGrants::new(&grants()).unwrap();
        assert_eq!(
            g.neighbors_for(&[]).unwrap(),
            vec!["127.0.0.2".parse::<IpAddr>().unwrap()]
        );
        assert!(matches!(
            g.neighbors_for(&["127.0.0.3".parse().unwrap()]),
            Err(NeighborError::Denied(_))
        ));
        let none = CheckedGrants::new(&Grants::default()).unwrap();
        assert!(matches!(
            none.neighbors_for(&[]),
            Err(NeighborError::Denied(_))
        ));
    }
}
