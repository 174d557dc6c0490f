//! The control socket: ExaBGP's text commands plus `show` commands, one per line.
//!
//! The wire protocol is one request line in, one JSON reply line out
//! (`{"ok":true,"output":"..."}` or `{"ok":false,"error":"..."}`), so a program can pipe
//! thousands of commands and read the answers as a stream.

pub mod client;
pub mod command;
pub mod json;
#[cfg(feature = "engine")]
pub mod server;
