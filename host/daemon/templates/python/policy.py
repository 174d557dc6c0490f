"""{{name}}: a wasmbgp routing policy (world `policy`), in Python.

Rejects prefixes longer than `max-length` (IPv4) or `max-length-v6`, and tags
the routes it accepts with `community`. Settings: `max-length` (default 24),
`max-length-v6` (default 48), `community` ("65001:100" or no-export,
no-advertise, no-export-subconfed; none: accepted routes pass unchanged).

Built with componentize-py: `wit_world` holds the bindings of the WIT world.
"""

import dataclasses
from typing import List, Tuple

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import route_policy

KNOWN = {"max-length", "max-length-v6", "community"}
WELL_KNOWN = {"no-export": 0xFFFFFF01, "no-advertise": 0xFFFFFF02, "no-export-subconfed": 0xFFFFFF03}
# A verdict: accept unchanged, reject, or MODIFIED + i: with the new attribute set i.
ACCEPT, REJECT, MODIFIED = 0, 1, 2

# componentize-py may create a new RoutePolicy object for every call, so the
# configuration lives at module level (one per instance of the component).
CONFIG = {"max_v4": 24, "max_v6": 48, "community": None}


def parse_length(values: dict, key: str, default: int, limit: int) -> int:
    text = values.get(key)
    if text is None:
        return default
    if not text.strip().isdigit() or int(text) > limit:
        raise Err(f"setting `{key}` = {text!r} is invalid: expected a prefix length from 0 to {limit}")
    return int(text)


def parse_community(text: str) -> int:
    """A standard community as BGP numbers it: 65001:100 is 65001 << 16 | 100."""
    text = text.strip()
    if text in WELL_KNOWN:
        return WELL_KNOWN[text]
    high, _, low = text.partition(":")
    if high.isdigit() and low.isdigit() and int(high) <= 0xFFFF and int(low) <= 0xFFFF:
        return int(high) << 16 | int(low)
    raise Err(f"setting `community` = {text!r} is invalid: expected e.g. 65001:100 or no-export")


class RoutePolicy(exports.RoutePolicy):
    def init(self, settings: List[Tuple[str, str]], files: List[route_policy.DataFile]) -> None:
        """Called once per instance with `[plugin.settings]` and the data files of
        `grants.files`; raising Err(message) is a configuration error."""
        values = dict(settings)
        unknown = sorted(set(values) - KNOWN)
        if unknown:
            raise Err(f"unknown setting(s): {', '.join(unknown)}")
        CONFIG["max_v4"] = parse_length(values, "max-length", 24, 32)
        CONFIG["max_v6"] = parse_length(values, "max-length-v6", 48, 128)
        community = values.get("community")
        CONFIG["community"] = None if community is None else parse_community(community)

    def evaluate(self, batch: route_policy.RouteBatch) -> route_policy.Verdicts:
        """Judges a batch of routes (received from a neighbor or about to be sent
        to one), given in columns: one verdict per route, the IPv4 routes first,
        then the IPv6 routes, then the FlowSpec rules."""
        community = CONFIG["community"]
        new_sets = []  # attribute sets of the modified routes
        tagged = {}  # index of a set of the batch -> the verdict of its routes

        def judge(length: int, limit: int, index: int) -> int:
            if length > limit:
                return REJECT
            if community is None:
                return ACCEPT
            if index not in tagged:
                attributes = batch.attributes[index]
                if community in attributes.communities:
                    tagged[index] = ACCEPT
                else:
                    communities = list(attributes.communities) + [community]
                    new_sets.append(dataclasses.replace(attributes, communities=communities))
                    tagged[index] = MODIFIED + len(new_sets) - 1
            return tagged[index]

        max_v4, max_v6 = CONFIG["max_v4"], CONFIG["max_v6"]
        verdicts = [judge(n, max_v4, i) for n, i in zip(batch.v4_lengths, batch.v4_attributes)]
        verdicts += [judge(n, max_v6, i) for n, i in zip(batch.v6_lengths, batch.v6_attributes)]
        verdicts += [ACCEPT] * len(batch.flows)  # FlowSpec rules pass unchanged
        return route_policy.Verdicts(routes=verdicts, attributes=new_sets)
