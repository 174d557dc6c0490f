//! `wasmbgp check` through the real binary, for the config tests: its exit code and
//! output, and where in a config a diagnostic must point.

use std::path::Path;
use std::process::{Command, Output};

use anyhow::{Context, Result};

use crate::wasmbgp::binary;

/// `wasmbgp check PATH`, whatever its exit status.
pub fn check_file(path: &Path) -> Result<Output> {
    Command::new(binary()?)
        .arg("check")
        .arg(path)
        .output()
        .context("cannot run wasmbgp check")
}

/// Runs `wasmbgp check` on `config` (written to `dir/wasmbgp.toml`); returns its exit
/// code and output (stdout then stderr) with the config's path replaced by `CONFIG`.
pub fn check(dir: &Path, config: &str) -> (Option<i32>, String) {
    let path = dir.join("wasmbgp.toml");
    std::fs::write(&path, config).expect("write config");
    let out = check_file(&path).expect("run wasmbgp check");
    let text = String::from_utf8_lossy(&out.stdout).replace(&path.display().to_string(), "CONFIG")
        + &String::from_utf8_lossy(&out.stderr).replace(&path.display().to_string(), "CONFIG");
    (out.status.code(), text)
}

/// `(LINE, COL)` of the first occurrence of `needle` in `config` (1-based, columns in
/// characters).
pub fn line_col(config: &str, needle: &str) -> Option<(usize, usize)> {
    config.lines().enumerate().find_map(|(i, line)| {
        line.find(needle)
            .map(|at| (i + 1, line[..at].chars().count() + 1))
    })
}

/// `CONFIG:LINE:COL` of the first occurrence of `needle` in `config` (1-based, columns
/// in characters).
pub fn position(config: &str, needle: &str) -> String {
    match line_col(config, needle) {
        Some((line, col)) => format!("CONFIG:{line}:{col}"),
        None => panic!("{needle:?} not in the config"),
    }
}
