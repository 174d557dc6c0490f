//! AFL target `config`: see [`wasmbgp_fuzz::config`]. Run it with `fuzz/run.sh fuzz config SECONDS`.

fn main() {
    afl::fuzz!(|data: &[u8]| wasmbgp_fuzz::config(data));
}
