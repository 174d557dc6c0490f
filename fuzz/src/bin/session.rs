//! AFL target `session`: see [`wasmbgp_fuzz::session`]. Run it with `fuzz/run.sh fuzz session SECONDS`.

fn main() {
    afl::fuzz!(|data: &[u8]| wasmbgp_fuzz::session::session(data));
}
