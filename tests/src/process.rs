//! Daemon processes and helper threads that never outlive their test.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A long-running daemon started in its own process group.
///
/// Dropping it sends SIGKILL to the whole group (the daemon and any helper it
/// spawned, such as ExaBGP's API process) and reaps the child, also when the
/// test panics.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    /// Process group id (the daemon's pid); kept after reaping so that
    /// leftover helpers in the group can still be killed.
    pgid: libc::pid_t,
    child: Option<Child>,
}

impl Daemon {
    /// Spawns `cmd` with stdin closed and stdout+stderr appended to `output`.
    pub fn spawn(name: &str, mut cmd: Command, output: &Path) -> Result<Self> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(output)
            .with_context(|| format!("cannot open {}", output.display()))?;
        let log_err = log
            .try_clone()
            .with_context(|| format!("cannot duplicate {}", output.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name}: {cmd:?}"))?;
        Ok(Self {
            name: name.to_owned(),
            pgid: child.id() as libc::pid_t,
            child: Some(child),
        })
    }

    /// The daemon's pid (also its process group id), if it is still ours.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running (not exited, not reaped).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Sends `signal` to the daemon's process group.
    pub fn signal_group(&self, signal: libc::c_int) -> Result<()> {
        // SAFETY: kill(2) with a negative pid signals our own child's group.
        let rc = unsafe { libc::kill(-self.pgid, signal) };
        if rc != 0 {
            let error = std::io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::ESRCH) {
                return Err(error).with_context(|| format!("cannot signal {}", self.name));
            }
        }
        Ok(())
    }

    /// Sends `signal` to the daemon process only (not its group).
    pub fn signal(&self, signal: libc::c_int) -> Result<()> {
        let Some(pid) = self.pid() else {
            bail!("{} is not running", self.name);
        };
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("cannot signal {}", self.name));
        }
        Ok(())
    }

    /// Waits up to `timeout` for the daemon to exit and returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let name = self.name.clone();
        let Some(child) = self.child.as_mut() else {
            bail!("{name} was already reaped");
        };
        let start = Instant::now();
        loop {
            if let Some(status) = child
                .try_wait()
                .with_context(|| format!("cannot wait for {name}"))?
            {
                self.child = None;
                return Ok(status);
            }
            if start.elapsed() >= timeout {
                bail!("{name} did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILLs the whole process group and reaps the daemon.
    pub fn kill(&mut self) -> Result<()> {
        self.signal_group(libc::SIGKILL)?;
        if self.child.is_none() {
            return Ok(());
        }
        self.wait_exit(Duration::from_secs(10)).map(|_| ())
    }

    /// Sends SIGTERM and waits up to `timeout`; SIGKILLs the group if the
    /// daemon is still running afterwards.
    pub fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus> {
        self.signal(libc::SIGTERM)?;
        match self.wait_exit(timeout) {
            Ok(status) => {
                // Helpers may outlive their parent: clear the group as well.
                let _ = self.signal_group(libc::SIGKILL);
                Ok(status)
            }
            Err(error) => {
                let _ = self.kill();
                Err(error)
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group of our own child.
        unsafe {
            libc::kill(-self.pgid, libc::SIGKILL);
        }
        if let Some(child) = self.child.as_mut() {
            let _ = child.wait();
        }
    }
}

/// A helper thread (a listener, a sampler) that runs until it is stopped: its body is
/// given a flag to poll, which [`Worker::stop`] (or dropping the worker) raises before
/// joining the thread.
#[derive(Debug)]
pub struct Worker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Runs `body` in a new thread; `body` must return soon after the flag it is given
    /// is raised.
    pub fn spawn(body: impl FnOnce(&AtomicBool) + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || body(&stop))
        };
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Raises the flag and waits for the thread to end (at once if it already has).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}
