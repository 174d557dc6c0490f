//! The seeds of the binary targets (`message`, `session`), built with the codec's own
//! encoder by [`wasmbgp_fuzz::seeds`].
//!
//! `cargo test -p wasmbgp-fuzz --test seeds -- --ignored` writes them into
//! `seeds/message/` and `seeds/session/` (after a change of the wire format, or to pick up
//! new captures in `host/bgp/tests/vectors/`); the other test runs them in memory.

use std::path::Path;

use wasmbgp_fuzz::seeds::{self, Seed};

fn all() -> Vec<(&'static str, Seed)> {
    let mut out: Vec<(&str, Seed)> = Vec::new();
    out.extend(seeds::message_seeds().into_iter().map(|s| ("message", s)));
    out.extend(seeds::session_seeds().into_iter().map(|s| ("session", s)));
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/bgp/tests/vectors");
    // By session: the name up to its last word (`gobgp-ebgp-open` is of `gobgp-ebgp`).
    let mut sessions: std::collections::BTreeMap<String, Vec<(u32, Vec<u8>)>> = Default::default();
    for (name, path) in files(&vectors, "") {
        let content = std::fs::read(path).unwrap();
        let found = seeds::vector_seeds(&name, &content);
        if let (Some((_, first)), Some(number)) =
            (found.first(), seeds::vector_message_number(&content))
        {
            let session = name.splitn(3, '-').take(2).collect::<Vec<_>>().join("-");
            let bytes = first[1..].to_vec();
            sessions.entry(session).or_default().push((number, bytes));
        }
        out.extend(found.into_iter().map(|s| ("message", s)));
    }
    for (name, messages) in sessions {
        if let Some(seed) = seeds::vector_session_seed(&name, messages) {
            out.push(("session", seed));
        }
    }
    out
}

/// The files under `dir` and its folders (one per peer), named `FOLDER-STEM`, sorted.
fn files(dir: &Path, prefix: &str) -> Vec<(String, std::path::PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        if path.is_file() {
            out.push((format!("{prefix}{stem}"), path));
        } else if path.is_dir() && prefix.is_empty() {
            out.extend(files(&path, &format!("{stem}-")));
        }
    }
    out
}

#[test]
fn generated_seeds_run_clean() {
    let seeds = all();
    assert!(seeds.len() >= 40, "{} seeds", seeds.len());
    for (target, (name, data)) in seeds {
        let run = wasmbgp_fuzz::TARGETS
            .iter()
            .find(|(n, _)| *n == target)
            .unwrap()
            .1;
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target}: seed {name} panics");
    }
}

/// The session seeds get where they mean to: established, UPDATEs handed over.
#[test]
fn session_seeds_reach_established() {
    for (name, data) in seeds::session_seeds() {
        let h = wasmbgp_fuzz::session::run(&data);
        let (established, updates) = match name.as_str() {
            "routes" => (1, 10),
            "graceful-restart" => (2, 3),
            "passive-ibgp-hold-expires" | "fsm-errors" => (1, 0),
            "raw-bytes" => (1, 1),
            _ => (0, 0),
        };
        assert!(
            h.established >= established && h.updates >= updates,
            "{name}: established {} times, {} UPDATEs",
            h.established,
            h.updates
        );
    }
}

#[test]
#[ignore = "writes fuzz/seeds/{message,session}/"]
fn write_seeds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    // Captures renamed or gone since the last writing leave no seed behind.
    for target in ["message", "session"] {
        for entry in std::fs::read_dir(root.join(target)).into_iter().flatten() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("vector-")
            {
                std::fs::remove_file(path).unwrap();
            }
        }
    }
    for (target, (name, data)) in all() {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    }
}
