"""Tests of bogons.py with a plain interpreter (no WIT bindings needed):

    python3 -m unittest discover -s plugins/bogon-filter-py -p 'test_*.py'

Every bogon prefix is probed at its edges (first and last address inside,
the neighbours just outside, lengths just shorter than the prefix), and the
fast column functions are checked against the one-route rules on those
probes and on pseudo-random routes.
"""

import ipaddress
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bogons  # noqa: E402


def v4(text):
    """(u32 address, length) of an IPv4 prefix in text; host bits allowed."""
    net = ipaddress.IPv4Network(text, strict=False)
    return int(net.network_address), net.prefixlen


def v6(text):
    """(high u64, low u64, length) of an IPv6 prefix in text."""
    net = ipaddress.IPv6Network(text, strict=False)
    value = int(net.network_address)
    return value >> 64, value & (2**64 - 1), net.prefixlen


def judge_v4(*texts):
    routes = [v4(t) for t in texts]
    return bogons.v4_verdicts([a for a, _ in routes], bytes(l for _, l in routes))


def judge_v6(*texts):
    routes = [v6(t) for t in texts]
    addresses = [half for h, lo, _ in routes for half in (h, lo)]
    return bogons.v6_verdicts(addresses, bytes(l for _, _, l in routes))


def edge_routes(bits, prefix, length, max_length):
    """Routes around the bogon prefix/length: (address, length, inside?)."""
    size = 1 << (bits - length)
    last = prefix + size - 1
    top = (1 << bits) - 1
    routes = []
    # The prefix itself, and its first and last subprefixes at each length
    # up to the limit.
    for sub in range(length, max_length + 1):
        host = bits - sub
        routes.append((prefix, sub, True))
        routes.append((last >> host << host, sub, True))
    # Just outside, at the same and at the longest accepted length.
    for sub in (length, max_length):
        host = bits - sub
        if prefix > 0:
            routes.append(((prefix - 1) >> host << host, sub, False))
        if last < top:
            routes.append(((last + 1) >> host << host, sub, False))
    # Shorter routes that cover the prefix: not inside it.
    for sub in range(max(0, length - 3), length):
        host = bits - sub
        routes.append((prefix >> host << host, sub, False))
    return routes


class Ipv4(unittest.TestCase):
    def test_every_bogon_edge(self):
        for prefix, length in bogons.V4_RANGES:
            for address, sub, inside in edge_routes(32, prefix, length, 24):
                with self.subTest(route=f"{ipaddress.IPv4Address(address)}/{sub}"):
                    expected = inside or any(
                        bogons.inside(address, sub, 32, p, pl) for p, pl in bogons.V4_RANGES
                    )
                    self.assertEqual(bogons.is_bogon_v4(address, sub), expected)
                    self.assertEqual(bogons.v4_verdicts([address], bytes([sub])), [int(expected)])

    def test_named_routes(self):
        cases = {
            "0.0.0.0/8": 1, "0.255.255.0/24": 1, "1.0.0.0/24": 0, "0.0.0.0/0": 0, "0.0.0.0/7": 0,
            "10.0.0.0/8": 1, "10.255.255.0/24": 1, "11.0.0.0/8": 0, "9.255.255.0/24": 0, "10.0.0.0/7": 0,
            "100.64.0.0/10": 1, "100.127.255.0/24": 1, "100.63.255.0/24": 0, "100.128.0.0/24": 0,
            "100.0.0.0/9": 0, "100.64.0.0/9": 0,  # stray host bit: 100.0.0.0/9, not inside /10
            "127.0.0.0/8": 1, "127.1.2.0/24": 1, "126.255.255.0/24": 0, "128.0.0.0/24": 0,
            "169.254.0.0/16": 1, "169.254.255.0/24": 1, "169.253.255.0/24": 0, "169.255.0.0/24": 0,
            "172.16.0.0/12": 1, "172.31.255.0/24": 1, "172.15.255.0/24": 0, "172.32.0.0/24": 0,
            "172.0.0.0/8": 0,
            "192.0.0.0/24": 1, "192.0.1.0/24": 0, "192.0.2.0/24": 1, "192.0.3.0/24": 0,
            "192.0.0.0/23": 0, "192.0.0.0/16": 0, "191.255.255.0/24": 0,
            "192.168.0.0/16": 1, "192.168.255.0/24": 1, "192.167.255.0/24": 0, "192.169.0.0/24": 0,
            "198.18.0.0/15": 1, "198.19.255.0/24": 1, "198.17.255.0/24": 0, "198.20.0.0/24": 0,
            "198.18.0.0/14": 0,
            "198.51.100.0/24": 1, "198.51.99.0/24": 0, "198.51.101.0/24": 0, "198.51.100.0/23": 0,
            "203.0.113.0/24": 1, "203.0.112.0/24": 0, "203.0.114.0/24": 0, "203.0.0.0/16": 0,
            "224.0.0.0/4": 1, "239.255.255.0/24": 1, "223.255.255.0/24": 0, "224.0.0.0/3": 0,
            "240.0.0.0/4": 1, "255.255.255.0/24": 1,
            "8.8.8.0/24": 0, "1.1.1.0/24": 0, "193.0.0.0/8": 0,
        }
        got = judge_v4(*cases)
        self.assertEqual(dict(zip(cases, got)), cases)

    def test_length_limit(self):
        self.assertEqual(judge_v4("8.8.8.0/24", "8.8.8.0/25", "8.8.8.8/32", "1.0.0.0/8"), [0, 1, 1, 0])
        # Longer than /24 is rejected in every /16, also where a /24 bogon lives.
        self.assertEqual(judge_v4("192.0.1.0/25", "192.0.1.0/24", "192.0.2.128/25"), [1, 0, 1])
        self.assertEqual(bogons.v4_verdicts([0x08080808], bytes([255])), [1])


class Ipv6(unittest.TestCase):
    def test_every_bogon_edge(self):
        for prefix, length in bogons.V6_RANGES:
            for address, sub, inside in edge_routes(128, prefix, length, max(length, 48)):
                high = address >> 64
                with self.subTest(route=f"{ipaddress.IPv6Address(address)}/{sub}"):
                    if inside:
                        self.assertTrue(bogons.is_bogon_v6(high, sub))
                    expected = bogons.is_bogon_v6(high, sub)
                    self.assertEqual(bogons.v6_verdicts([high, address & (2**64 - 1)], bytes([sub])), [int(expected)])

    def test_named_routes(self):
        cases = {
            "2a00:1450::/32": 0, "2001::/16": 0, "2001:db7::/32": 0, "2001:db9::/32": 0,
            "2001:db8::/32": 1, "2001:db8:ffff::/48": 1, "2001:db8::/31": 0, "2001:db8::/33": 1,
            "2000::/3": 0, "2000::/48": 0, "3fff:ffff:ffff::/48": 0, "2000::/2": 1, "::/0": 1,
            "::/1": 1, "::/3": 1, "1fff:ffff:ffff::/48": 1, "4000::/48": 1, "4000::/3": 1, "8000::/1": 1,
            "::/8": 1, "::ffff:0:0/96": 1, "100::/64": 1, "100::/48": 1,
            "fc00::/7": 1, "fd00::/8": 1, "fe80::/10": 1, "fec0::/10": 1, "ff00::/8": 1, "ff02::/16": 1,
        }
        got = judge_v6(*cases)
        self.assertEqual(dict(zip(cases, got)), cases)

    def test_length_limit(self):
        self.assertEqual(
            judge_v6("2a00:1450::/48", "2a00:1450::/49", "2a00:1450::1/128", "2a00::/12"),
            [0, 1, 1, 0],
        )

    def test_low_half_ignored(self):
        # The low u64 is host bits for every route that can be accepted.
        self.assertEqual(bogons.v6_verdicts([0x2A00145000000000, 0xFFFF], bytes([48])), [0])


class Columns(unittest.TestCase):
    def test_tables_agree_with_rules(self):
        rng = random.Random(7)
        addresses, lengths = [], []
        for _ in range(50_000):
            length = rng.randrange(0, 34)
            host = max(0, 32 - length)
            addresses.append(rng.getrandbits(32) >> host << host)
            lengths.append(length)
        # Also every /16 and /24 start, so each table key is visited.
        for key in range(1 << 16):
            addresses += [key << 16, key << 16 | rng.getrandbits(8) << 8]
            lengths += [16, 24]
        expected = [int(bogons.is_bogon_v4(a, l)) for a, l in zip(addresses, lengths)]
        got = bogons.v4_verdicts(addresses, bytes(lengths))
        self.assert_same(got, expected, lambda i: f"{ipaddress.IPv4Address(addresses[i])}/{lengths[i]}")

        highs, lengths6 = [], []
        for _ in range(50_000):
            length = rng.randrange(0, 130)
            host = max(0, 64 - length)
            highs.append(rng.getrandbits(64) >> host << host)
            lengths6.append(length)
        for key in range(1 << 16):
            highs += [key << 48, key << 48 | rng.getrandbits(16) << 32]
            lengths6 += [16, 32]
        expected = [int(bogons.is_bogon_v6(h, l)) for h, l in zip(highs, lengths6)]
        pairs = [half for h in highs for half in (h, 0)]
        got = bogons.v6_verdicts(pairs, bytes(lengths6))
        self.assert_same(got, expected, lambda i: f"{ipaddress.IPv6Address(highs[i] << 64)}/{lengths6[i]}")

    def assert_same(self, got, expected, describe):
        """Equal lists; else names the first few routes that differ (a plain
        assertEqual would diff hundreds of thousands of elements)."""
        self.assertEqual(len(got), len(expected))
        wrong = [i for i, (g, e) in enumerate(zip(got, expected)) if g != e]
        if wrong:
            shown = [f"{describe(i)}: got {got[i]}, want {expected[i]}" for i in wrong[:5]]
            self.fail(f"{len(wrong)} verdicts differ, e.g. {shown}")

    def test_empty(self):
        self.assertEqual(bogons.v4_verdicts([], b""), [])
        self.assertEqual(bogons.v6_verdicts([], b""), [])


class Settings(unittest.TestCase):
    def test_none_known(self):
        self.assertEqual(bogons.unknown_settings([]), [])
        self.assertEqual(bogons.unknown_settings([("strict", "1"), ("max-length", "24")]), ["strict", "max-length"])


if __name__ == "__main__":
    unittest.main()
