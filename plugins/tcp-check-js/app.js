// tcp-check in JavaScript: healthy while a TCP connection to `address` succeeds.
//
// The twin of plugins/tcp-check (Rust), built with componentize-qjs against the
// same WIT world (`wasmbgp:plugin/healthcheck` of `wasmbgp:plugin@0.2.0`, named
// in the file `world`). Settings: `address` ("IP:PORT", required), `timeout`
// (a duration such as 500ms, 2s or 1m30s; a bare number is seconds; default 1s).
//
// Bindings (componentize-qjs): an import is an ES module named by its WIT
// interface with the package version; an export interface is an object named
// in camelCase. A `result` is returned or thrown: throwing a string is `err`,
// and an import's `err` arrives as an Error whose `payload` is the variant
// (`{ tag: "refused", val: "..." }`).

import probe from "wasmbgp:plugin/probe@0.2.0";

const KNOWN = ["address", "timeout"];

// One component instance runs one JavaScript realm: module state is the
// plugin's state.
let address = "";
let timeoutMs = 1000;

const UNITS = { us: 0.001, "µs": 0.001, ms: 1, s: 1000, m: 60000, min: 60000, h: 3600000 };

// Milliseconds of "500ms", "2s", "1m30s", "250us" or "3" (seconds), as the
// Rust SDK reads durations; null when the text is none of these.
export function parseDurationMs(text) {
  text = text.trim();
  if (text === "") return null;
  if (/^[0-9]+$/.test(text)) return Number(text) * 1000;
  let total = 0;
  const term = /([0-9]+)\s*([^0-9]*)/y;
  let match;
  while (term.lastIndex < text.length && (match = term.exec(text)) !== null) {
    const unit = UNITS[match[2].trim()];
    if (unit === undefined) return null;
    total += Number(match[1]) * unit;
  }
  return term.lastIndex === text.length ? total : null;
}

// One line for a probe error (the variant `probe-error`), as the Rust SDK says it.
function describe(error) {
  const variant = error && error.payload;
  if (!variant || typeof variant.tag !== "string") return String(error);
  if (variant.tag === "timeout") return "timed out";
  return `${variant.tag}: ${variant.val}`;
}

function init(settings) {
  const values = new Map(settings);
  const unknown = settings.map(([key]) => key).filter((key) => !KNOWN.includes(key));
  if (unknown.length > 0) throw `unknown setting(s): ${unknown.join(", ")}`;
  if (!values.has("address")) throw "setting `address` is required";
  let ms = 1000;
  if (values.has("timeout")) {
    const value = values.get("timeout");
    ms = parseDurationMs(value);
    if (ms === null) {
      throw `setting \`timeout\` = ${JSON.stringify(value)} is invalid: expected a duration such as 500ms, 2s or 1m`;
    }
  }
  address = values.get("address");
  // Whole milliseconds, capped to a u32 (the host caps probes at 10 s anyway).
  timeoutMs = Math.min(Math.floor(ms), 0xffffffff);
}

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
