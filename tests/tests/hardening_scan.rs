//! A scan of the BGP port does not flood the log (the hardening issue's "Logs under a
//! scan"): 500 connections to wasmbgp's listener from 100 loopback addresses that are
//! not neighbors are all refused and counted (`wasmbgp_bgp_unknown_peer_connections`),
//! and the log says so in at most two lines (the first refusal, then one line per
//! 10 s interval with the count since).
//!
//! Block 267 ([`LimitBlock`]): wasmbgp on `.1` port 1, its (absent) neighbor `.2`, the
//! scanners `.10` to `.109`.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use socket2::{Domain, Socket, Type};
use wasmbgp_e2e::graceful_support::GrSpeaker;
use wasmbgp_e2e::limits_support::LimitBlock;
use wasmbgp_e2e::policy_support::{metric_value, tail};
use wasmbgp_e2e::step;
use wasmbgp_e2e::wait::wait_until;
use wasmbgp_e2e::workdir::WorkDir;

const BLOCK: LimitBlock = LimitBlock(267);
/// Connections in the scan.
const CONNECTIONS: usize = 500;
/// Distinct source addresses.
const SOURCES: u8 = 100;

/// Connects from `source` to `target` and closes.
fn connect_from(source: SocketAddr, target: SocketAddr) -> Result<()> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&source.into())?;
    socket
        .connect_timeout(&target.into(), Duration::from_secs(2))
        .with_context(|| format!("connect {source} → {target}"))?;
    drop(TcpStream::from(socket));
    Ok(())
}

#[test]
fn a_scan_is_counted_and_logged_in_two_lines() {
    let test = "hardening_scan";
    let dir = WorkDir::new(test).expect("work directory");
    let speaker = GrSpeaker::start(&dir.subdir("wasmbgp").expect("dir"), BLOCK, &[], "")
        .expect("wasmbgp starts");
    let result = (|| -> Result<()> {
        let target = SocketAddr::new(BLOCK.addr(1).into(), BLOCK.port(1));
        for i in 0..CONNECTIONS {
            let host = 10 + (i % usize::from(SOURCES)) as u8;
            connect_from(SocketAddr::new(BLOCK.addr(host).into(), 0), target)?;
        }
        let refused = || -> Result<f64> {
            let metrics = speaker.ctl(&["show", "metrics"])?;
            metric_value(&metrics, "wasmbgp_bgp_unknown_peer_connections_total", &[])
                .context("no wasmbgp_bgp_unknown_peer_connections_total in show metrics")
        };
        wait_until(
            "wasmbgp to count the 500 refused connections",
            Duration::from_secs(10),
            || Ok(refused()? == CONNECTIONS as f64),
        )?;
        let log = speaker.log();
        let lines = log
            .lines()
            .filter(|l| l.contains("refused a connection from an unknown peer"))
            .count();
        ensure!(
            (1..=2).contains(&lines),
            "{CONNECTIONS} refused connections gave {lines} log lines"
        );
        let (state, ..) = speaker.neighbor()?;
        step(
            test,
            format!(
                "{CONNECTIONS} connections from {SOURCES} addresses: counted {CONNECTIONS}, logged in {lines} line(s); the neighbor is {state}"
            ),
        );
        Ok(())
    })();
    if let Err(e) = result {
        eprintln!(
            "[{test}] --- wasmbgp log tail ---\n{}",
            tail(&speaker.log(), 40)
        );
        panic!("[{test}] {e:#}");
    }
}
