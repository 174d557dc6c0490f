//! `wasmbgp plugin new NAME --world W --lang L` for the 12 combinations of world
//! (healthcheck, policy, exporter) and language (rust, python, js, c): every generated
//! project builds and passes its own `./test.sh` as generated, which runs
//! `wasmbgp plugin test` on the component it built.
//!
//! One test per language, running its three worlds in turn: the first one installs the
//! language's toolchain (into `target/tools`, shared with `scripts/build-plugins.sh`,
//! so a machine installs it once), the others reuse it; the Rust projects share a
//! cargo target directory (`target/plugin-new/cargo`), so the SDK is compiled once.
//! No BGP daemon is involved. A failing project's directory is kept and its output
//! printed.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use wasmbgp_e2e::workdir::WorkDir;
use wasmbgp_e2e::{step, workspace_root};

const WORLDS: [&str; 3] = ["healthcheck", "policy", "exporter"];

/// Installing a toolchain from scratch (the C one compiles wit-bindgen and wasm-tools)
/// on a busy 2-core machine, then building: generous, but bounded.
const TEST_SH_TIMEOUT: Duration = Duration::from_secs(45 * 60);

#[test]
fn plugin_new_rust() {
    new_projects_pass_their_tests("rust");
}

#[test]
fn plugin_new_python() {
    new_projects_pass_their_tests("python");
}

#[test]
fn plugin_new_js() {
    new_projects_pass_their_tests("js");
}

#[test]
fn plugin_new_c() {
    new_projects_pass_their_tests("c");
}

/// `plugin new` then `./test.sh` for each world in `lang`; every world is tried, and
/// the test fails with the output of those that failed.
fn new_projects_pass_their_tests(lang: &str) {
    let test = format!("plugin-new-{lang}");
    let work = WorkDir::new(&test).expect("work directory");
    let mut failures = Vec::new();
    for world in WORLDS {
        let started = Instant::now();
        match new_and_test(work.path(), world, lang) {
            Ok(()) => step(
                &test,
                format!("{world}: passed in {:.1?}", started.elapsed()),
            ),
            Err(e) => {
                step(
                    &test,
                    format!("{world}: FAILED after {:.1?}", started.elapsed()),
                );
                failures.push(format!("--- {world} ({lang}) ---\n{e:#}"));
            }
        }
    }
    if !failures.is_empty() {
        // Panicking keeps the work directory (its path is printed).
        panic!(
            "[{test}] {} of {} projects failed:\n{}",
            failures.len(),
            WORLDS.len(),
            failures.join("\n")
        );
    }
}

fn new_and_test(work: &Path, world: &str, lang: &str) -> Result<()> {
    let wasmbgp = wasmbgp_e2e::wasmbgp::binary()?;
    let root = workspace_root();
    let name = format!("my-{world}");
    let dir = work.join(&name);

    let output = Command::new(&wasmbgp)
        .args([
            "plugin", "new", &name, "--world", world, "--lang", lang, "--dir",
        ])
        .arg(&dir)
        .current_dir(work)
        .output()
        .context("cannot run wasmbgp plugin new")?;
    if !output.status.success() {
        bail!(
            "wasmbgp plugin new failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    for file in ["README.md", "build.sh", "test.sh", "toolchain.sh"] {
        if !dir.join(file).is_file() {
            bail!("plugin new wrote no {file} in {}", dir.display());
        }
    }

    let log_path = dir.join("test.log");
    let log = File::create(&log_path).context("cannot create test.log")?;
    let mut cmd = Command::new(dir.join("test.sh"));
    cmd.current_dir(&dir)
        .env("WASMBGP_TOOLS", root.join("target/tools"))
        .env("CARGO_TARGET_DIR", root.join("target/plugin-new/cargo"))
        .env("WASMBGP_CACHE_DIR", root.join("target/plugin-new/cache"))
        // test.sh must find the wasmbgp that generated it by itself.
        .env_remove("WASMBGP")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log));
    let status = run_with_timeout(&mut cmd, TEST_SH_TIMEOUT)?;
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    match status {
        Some(status) if status.success() => {
            if !output.contains("test.sh: ok") {
                bail!("./test.sh exited 0 without saying ok:\n{output}");
            }
            Ok(())
        }
        Some(status) => bail!(
            "./test.sh in {} failed ({status}):\n{output}",
            dir.display()
        ),
        None => bail!(
            "./test.sh in {} did not finish within {TEST_SH_TIMEOUT:?}:\n{output}",
            dir.display()
        ),
    }
}

/// Runs `cmd` in a process group of its own; `None` when it was killed (with its
/// children, such as test.sh's listener) after `timeout`.
fn run_with_timeout(
    cmd: &mut Command,
    timeout: Duration,
) -> Result<Option<std::process::ExitStatus>> {
    use std::os::unix::process::CommandExt as _;
    let mut child = cmd
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if started.elapsed() > timeout {
            let pgid = child.id() as i32;
            // SAFETY: kill(2) on the process group this function created.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
