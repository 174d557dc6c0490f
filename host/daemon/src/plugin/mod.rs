//! `wasmbgp plugin`: tools for plugin authors, no BGP peer needed.
//!
//! - [`new`]: `plugin new NAME --world W --lang L` writes a project that builds and
//!   passes its own test as generated;
//! - [`test`]: `plugin test COMPONENT --world W` runs a component the way the daemon
//!   does (same runtime, same grants, same limits) and prints what it decided: each
//!   health verdict, each policy verdict with the route it produces, each exporter call;
//! - [`inspect`]: `plugin inspect COMPONENT`: its world, imports, exports, size and
//!   whether it fits this host's WIT package.

pub mod events_file;
pub mod exabgp_json;
pub mod inspect;
pub mod new;
pub mod test;

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use wasmbgp_runtime::World;

/// The `plugin` subcommands.
#[derive(Subcommand)]
pub enum PluginCmd {
    /// Write a new plugin project: `build.sh` builds it, `test.sh` runs `plugin test` on it.
    New(new::NewArgs),
    /// Run a component without BGP, as the daemon would, and print its verdicts.
    Test(test::TestArgs),
    /// Show a component's world, imports and exports, and whether this host runs it.
    Inspect(inspect::InspectArgs),
}

/// A WIT world, as the command line names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WorldArg {
    /// Says whether a service is healthy (announces its routes while it is).
    Healthcheck,
    /// Accepts, rejects or rewrites routes received or about to be sent.
    Policy,
    /// Receives session and route events.
    Exporter,
}

impl From<WorldArg> for World {
    fn from(w: WorldArg) -> World {
        match w {
            WorldArg::Healthcheck => World::Healthcheck,
            WorldArg::Policy => World::Policy,
            WorldArg::Exporter => World::Exporter,
        }
    }
}

/// Runs a `plugin` subcommand; the process' exit status.
pub fn run(cmd: PluginCmd, cache_dir: Option<PathBuf>) -> std::process::ExitCode {
    let result = match cmd {
        PluginCmd::New(args) => new::run(args),
        PluginCmd::Test(args) => test::run(args, cache_dir),
        PluginCmd::Inspect(args) => inspect::run(args, cache_dir),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wasmbgp plugin: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// The plugin runtime with its on-disk cache of compiled components: `cache_dir`, else
/// $WASMBGP_CACHE_DIR, else $XDG_CACHE_HOME/wasmbgp, else ~/.cache/wasmbgp.
pub fn runtime(cache_dir: Option<PathBuf>) -> anyhow::Result<wasmbgp_runtime::Runtime> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let dir = cache_dir
        .or_else(|| env("WASMBGP_CACHE_DIR"))
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("wasmbgp")))
        .or_else(|| env("HOME").map(|d| d.join(".cache/wasmbgp")))
        .unwrap_or_else(|| std::env::temp_dir().join("wasmbgp-cache"));
    wasmbgp_runtime::Runtime::with_options(wasmbgp_runtime::RuntimeOptions {
        cache_dir: Some(dir),
        ..Default::default()
    })
}
