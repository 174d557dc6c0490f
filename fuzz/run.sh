#!/usr/bin/env bash
# Coverage-guided fuzzing of wasmbgp's text parsers, BGP codec and session machine with
# AFL++ (afl.rs, stable Rust).
#
#   fuzz/run.sh build                    build the instrumented targets (installs cargo-afl if missing)
#   fuzz/run.sh smoke [SECONDS]          every target in turn, SECONDS in all (default 60); fails on a crash
#   fuzz/run.sh fuzz TARGET SECONDS      one long run; prints executions, coverage and crashes
#   fuzz/run.sh replay TARGET FILE...    runs saved inputs through a target (a crash shows its panic)
#
# Targets: words (route words and route files), ctl (control commands), config (the
# TOML loader), message (BGP framing, decoding and round trips), session (the session
# machine fed whole conversations). Seeds: fuzz/seeds/TARGET; crashes once found:
# fuzz/regressions/TARGET (replayed by `cargo test -p wasmbgp-fuzz`). Output:
# target/fuzz/out/TARGET.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TARGETS=(words ctl config message session)
export CARGO_TARGET_DIR=target/fuzz
BIN=$CARGO_TARGET_DIR/release
# AFL++ in a container: no CPU frequency governor to check, no core dump handler to
# trust, and cores shared with whatever else runs (no pinning).
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1

die() { echo "fuzz/run.sh: $*" >&2; exit 1; }

build() {
    if ! cargo afl --version >/dev/null 2>&1; then
        echo "fuzz/run.sh: installing cargo-afl" >&2
        cargo install --locked --quiet cargo-afl
    fi
    # cargo-afl builds AFL++ when installed; a toolchain update needs it built again.
    cargo afl config --build >/dev/null 2>&1 || true
    cargo afl build --release --locked --quiet -p wasmbgp-fuzz --features afl
}

# Runs TARGET for SECONDS from its seeds (resuming an earlier run's queue); prints one
# line of figures; fails if a crash was saved.
run() {
    local target=$1 seconds=$2
    local out=$CARGO_TARGET_DIR/out/$target
    local input=fuzz/seeds/$target
    # "-i -" resumes from the existing queue, so repeated runs build on each other.
    [ -f "$out/default/fuzzer_stats" ] && input=-
    timeout $((seconds + 60)) cargo afl fuzz -i "$input" -o "$out" -x "fuzz/dict/$target.dict" \
        -V "$seconds" "$BIN/$target" >"$out.log" 2>&1 || {
        tail -n 30 "$out.log" >&2
        die "afl-fuzz failed on $target (log: $out.log)"
    }
    local stats=$out/default/fuzzer_stats
    [ -f "$stats" ] || die "no fuzzer_stats for $target (log: $out.log)"
    stat() { sed -n "s/^$1 *: *//p" "$stats"; }
    local crashes
    crashes=$(stat saved_crashes)
    printf '%-7s %6ss  executions %-10s  corpus %-5s  edges %-12s  crashes %s\n' \
        "$target" "$seconds" "$(stat execs_done)" "$(stat corpus_count)" \
        "$(stat edges_found)/$(stat total_edges)" "$crashes"
    if [ "$crashes" != 0 ]; then
        echo "fuzz/run.sh: $target crashed; inputs in $out/default/crashes/ (replay: fuzz/run.sh replay $target FILE)" >&2
        return 1
    fi
}

case "${1:-}" in
build)
    build
    ;;
smoke)
    total=${2:-60}
    build
    status=0
    for t in "${TARGETS[@]}"; do
        mkdir -p "$CARGO_TARGET_DIR/out"
        run "$t" $((total / ${#TARGETS[@]})) || status=1
    done
    exit $status
    ;;
fuzz)
    [ $# -eq 3 ] || die "usage: fuzz/run.sh fuzz TARGET SECONDS"
    build
    mkdir -p "$CARGO_TARGET_DIR/out"
    run "$2" "$3"
    ;;
replay)
    [ $# -ge 3 ] || die "usage: fuzz/run.sh replay TARGET FILE..."
    target=$2
    shift 2
    build
    status=0
    for f in "$@"; do
        if "$BIN/$target" <"$f" >/dev/null 2>"$CARGO_TARGET_DIR/replay.err"; then
            echo "ok       $f"
        else
            echo "CRASH    $f"
            grep -m1 -A2 'panicked' "$CARGO_TARGET_DIR/replay.err" || tail -n 5 "$CARGO_TARGET_DIR/replay.err"
            status=1
        fi
    done
    exit $status
    ;;
*)
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
