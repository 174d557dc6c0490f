"""The bogon rules of bogon-filter-py, in plain Python.

This module does not import the WIT bindings, so the rules can be tested
with an ordinary interpreter (see test_bogons.py); app.py wraps them in the
`route-policy` export.

Routes arrive as integers, as in `wasmbgp:plugin/types`: an IPv4 address is
a u32 (192.0.2.0 = 0xc0000200), an IPv6 address two u64 halves, high first.

A route (address, length) lies inside a prefix P/L when length >= L and the
first L bits of the address are those of P; bits past `length` never
matter. A route is a bogon, and is rejected, when

- IPv4: it is longer than /24, or it lies inside one of `V4_BOGONS`;
- IPv6: it is longer than /48, or it does not lie inside `V6_ALLOWED`
  (2000::/3, global unicast; so `::/0` is rejected too), or it lies inside
  one of `V6_BOGONS`.

A route shorter than a bogon prefix (0.0.0.0/0, 8.0.0.0/5) merely covers it
and is not a bogon.

`is_bogon_v4` and `is_bogon_v6` say that directly, one route at a time.
`v4_verdicts` and `v6_verdicts` decide whole columns with lookup tables
computed from the same lists when the module is imported (componentize-py
runs the import at build time, so the tables are part of the component):
about one table lookup and one comparison per route.
"""

import ipaddress
from typing import Iterable, List, Sequence, Tuple

V4_BOGONS = (
    "0.0.0.0/8",  # "this" network
    "10.0.0.0/8",  # private (RFC 1918)
    "100.64.0.0/10",  # shared address space (carrier-grade NAT)
    "127.0.0.0/8",  # loopback
    "169.254.0.0/16",  # link local
    "172.16.0.0/12",  # private (RFC 1918)
    "192.0.0.0/24",  # IETF protocol assignments
    "192.0.2.0/24",  # documentation (TEST-NET-1)
    "192.168.0.0/16",  # private (RFC 1918)
    "198.18.0.0/15",  # benchmarking
    "198.51.100.0/24",  # documentation (TEST-NET-2)
    "203.0.113.0/24",  # documentation (TEST-NET-3)
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved
)

V6_BOGONS = (
    "::/8",  # loopback, unspecified, IPv4-mapped and -compatible
    "100::/64",  # discard only
    "2001:db8::/32",  # documentation
    "fc00::/7",  # unique local
    "fe80::/10",  # link local
    "fec0::/10",  # site local (deprecated)
    "ff00::/8",  # multicast
)

# Only routes inside this prefix are accepted at all.
V6_ALLOWED = "2000::/3"

# Longer routes are rejected.
V4_MAX_LENGTH = 24
V6_MAX_LENGTH = 48


def _ranges(texts: Iterable[str]) -> Tuple[Tuple[int, int], ...]:
    """(address as an integer, length) for each prefix in CIDR text."""
    networks = (ipaddress.ip_network(text) for text in texts)
    return tuple((int(net.network_address), net.prefixlen) for net in networks)


V4_RANGES = _ranges(V4_BOGONS)
V6_RANGES = _ranges(V6_BOGONS)
V6_ALLOWED_RANGE = _ranges([V6_ALLOWED])[0]


def inside(address: int, length: int, bits: int, prefix: int, prefix_length: int) -> bool:
    """Whether the route `address`/`length` lies inside `prefix`/`prefix_length`
    in an address space of `bits` bits (32 or 128)."""
    if length < prefix_length:
        return False
    shift = bits - prefix_length
    return address >> shift == prefix >> shift


def is_bogon_v4(address: int, length: int) -> bool:
    """The rule for one IPv4 route; `address` is a u32."""
    if length > V4_MAX_LENGTH:
        return True
    return any(inside(address, length, 32, p, pl) for p, pl in V4_RANGES)


def is_bogon_v6(high: int, length: int) -> bool:
    """The rule for one IPv6 route, given the high u64 of its address.

    The low half never matters: a route longer than /48 is rejected
    anyway, and one of /48 or shorter is decided by its first 48 bits.
    """
    if length > V6_MAX_LENGTH:
        return True
    address = high << 64
    if not inside(address, length, 128, *V6_ALLOWED_RANGE):
        return True
    return any(inside(address, length, 128, p, pl) for p, pl in V6_RANGES)


# --- Column decisions -------------------------------------------------------
#
# Both families use a table indexed by the first 16 bits of the address. Its
# entry is a threshold t: a route whose first 16 bits are that key is a bogon
# exactly when its length >= t. Why that is exact: a bogon P/L with L <= 16
# covers whole keys, and a route starting with such a key lies inside P/L
# exactly when its length >= L. So a key's threshold is the smallest such L,
# or the length limit + 1 (25, 49) where no bogon covers the key; as no
# threshold exceeds limit + 1, every route over the limit is rejected too.
# A key in which a bogon longer than /16 starts (192.0.2.0/24 in 192.0) gets
# EXAMINE instead, and its routes are decided one by one by the rules above:
# rare, and still cheap.

KEY_BITS = 16
EXAMINE = 255  # larger than any real length; see above


def _threshold_table(bits: int, ranges: Sequence[Tuple[int, int]], max_length: int) -> bytearray:
    """The threshold table for the bogon `ranges` of a `bits`-bit family."""
    key_shift = bits - KEY_BITS
    table = bytearray([max_length + 1]) * (1 << KEY_BITS)
    for prefix, length in ranges:
        first = prefix >> key_shift
        if length > KEY_BITS:
            table[first] = EXAMINE
            continue
        for key in range(first, first + (1 << (KEY_BITS - length))):
            if table[key] != EXAMINE:
                table[key] = min(table[key], length)
    return table


def _v6_table() -> bytes:
    """IPv6: the bogons, and every key outside 2000::/3 rejected from the
    allowed prefix's length on (shorter routes are refused by `V6_FLOOR`).
    That rule decides such a key whole, so it needs no EXAMINE (100::/64)."""
    table = _threshold_table(128, V6_RANGES, V6_MAX_LENGTH)
    allowed, allowed_length = V6_ALLOWED_RANGE
    shift = KEY_BITS - allowed_length
    for key in range(1 << KEY_BITS):
        if key >> shift != allowed >> (128 - allowed_length):
            table[key] = allowed_length if table[key] == EXAMINE else min(table[key], allowed_length)
    return bytes(table)


V4_TABLE = bytes(_threshold_table(32, V4_RANGES, V4_MAX_LENGTH))
V6_TABLE = _v6_table()
# An IPv6 route shorter than this is not inside 2000::/3, whatever its bits.
V6_FLOOR = V6_ALLOWED_RANGE[1]


def v4_verdicts(addresses: Sequence[int], lengths: Iterable[int]) -> List[int]:
    """0 (accept) or 1 (reject) for each IPv4 route, in order."""
    table, slow = V4_TABLE, is_bogon_v4
    return [
        1 if length >= (t := table[address >> 16])
        else (0 if t != EXAMINE else int(slow(address, length)))
        for address, length in zip(addresses, lengths)
    ]


def v6_verdicts(addresses: Sequence[int], lengths: Iterable[int]) -> List[int]:
    """0 (accept) or 1 (reject) for each IPv6 route, in order; `addresses`
    holds two u64 per route, high then low (only the high halves are read)."""
    table, slow, floor = V6_TABLE, is_bogon_v6, V6_FLOOR
    return [
        1 if length < floor or length >= (t := table[high >> 48])
        else (0 if t != EXAMINE else int(slow(high, length)))
        for high, length in zip(addresses[0::2], lengths)
    ]


def unknown_settings(settings: Iterable[Tuple[str, str]]) -> List[str]:
    """The keys of `settings` this plugin does not know: all of them, in the
    config's order (it has no settings)."""
    return [key for key, _ in settings]
