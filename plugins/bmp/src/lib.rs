//! `bmp`: a BMP (RFC 7854) feed of the speaker's sessions and received
//! routes to a collector (`collector` = "IP:PORT", granted in
//! `grants.tcp-out`). See README.md.

mod bgp;
mod feed;
mod link;
mod msg;
mod plugin;

#[cfg(test)]
mod tests;
