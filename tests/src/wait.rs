//! Bounded polling.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Interval between two polls.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Default bound for a session to come up or a table to converge.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Polls `probe` every [`POLL_INTERVAL`] until it returns `Ok(Some(value))`
/// or `timeout` elapses.
///
/// Errors from `probe` are not fatal (a daemon may still be starting); the
/// last one, or the last `Ok(None)`, is reported in the timeout error with
/// `what` describing the awaited condition.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let start = Instant::now();
    let mut last_error = None;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        match probe() {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => last_error = Some(error),
        }
        if start.elapsed() >= timeout {
            match last_error {
                Some(error) => bail!(
                    "timed out after {:?} ({attempts} attempts) waiting for {what}; last error: {error:#}",
                    timeout
                ),
                None => bail!(
                    "timed out after {:?} ({attempts} attempts) waiting for {what}",
                    timeout
                ),
            }
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Like [`wait_for`] for a boolean condition.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<bool>,
) -> Result<()> {
    wait_for(what, timeout, || Ok(probe()?.then_some(())))
}

/// Listens on `addr`, retrying every 50 ms for up to 5 s while the address is busy (a
/// previous listener of the test, or of another, still closing).
pub fn bind_retrying(addr: SocketAddr) -> Result<TcpListener> {
    let started = Instant::now();
    loop {
        match TcpListener::bind(addr) {
            Ok(listener) => return Ok(listener),
            Err(_) if started.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e).with_context(|| format!("cannot listen on {addr}")),
        }
    }
}
