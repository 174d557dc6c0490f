"""bogon-filter in Python: rejects bogon routes on import, accepts the rest.

The twin of plugins/bogon-filter (Rust), built with componentize-py against
the WIT world `wasmbgp:plugin/policy` (see `world`). The rules live in
bogons.py, which is plain Python and tested without the bindings
(test_bogons.py). No settings.
"""

from typing import List, Tuple

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import route_policy

import bogons

ACCEPT = 0


class RoutePolicy(exports.RoutePolicy):
    def init(self, settings: List[Tuple[str, str]], files: List[route_policy.DataFile]) -> None:
        unknown = bogons.unknown_settings(settings)
        if unknown:
            raise Err(f"unknown setting(s): {', '.join(unknown)}")

    def evaluate(self, batch: route_policy.RouteBatch) -> route_policy.Verdicts:
        # Verdicts: IPv4 routes first, then IPv6, then the FlowSpec rules
        # (accepted: bogons are about prefixes); 0 = accept, 1 = reject.
        flows = [ACCEPT] * len(batch.flows)
        if batch.direction == route_policy.Direction.EXPORT:
            count = len(batch.v4_lengths) + len(batch.v6_lengths)
            return route_policy.Verdicts(routes=[ACCEPT] * count + flows, attributes=[])
        routes = bogons.v4_verdicts(batch.v4_addresses, batch.v4_lengths)
        routes += bogons.v6_verdicts(batch.v6_addresses, batch.v6_lengths)
        return route_policy.Verdicts(routes=routes + flows, attributes=[])
