//! Interop with FRR (`bgpd` without zebra, `vtysh`).

use wasmbgp_e2e::peers::Peer;
use wasmbgp_e2e::peers::PeerSpec;
use wasmbgp_e2e::peers::frr::Frr;
use wasmbgp_e2e::scenario::{Block, run_passive_keepalive, run_peer_selftest, run_wasmbgp_interop};

fn frr(spec: PeerSpec) -> Box<dyn Peer> {
    Box::new(Frr::new(spec))
}

/// The FRR driver works against BIRD (no wasmbgp involved).
#[test]
fn frr_driver_selftest() {
    run_peer_selftest("frr-selftest", Block(14), frr);
}

/// wasmbgp ↔ FRR over eBGP: the full "Must show 2" scenario.
#[test]
fn wasmbgp_frr_ebgp() {
    run_wasmbgp_interop("frr-ebgp", Block(4), false, frr);
}

/// wasmbgp passive (the peer connects), 3 s hold time: no flap for 9 s.
#[test]
fn wasmbgp_frr_passive_keepalive() {
    run_passive_keepalive("frr-passive", Block(8), frr);
}
