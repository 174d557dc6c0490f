//! AFL target `message`: see [`wasmbgp_fuzz::message`]. Run it with `fuzz/run.sh fuzz message SECONDS`.

fn main() {
    afl::fuzz!(|data: &[u8]| wasmbgp_fuzz::message::message(data));
}
