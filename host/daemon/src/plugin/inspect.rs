//! `wasmbgp plugin inspect`: what a component is and whether this host runs it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

/// This host's WIT package.
const HOST_PACKAGE: &str = "wasmbgp:plugin@0.2.0";

/// `wasmbgp plugin inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// The component (`.wasm`).
    pub component: PathBuf,
}

/// Prints the component's world, size, imports and exports; exit 1 when this host
/// would refuse it.
pub fn run(args: InspectArgs, cache_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let runtime = super::runtime(cache_dir)?;
    let found = match runtime.inspect(&args.component) {
        Ok(found) => found,
        Err(e) => {
            println!(
                "{}: not a component this host can load: {e:#}",
                args.component.display()
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    println!("component: {}", args.component.display());
    println!(
        "size: {} bytes ({:.1} KiB)",
        found.size,
        found.size as f64 / 1024.0
    );
    match found.world {
        Some(world) => println!("world: {world}"),
        None => println!("world: none of this host's"),
    }
    println!("host WIT package: {HOST_PACKAGE}");
    for (kind, names) in [("import", &found.imports), ("export", &found.exports)] {
        for name in names {
            println!("{kind}: {name}");
        }
    }
    // A component built against another version of the package names it in every
    // wasmbgp interface it uses.
    let other_versions: Vec<&str> = found
        .imports
        .iter()
        .chain(&found.exports)
        .filter(|n| n.starts_with("wasmbgp:plugin/") && !n.ends_with("@0.2.0"))
        .map(String::as_str)
        .collect();
    if !other_versions.is_empty() {
        println!(
            "WIT: built against another wasmbgp:plugin version ({}); this host has {HOST_PACKAGE}",
            other_versions.join(", ")
        );
    }
    match found.fits {
        Ok(()) => {
            println!("fits: yes");
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            println!("fits: no: {why}");
            Ok(ExitCode::FAILURE)
        }
    }
}
