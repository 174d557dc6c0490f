//! Capability grants: what a plugin may reach, parsed once and checked on
//! every probe and route request. Deny by default: an empty list grants
//! nothing.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::spec::{GrantedFile, Grants};

/// The smallest memory cap accepted (a Rust guest needs about 1 MiB).
pub const MIN_MEMORY: u64 = 1 << 20;
/// The largest memory cap accepted.
pub const MAX_MEMORY: u64 = 4 << 30;
/// The largest data file a plugin may be granted.
pub const MAX_DATA_FILE: u64 = 64 << 20;
/// The longest per-call deadline accepted.
pub const MAX_DEADLINE: Duration = Duration::from_secs(60);
/// The largest `grants.http-ca` file accepted.
pub const MAX_CA_FILE: u64 = 1 << 20;

/// [`Grants`] parsed and validated.
#[derive(Debug, Clone, Default)]
pub struct CheckedGrants {
    tcp: BTreeSet<SocketAddr>,
    dns: BTreeSet<SocketAddr>,
    http: BTreeSet<SocketAddr>,
    /// What HTTPS probes trust: Mozilla's roots and the CAs of `grants.http-ca`.
    #[cfg(feature = "engine")]
    pub(crate) tls: crate::probes::TlsTrust,
    neighbors: BTreeSet<IpAddr>,
    /// Data files the plugin is handed (read by the host; no WASI filesystem).
    pub files: Vec<GrantedFile>,
    /// The cap on prefixes owned through the `routes` interface.
    pub max_routes: Option<u32>,
    /// The memory cap in bytes.
    pub memory: u64,
    /// The guest-time deadline of one call.
    pub deadline: Duration,
    /// Where `wasi:http` requests may go.
    pub http_out: Vec<UrlGrant>,
    /// Where `wasi:sockets` TCP streams may connect.
    pub tcp_out: BTreeSet<SocketAddr>,
    /// Files the `output` interface may append to.
    pub append_files: Vec<GrantedFile>,
    /// The most metric series the plugin may create.
    pub max_series: u32,
}

/// One `grants.http-out` entry: a scheme, host and port, and a path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlGrant {
    https: bool,
    host: String,
    port: u16,
    path: String,
}

impl UrlGrant {
    /// Parses "http://127.0.0.1:9000/hook" or "https://alerts.example.net/".
    pub fn parse(entry: &str) -> anyhow::Result<Self> {
        let bad = |why: &str| anyhow::anyhow!("grants.http-out: {entry:?} {why}");
        let (https, rest) = if let Some(rest) = entry.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = entry.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(bad("must start with http:// or https://"));
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("has no host (or has credentials)"));
        }
        if path.contains(['?', '#']) {
            return Err(bad("is a URL prefix: no query or fragment"));
        }
        let (host, port) = split_host_port(authority, if https { 443 } else { 80 })
            .ok_or_else(|| bad("has a malformed host or port"))?;
        Ok(UrlGrant {
            https,
            host,
            port,
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
        })
    }

    /// True when a request to (scheme, authority, path) falls under this grant: same
    /// scheme, host and port, and a path equal to the prefix or below it.
    pub fn allows(&self, https: bool, authority: &str, path: &str) -> bool {
        let Some((host, port)) = split_host_port(authority, if https { 443 } else { 80 }) else {
            return false;
        };
        if https != self.https || host != self.host || port != self.port {
            return false;
        }
        let path = path.split(['?', '#']).next().unwrap_or("");
        let path = if path.is_empty() { "/" } else { path };
        match path.strip_prefix(self.path.as_str()) {
            Some(rest) => self.path.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }
}

impl std::fmt::Display for UrlGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}:{}{}", self.host, self.port, self.path)
    }
}

/// "host", "host:port", "[v6]" or "[v6]:port", lowercased, with the default port.
fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{host}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
        return None;
    }
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default_port,
    };
    Some((host.to_ascii_lowercase(), port))
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

/// Reads the CA certificates of a `grants.http-ca` PEM file (at most
/// [`MAX_CA_FILE`] bytes, at least one certificate; other sections are ignored).
/// Errors name the file.
pub fn read_ca_file(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let file = path.display();
    let pem = match std::fs::metadata(path) {
        Ok(meta) if meta.len() > MAX_CA_FILE => {
            bail!("{file} is larger than {} MiB", MAX_CA_FILE >> 20)
        }
        Ok(_) => std::fs::read(path),
        Err(e) => Err(e),
    }
    .map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{file}: bad PEM: {e}"))?;
    if certs.is_empty() {
        bail!("{file} holds no PEM certificate");
    }
    Ok(certs)
}

impl CheckedGrants {
    /// Parses and validates `grants`; reads the `http-ca` file, the only file read
    /// here (so a reload picks up a new CA).
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
        #[cfg_attr(not(feature = "engine"), allow(unused_variables))]
        let cas = match &grants.http_ca {
            Some(path) => read_ca_file(path).map_err(|e| anyhow::anyhow!("grants.http-ca: {e}"))?,
            None => Vec::new(),
        };
        #[cfg(feature = "engine")]
        let tls = crate::probes::TlsTrust::new(&cas).with_context(|| {
            format!(
                "grants.http-ca: {}",
                grants.http_ca.as_deref().unwrap_or(Path::new("")).display()
            )
        })?;
        Ok(CheckedGrants {
            tcp: parse_all("tcp", &grants.tcp)?,
            dns: parse_all("dns", &grants.dns)?,
            http: parse_all("http", &grants.http)?,
            #[cfg(feature = "engine")]
            tls,
            neighbors: grants.neighbors.iter().copied().collect(),
            files: grants.files.clone(),
            max_routes: grants.max_routes,
            memory: grants.memory,
            deadline: grants.deadline,
            http_out: grants
                .http_out
                .iter()
                .map(|e| UrlGrant::parse(e))
                .collect::<anyhow::Result<_>>()?,
            tcp_out: grants
                .tcp_out
                .iter()
                .map(|e| {
                    e.parse::<SocketAddr>().with_context(|| {
                        format!("grants.tcp-out: {e:?} is not IP:PORT (names are not resolved)")
                    })
                })
                .collect::<anyhow::Result<_>>()?,
            append_files: grants.append_files.clone(),
            max_series: grants.max_series,
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
    fn http_ca_files_must_hold_certificates() {
        let dir = std::env::temp_dir().join(format!("wasmbgp-grants-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let with_ca = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            Grants {
                http_ca: Some(path),
                ..Grants::default()
            }
        };
        let error = |g: &Grants| CheckedGrants::new(g).unwrap_err().to_string();
        let missing = Grants {
            http_ca: Some(dir.join("missing.pem")),
            ..Grants::default()
        };
        assert!(
            error(&missing).contains("grants.http-ca"),
            "{}",
            error(&missing)
        );
        let e = error(&with_ca("empty.pem", "just text\n"));
        assert!(e.contains("no PEM certificate"), "{e}");
        let e = error(&with_ca("cut.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n"));
        assert!(e.contains("bad PEM"), "{e}");
        // Well-formed PEM, but not a certificate a CA could be made of.
        #[cfg(feature = "engine")]
        {
            let e = format!(
                "{:#}",
                CheckedGrants::new(&with_ca(
                    "junk.pem",
                    "-----BEGIN CERTIFICATE-----\nMAMBAgM=\n-----END CERTIFICATE-----\n",
                ))
                .unwrap_err()
            );
            assert!(e.contains("not a usable CA"), "{e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn url_grants_match_scheme_host_port_and_path_prefix() {
        let g = UrlGrant::parse("http://127.0.0.1:9000/hook").unwrap();
        assert!(g.allows(false, "127.0.0.1:9000", "/hook"));
        assert!(g.allows(false, "127.0.0.1:9000", "/hook/a?x=1"));
        assert!(!g.allows(false, "127.0.0.1:9000", "/hooks"));
        assert!(!g.allows(false, "127.0.0.1:9001", "/hook"));
        assert!(!g.allows(true, "127.0.0.1:9000", "/hook"));
        assert!(!g.allows(false, "127.0.0.2:9000", "/hook"));
        let g = UrlGrant::parse("https://Alerts.example.net/").unwrap();
        assert!(g.allows(true, "alerts.example.net", "/anything"));
        assert!(g.allows(true, "alerts.example.net:443", ""));
        assert!(!g.allows(false, "alerts.example.net", "/"));
        let g = UrlGrant::parse("http://[::1]:8080/x/").unwrap();
        assert!(g.allows(false, "[::1]:8080", "/x/y"));
        assert!(!g.allows(false, "[::1]:8080", "/x"));
        for bad in [
            "ftp://x/",
            "http://",
            "http://u@h/",
            "http://h:99999/",
            "http://h/?q",
        ] {
            assert!(UrlGrant::parse(bad).is_err(), "{bad}");
        }
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
