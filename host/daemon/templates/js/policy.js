// {{name}}: a wasmbgp routing policy (world `policy`), in JavaScript.
//
// Rejects prefixes longer than `max-length` (IPv4) or `max-length-v6`, and tags
// the routes it accepts with `community`. Settings: `max-length` (default 24),
// `max-length-v6` (default 48), `community` ("65001:100" or no-export,
// no-advertise, no-export-subconfed; none: accepted routes pass unchanged).
//
// Built with componentize-qjs: the world's export is an object named in
// camelCase; records are objects with camelCase fields. Routes come in columns
// (see wit/policy.wit).
//
// Numbers, as componentize-qjs converts them: a u32 of 2^31 or more inside a
// record (a community such as 65000:100) arrives as a negative Number, its 32
// bits read as a signed int32, and goes back the same way, so communities are
// compared and returned in that form (`x | 0`; `x >>> 0` is the unsigned
// value). A u64 is a Number, exact only below 2^53: an extended community above
// that (e.g. a FlowSpec action) would be rounded in an attribute set this policy
// copies; it copies sets only to add `community`.

const KNOWN = ["max-length", "max-length-v6", "community"];
const WELL_KNOWN = { "no-export": 0xffffff01 | 0, "no-advertise": 0xffffff02 | 0, "no-export-subconfed": 0xffffff03 | 0 };
// A verdict: accept unchanged, reject, or MODIFIED + i: with the new attribute set i.
const ACCEPT = 0, REJECT = 1, MODIFIED = 2;

// One component instance runs one JavaScript realm: module state is the
// plugin's state.
let maxV4 = 24;
let maxV6 = 48;
let community = null; // as an int32 (see above)

function parseLength(values, key, fallback, limit) {
  if (!values.has(key)) return fallback;
  const text = values.get(key);
  if (!/^\s*[0-9]+\s*$/.test(text) || Number(text) > limit) {
    throw `setting \`${key}\` = ${JSON.stringify(text)} is invalid: expected a prefix length from 0 to ${limit}`;
  }
  return Number(text);
}

// A standard community as BGP numbers it, 65001:100 is 65001 << 16 | 100, as an
// int32 (JavaScript's bitwise operators make one).
function parseCommunity(text) {
  text = text.trim();
  if (text in WELL_KNOWN) return WELL_KNOWN[text];
  const match = /^([0-9]+):([0-9]+)$/.exec(text);
  if (match !== null && Number(match[1]) <= 0xffff && Number(match[2]) <= 0xffff) {
    return (Number(match[1]) << 16) | Number(match[2]);
  }
  throw `setting \`community\` = ${JSON.stringify(text)} is invalid: expected e.g. 65001:100 or no-export`;
}

// Called once per instance with `[plugin.settings]` ([key, value] pairs) and the
// data files of `grants.files`; throwing a string is a configuration error.
function init(settings, files) {
  const values = new Map(settings);
  const unknown = settings.map(([key]) => key).filter((key) => !KNOWN.includes(key));
  if (unknown.length > 0) throw `unknown setting(s): ${unknown.join(", ")}`;
  maxV4 = parseLength(values, "max-length", 24, 32);
  maxV6 = parseLength(values, "max-length-v6", 48, 128);
  community = values.has("community") ? parseCommunity(values.get("community")) : null;
}

// Judges a batch of routes (received from a neighbor or about to be sent to
// one), given in columns: one verdict per route, the IPv4 routes first, then
// the IPv6 routes, then the FlowSpec rules.
function evaluate(batch) {
  const newSets = []; // attribute sets of the modified routes
  const tagged = new Map(); // index of a set of the batch -> the verdict of its routes
  const judge = (length, limit, index) => {
    if (length > limit) return REJECT;
    if (community === null) return ACCEPT;
    if (!tagged.has(index)) {
      const attributes = batch.attributes[index];
      if (attributes.communities.some((c) => (c | 0) === community)) {
        tagged.set(index, ACCEPT);
      } else {
        newSets.push({ ...attributes, communities: [...attributes.communities, community] });
        tagged.set(index, MODIFIED + newSets.length - 1);
      }
    }
    return tagged.get(index);
  };
  const verdicts = [];
  batch.v4Lengths.forEach((length, i) => verdicts.push(judge(length, maxV4, batch.v4Attributes[i])));
  batch.v6Lengths.forEach((length, i) => verdicts.push(judge(length, maxV6, batch.v6Attributes[i])));
  batch.flows.forEach(() => verdicts.push(ACCEPT)); // FlowSpec rules pass unchanged
  return { routes: verdicts, attributes: newSets };
}

export const routePolicy = { init, evaluate };
