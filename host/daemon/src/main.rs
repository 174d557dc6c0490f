//! `wasmbgp`: run the speaker, check a config, or talk to a running daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use wasmbgp::{config, ctl, plugin, tasks};

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
        /// Where compiled plugins are cached (default: $WASMBGP_CACHE_DIR, else
        /// $XDG_CACHE_HOME/wasmbgp, else ~/.cache/wasmbgp).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
    /// Validate a config: exit 0, or print `FILE:LINE:COL: reason` per problem and exit 1.
    Check {
        /// The TOML config file.
        config: PathBuf,
        /// Where compiled plugins are cached (see `run`).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
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
    /// Plugin author tools: write a new plugin, test or inspect a component.
    Plugin {
        #[command(subcommand)]
        command: plugin::PluginCmd,
        /// Where compiled plugins are cached (see `run`).
        #[arg(long, global = true)]
        cache_dir: Option<PathBuf>,
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
            cache_dir,
        } => {
            init_logging(log_format, &log_level);
            let plugins = match plugin::runtime(cache_dir) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("wasmbgp: cannot start the plugin runtime: {e:#}");
                    return ExitCode::FAILURE;
                }
            };
            let config_path = config;
            let config = match load(&config_path, &plugins) {
                Ok(c) => c,
                Err(d) => {
                    eprintln!("{d}");
                    return ExitCode::FAILURE;
                }
            };
            // Parsing the config (a TOML document of every table) leaves its memory free
            // but resident in glibc's heap, between the routes it made: with 100,000
            // [[flow]] tables, 110 MiB (the FlowSpec benchmark, bench/README.md).
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            // SAFETY: malloc_trim only returns free heap pages to the kernel.
            unsafe {
                libc::malloc_trim(0);
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build();
            let result = match runtime {
                Ok(rt) => {
                    let result = rt.block_on(tasks::run(config, config_path, plugins));
                    // Tasks still running (after a critical task died) must not hold the
                    // exit up: the service manager is waiting to restart us.
                    rt.shutdown_timeout(std::time::Duration::from_millis(500));
                    result
                }
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
        Cmd::Check { config, cache_dir } => match plugin::runtime(cache_dir)
            .map_err(|e| config::Diagnostics {
                file: config.display().to_string(),
                items: vec![config::Diagnostic {
                    line: 1,
                    col: 1,
                    message: format!("plugin runtime: {e:#}"),
                }],
            })
            .and_then(|rt| load(&config, &rt))
        {
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
        Cmd::Plugin { command, cache_dir } => {
            // The plugin's own log lines (and the runtime's) on standard error.
            // The plugin's own log lines and the runtime's warnings (a denied probe), plain
            // unless on a terminal: a plugin's CI reads them.
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(
                    "warn,wasmbgp_runtime::host::log=trace",
                ))
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .without_time()
                .init();
            plugin::run(command, cache_dir)
        }
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

/// Loads a config, checking each plugin's component with the plugin runtime (which
/// compiles it once, into the cache `run` then uses).
fn load(
    path: &std::path::Path,
    runtime: &wasmbgp_runtime::Runtime,
) -> Result<config::Config, config::Diagnostics> {
    config::Config::load_with(path, &|spec| runtime.check_init(spec))
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
