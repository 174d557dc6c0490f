//! Interop with BIRD 2 (`bird`, `birdc`).

use wasmbgp_e2e::peers::Peer;
use wasmbgp_e2e::peers::PeerSpec;
use wasmbgp_e2e::peers::bird::Bird;
use wasmbgp_e2e::scenario::{Block, run_passive_keepalive, run_peer_selftest, run_wasmbgp_interop};

fn bird(spec: PeerSpec) -> Box<dyn Peer> {
    Box::new(Bird::new(spec))
}

/// The BIRD driver works against another BIRD (no wasmbgp involved).
#[test]
fn bird_driver_selftest() {
    run_peer_selftest("bird-selftest", Block(11), bird);
}

/// wasmbgp ↔ BIRD over eBGP: the full "Must show 2" scenario.
#[test]
fn wasmbgp_bird_ebgp() {
    run_wasmbgp_interop("bird-ebgp", Block(1), false, bird);
}

/// wasmbgp ↔ BIRD over iBGP: same scenario, LOCAL_PREF is carried.
#[test]
fn wasmbgp_bird_ibgp() {
    run_wasmbgp_interop("bird-ibgp", Block(2), true, bird);
}

/// wasmbgp passive (the peer connects), 3 s hold time: no flap for 9 s.
#[test]
fn wasmbgp_bird_passive_keepalive() {
    run_passive_keepalive("bird-passive", Block(6), bird);
}
