//! What only the C twins (plugins/tcp-check-c, plugins/bogon-filter-c, built with
//! scripts/lang/c.sh: Debian's clang and wasi-libc, `wit-bindgen c`, `wasm-tools
//! component new` with the WASI preview 1 reactor adapter) need beyond the twins'
//! shared tests in healthchecks.rs (up/down) and policies.rs (a mixed batch): a probe
//! outside the grant, settings refused with the Rust texts, the named routes of
//! test_bogons.py, and the rules of bogon-filter on many batches in bounded memory
//! (a C policy frees what the bindings hand it, or its memory cap stops it).

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use wasmbgp_bgp::packet::attributes::PathAttributes;
use wasmbgp_bgp::{Ipv4Prefix, Ipv6Prefix, Prefix};
use wasmbgp_runtime::{Direction, Health, PluginSpec, PluginState, PolicySession, Verdict, World};

const T: Duration = Duration::from_secs(10);

// --- tcp-check-c -----------------------------------------------------------

/// common::spec for a C component (common::spec builds with build-plugins.sh).
fn check_spec(plugin: &str, settings: &[(&str, &str)]) -> PluginSpec {
    let mut spec = PluginSpec::new(plugin, World::Healthcheck, component("tcp-check-c"));
    spec.settings = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    spec.interval = Duration::from_millis(100);
    spec.fast_interval = Duration::from_millis(50);
    spec.rise = 2;
    spec.fall = 2;
    spec
}

/// A target outside the grant is `denied` (the probe import is the only way out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_check_c_outside_its_grant_is_denied() {
    let runtime = runtime();
    let listener = Listener::bind("127.0.0.1:0").await;
    let addr = listener.addr.to_string();
    let spec = check_spec("ungranted", &[("address", &addr), ("timeout", "1s")]);
    let mut p = start(&runtime, spec);
    let (health, reason) = p.health(T).await;
    assert_eq!(health, Health::Down, "{reason}");
    assert!(reason.starts_with("denied: "), "{reason}");
    assert_eq!(listener.count(), 0);
    assert!(p.handle.status().denied >= 1);
    p.handle.stop().await;
}

/// The Rust twin's settings errors, word for word.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_check_c_refuses_bad_settings() {
    let runtime = runtime();
    for (i, (settings, expected)) in [
        (
            &[
                ("address", "127.0.0.1:1"),
                ("adress", "x"),
                ("tmeout", "1s"),
            ][..],
            "unknown setting(s): adress, tmeout",
        ),
        (&[][..], "setting `address` is required"),
        (
            &[("address", "127.0.0.1:1"), ("timeout", "3x")][..],
            "setting `timeout` = \"3x\" is invalid: expected a duration such as 500ms, 2s or 1m",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut p = start(
            &runtime,
            check_spec(&format!("misconfigured-{i}"), settings),
        );
        let error = p.failed(T).await;
        assert!(error.contains(expected), "{settings:?}: {error}");
    }
}

// --- bogon-filter-c --------------------------------------------------------

fn policy(name: &str, settings: &[(&str, &str)]) -> PluginSpec {
    let mut spec = PluginSpec::new(name, World::Policy, component("bogon-filter-c"));
    spec.settings = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    spec
}

fn session() -> PolicySession {
    PolicySession {
        neighbor: "127.0.0.2".parse().unwrap(),
        peer_as: 65002,
        local_as: 65001,
    }
}

/// The borrowed form `evaluate` takes.
fn refs(routes: &[(Prefix, Arc<PathAttributes>)]) -> Vec<(Prefix, &PathAttributes)> {
    routes.iter().map(|(p, a)| (p.clone(), &**a)).collect()
}

/// Prefixes (host bits cleared) sharing one attribute set.
fn plain(prefixes: &[Prefix]) -> Vec<(Prefix, Arc<PathAttributes>)> {
    let attrs = Arc::new(PathAttributes::default());
    prefixes
        .iter()
        .map(|p| (p.clone(), attrs.clone()))
        .collect()
}

fn v4(address: u32, len: u8) -> Prefix {
    Prefix::V4(Ipv4Prefix::new(Ipv4Addr::from(address), len).unwrap())
}

fn v6(address: u128, len: u8) -> Prefix {
    Prefix::V6(Ipv6Prefix::new(Ipv6Addr::from(address), len).unwrap())
}

/// The bogon rules as bogon-filter's README states them, one route at a time: IPv4
/// longer than /24 or inside a special-purpose block; IPv6 longer than /48, outside
/// 2000::/3 or inside a special-purpose block. (address, length) lies inside P/L
/// when length >= L and the first L bits match.
fn is_bogon(prefix: &Prefix) -> bool {
    fn inside(address: u128, len: u8, bits: u32, p: u128, l: u8) -> bool {
        let shift = bits - u32::from(l);
        len >= l && (shift >= 128 || address >> shift == p >> shift)
    }
    const V4: [(u32, u8); 14] = [
        (0x0000_0000, 8),
        (0x0a00_0000, 8),
        (0x6440_0000, 10),
        (0x7f00_0000, 8),
        (0xa9fe_0000, 16),
        (0xac10_0000, 12),
        (0xc000_0000, 24),
        (0xc000_0200, 24),
        (0xc0a8_0000, 16),
        (0xc612_0000, 15),
        (0xc633_6400, 24),
        (0xcb00_7100, 24),
        (0xe000_0000, 4),
        (0xf000_0000, 4),
    ];
    const V6: [(u128, u8); 7] = [
        (0, 8),
        (0x0100 << 112, 64),
        (0x2001_0db8 << 96, 32),
        (0xfc00 << 112, 7),
        (0xfe80 << 112, 10),
        (0xfec0 << 112, 10),
        (0xff00 << 112, 8),
    ];
    match prefix {
        Prefix::V4(p) => {
            let (a, len) = (u128::from(u32::from(p.addr())), p.len());
            len > 24 || V4.iter().any(|&(b, l)| inside(a, len, 32, b.into(), l))
        }
        Prefix::V6(p) => {
            let (a, len) = (u128::from(p.addr()), p.len());
            len > 48
                || !inside(a, len, 128, 0x2000 << 112, 3)
                || V6.iter().any(|&(b, l)| inside(a, len, 128, b, l))
        }
        Prefix::Flow(_) => false,
    }
}

/// test_bogons.py's named routes (as written there; a stray host bit is cleared
/// by the host, so 100.64.0.0/9 arrives as 100.0.0.0/9).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bogon_filter_c_named_routes() {
    let cases: &[(&str, u8, bool)] = &[
        ("0.0.0.0", 8, true),
        ("0.255.255.0", 24, true),
        ("1.0.0.0", 24, false),
        ("0.0.0.0", 0, false),
        ("0.0.0.0", 7, false),
        ("10.0.0.0", 8, true),
        ("10.255.255.0", 24, true),
        ("11.0.0.0", 8, false),
        ("9.255.255.0", 24, false),
        ("10.0.0.0", 7, false),
        ("100.64.0.0", 10, true),
        ("100.127.255.0", 24, true),
        ("100.63.255.0", 24, false),
        ("100.128.0.0", 24, false),
        ("100.0.0.0", 9, false),
        ("100.64.0.0", 9, false),
        ("127.0.0.0", 8, true),
        ("127.1.2.0", 24, true),
        ("126.255.255.0", 24, false),
        ("128.0.0.0", 24, false),
        ("169.254.0.0", 16, true),
        ("169.254.255.0", 24, true),
        ("169.253.255.0", 24, false),
        ("169.255.0.0", 24, false),
        ("172.16.0.0", 12, true),
        ("172.31.255.0", 24, true),
        ("172.15.255.0", 24, false),
        ("172.32.0.0", 24, false),
        ("172.0.0.0", 8, false),
        ("192.0.0.0", 24, true),
        ("192.0.1.0", 24, false),
        ("192.0.2.0", 24, true),
        ("192.0.3.0", 24, false),
        ("192.0.0.0", 23, false),
        ("192.0.0.0", 16, false),
        ("191.255.255.0", 24, false),
        ("192.168.0.0", 16, true),
        ("192.168.255.0", 24, true),
        ("192.167.255.0", 24, false),
        ("192.169.0.0", 24, false),
        ("198.18.0.0", 15, true),
        ("198.19.255.0", 24, true),
        ("198.17.255.0", 24, false),
        ("198.20.0.0", 24, false),
        ("198.18.0.0", 14, false),
        ("198.51.100.0", 24, true),
        ("198.51.99.0", 24, false),
        ("198.51.101.0", 24, false),
        ("198.51.100.0", 23, false),
        ("203.0.113.0", 24, true),
        ("203.0.112.0", 24, false),
        ("203.0.114.0", 24, false),
        ("203.0.0.0", 16, false),
        ("224.0.0.0", 4, true),
        ("239.255.255.0", 24, true),
        ("223.255.255.0", 24, false),
        ("224.0.0.0", 3, false),
        ("240.0.0.0", 4, true),
        ("255.255.255.0", 24, true),
        ("8.8.8.0", 24, false),
        ("1.1.1.0", 24, false),
        ("193.0.0.0", 8, false),
        // The length limit, also in a /16 where a /24 bogon lives.
        ("8.8.8.0", 25, true),
        ("8.8.8.8", 32, true),
        ("1.0.0.0", 8, false),
        ("192.0.1.0", 25, true),
        ("192.0.2.128", 25, true),
        ("2a00:1450::", 32, false),
        ("2001::", 16, false),
        ("2001:db7::", 32, false),
        ("2001:db9::", 32, false),
        ("2001:db8::", 32, true),
        ("2001:db8:ffff::", 48, true),
        ("2001:db8::", 31, false),
        ("2001:db8::", 33, true),
        ("2000::", 3, false),
        ("2000::", 48, false),
        ("3fff:ffff:ffff::", 48, false),
        ("2000::", 2, true),
        ("::", 0, true),
        ("::", 1, true),
        ("::", 3, true),
        ("1fff:ffff:ffff::", 48, true),
        ("4000::", 48, true),
        ("4000::", 3, true),
        ("8000::", 1, true),
        ("::", 8, true),
        ("::ffff:0:0", 96, true),
        ("100::", 64, true),
        ("100::", 48, true),
        ("fc00::", 7, true),
        ("fd00::", 8, true),
        ("fe80::", 10, true),
        ("fec0::", 10, true),
        ("ff00::", 8, true),
        ("ff02::", 16, true),
        ("2a00:1450::", 48, false),
        ("2a00:1450::", 49, true),
        ("2a00:1450::1", 128, true),
        ("2a00::", 12, false),
    ];
    let prefixes: Vec<Prefix> = cases
        .iter()
        .map(
            |&(address, len, _)| match address.parse::<std::net::IpAddr>().unwrap() {
                std::net::IpAddr::V4(a) => v4(a.into(), len),
                std::net::IpAddr::V6(a) => v6(a.into(), len),
            },
        )
        .collect();
    let runtime = runtime();
    let p = start(&runtime, policy("bogons", &[]));
    let client = p.handle.policy().unwrap().clone();
    let v = client
        .evaluate(Direction::Import, session(), &refs(&plain(&prefixes)))
        .await
        .unwrap();
    assert_eq!(v.len(), cases.len());
    for (i, (&(address, len, bogon), prefix)) in cases.iter().zip(&prefixes).enumerate() {
        let want = if bogon {
            Verdict::Reject
        } else {
            Verdict::Accept
        };
        assert_eq!(v.get(i), want, "{address}/{len}");
        assert_eq!(is_bogon(prefix), bogon, "the test's rules: {address}/{len}");
    }
}

/// The C twin against the rules on every /16 and /24 start of both families and
/// pseudo-random routes of every length, in batches of 4,096 under a 4 MiB memory
/// grant: what the bindings hand the guest is freed (else the batches would
/// exhaust it), and the instance never restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bogon_filter_c_agrees_with_the_rules_in_bounded_memory() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut prefixes = Vec::new();
    for key in 0..1u32 << 16 {
        prefixes.push(v4(key << 16, 16));
        prefixes.push(v4(key << 16 | (next() as u32 & 0xff00), 24));
        prefixes.push(v6(u128::from(key) << 112, 16));
        prefixes.push(v6(
            u128::from(key) << 112 | u128::from(next() as u16) << 96,
            32,
        ));
    }
    for _ in 0..60_000 {
        let (a, b) = (next(), next());
        prefixes.push(v4(a as u32, (b % 33) as u8));
        prefixes.push(v6(u128::from(a) << 64 | u128::from(b), (b % 129) as u8));
    }

    let runtime = runtime();
    let mut spec = policy("bogons", &[]);
    spec.grants.memory = 4 << 20;
    let p = start(&runtime, spec);
    let client = p.handle.policy().unwrap().clone();
    let mut rejected = 0;
    for (round, chunk) in prefixes.chunks(4096).enumerate() {
        let batch = plain(chunk);
        let direction = if round % 8 == 7 {
            Direction::Export
        } else {
            Direction::Import
        };
        let v = client
            .evaluate(direction, session(), &refs(&batch))
            .await
            .unwrap_or_else(|e| panic!("batch {round}: {e}"));
        assert_eq!(v.len(), chunk.len());
        for (i, prefix) in chunk.iter().enumerate() {
            let want = if direction == Direction::Import && is_bogon(prefix) {
                rejected += 1;
                Verdict::Reject
            } else {
                Verdict::Accept
            };
            assert_eq!(v.get(i), want, "{direction:?} {prefix}");
        }
    }
    let status = p.handle.status();
    eprintln!(
        "bogon-filter-c: {} routes in {} calls ({rejected} rejected), call time p50 {} µs, p99 {} µs",
        prefixes.len(),
        status.calls,
        status.p50_us,
        status.p99_us
    );
    assert_eq!(status.restarts, 0, "{status:?}");
    assert_eq!(status.state, PluginState::Running);
    assert_eq!(status.routes_rejected, rejected);
}

/// No settings: any is refused at `init`, like the Rust and Python twins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bogon_filter_c_refuses_settings() {
    let runtime = runtime();
    let mut p = start(
        &runtime,
        policy("bogons", &[("strict", "1"), ("max-length", "24")]),
    );
    let error = p.failed(T).await;
    assert!(
        error.contains("unknown setting(s): strict, max-length"),
        "{error}"
    );
}
