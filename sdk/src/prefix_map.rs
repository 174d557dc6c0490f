//! [`PrefixMap`]: prefixes with values, answering "which entries cover this
//! prefix" in logarithmic time.
//!
//! Each address family is one array of entries sorted by (network, length),
//! and every entry knows its parent: the closest entry that contains it.
//! For a query prefix Q, the deepest entry containing Q is the last entry
//! sorted at or before Q, or one of its ancestors (every entry sorted
//! between that one and Q lies inside it); the entries covering Q are that
//! entry and its ancestors. So a query is one binary search plus a walk up
//! a chain as long as the nesting depth (a few steps in routing data),
//! with no allocation. The arrays are compact: 8 bytes per IPv4 entry and
//! 24 per IPv6 entry besides the values.

use crate::net::{Prefix, mask_v4, mask_v6};

/// "No parent".
const NONE: u32 = u32::MAX;

/// An address width: `u32` for IPv4, `u128` for IPv6.
trait Bits: Copy + Ord {
    /// (network, length) packed so that the key order is the
    /// lexicographic order of the pair.
    type Key: Copy + Ord + std::fmt::Debug;
    fn mask(len: u8) -> Self;
    fn and(self, other: Self) -> Self;
    fn pack(addr: Self, len: u8) -> Self::Key;
    fn unpack(key: Self::Key) -> (Self, u8);
    /// The 16 leading bits of an address.
    fn top16(self) -> usize;
}

impl Bits for u32 {
    /// One integer: a single comparison per binary-search step.
    type Key = u64;
    #[inline]
    fn mask(len: u8) -> Self {
        mask_v4(len)
    }
    #[inline]
    fn and(self, other: Self) -> Self {
        self & other
    }
    #[inline]
    fn pack(addr: Self, len: u8) -> u64 {
        (u64::from(addr) << 8) | u64::from(len)
    }
    #[inline]
    fn unpack(key: u64) -> (Self, u8) {
        ((key >> 8) as u32, key as u8)
    }
    #[inline]
    fn top16(self) -> usize {
        (self >> 16) as usize
    }
}

impl Bits for u128 {
    type Key = (u128, u8);
    #[inline]
    fn mask(len: u8) -> Self {
        mask_v6(len)
    }
    #[inline]
    fn and(self, other: Self) -> Self {
        self & other
    }
    #[inline]
    fn pack(addr: Self, len: u8) -> (u128, u8) {
        (addr, len)
    }
    #[inline]
    fn unpack(key: (u128, u8)) -> (Self, u8) {
        key
    }
    #[inline]
    fn top16(self) -> usize {
        (self >> 112) as usize
    }
}

/// The entries of one family.
#[derive(Clone, Debug)]
struct Table<K: Bits> {
    /// (network, length) packed, sorted, unique.
    keys: Vec<K::Key>,
    /// The index of each entry's parent, or [`NONE`].
    parents: Vec<u32>,
    /// For large tables, where the keys whose 16 leading address bits are
    /// `b` start: `starts[b]..starts[b + 1]`. Cuts a binary search over a
    /// global-sized table (most of a million entries, 20 steps, the last
    /// ones cache misses) to a few steps. Empty for small tables.
    starts: Vec<u32>,
}

/// Tables with at least this many entries get the [`Table::starts`] index
/// (256 KiB).
const INDEXED: usize = 16_384;

impl<K: Bits> Table<K> {
    fn new() -> Self {
        Table {
            keys: Vec::new(),
            parents: Vec::new(),
            starts: Vec::new(),
        }
    }

    /// Computes the parents of sorted, unique keys with a stack of the
    /// entries still open, and the index of a large table.
    fn link(&mut self) {
        self.starts.clear();
        if self.keys.len() >= INDEXED {
            self.starts.reserve_exact(65_537);
            let mut index = 0;
            for bucket in 0..=65_536 {
                while index < self.keys.len() && K::unpack(self.keys[index]).0.top16() < bucket {
                    index += 1;
                }
                self.starts.push(index as u32);
            }
        }
        self.parents.clear();
        self.parents.reserve_exact(self.keys.len());
        let mut open: Vec<u32> = Vec::new();
        for (index, &key) in self.keys.iter().enumerate() {
            let (addr, len) = K::unpack(key);
            while let Some(&top) = open.last() {
                let (top_addr, top_len) = K::unpack(self.keys[top as usize]);
                if top_len <= len && addr.and(K::mask(top_len)) == top_addr {
                    break;
                }
                open.pop();
            }
            self.parents.push(open.last().copied().unwrap_or(NONE));
            // Indices fit: the map refuses more than u32::MAX - 1 entries.
            open.push(index as u32);
        }
    }

    /// The deepest entry containing (addr, len), or [`NONE`].
    #[inline]
    fn deepest(&self, addr: K, len: u8) -> u32 {
        let addr = addr.and(K::mask(len));
        let query = K::pack(addr, len);
        // Keys before `low` are below the query, keys from `high` on above.
        let (low, high) = match self.starts.get(addr.top16()..addr.top16() + 2) {
            Some(&[low, high]) => (low as usize, high as usize),
            _ => (0, self.keys.len()),
        };
        let after = low
            + self
                .keys
                .get(low..high)
                .unwrap_or_default()
                .partition_point(|&key| key <= query);
        let mut index = if after == 0 { NONE } else { (after - 1) as u32 };
        while index != NONE {
            let (entry_addr, entry_len) = K::unpack(self.keys[index as usize]);
            if entry_len <= len && addr.and(K::mask(entry_len)) == entry_addr {
                break;
            }
            index = self.parents[index as usize];
        }
        index
    }

    #[inline]
    fn exact(&self, addr: K, len: u8) -> Option<usize> {
        self.keys.binary_search(&K::pack(addr, len)).ok()
    }

    fn prefixes(&self) -> impl Iterator<Item = (K, u8)> + '_ {
        self.keys.iter().map(|&key| K::unpack(key))
    }
}

/// Prefixes, IPv4 and IPv6, each with a value: the entries covering a
/// prefix (equal to it or containing it), most specific first, in
/// O(log n) plus the nesting depth, without allocating.
///
/// Built once (say in a policy's `init`) from `(Prefix, V)` pairs; host bits
/// of the prefixes are ignored. See the module documentation for the
/// structure.
#[derive(Clone, Debug)]
pub struct PrefixMap<V> {
    v4: Table<u32>,
    v6: Table<u128>,
    /// Values by entry: the IPv4 entries first, then the IPv6 ones.
    values: Vec<V>,
}

/// A set of prefixes: [`PrefixMap::covers`] tells whether a prefix equals
/// or lies inside one of them.
pub type PrefixSet = PrefixMap<()>;

impl<V> Default for PrefixMap<V> {
    fn default() -> Self {
        PrefixMap {
            v4: Table::new(),
            v6: Table::new(),
            values: Vec::new(),
        }
    }
}

impl<V> PrefixMap<V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the map from `entries`; when a prefix appears more than once,
    /// `merge(earlier, later)` folds the later value into the earlier one.
    ///
    /// # Panics
    ///
    /// With more than 2³² − 2 entries of one family.
    pub fn build(
        entries: impl IntoIterator<Item = (Prefix, V)>,
        mut merge: impl FnMut(&mut V, V),
    ) -> Self {
        let mut v4: Vec<(u32, u8, V)> = Vec::new();
        let mut v6: Vec<(u128, u8, V)> = Vec::new();
        for (prefix, value) in entries {
            match prefix.network() {
                Prefix::V4 { addr, len } => v4.push((addr, len.min(32), value)),
                Prefix::V6 { addr, len } => v6.push((addr, len.min(128), value)),
            }
        }
        // Stable: for duplicates, "earlier" and "later" keep their order.
        v4.sort_by_key(|&(addr, len, _)| (addr, len));
        v6.sort_by_key(|&(addr, len, _)| (addr, len));
        let mut map = PrefixMap::new();
        map.values.reserve_exact(v4.len() + v6.len());
        fill(&mut map.v4, &mut map.values, v4, &mut merge);
        let v4_values = map.values.len();
        fill(&mut map.v6, &mut map.values, v6, &mut merge);
        assert!(
            v4_values < NONE as usize && map.values.len() - v4_values < NONE as usize,
            "too many prefixes"
        );
        map.v4.link();
        map.v6.link();
        map
    }

    /// The number of distinct prefixes.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when the map holds no prefix.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The value of exactly `prefix`, if present.
    pub fn get(&self, prefix: &Prefix) -> Option<&V> {
        let index = match prefix.network() {
            Prefix::V4 { addr, len } => self.v4.exact(addr, len)?,
            Prefix::V6 { addr, len } => self.v4.keys.len() + self.v6.exact(addr, len)?,
        };
        self.values.get(index)
    }

    /// True when `prefix` equals or lies inside one of the map's prefixes.
    #[inline]
    pub fn covers(&self, prefix: &Prefix) -> bool {
        match *prefix {
            Prefix::V4 { addr, len } => self.v4.deepest(addr, len) != NONE,
            Prefix::V6 { addr, len } => self.v6.deepest(addr, len) != NONE,
        }
    }

    /// The most specific entry covering `prefix` (longest match).
    #[inline]
    pub fn longest_match(&self, prefix: &Prefix) -> Option<(Prefix, &V)> {
        self.covering(prefix).next()
    }

    /// Every entry covering `prefix`, most specific first.
    #[inline]
    pub fn covering(&self, prefix: &Prefix) -> Covering<'_, V> {
        let (v6, index) = match *prefix {
            Prefix::V4 { addr, len } => (false, self.v4.deepest(addr, len)),
            Prefix::V6 { addr, len } => (true, self.v6.deepest(addr, len)),
        };
        Covering {
            map: self,
            v6,
            index,
        }
    }

    /// Every entry, IPv4 first, each family sorted by (network, length).
    pub fn iter(&self) -> impl Iterator<Item = (Prefix, &V)> {
        let v4 = self
            .v4
            .prefixes()
            .map(|(addr, len)| Prefix::V4 { addr, len });
        let v6 = self
            .v6
            .prefixes()
            .map(|(addr, len)| Prefix::V6 { addr, len });
        v4.chain(v6).zip(self.values.iter())
    }
}

/// Moves sorted entries into a table and the values, merging duplicates.
fn fill<K: Bits, V>(
    table: &mut Table<K>,
    values: &mut Vec<V>,
    entries: Vec<(K, u8, V)>,
    merge: &mut impl FnMut(&mut V, V),
) {
    table.keys.reserve_exact(entries.len());
    for (addr, len, value) in entries {
        let key = K::pack(addr, len);
        if table.keys.last() == Some(&key) {
            if let Some(earlier) = values.last_mut() {
                merge(earlier, value);
            }
            continue;
        }
        table.keys.push(key);
        values.push(value);
    }
}

impl<V> FromIterator<(Prefix, V)> for PrefixMap<V> {
    /// Builds the map; for a prefix given twice, the later value wins.
    fn from_iter<I: IntoIterator<Item = (Prefix, V)>>(entries: I) -> Self {
        PrefixMap::build(entries, |earlier, later| *earlier = later)
    }
}

impl FromIterator<Prefix> for PrefixSet {
    fn from_iter<I: IntoIterator<Item = Prefix>>(prefixes: I) -> Self {
        PrefixMap::build(prefixes.into_iter().map(|p| (p, ())), |_, _| {})
    }
}

/// The entries covering a prefix, most specific first; see
/// [`PrefixMap::covering`].
#[derive(Clone, Debug)]
pub struct Covering<'m, V> {
    map: &'m PrefixMap<V>,
    v6: bool,
    index: u32,
}

impl<'m, V> Iterator for Covering<'m, V> {
    type Item = (Prefix, &'m V);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.index == NONE {
            return None;
        }
        let index = self.index as usize;
        let (prefix, value_index) = if self.v6 {
            self.index = self.map.v6.parents[index];
            let (addr, len) = u128::unpack(self.map.v6.keys[index]);
            (Prefix::V6 { addr, len }, self.map.v4.keys.len() + index)
        } else {
            self.index = self.map.v4.parents[index];
            let (addr, len) = u32::unpack(self.map.v4.keys[index]);
            (Prefix::V4 { addr, len }, index)
        };
        Some((prefix, &self.map.values[value_index]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Prefix {
        text.parse().unwrap()
    }

    fn covering(map: &PrefixMap<&'static str>, query: &str) -> Vec<&'static str> {
        map.covering(&p(query)).map(|(_, v)| *v).collect()
    }

    #[test]
    fn covering_is_most_specific_first() {
        let map: PrefixMap<&str> = [
            (p("10.0.0.0/8"), "a"),
            (p("10.1.0.0/16"), "b"),
            (p("10.1.2.0/24"), "c"),
            (p("10.2.0.0/16"), "d"),
            (p("11.0.0.0/8"), "e"),
            (p("2001:db8::/32"), "f"),
            (p("2001:db8:1::/48"), "g"),
        ]
        .into_iter()
        .collect();
        assert_eq!(map.len(), 7);
        assert_eq!(covering(&map, "10.1.2.0/24"), ["c", "b", "a"]);
        assert_eq!(covering(&map, "10.1.2.128/25"), ["c", "b", "a"]);
        assert_eq!(covering(&map, "10.1.3.0/24"), ["b", "a"]);
        // Sorted after 10.1.2.0/24 but inside only 10.0.0.0/8.
        assert_eq!(covering(&map, "10.1.255.0/24").len(), 2);
        assert_eq!(covering(&map, "10.3.0.0/16"), ["a"]);
        assert_eq!(covering(&map, "10.0.0.0/7"), Vec::<&str>::new());
        assert_eq!(covering(&map, "12.0.0.0/8"), Vec::<&str>::new());
        assert_eq!(covering(&map, "9.0.0.0/8"), Vec::<&str>::new());
        assert_eq!(covering(&map, "2001:db8:1:2::/64"), ["g", "f"]);
        assert_eq!(covering(&map, "2001:db8::/31"), Vec::<&str>::new());
        assert_eq!(
            map.longest_match(&p("10.2.3.0/24"))
                .map(|(prefix, v)| (prefix.to_string(), *v)),
            Some(("10.2.0.0/16".into(), "d"))
        );
        assert_eq!(map.get(&p("10.1.0.0/16")), Some(&"b"));
        assert_eq!(map.get(&p("10.1.0.0/17")), None);
        assert_eq!(map.get(&p("2001:db8:1::/48")), Some(&"g"));
    }

    #[test]
    fn sets_and_default_routes() {
        let set: PrefixSet = [p("0.0.0.0/0"), p("2001:db8::/32")].into_iter().collect();
        assert!(set.covers(&p("203.0.113.0/24")));
        assert!(set.covers(&p("0.0.0.0/0")));
        assert!(set.covers(&p("2001:db8:ffff::/48")));
        assert!(!set.covers(&p("2001:db9::/48")));
        assert!(!PrefixSet::new().covers(&p("10.0.0.0/8")));
    }

    #[test]
    fn duplicates_merge() {
        let map = PrefixMap::build(
            [
                (p("10.0.0.0/8"), vec![1]),
                (p("10.0.0.0/8"), vec![2]),
                (p("10.0.0.0/16"), vec![3]),
            ],
            |earlier, later| earlier.extend(later),
        );
        assert_eq!(map.len(), 2);
        assert_eq!(map.get(&p("10.0.0.0/8")), Some(&vec![1, 2]));
        let all: Vec<_> = map
            .iter()
            .map(|(prefix, v)| (prefix.to_string(), v.clone()))
            .collect();
        assert_eq!(
            all,
            [
                ("10.0.0.0/8".to_string(), vec![1, 2]),
                ("10.0.0.0/16".to_string(), vec![3])
            ]
        );
    }

    /// Compares with a linear scan on pseudo-random nested prefixes: few
    /// distinct leading bits, so that prefixes nest; with a small table and
    /// with one large enough for the leading-bits index; IPv4 and IPv6.
    fn agrees_with_a_linear_scan(entries: usize, queries: usize, v6: bool) {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15 ^ entries as u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut random_prefix = || {
            let bits = ((next() as u32) & 0x0F0F_FFFF) | 0x0A00_0000;
            if v6 {
                let len = (next() % 129) as u8;
                let addr = (u128::from(bits) << 96) | u128::from(next());
                Prefix::V6 {
                    addr: addr & mask_v6(len),
                    len,
                }
            } else {
                let len = (next() % 33) as u8;
                Prefix::V4 {
                    addr: bits & mask_v4(len),
                    len,
                }
            }
        };
        let entries: Vec<(Prefix, usize)> = (0..entries).map(|i| (random_prefix(), i)).collect();
        let map: PrefixMap<usize> = entries.iter().copied().collect();
        for _ in 0..queries {
            let query = random_prefix();
            let mut expected: Vec<Prefix> = entries
                .iter()
                .map(|e| e.0)
                .filter(|e| e.contains(&query))
                .collect();
            expected.sort_by_key(|e| std::cmp::Reverse(e.length()));
            expected.dedup();
            let got: Vec<Prefix> = map.covering(&query).map(|(prefix, _)| prefix).collect();
            assert_eq!(got, expected, "{query}");
        }
    }

    #[test]
    fn small_tables_agree_with_a_linear_scan() {
        agrees_with_a_linear_scan(400, 4000, false);
        agrees_with_a_linear_scan(400, 4000, true);
    }

    #[test]
    fn indexed_tables_agree_with_a_linear_scan() {
        agrees_with_a_linear_scan(INDEXED + 1000, 300, false);
        agrees_with_a_linear_scan(INDEXED + 1000, 300, true);
    }
}
