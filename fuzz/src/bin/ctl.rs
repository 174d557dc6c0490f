//! AFL target `ctl`: see [`wasmbgp_fuzz::ctl`]. Run it with `fuzz/run.sh fuzz ctl SECONDS`.

fn main() {
    afl::fuzz!(|data: &[u8]| wasmbgp_fuzz::ctl(data));
}
