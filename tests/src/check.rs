//! `wasmbgp check` through the real binary, for the config tests: its exit code and
//! output, and where in a config a diagnostic must point.

use std::path::Path;
use std::process::Command;

use crate::wasmbgp::binary;

/// Runs `wasmbgp check` on `config` (written to `dir/wasmbgp.toml`); returns its exit
/// code and output (stdout then stderr) with the config's path replaced by `CONFIG`.
pub fn check(dir: &Path, config: &str) -> (Option<i32>, String) {
    let path = dir.join("wasmbgp.toml");
    std::fs::write(&path, config).expect("write config");
    let out = Command::new(binary().expect("wasmbgp binary"))
        .arg("check")
        .arg(&path)
        .output()
        .expect("run wasmbgp check");
    let text = String::from_utf8_lossy(&out.stdout).replace(&path.display().to_string(), "CONFIG")
        + &String::from_utf8_lossy(&out.stderr).replace(&path.display().to_string(), "CONFIG");
    (out.status.code(), text)
}

/// `CONFIG:LINE:COL` of the first occurrence of `needle` in `config` (1-based, columns
/// in characters).
pub fn position(config: &str, needle: &str) -> String {
    for (i, line) in config.lines().enumerate() {
        if let Some(at) = line.find(needle) {
            return format!("CONFIG:{}:{}", i + 1, line[..at].chars().count() + 1);
        }
    }
    panic!("{needle:?} not in the config");
}
