//! Interop with ExaBGP 4.2 (`exabgp`, JSON API output).

use wasmbgp_e2e::peers::Peer;
use wasmbgp_e2e::peers::PeerSpec;
use wasmbgp_e2e::peers::exabgp::ExaBgp;
use wasmbgp_e2e::scenario::{Block, run_passive_keepalive, run_peer_selftest, run_wasmbgp_interop};

fn exabgp(spec: PeerSpec) -> Box<dyn Peer> {
    Box::new(ExaBgp::new(spec))
}

/// The ExaBGP driver works against BIRD (no wasmbgp involved).
#[test]
fn exabgp_driver_selftest() {
    run_peer_selftest("exabgp-selftest", Block(15), exabgp);
}

/// wasmbgp ↔ ExaBGP over eBGP: the full "Must show 2" scenario.
#[test]
fn wasmbgp_exabgp_ebgp() {
    run_wasmbgp_interop("exabgp-ebgp", Block(5), false, exabgp);
}

/// wasmbgp passive (the peer connects), 3 s hold time: no flap for 9 s.
#[test]
fn wasmbgp_exabgp_passive_keepalive() {
    run_passive_keepalive("exabgp-passive", Block(9), exabgp);
}
