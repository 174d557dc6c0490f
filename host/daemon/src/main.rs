//! `wasmbgp`: run the speaker, check a config, or talk to a running daemon.

mod config;
mod ctl;
mod metrics;
mod tasks;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// A BGP speaker whose API programs are sandboxed WebAssembly components.
#[derive(Parser)]
#[command(name = "wasmbgp", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the speaker in the foreground.
    Run {
        /// The TOML config file.
        config: PathBuf,
        /// Log format.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        /// Log level or tracing filter (e.g. `info`, `debug`, `wasmbgp=debug`).
        #[arg(long, default_value = "info")]
        log_level: String,
    },
    /// Validate a config: exit 0, or print `FILE:LINE:COL: reason` per problem and exit 1.
    Check {
        /// The TOML config file.
        config: PathBuf,
    },
    /// Send a command to the running daemon (`-` reads commands from standard input).
    Ctl {
        /// The daemon's control socket.
        #[arg(long, default_value = config::DEFAULT_SOCKET)]
        socket: PathBuf,
        /// The command, e.g. `show neighbors --json` or `announce route 10.0.0.0/24 next-hop self`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Run {
            config,
            log_format,
            log_level,
        } => {
            init_logging(log_format, &log_level);
            let config = match load(&config) {
                Ok(c) => c,
                Err(d) => {
                    eprintln!("{d}");
                    return ExitCode::FAILURE;
                }
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build();
            let result = match runtime {
                Ok(rt) => rt.block_on(tasks::run(config)),
                Err(e) => Err(e.into()),
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("wasmbgp: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Check { config } => match load(&config) {
            Ok(c) => {
                let routes: usize = c.routes.iter().map(|g| g.routes.len()).sum();
                println!(
                    "{}: ok ({} neighbors, {} routes)",
                    config.display(),
                    c.neighbors.len(),
                    routes
                );
                ExitCode::SUCCESS
            }
            Err(d) => {
                println!("{d}");
                ExitCode::FAILURE
            }
        },
        Cmd::Ctl { socket, command } => {
            let result = if command.len() == 1 && command[0] == "-" {
                ctl::client::run_stream(&socket)
            } else {
                ctl::client::run_one(&socket, &command.join(" "))
            };
            match result {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// Loads a config, checking each plugin's component with a plugin runtime.
fn load(path: &std::path::Path) -> Result<config::Config, config::Diagnostics> {
    let runtime = std::cell::OnceCell::new();
    config::Config::load_with(path, &|spec| {
        let rt = match runtime.get() {
            Some(rt) => rt,
            None => {
                let rt = wasmbgp_runtime::Runtime::new()?;
                runtime.get_or_init(|| rt)
            }
        };
        rt.check(spec)
    })
}

fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
