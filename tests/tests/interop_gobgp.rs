//! Interop with GoBGP (`gobgpd`, `gobgp`).

use wasmbgp_e2e::peers::Peer;
use wasmbgp_e2e::peers::PeerSpec;
use wasmbgp_e2e::peers::gobgp::GoBgp;
use wasmbgp_e2e::scenario::{Block, run_passive_keepalive, run_peer_selftest, run_wasmbgp_interop};

fn gobgp(spec: PeerSpec) -> Box<dyn Peer> {
    Box::new(GoBgp::new(spec))
}

/// The GoBGP driver works against BIRD (no wasmbgp involved).
#[test]
fn gobgp_driver_selftest() {
    run_peer_selftest("gobgp-selftest", Block(13), gobgp);
}

/// wasmbgp ↔ GoBGP over eBGP: the full "Must show 2" scenario.
#[test]
fn wasmbgp_gobgp_ebgp() {
    run_wasmbgp_interop("gobgp-ebgp", Block(3), false, gobgp);
}

/// wasmbgp passive (the peer connects), 3 s hold time: no flap for 9 s.
#[test]
fn wasmbgp_gobgp_passive_keepalive() {
    run_passive_keepalive("gobgp-passive", Block(7), gobgp);
}
