//! The wasmbgp daemon as a library: the `wasmbgp` binary (`main.rs`) is a thin command
//! line over it, and the fuzz targets (`fuzz/`) reach the config loader and the control
//! command parser through it.
//!
//! - [`config`]: the TOML config, with `FILE:LINE:COL` diagnostics;
//! - [`ctl`]: the control socket (commands, server, client, JSON shapes);
//! - `tasks`: where I/O happens: neighbor tasks, the speaker, listeners, plugins (with
//!   the `engine` feature, on by default);
//! - [`metrics`]: the Prometheus registry;
//! - `plugin`: `wasmbgp plugin new|test|inspect`, the plugin author's tools (with
//!   `engine`).

pub mod config;
pub mod ctl;
pub mod metrics;
#[cfg(feature = "engine")]
pub mod plugin;
#[cfg(feature = "engine")]
pub mod tasks;
