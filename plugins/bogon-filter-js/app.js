// bogon-filter in JavaScript: rejects bogon routes on import, accepts the rest.
//
// The twin of plugins/bogon-filter (Rust), built with componentize-qjs against
// the WIT world `wasmbgp:plugin/policy` (see `world`). The rules live in
// bogons.js, which is plain JavaScript and tested without the bindings
// (test_bogons.mjs). No settings.
//
// A batch arrives as the record `route-batch` with camelCase fields:
// `direction` is "import" or "export", `v4Addresses` an Array of Numbers,
// `v4Lengths` and `v6Lengths` Uint8Arrays, `v6Addresses` an Array of Numbers
// (two per route). The verdicts go back as one Uint32Array, which the
// bindings copy in bulk.

import { unknownSettings, v4Verdicts, v6Verdicts } from "./bogons.js";

function init(settings, _files) {
  const unknown = unknownSettings(settings);
  if (unknown.length > 0) throw `unknown setting(s): ${unknown.join(", ")}`;
}

// Verdicts: IPv4 routes first, then IPv6, then the FlowSpec rules (accepted:
// bogons are about prefixes); 0 = accept, 1 = reject.
function evaluate(batch) {
  const v4 = batch.v4Lengths.length;
  const v6 = batch.v6Lengths.length;
  const routes = new Uint32Array(v4 + v6 + batch.flows.length); // all 0: accept
  if (batch.direction === "import") {
    v4Verdicts(batch.v4Addresses, batch.v4Lengths, routes, 0);
    v6Verdicts(batch.v6Addresses, batch.v6Lengths, routes, v4);
  }
  return { routes, attributes: [] };
}

export const routePolicy = { init, evaluate };
