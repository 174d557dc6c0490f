// route-stats in JavaScript: per-neighbor route counts as metrics, from the
// routes each neighbor sent (after import policy).
//
// The JavaScript counterpart of plugins/route-stats (Rust), built with
// componentize-qjs for the WIT world `wasmbgp:plugin/exporter` (see `world`).
// Same metrics, same rules (see README.md for what differs):
//
// - routes_active (gauge): the neighbor's distinct active prefixes;
// - routes_received_total (counter): announced routes, re-announcements
//   included;
// - routes_withdrawn_total (counter): withdrawn prefixes that were active.
//
// Only routes of direction `received` count. When a session leaves
// `established` its prefixes are gone and routes_active drops to 0. Metric
// values live in the host and survive restarts, so the snapshot that starts
// every instance rebuilds the sets and sets the gauge without counting its
// routes again. After `lagged` the plugin asks for a resync and rebuilds from
// the fresh snapshot the same way.
//
// Bindings (componentize-qjs): an event is `{ tag, val }` with the WIT case
// name as tag ("routes", "end-of-snapshot"); records have camelCase fields;
// list<u8> columns are Uint8Arrays, the others Arrays of Numbers. A u64 is a
// Number: an IPv6 address half with more than 53 significant bits arrives
// rounded, so two such prefixes can share a key here (see README.md).

import feed from "wasmbgp:plugin/feed@0.2.0";
import log from "wasmbgp:plugin/log@0.2.0";
import metrics from "wasmbgp:plugin/metrics@0.2.0";

// The metric names (the contract: docs and dashboards rely on them).
export const ACTIVE = "routes_active";
export const RECEIVED = "routes_received_total";
export const WITHDRAWN = "routes_withdrawn_total";

// Neighbors by address text: { label, v4: Set, v6: Set, stale }. An IPv4
// prefix is the Number address * 256 + length; an IPv6 prefix a string of
// its two halves and its length.
const neighbors = new Map();
// Replaying a snapshot: rebuild, but do not count.
let inSnapshot = true;
// A resync was asked for: the rest of this batch is skipped (the next batch
// starts with the fresh snapshot).
let skipBatch = false;

const TWO_16 = 0x10000;
const TWO_32 = 0x100000000;

// One line for a metric-error variant, as the Rust SDK says it.
function describeMetricError(error) {
  const variant = error && error.payload;
  if (!variant || typeof variant.tag !== "string") return String(error);
  if (variant.tag === "series-limit") return `metric series limit (grants.max-series): ${variant.val}`;
  return `invalid metric call: ${variant.val}`;
}

// Runs a metric update; a failure is logged (the host counts it too).
function report(update) {
  try {
    update();
  } catch (error) {
    log.log("warn", `route-stats: ${describeMetricError(error)}`);
  }
}

// The four 16-bit groups of a u64 half (a Number).
function groups(half) {
  return [
    Math.floor(half / (TWO_32 * TWO_16)) % TWO_16,
    Math.floor(half / TWO_32) % TWO_16,
    Math.floor(half / TWO_16) % TWO_16,
    half % TWO_16,
  ];
}

// An `ip-address` as text, as Rust's std formats it (RFC 5952: the longest
// run of two or more zero groups as "::", IPv4-mapped as ::ffff:a.b.c.d).
export function addressText(address) {
  if (address.tag === "v4") {
    const a = address.val;
    return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
  }
  const g = [...groups(address.val[0]), ...groups(address.val[1])];
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) {
    return `::ffff:${g[6] >>> 8}.${g[6] & 255}.${g[7] >>> 8}.${g[7] & 255}`;
  }
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  const hex = (list) => list.map((x) => x.toString(16)).join(":");
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLength))}`;
}

function neighbor(address) {
  const label = addressText(address);
  let n = neighbors.get(label);
  if (n === undefined) {
    n = { label: [label], v4: new Set(), v6: new Set(), stale: false };
    neighbors.set(label, n);
  }
  n.stale = false;
  return n;
}

function size(n) {
  return n.v4.size + n.v6.size;
}

function clear(n) {
  // Give the memory back: a neighbor that went down may not come back.
  n.v4 = new Set();
  n.v6 = new Set();
}

function session(change) {
  const n = neighbor(change.session.neighbor);
  // Not established: its routes are gone. Established in a snapshot: its
  // routes follow, from none.
  if (change.new !== "established" || inSnapshot) clear(n);
  report(() => metrics.set(ACTIVE, n.label, size(n)));
}

function routes(update) {
  if (update.direction !== "received") return;
  const n = neighbor(update.session.neighbor);
  const before = size(n);
  const { v4, v6 } = n;
  const a4 = update.v4Addresses;
  const l4 = update.v4Lengths;
  for (let i = 0; i < l4.length; i++) v4.add(a4[i] * 256 + l4[i]);
  const a6 = update.v6Addresses;
  const l6 = update.v6Lengths;
  for (let i = 0; i < l6.length; i++) v6.add(`${a6[2 * i]} ${a6[2 * i + 1]} ${l6[i]}`);
  let withdrawn = 0;
  const w4 = update.withdrawnV4Addresses;
  const wl4 = update.withdrawnV4Lengths;
  for (let i = 0; i < wl4.length; i++) if (v4.delete(w4[i] * 256 + wl4[i])) withdrawn++;
  const w6 = update.withdrawnV6Addresses;
  const wl6 = update.withdrawnV6Lengths;
  for (let i = 0; i < wl6.length; i++) if (v6.delete(`${w6[2 * i]} ${w6[2 * i + 1]} ${wl6[i]}`)) withdrawn++;
  if (!inSnapshot) {
    const announced = l4.length + l6.length;
    if (announced > 0) report(() => metrics.add(RECEIVED, n.label, announced));
    if (withdrawn > 0) report(() => metrics.add(WITHDRAWN, n.label, withdrawn));
  }
  if (size(n) !== before || inSnapshot) report(() => metrics.set(ACTIVE, n.label, size(n)));
}

function endOfSnapshot() {
  inSnapshot = false;
  for (const n of neighbors.values()) {
    if (!n.stale) continue;
    clear(n);
    report(() => metrics.set(ACTIVE, n.label, 0));
  }
}

// The view was lost: forget it and ask for a fresh snapshot.
function lagged(lost) {
  log.log("warn", `route-stats: ${lost} events lost; resyncing`);
  for (const n of neighbors.values()) {
    clear(n);
    n.stale = true;
  }
  inSnapshot = true;
  skipBatch = true;
  feed.resync();
}

function register(name, help, kind) {
  try {
    metrics.register(name, help, kind, ["neighbor"], []);
  } catch (error) {
    throw describeMetricError(error);
  }
}

function init(settings) {
  const unknown = settings.map(([key]) => key);
  if (unknown.length > 0) throw `unknown setting(s): ${unknown.join(", ")}`;
  register(ACTIVE, "Distinct prefixes the neighbor has announced and not withdrawn (after import policy).", "gauge");
  register(RECEIVED, "Routes announced by the neighbor (after import policy), re-announcements included.", "counter");
  register(WITHDRAWN, "Active prefixes the neighbor withdrew (or import policy rejected).", "counter");
}

function onEvents(events) {
  skipBatch = false;
  for (const event of events) {
    if (skipBatch) return;
    switch (event.tag) {
      case "session":
        session(event.val);
        break;
      case "routes":
        routes(event.val);
        break;
      case "end-of-snapshot":
        endOfSnapshot();
        break;
      case "lagged":
        lagged(event.val);
        break;
      default:
        break;
    }
  }
}

export const eventSink = { init, onEvents };
