// {{name}}: a wasmbgp exporter (world `exporter`), in JavaScript.
//
// Counts the routes each neighbor announces and withdraws (after import
// policy) into two metrics, served on wasmbgp's `/metrics` as
// `wasmbgp_plugin_routes_announced_total` and
// `wasmbgp_plugin_routes_withdrawn_total` with labels `plugin` and `neighbor`.
// No settings.
//
// Built with componentize-qjs: the host's interfaces are ES modules named by
// their WIT interface and package version; the world's export is an object
// named in camelCase. Variants are `{ tag, val }` with the WIT case names.

import metrics from "wasmbgp:plugin/metrics@0.2.0";

const ANNOUNCED = "routes_announced_total";
const WITHDRAWN = "routes_withdrawn_total";

// Every instance first receives a snapshot of the routes as they are, closed by
// `end-of-snapshot`; metric values outlive restarts, so only the changes after
// it are counted. (One component instance runs one JavaScript realm: module
// state is the plugin's state.)
let inSnapshot = true;

// An address as text. IPv6 comes as two 64-bit halves, which a JavaScript
// Number holds exactly only below 2^53: good enough for a label.
function address(ip) {
  if (ip.tag === "v4") {
    return [24, 16, 8, 0].map((shift) => (ip.val >>> shift) & 0xff).join(".");
  }
  const groups = [];
  for (const half of ip.val) {
    const big = BigInt(half);
    for (const shift of [48n, 32n, 16n, 0n]) groups.push(((big >> shift) & 0xffffn).toString(16));
  }
  // The longest run of two or more zero groups becomes "::" (RFC 5952).
  let [start, length] = [0, 0];
  for (let i = 0, j; i < 8; i = j + 1) {
    for (j = i; j < 8 && groups[j] === "0"; j++);
    if (j - i > length) [start, length] = [i, j - i];
  }
  if (length < 2) return groups.join(":");
  return `${groups.slice(0, start).join(":")}::${groups.slice(start + length).join(":")}`;
}

// One line for a metrics error thrown by an import.
function describe(error) {
  const variant = error && error.payload;
  return variant && typeof variant.tag === "string" ? `${variant.tag}: ${variant.val}` : String(error);
}

// Called once per instance with `[plugin.settings]` ([key, value] pairs);
// throwing a string is a configuration error: the plugin does not start.
function init(settings) {
  if (settings.length > 0) throw `unknown setting(s): ${settings.map(([key]) => key).join(", ")}`;
  try {
    metrics.register(ANNOUNCED, "Routes announced by the neighbor.", "counter", ["neighbor"], []);
    metrics.register(WITHDRAWN, "Routes withdrawn by the neighbor.", "counter", ["neighbor"], []);
  } catch (error) {
    throw describe(error);
  }
}

// Handles a batch of events, in the order the speaker saw them.
function onEvents(events) {
  for (const event of events) {
    if (event.tag === "end-of-snapshot") {
      inSnapshot = false;
    } else if (event.tag === "routes" && !inSnapshot && event.val.direction === "received") {
      const update = event.val;
      const neighbor = [address(update.session.neighbor)];
      try {
        metrics.add(ANNOUNCED, neighbor, update.v4Lengths.length + update.v6Lengths.length);
        metrics.add(WITHDRAWN, neighbor, update.withdrawnV4Lengths.length + update.withdrawnV6Lengths.length);
      } catch (error) {
        // Past `grants.max-series`: the host counts it.
      }
    }
  }
}

export const eventSink = { init, onEvents };
