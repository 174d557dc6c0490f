"""{{name}}: a wasmbgp exporter (world `exporter`), in Python.

Counts the routes each neighbor announces and withdraws (after import policy)
into two metrics, served on wasmbgp's `/metrics` as
`wasmbgp_plugin_routes_announced_total` and
`wasmbgp_plugin_routes_withdrawn_total` with labels `plugin` and `neighbor`.
No settings.

Built with componentize-py: `wit_world` holds the bindings of the WIT world.
"""

import ipaddress
from typing import List, Tuple

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import events, metrics, types

ANNOUNCED = "routes_announced_total"
WITHDRAWN = "routes_withdrawn_total"

# componentize-py may create a new EventSink object for every call, so the
# state lives at module level (one per instance of the component). Every
# instance first receives a snapshot of the routes as they are, closed by
# end-of-snapshot; metric values outlive restarts, so only the changes after it
# are counted.
STATE = {"in_snapshot": True}


def address(ip: types.IpAddress) -> str:
    """An address as text: IPv4 is a number, IPv6 two 64-bit halves."""
    if isinstance(ip, types.IpAddress_V4):
        return str(ipaddress.IPv4Address(ip.value))
    high, low = ip.value
    return str(ipaddress.IPv6Address(high << 64 | low))


def describe(error) -> str:
    """One line for a metrics error (MetricError_Invalid or _SeriesLimit)."""
    return f"{type(error).__name__.split('_', 1)[-1]}: {error.value}"


class EventSink(exports.EventSink):
    def init(self, settings: List[Tuple[str, str]]) -> None:
        """Called once per instance with `[plugin.settings]`; raising Err(message)
        is a configuration error: the plugin does not start."""
        if settings:
            raise Err(f"unknown setting(s): {', '.join(key for key, _ in settings)}")
        try:
            metrics.register(ANNOUNCED, "Routes announced by the neighbor.",
                             metrics.MetricKind.COUNTER, ["neighbor"], [])
            metrics.register(WITHDRAWN, "Routes withdrawn by the neighbor.",
                             metrics.MetricKind.COUNTER, ["neighbor"], [])
        except Err as error:
            raise Err(describe(error.value))

    def on_events(self, batch: List[events.Event]) -> None:
        """Handles a batch of events, in the order the speaker saw them."""
        for event in batch:
            if isinstance(event, events.Event_EndOfSnapshot):
                STATE["in_snapshot"] = False
            elif isinstance(event, events.Event_Routes) and not STATE["in_snapshot"]:
                update = event.value
                if update.direction != events.RouteDirection.RECEIVED:
                    continue
                neighbor = [address(update.session.neighbor)]
                try:
                    metrics.add(ANNOUNCED, neighbor, float(len(update.v4_lengths) + len(update.v6_lengths)))
                    withdrawn = len(update.withdrawn_v4_lengths) + len(update.withdrawn_v6_lengths)
                    metrics.add(WITHDRAWN, neighbor, float(withdrawn))
                except Err:
                    pass  # past `grants.max-series`: the host counts it
