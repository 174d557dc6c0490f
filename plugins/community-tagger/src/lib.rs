//! `community-tagger`: adds communities to the routes whose prefix equals
//! or lies inside one of the configured prefixes, in both directions.
//!
//! Settings: `prefixes` (comma-separated IPv4 and/or IPv6 prefixes,
//! required), `communities` (comma-separated standard communities "A:B" or
//! well-known names, required).
//!
//! The prefixes go into a [`PrefixSet`] (sorted arrays with parent links:
//! one binary search per route, whatever the number of prefixes), and the
//! modification is built once in `init` and returned by reference, so a
//! route costs a lookup and no allocation; the SDK applies the modification
//! once per distinct attribute set of a batch.

use wasmbgp_sdk::{
    Community, DataFile, Error, Modification, Policy, Prefix, PrefixSet, Route, Settings, Verdict,
};

/// The policy: which prefixes, and what to add.
pub struct CommunityTagger {
    prefixes: PrefixSet,
    tag: Modification,
}

impl Policy for CommunityTagger {
    fn init(settings: &Settings, _files: &[DataFile]) -> Result<Self, Error> {
        settings.only(&["prefixes", "communities"])?;
        settings.required("prefixes")?;
        settings.required("communities")?;
        let prefixes = settings.parse_list::<Prefix>("prefixes")?;
        if prefixes.is_empty() {
            return Err("setting `prefixes` lists no prefix".into());
        }
        let communities = settings.parse_list::<Community>("communities")?;
        if communities.is_empty() {
            return Err("setting `communities` lists no community".into());
        }
        let tag = communities
            .into_iter()
            .fold(Modification::new(), Modification::add_community);
        Ok(CommunityTagger {
            prefixes: prefixes.into_iter().collect(),
            tag,
        })
    }

    // Inlined into the SDK's loop over the batch: the call would cost as
    // much as the lookup.
    #[inline(always)]
    fn evaluate(&mut self, route: &Route<'_>) -> Verdict<'_> {
        if self.prefixes.covers(&route.prefix()) {
            Verdict::Modify(&self.tag)
        } else {
            Verdict::Accept
        }
    }
}

wasmbgp_sdk::export_policy!(CommunityTagger);

#[cfg(test)]
mod tests {
    use wasmbgp_sdk::policy::{Evaluator, RouteBatch};
    use wasmbgp_sdk::{Attributes, Direction, IpAddress, Session};

    use super::*;

    fn settings(prefixes: &str, communities: &str) -> Settings {
        Settings::new(vec![
            ("prefixes".into(), prefixes.into()),
            ("communities".into(), communities.into()),
        ])
    }

    fn batch(attributes: Vec<Attributes>) -> RouteBatch {
        let mut batch = RouteBatch::new(
            Direction::Export,
            Session {
                neighbor: IpAddress::V4(0x7f00_0002),
                peer_as: 65000,
                local_as: 65001,
            },
        );
        batch.attributes = attributes;
        batch
    }

    #[test]
    fn tags_routes_inside_the_prefixes() {
        let tagger = CommunityTagger::init(
            &settings("10.0.0.0/8, 2001:db8::/32", "65001:100, no-export"),
            &[],
        )
        .unwrap();
        let mut evaluator = Evaluator::new(tagger);
        let mut b = batch(vec![Attributes::new()]);
        for (addr, len) in [
            (0x0a01_0200u32, 24u8),
            (0x0b00_0000, 24),
            (0x0a00_0000, 8),
            (0x0a00_0000, 7),
        ] {
            b.v4_addresses.push(addr);
            b.v4_lengths.push(len);
            b.v4_attributes.push(0);
        }
        b.v6_addresses
            .extend([0x2001_0db8_0001_0000, 0, 0x2001_0db9_0000_0000, 0]);
        b.v6_lengths.extend([48, 48]);
        b.v6_attributes.extend([0, 0]);
        let verdicts = evaluator.evaluate(&b);
        assert_eq!(verdicts.routes, [2, 0, 2, 0, 2, 0]);
        assert_eq!(verdicts.attributes.len(), 1);
        assert_eq!(
            verdicts.attributes[0].communities,
            [(65001 << 16) | 100, 0xFFFF_FF01]
        );
    }

    #[test]
    fn settings_errors_are_clear() {
        let error = |p: &str, c: &str| {
            CommunityTagger::init(&settings(p, c), &[])
                .err()
                .unwrap()
                .to_string()
        };
        assert!(error("10.0.0.1/8", "1:1").contains("host bits"));
        assert!(error("10.0.0.0/8", "1:1:1").contains("`communities`"));
        assert!(error("", "1:1").contains("no prefix"));
        let missing = CommunityTagger::init(
            &Settings::new(vec![("prefixes".into(), "10.0.0.0/8".into())]),
            &[],
        );
        assert!(
            missing
                .err()
                .unwrap()
                .to_string()
                .contains("`communities` is required")
        );
    }

    /// This thread's CPU time in nanoseconds (the machines running the
    /// benchmarks are shared: wall time would measure the neighbors).
    #[cfg(target_os = "linux")]
    fn cpu_ns() -> u128 {
        #[repr(C)]
        struct Timespec {
            secs: i64,
            nanos: i64,
        }
        unsafe extern "C" {
            fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
        }
        const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
        let mut ts = Timespec { secs: 0, nanos: 0 };
        // SAFETY: clock_gettime writes one timespec, which `ts` is.
        unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        ts.secs as u128 * 1_000_000_000 + ts.nanos as u128
    }

    /// The benchmark's shape: 1M IPv4 /24s sharing one attribute set, half
    /// of them inside the tagged prefixes. Run with
    /// `cargo test --release -p community-tagger -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn cost_per_route() {
        let tagger = CommunityTagger::init(
            &settings("10.0.0.0/9, 172.16.0.0/12, 2001:db8::/32", "65001:100"),
            &[],
        )
        .unwrap();
        let mut evaluator = Evaluator::new(tagger);
        let mut b = batch(vec![Attributes::new().with_as_path(&[65000]).with_med(10)]);
        for i in 0..1_000_000u32 {
            // 10.0.0.0/8 in /24s: the lower half is inside 10.0.0.0/9.
            b.v4_addresses.push(0x0a00_0000 | ((i % 65536) << 8));
            b.v4_lengths.push(24);
            b.v4_attributes.push(0);
        }
        let mut best = u128::MAX;
        for _ in 0..10 {
            let start = cpu_ns();
            let verdicts = std::hint::black_box(evaluator.evaluate(&b));
            best = best.min(cpu_ns() - start);
            assert_eq!(verdicts.routes.iter().filter(|&&v| v >= 2).count(), 508_480);
        }
        println!(
            "community-tagger: {:.1} ns per route (CPU time, best of 10)",
            best as f64 / 1e6
        );
    }
}
