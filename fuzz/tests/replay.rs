//! Every saved input of every fuzz target, replayed: the seeds and each crash fuzzing
//! once found (`fuzz/regressions/TARGET/`), so a fixed crash stays fixed.

use std::path::Path;

#[test]
fn every_saved_input_runs_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut replayed = 0;
    for (name, target) in wasmbgp_fuzz::TARGETS {
        for folder in ["seeds", "regressions"] {
            let dir = root.join(folder).join(name);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| target(&data));
                assert!(outcome.is_ok(), "{name}: {} panics", path.display());
                replayed += 1;
            }
        }
    }
    assert!(replayed >= 10, "only {replayed} saved inputs found");
}
