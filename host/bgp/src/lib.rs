//! The BGP-4 protocol core of wasmbgp, free of I/O.
//!
//! - [`packet`]: where bytes become messages and back (RFC 4271, 4760, 6793, 2918, 4724,
//!   1997, 8092, 4360, 7606).
//! - [`session`]: where a session decides: the RFC 4271 §8 state machine, fed events and
//!   returning actions, with no sockets or clocks of its own.
//! - [`rib`]: the Adj-RIB-Out each neighbor is sent (with the source of every route) and the
//!   Adj-RIB-In it sent us.
//! - [`words`]: ExaBGP's route syntax (`100.10.0.0/24 next-hop self med 100`), shared by the
//!   config, the control socket and plugins.
//! - [`text`]: quoting outside input in error messages.
//!
//! Nothing here depends on tokio or wasmtime, so it builds, tests and fuzzes fast.

pub mod packet;
pub mod rib;
pub mod session;
pub mod text;
pub mod words;

pub use packet::attributes::{AsPath, AsSegment, NextHop, Origin, PathAttributes};
pub use packet::prefix::{Family, Ipv4Prefix, Ipv6Prefix, Prefix};
