//! AFL target `words`: see [`wasmbgp_fuzz::route_words`]. Run it with `fuzz/run.sh fuzz words SECONDS`.

fn main() {
    afl::fuzz!(|data: &[u8]| wasmbgp_fuzz::route_words(data));
}
