//! What each fuzz target does with one input. The AFL binaries (`src/bin/`) feed these
//! functions under `cargo afl fuzz`; `tests/replay.rs` feeds them every saved input
//! (seeds and the crashes fuzzing once found) in the ordinary test suite.
//!
//! A target fails by panicking: on a parser panic (the bug class of issue 7) and on a
//! broken round trip (a value that prints as text the parser reads back differently).
//!
//! The binary targets are in their own modules: [`message`] (the BGP codec: framing,
//! decoding, round trips, the NOTIFICATIONs of decode errors) and [`session`] (the
//! session machine fed a whole conversation, with its invariants checked after every
//! step). [`seeds`] writes their seeds with the codec's own encoder.

pub mod message;
pub mod seeds;
pub mod session;

use std::path::Path;

use wasmbgp::config::{Config, parse_route_lines};
use wasmbgp::ctl::command;
use wasmbgp_bgp::PathAttributes;
use wasmbgp_bgp::packet::attributes::community_to_string;
use wasmbgp_bgp::rib::Interner;
use wasmbgp_bgp::words;

/// What a fuzz target does with one input.
pub type Target = fn(&[u8]);

/// The fuzz targets, by name (the names of the AFL binaries and corpus folders).
pub const TARGETS: &[(&str, Target)] = &[
    ("words", route_words),
    ("ctl", ctl),
    ("config", config),
    ("message", message::message),
    ("session", session::session),
];

/// ExaBGP's route words as the config's route files, the control socket and plugins
/// give them: the input as a route file, each line as route words and as flow route
/// words, and each word through every value parser, with printed values read back.
pub fn route_words(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let defaults = PathAttributes::default();
    let _ = parse_route_lines(text, &defaults, &mut Interner::new());
    for line in text.lines() {
        let tokens = words::tokenize(line);
        if let Ok(route) = words::parse_route(&tokens, &defaults) {
            let again = words::parse_prefix(&route.prefix.to_string());
            assert_eq!(again, Ok(route.prefix), "prefix round trip of {line:?}");
        }
        if let Ok(flow) = words::flow::parse_flow_route(&tokens, &defaults) {
            let printed = words::tokenize(&flow.rule.to_string());
            let again = words::flow::parse_flow_route(&printed, &defaults)
                .map(|f| f.rule)
                .map_err(|e| e.to_string());
            assert_eq!(again, Ok(flow.rule), "flow rule round trip of {line:?}");
        }
        for word in &tokens {
            value_words(word);
        }
    }
}

fn value_words(word: &str) {
    if let Ok(c) = words::parse_community(word) {
        assert_eq!(
            words::parse_community(&community_to_string(c)),
            Ok(c),
            "{word:?}"
        );
    }
    if let Ok(c) = words::parse_large_community(word) {
        assert_eq!(
            words::parse_large_community(&c.to_string()),
            Ok(c),
            "{word:?}"
        );
    }
    if let Ok(c) = words::parse_extended_community(word) {
        assert_eq!(
            words::parse_extended_community(&c.to_string()),
            Ok(c),
            "{word:?}"
        );
    }
    if let Ok(p) = words::parse_prefix(word) {
        assert_eq!(words::parse_prefix(&p.to_string()), Ok(p), "{word:?}");
    }
    let _ = words::parse_asn(word);
    let _ = words::parse_next_hop(word);
    let _ = words::parse_origin(word);
}

/// A control command line, as the control socket hands it to the parser (one line,
/// valid UTF-8: the socket answers other lines before parsing).
pub fn ctl(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for line in text.lines() {
        let _ = command::parse(line.trim());
    }
}

/// A config file, loaded as `wasmbgp check` does (plugin components are not compiled;
/// a route file it names is read as usual, relative to a folder that does not exist).
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(diagnostics) =
        Config::parse_with(text, Path::new("/nonexistent/fuzz.toml"), &|_| Ok(()))
    {
        for d in &diagnostics.items {
            assert!(d.line >= 1 && d.col >= 1, "{d:?}");
        }
    }
}
