//! Policy plugins end to end against GoBGP (`gobgpd`, `gobgp`): the export
//! chain of `policy_bird.rs` (as-path-filter → community-tagger → fixture
//! MED), checked in GoBGP's RIB. Block 210.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use anyhow::{Result, ensure};
use wasmbgp_e2e::peers::gobgp::GoBgp;
use wasmbgp_e2e::peers::{Peer, PeerSpec, Remote};
use wasmbgp_e2e::plugin_support::{BIRD_AS, PluginBlock, PluginSpeaker, WASMBGP_AS, wait_fast};
use wasmbgp_e2e::policy_support::{PolicyPlugin, adj_rib, export_chain, tail};
use wasmbgp_e2e::step;
use wasmbgp_e2e::workdir::WorkDir;

/// GoBGP drops IPv4 routes whose next hop is a loopback address: the
/// routes carry a documentation next hop instead of self.
const NEXT_HOP: &str = "192.0.2.1";

#[test]
fn policy_export_chain_gobgp() {
    let test = "policy-export-chain-gobgp";
    let block = PluginBlock(210);
    let dir = WorkDir::new(test).expect("workdir");
    let (gobgp_addr, wasmbgp_addr) = (block.addr(2), block.addr(1));
    let mut gobgp = GoBgp::new(PeerSpec {
        dir: dir.subdir("gobgp").unwrap(),
        address: gobgp_addr,
        port: block.port(0),
        asn: BIRD_AS,
        remote: Remote {
            address: wasmbgp_addr,
            port: block.port(1),
            asn: WASMBGP_AS,
        },
        hold_time: 30,
        next_hop4: Ipv4Addr::new(192, 0, 2, 2),
        next_hop6: Ipv6Addr::LOCALHOST,
        originate: Vec::new(),
        api_port: block.port(2),
    });
    gobgp.start().expect("gobgpd");
    let mut config =
        PluginSpeaker::base_config(wasmbgp_addr, block.port(1), gobgp_addr, block.port(0));
    config.neighbors[0].export_policy = export_chain::chain();
    config.routes = export_chain::routes(Some(NEXT_HOP));
    let plugins: String = export_chain::plugins()
        .expect("components")
        .iter()
        .map(PolicyPlugin::render)
        .collect();
    let speaker = PluginSpeaker::start_with(&dir.subdir("wasmbgp").unwrap(), &config, &plugins)
        .expect("wasmbgp");
    let result = (|| -> Result<()> {
        gobgp.wait_established(Duration::from_secs(30))?;
        wait_fast(
            "wasmbgp session Established",
            Duration::from_millis(100),
            Duration::from_secs(30),
            || Ok(speaker.session()?.0 == "established"),
        )?;
        let sent = export_chain::cases().iter().filter(|c| c.sent).count();
        wait_fast(
            "GoBGP to hold the routes let through",
            Duration::from_millis(100),
            Duration::from_secs(20),
            || Ok(gobgp.received_routes()?.len() == sent),
        )?;
        std::thread::sleep(Duration::from_millis(500));
        let received = gobgp.received_routes()?;
        step(test, format!("GoBGP holds {received:?}"));
        export_chain::check_peer(&received)?;
        for r in &received {
            ensure!(r.next_hop.as_deref() == Some(NEXT_HOP), "{r:?}");
        }
        let neighbor = gobgp_addr.to_string();
        export_chain::check_tables(
            &adj_rib(&speaker, "adj-rib-out", &neighbor, true)?,
            &adj_rib(&speaker, "adj-rib-out", &neighbor, false)?,
        )?;
        let k = export_chain::check_counters(&speaker)?;
        ensure!(
            k == 1,
            "the chain judged the routes {k} times for one session"
        );
        let (state, count) = speaker.session()?;
        ensure!(
            state == "established" && count == 1 && gobgp.session_established()?,
            "session disturbed: wasmbgp {state}, established-count {count}"
        );
        Ok(())
    })();
    if let Err(e) = result {
        eprintln!(
            "[{test}] --- gobgpd log ---\n{}",
            tail(&gobgp.log().unwrap_or_default(), 40)
        );
        eprintln!("[{test}] --- wasmbgp log ---\n{}", tail(&speaker.log(), 60));
        panic!("[{test}] {e:#}");
    }
}
