// Tests of bogons.js with a plain `node` (no WIT bindings needed):
//
//     node --test plugins/bogon-filter-js/test_bogons.mjs
//
// The cases of the Rust bogon-filter's tests, every bogon probed at its edges,
// and the column functions checked against the one-route rules on those
// probes and on pseudo-random routes.

import assert from "node:assert/strict";
import test from "node:test";

import * as b from "./bogons.js";

const TWO_64 = 2 ** 64;

// [high u64 as a Number, length] of an IPv6 prefix in text.
function v6(text) {
  const [top48, length] = b.parseV6(text);
  return [top48 * 0x10000, length];
}

function judgeV4(texts) {
  const routes = texts.map(b.parseV4);
  const out = new Uint32Array(routes.length);
  b.v4Verdicts(routes.map((r) => r[0]), Uint8Array.from(routes.map((r) => r[1])), out, 0);
  return [...out];
}

function judgeV6(texts) {
  const routes = texts.map(v6);
  const out = new Uint32Array(routes.length);
  b.v6Verdicts(routes.flatMap((r) => [r[0], 0]), Uint8Array.from(routes.map((r) => r[1])), out, 0);
  return [...out];
}

test("the Rust plugin's cases", () => {
  const rejected4 = [...b.V4_BOGONS, "10.1.2.0/24", "192.0.2.0/25", "8.8.8.0/25"];
  assert.deepEqual(judgeV4(rejected4), rejected4.map(() => 1));
  const rejected6 = [...b.V6_BOGONS, "2001:db8:1::/48", "3000::/49", "4000::/16", "::/0", "fd00::/8"];
  assert.deepEqual(judgeV6(rejected6), rejected6.map(() => 1));
  assert.deepEqual(judgeV4(["8.8.8.0/24", "192.0.0.0/8", "0.0.0.0/0", "11.0.0.0/8"]), [0, 0, 0, 0]);
  assert.deepEqual(judgeV6(["2001:db9::/32", "2a00::/12", "2000::/3"]), [0, 0, 0]);
});

// Routes around prefix/length in a `bits`-bit space (addresses as BigInt):
// [address, length, inside?].
function edgeRoutes(bits, prefix, length, maxLength) {
  const B = BigInt(bits);
  const size = 1n << (B - BigInt(length));
  const last = prefix + size - 1n;
  const top = (1n << B) - 1n;
  const cut = (address, sub) => (address >> (B - BigInt(sub))) << (B - BigInt(sub));
  const routes = [];
  for (let sub = length; sub <= maxLength; sub++) {
    routes.push([prefix, sub, true], [cut(last, sub), sub, true]);
  }
  for (const sub of [length, maxLength]) {
    if (prefix > 0n) routes.push([cut(prefix - 1n, sub), sub, false]);
    if (last < top) routes.push([cut(last + 1n, sub), sub, false]);
  }
  for (let sub = Math.max(0, length - 3); sub < length; sub++) routes.push([cut(prefix, sub), sub, false]);
  return routes;
}

test("IPv4: every bogon at its edges, table = rule", () => {
  for (const [prefix, length] of b.V4_RANGES) {
    const routes = edgeRoutes(32, BigInt(prefix), length, 24);
    const addresses = routes.map(([a]) => Number(a));
    const lengths = Uint8Array.from(routes.map(([, l]) => l));
    const out = new Uint32Array(routes.length);
    b.v4Verdicts(addresses, lengths, out, 0);
    routes.forEach(([, sub, inside], i) => {
      if (inside) assert.equal(b.isBogonV4(addresses[i], sub), true, `${addresses[i]}/${sub}`);
      assert.equal(out[i], b.isBogonV4(addresses[i], sub) ? 1 : 0, `${addresses[i]}/${sub}`);
    });
  }
});

test("IPv6: every bogon at its edges, table = rule", () => {
  for (const [prefix48, length] of [...b.V6_RANGES, b.V6_ALLOWED_RANGE]) {
    if (length > 48) continue;
    const routes = edgeRoutes(48, BigInt(prefix48), length, 48);
    const highs = routes.map(([a]) => Number(a) * 0x10000);
    const lengths = Uint8Array.from(routes.map(([, l]) => l));
    const out = new Uint32Array(routes.length);
    b.v6Verdicts(highs.flatMap((h) => [h, 0]), lengths, out, 0);
    routes.forEach(([, sub], i) => {
      assert.equal(out[i], b.isBogonV6(highs[i], sub) ? 1 : 0, `${highs[i].toString(16)}/${sub}`);
    });
  }
});

test("pseudo-random routes: table = rule", () => {
  let seed = 12345;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  const n = 200000;
  const a4 = [], l4 = new Uint8Array(n), a6 = [], l6 = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    l4[i] = next() % 33;
    const host = 32 - l4[i];
    a4.push(host === 32 ? 0 : ((next() >>> host) << host) >>> 0);
    l6[i] = next() % 65;
    const top48 = (next() % 0x10000) * 0x100000000 + next();
    const unit = 2 ** Math.max(0, 48 - l6[i]);
    a6.push(Math.floor(top48 / unit) * unit * 0x10000 % TWO_64, next());
  }
  const out = new Uint32Array(2 * n);
  b.v4Verdicts(a4, l4, out, 0);
  b.v6Verdicts(a6, l6, out, n);
  for (let i = 0; i < n; i++) {
    assert.equal(out[i], b.isBogonV4(a4[i], l4[i]) ? 1 : 0);
    assert.equal(out[n + i], b.isBogonV6(a6[2 * i], l6[i]) ? 1 : 0);
  }
});

test("every setting is unknown", () => {
  assert.deepEqual(b.unknownSettings([["strict", "yes"], ["x", "1"]]), ["strict", "x"]);
});
