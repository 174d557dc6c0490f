//! Network namespaces a test creates for itself (`ip netns add`), wired with veth pairs
//! created directly inside them, and removed when the test ends, passing or failing.
//!
//! A [`Netns`] is named `wbgp-<pid>-<n>-<tag>` (unique per test process and per
//! namespace); dropping it runs `ip netns del`. Veth ends are created inside their
//! namespaces (`ip -n A link add X type veth peer name Y netns B`), so their names only
//! need to be unique there and nothing appears in the host's namespace. Daemons run
//! inside with `ip netns exec NAME PROGRAM ...` ([`Netns::prefix`]), which execs the
//! program: the process started is the daemon itself (its pid, its process group).
//! Unix sockets (control sockets of BIRD and wasmbgp) are files, reachable from the
//! host's namespace as from any other.
//!
//! A test process killed before its guards run leaves its namespaces behind: the first
//! [`Netns::create`] of a later test process deletes the `wbgp-<pid>-...` namespaces
//! whose process no longer exists.

use std::process::Command;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result, bail};

use crate::run_command;

/// The prefix of every namespace name.
const PREFIX: &str = "wbgp-";

/// A network namespace, deleted on drop (also when the test panics).
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `wbgp-<pid>-<n>-<tag>` with its loopback up, and IPv6 duplicate address
    /// detection off (addresses are usable at once; a test's addresses are unique).
    pub fn create(tag: &str) -> Result<Self> {
        static SWEEP: Once = Once::new();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        SWEEP.call_once(remove_stale);
        let name = format!(
            "{PREFIX}{}-{}-{tag}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        run_command(Command::new("ip").args(["netns", "add", &name]))
            .with_context(|| format!("cannot create network namespace {name}"))?;
        // From here on the guard deletes it, whatever fails next.
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        for key in [
            "net.ipv6.conf.all.accept_dad",
            "net.ipv6.conf.default.accept_dad",
        ] {
            ns.sysctl(key, "0")?;
        }
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip netns exec NAME`: put before a program and its arguments to run it inside.
    pub fn prefix(&self) -> Vec<String> {
        ["ip", "netns", "exec", &self.name]
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// A command running `program` inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// `ip -n NAME ARGS...`, which must succeed.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        run_command(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// Sets the sysctl `key` of this namespace to `value`.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        run_command(
            self.command("sysctl")
                .arg("-q")
                .arg("-w")
                .arg(format!("{key}={value}")),
        )
        .map(|_| ())
    }

    /// Adds `cidr` (such as `10.56.1.1/24` or `fd00:56:1::1/64`) to `device` (IPv6
    /// addresses without duplicate address detection).
    pub fn add_address(&self, device: &str, cidr: &str) -> Result<()> {
        let mut args = vec!["addr", "add", cidr, "dev", device];
        if cidr.contains(':') {
            args.push("nodad");
        }
        self.ip(&args).map(|_| ())
    }

    /// Adds the route `prefix via gateway`.
    pub fn add_route(&self, prefix: &str, gateway: &str) -> Result<()> {
        self.ip(&["route", "add", prefix, "via", gateway])
            .map(|_| ())
    }

    /// Turns IPv4 and IPv6 forwarding on in this namespace (a router).
    pub fn forward(&self) -> Result<()> {
        self.sysctl("net.ipv4.ip_forward", "1")?;
        self.sysctl("net.ipv6.conf.all.forwarding", "1")
    }

    /// The `TcpExt` counter `name` of this namespace (such as `TCPMinTTLDrop`).
    pub fn tcp_ext(&self, name: &str) -> Result<u64> {
        let text = run_command(self.command("cat").arg("/proc/net/netstat"))?;
        parse_tcp_ext(&text, name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(error) = run_command(Command::new("ip").args(["netns", "del", &self.name])) {
            eprintln!("cannot delete network namespace {}: {error:#}", self.name);
        }
    }
}

/// A veth pair: `a_dev` in `a`, `b_dev` in `b`, both up.
pub fn veth(a: &Netns, a_dev: &str, b: &Netns, b_dev: &str) -> Result<()> {
    a.ip(&[
        "link", "add", a_dev, "type", "veth", "peer", "name", b_dev, "netns", &b.name,
    ])
    .with_context(|| format!("cannot create veth {}:{a_dev} - {}:{b_dev}", a.name, b.name))?;
    a.ip(&["link", "set", a_dev, "up"])?;
    b.ip(&["link", "set", b_dev, "up"])?;
    Ok(())
}

/// The `TcpExt` counter `name` of the namespace this process runs in (the host's, for
/// tests on loopback).
pub fn host_tcp_ext(name: &str) -> Result<u64> {
    let text =
        std::fs::read_to_string("/proc/net/netstat").context("cannot read /proc/net/netstat")?;
    parse_tcp_ext(&text, name)
}

/// The counter `name` of the `TcpExt:` lines (a header line, then a value line) of a
/// `/proc/net/netstat`.
pub fn parse_tcp_ext(text: &str, name: &str) -> Result<u64> {
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        bail!("no TcpExt lines in /proc/net/netstat");
    };
    let at = names
        .split_whitespace()
        .position(|n| n == name)
        .with_context(|| format!("no TcpExt counter {name}"))?;
    values
        .split_whitespace()
        .nth(at)
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("bad TcpExt value for {name} in {values:?}"))
}

/// Deletes the namespaces `wbgp-<pid>-...` of test processes that no longer exist.
fn remove_stale() {
    let Ok(list) = run_command(Command::new("ip").args(["netns", "list"])) else {
        return;
    };
    for line in list.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: kill(2) with signal 0 only asks whether the process exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            eprintln!("deleting network namespace {name} left by process {pid}");
            let _ = run_command(Command::new("ip").args(["netns", "del", name]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tcp_ext_counters() {
        let text = "TcpExt: SyncookiesSent TCPMinTTLDrop TCPMD5Failure\nTcpExt: 0 17 3\nIpExt: InNoRoutes\nIpExt: 5\n";
        assert_eq!(parse_tcp_ext(text, "TCPMinTTLDrop").unwrap(), 17);
        assert_eq!(parse_tcp_ext(text, "TCPMD5Failure").unwrap(), 3);
        assert!(parse_tcp_ext(text, "Nope").is_err());
        assert!(parse_tcp_ext("IpExt: a\nIpExt: 1\n", "a").is_err());
    }
}
