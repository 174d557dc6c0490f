// The bogon rules of bogon-filter-js, in plain JavaScript.
//
// This module imports no WIT bindings, so the rules run under an ordinary
// `node` (see test_bogons.mjs); app.js wraps them in the `route-policy` export.
// componentize-qjs runs it at build time, so the tables below are part of the
// component's snapshot.
//
// Routes arrive as numbers, as the bindings give `wasmbgp:plugin/types`: an
// IPv4 address is a u32 (192.0.2.0 = 0xc0000200), an IPv6 address two u64
// halves, high first, each a JavaScript Number (so rounded to 53 significant
// bits; see "Why the rounding of u64 does not matter" below).
//
// A route (address, length) lies inside a prefix P/L when length >= L and the
// first L bits of the address are those of P; bits past `length` never matter.
// A route is a bogon, and is rejected, when
//
// - IPv4: it is longer than /24, or it lies inside one of V4_BOGONS;
// - IPv6: it is longer than /48, or it does not lie inside V6_ALLOWED
//   (2000::/3, global unicast; so ::/0 is rejected too), or it lies inside one
//   of V6_BOGONS.
//
// A route shorter than a bogon prefix (0.0.0.0/0, 8.0.0.0/5) merely covers it
// and is not a bogon.
//
// `isBogonV4` and `isBogonV6` say that directly, one route at a time.
// `v4Verdicts` and `v6Verdicts` decide whole columns with the tables computed
// from the same lists: one table lookup and one comparison per route.
//
// Why the rounding of u64 does not matter: an IPv6 route is judged by the
// first 48 bits of its address at most (a longer route is rejected on its
// length alone). The host sends prefixes with their host bits zero, so the
// high half of a route of /48 or shorter has at most 48 significant bits and
// is exact as a Number; a route longer than /48 is rejected whatever its bits.

export const V4_BOGONS = [
  "0.0.0.0/8", // "this" network
  "10.0.0.0/8", // private (RFC 1918)
  "100.64.0.0/10", // shared address space (carrier-grade NAT)
  "127.0.0.0/8", // loopback
  "169.254.0.0/16", // link local
  "172.16.0.0/12", // private (RFC 1918)
  "192.0.0.0/24", // IETF protocol assignments
  "192.0.2.0/24", // documentation (TEST-NET-1)
  "192.168.0.0/16", // private (RFC 1918)
  "198.18.0.0/15", // benchmarking
  "198.51.100.0/24", // documentation (TEST-NET-2)
  "203.0.113.0/24", // documentation (TEST-NET-3)
  "224.0.0.0/4", // multicast
  "240.0.0.0/4", // reserved
];

export const V6_BOGONS = [
  "::/8", // loopback, unspecified, IPv4-mapped and -compatible
  "100::/64", // discard only
  "2001:db8::/32", // documentation
  "fc00::/7", // unique local
  "fe80::/10", // link local
  "fec0::/10", // site local (deprecated)
  "ff00::/8", // multicast
];

// Only routes inside this prefix are accepted at all.
export const V6_ALLOWED = "2000::/3";

// Longer routes are rejected.
export const V4_MAX_LENGTH = 24;
export const V6_MAX_LENGTH = 48;

const TWO_16 = 0x10000;
const TWO_32 = 0x100000000;
const TWO_48 = TWO_32 * TWO_16;

// [u32 address, length] of an IPv4 prefix in CIDR text.
export function parseV4(text) {
  const [address, length] = text.split("/");
  const octets = address.split(".").map(Number);
  return [((octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]) >>> 0, Number(length)];
}

// [first 48 bits as a Number, length] of an IPv6 prefix in CIDR text (the
// rules never look further).
export function parseV6(text) {
  const [address, length] = text.split("/");
  const [head, tail] = address.includes("::") ? address.split("::") : [address, null];
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = tail === null ? left : [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
  const g = groups.map((group) => parseInt(group, 16));
  return [(g[0] * TWO_16 + g[1]) * TWO_16 + g[2], Number(length)];
}

export const V4_RANGES = V4_BOGONS.map(parseV4);
export const V6_RANGES = V6_BOGONS.map(parseV6);
export const V6_ALLOWED_RANGE = parseV6(V6_ALLOWED);

// Whether the IPv4 route address/length lies inside prefix/prefixLength.
function insideV4(address, length, prefix, prefixLength) {
  if (length < prefixLength) return false;
  if (prefixLength === 0) return true;
  const shift = 32 - prefixLength;
  return address >>> shift === prefix >>> shift;
}

// The same for IPv6, on the first 48 bits (`top48`, a Number below 2^48); a
// prefix longer than /48 holds no route of /48 or shorter.
function insideV6(top48, length, prefix48, prefixLength) {
  if (length < prefixLength || prefixLength > 48) return false;
  const unit = 2 ** (48 - prefixLength);
  return Math.floor(top48 / unit) === Math.floor(prefix48 / unit);
}

// The rule for one IPv4 route; `address` is a u32.
export function isBogonV4(address, length) {
  if (length > V4_MAX_LENGTH) return true;
  return V4_RANGES.some(([p, pl]) => insideV4(address, length, p, pl));
}

// The rule for one IPv6 route, given the high u64 of its address (a Number).
// The low half never matters: a route longer than /48 is rejected anyway, and
// one of /48 or shorter is decided by its first 48 bits.
export function isBogonV6(high, length) {
  if (length > V6_MAX_LENGTH) return true;
  const top48 = Math.floor(high / TWO_16);
  if (!insideV6(top48, length, ...V6_ALLOWED_RANGE)) return true;
  return V6_RANGES.some(([p, pl]) => insideV6(top48, length, p, pl));
}

// --- Column decisions -------------------------------------------------------
//
// Both families use a table indexed by the first 16 bits of the address. Its
// entry is a threshold t: a route whose first 16 bits are that key is a bogon
// exactly when its length >= t. Why that is exact: a bogon P/L with L <= 16
// covers whole keys, and a route starting with such a key lies inside P/L
// exactly when its length >= L. So a key's threshold is the smallest such L,
// or the length limit + 1 (25, 49) where no bogon covers the key; as no
// threshold exceeds limit + 1, every route over the limit is rejected too.
// A key in which a bogon longer than /16 starts (192.0.2.0/24 in 192.0) gets
// EXAMINE instead, and its routes are decided one by one by the rules above:
// rare, and still cheap.

const KEY_BITS = 16;
export const EXAMINE = 255; // larger than any real length; see above

// The threshold table of `ranges`, given each prefix's first 16 bits.
function thresholdTable(ranges, firstKey, maxLength) {
  const table = new Uint8Array(1 << KEY_BITS).fill(maxLength + 1);
  for (const [prefix, length] of ranges) {
    const first = firstKey(prefix);
    if (length > KEY_BITS) {
      table[first] = EXAMINE;
      continue;
    }
    for (let key = first; key < first + (1 << (KEY_BITS - length)); key++) {
      if (table[key] !== EXAMINE) table[key] = Math.min(table[key], length);
    }
  }
  return table;
}

export const V4_TABLE = thresholdTable(V4_RANGES, (p) => p >>> 16, V4_MAX_LENGTH);

// IPv6: the bogons, and every key outside 2000::/3 rejected from the allowed
// prefix's length on (shorter routes are refused by V6_FLOOR). That rule
// decides such a key whole, so it needs no EXAMINE (100::/64).
export const V6_TABLE = (() => {
  const table = thresholdTable(V6_RANGES, (p) => Math.floor(p / TWO_32), V6_MAX_LENGTH);
  const [allowed, allowedLength] = V6_ALLOWED_RANGE;
  const shift = KEY_BITS - allowedLength;
  const allowedKey = Math.floor(allowed / TWO_32) >>> shift;
  for (let key = 0; key < 1 << KEY_BITS; key++) {
    if (key >>> shift !== allowedKey) {
      table[key] = table[key] === EXAMINE ? allowedLength : Math.min(table[key], allowedLength);
    }
  }
  return table;
})();

// An IPv6 route shorter than this is not inside 2000::/3, whatever its bits.
export const V6_FLOOR = V6_ALLOWED_RANGE[1];

// Writes 0 (accept) or 1 (reject) for each IPv4 route into `out` from
// `offset` on. `addresses`: the u32s; `lengths`: the lengths (a Uint8Array).
export function v4Verdicts(addresses, lengths, out, offset) {
  const table = V4_TABLE;
  const n = lengths.length;
  for (let i = 0; i < n; i++) {
    const address = addresses[i];
    const length = lengths[i];
    const t = table[address >>> 16];
    out[offset + i] = length >= t ? 1 : t !== EXAMINE ? 0 : isBogonV4(address, length) ? 1 : 0;
  }
}

// The same for IPv6: `addresses` holds two u64 per route, high then low (only
// the high halves are read).
export function v6Verdicts(addresses, lengths, out, offset) {
  const table = V6_TABLE;
  const floor = V6_FLOOR;
  const n = lengths.length;
  for (let i = 0; i < n; i++) {
    const high = addresses[2 * i];
    const length = lengths[i];
    // The first 16 bits; min() keeps a high half rounded up to 2^64 in the table.
    const t = table[Math.min(Math.floor(high / TWO_48), 0xffff)];
    out[offset + i] =
      length < floor || length >= t ? 1 : t !== EXAMINE ? 0 : isBogonV6(high, length) ? 1 : 0;
  }
}

// The keys of `settings` this plugin does not know: all of them, in the
// config's order (it has no settings).
export function unknownSettings(settings) {
  return settings.map(([key]) => key);
}
