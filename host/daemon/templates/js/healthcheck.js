// {{name}}: a wasmbgp health check (world `healthcheck`), in JavaScript.
//
// Healthy while a TCP connection to `address` succeeds. Settings: `address`
// ("IP:PORT", required; the config must grant it in `grants.tcp`), `timeout`
// (milliseconds, or e.g. "500ms" / "2s"; default 1s).
//
// Built with componentize-qjs: the host's interfaces are ES modules named by
// their WIT interface and package version; the world's export is an object
// named in camelCase. A `result` is returned or thrown: throwing a string is
// `err`, and an import's `err` arrives as an Error whose `payload` is the WIT
// variant (`{ tag: "refused", val: "..." }`).

import probe from "wasmbgp:plugin/probe@0.2.0";

const KNOWN = ["address", "timeout"];

// One component instance runs one JavaScript realm: module state is the
// plugin's state.
let address = "";
let timeoutMs = 1000;

// Milliseconds of "500ms", "2s" or "1500"; null when the text is none of these.
function parseTimeoutMs(text) {
  const match = /^\s*([0-9]+)\s*(ms|s)?\s*$/.exec(text);
  if (match === null) return null;
  return Number(match[1]) * (match[2] === "s" ? 1000 : 1);
}

// One line for a probe error.
function describe(error) {
  const variant = error && error.payload;
  if (!variant || typeof variant.tag !== "string") return String(error);
  return variant.tag === "timeout" ? "timed out" : `${variant.tag}: ${variant.val}`;
}

// Called once per instance with `[plugin.settings]` ([key, value] pairs);
// throwing a string is a configuration error: the plugin does not start.
function init(settings) {
  const values = new Map(settings);
  const unknown = settings.map(([key]) => key).filter((key) => !KNOWN.includes(key));
  if (unknown.length > 0) throw `unknown setting(s): ${unknown.join(", ")}`;
  if (!values.has("address")) throw "setting `address` is required";
  address = values.get("address");
  if (values.has("timeout")) {
    timeoutMs = parseTimeoutMs(values.get("timeout"));
    if (timeoutMs === null) {
      throw `setting \`timeout\` = ${JSON.stringify(values.get("timeout"))} is invalid: expected e.g. 500ms or 2s`;
    }
  }
}

// Called on the host's schedule: returning a detail is healthy, throwing the
// reason (a string) is not.
function check() {
  let micros;
  try {
    micros = probe.tcpConnect(address, timeoutMs);
  } catch (error) {
    throw describe(error);
  }
  return `connected to ${address} in ${micros} µs`;
}

export const healthCheck = { init, check };
