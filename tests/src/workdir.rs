//! Per-test temporary directories.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A fresh directory `temp_dir()/wasmbgp-e2e-<name>-<pid>` for one test's
/// configs, sockets, pid files and logs.
///
/// It is removed on drop when the test passes, and kept (its path printed)
/// when the thread is panicking, so the daemon logs can be inspected.
#[derive(Debug)]
pub struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    /// Creates (or empties and recreates) the directory for test `name`.
    pub fn new(name: &str) -> Result<Self> {
        let path = std::env::temp_dir().join(format!("wasmbgp-e2e-{name}-{}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("cannot clear {}", path.display()))?;
        }
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self { path })
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates (if needed) and returns the subdirectory `name`.
    pub fn subdir(&self, name: &str) -> Result<PathBuf> {
        let dir = self.path.join(name);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(dir)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("WASMBGP_E2E_KEEP").is_some() {
            eprintln!("keeping test directory {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Runs `body` in a fresh [`WorkDir`] for test `test`; an error fails the test with the
/// directory kept (configs and daemon logs). Prints how long it took.
pub fn run_in_workdir(test: &str, body: impl FnOnce(&WorkDir) -> Result<()>) {
    let started = std::time::Instant::now();
    let work = WorkDir::new(test).expect("work directory");
    match body(&work) {
        Ok(()) => crate::step(test, format!("passed in {:.1?}", started.elapsed())),
        Err(e) => panic!("[{test}] failed after {:.1?}: {e:#}", started.elapsed()),
    }
}
