//! End-to-end interop harness for wasmbgp.
//!
//! Every test starts real BGP daemons from Debian packages (BIRD 2, GoBGP,
//! FRR's bgpd, ExaBGP) on private loopback addresses with private configs,
//! peers them with `wasmbgp` (or, for driver self-tests, with each other),
//! and checks the routes through each daemon's own tooling.
//!
//! Layout:
//! - [`process`]: spawning daemons in their own process group, killed on drop.
//! - [`workdir`]: per-test temporary directories.
//! - [`wait`]: bounded polling.
//! - [`route`]: the common [`route::Route`] every driver parses into.
//! - [`peers`]: the [`peers::Peer`] trait and one driver per daemon.
//! - [`wasmbgp`]: config writer and driver for our own daemon.
//! - [`scenario`]: the interop checks shared by every `interop_*` test.
//! - [`plugin_support`], [`policy_support`], [`exporter_support`]: the plugin, policy
//!   and exporter tests' rigs; [`check`]: `wasmbgp check` for the config tests.

pub mod check;
pub mod ddos_support;
pub mod detector;
pub mod exporter_support;
pub mod flowspec_support;
pub mod graceful_support;
pub mod limits_support;
pub mod netns;
pub mod peers;
pub mod plugin_support;
pub mod policy_support;
pub mod process;
pub mod queues_support;
pub mod reload_support;
pub mod route;
pub mod scenario;
pub mod wait;
pub mod wasmbgp;
pub mod workdir;

use std::io::Read as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Root of the cargo workspace (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent directory")
        .to_path_buf()
}

/// Runs a short-lived command to completion and returns its stdout.
///
/// Fails with the command line, exit status and stderr when it exits non-zero.
pub fn run_command(cmd: &mut Command) -> Result<String> {
    let output = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !output.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim()
        );
    }
    String::from_utf8(output.stdout).with_context(|| format!("{cmd:?} printed non-UTF-8"))
}

/// Prints a progress line on stderr (shown by nextest for failing tests).
pub fn step(test: &str, message: impl std::fmt::Display) {
    eprintln!("[{test}] {message}");
}

/// Runs `cmd` to completion within `timeout` (killed after it) and returns
/// its stdout; fails on a non-zero exit, with its stderr.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Result<String> {
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    let mut stdout = child.stdout.take().context("no stdout")?;
    let mut stderr = child.stderr.take().context("no stderr")?;
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() >= timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{cmd:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    if !status.success() {
        bail!(
            "{cmd:?} failed ({status}): {}{}",
            String::from_utf8_lossy(&err).trim(),
            String::from_utf8_lossy(&out).trim()
        );
    }
    String::from_utf8(out).with_context(|| format!("{cmd:?} printed non-UTF-8"))
}
