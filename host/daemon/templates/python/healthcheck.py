"""{{name}}: a wasmbgp health check (world `healthcheck`), in Python.

Healthy while a TCP connection to `address` succeeds. Settings: `address`
("IP:PORT", required; the config must grant it in `grants.tcp`), `timeout`
(milliseconds, or e.g. "500ms" / "2s"; default 1s).

Built with componentize-py: `wit_world` holds the bindings of the WIT world.
"""

from typing import List, Tuple

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import probe

KNOWN = {"address", "timeout"}

# componentize-py may create a new HealthCheck object for every call, so the
# configuration lives at module level (one per instance of the component).
CONFIG = {"address": "", "timeout_ms": 1000}


def parse_timeout_ms(text: str) -> int:
    """Parses "500ms", "2s" or a number of milliseconds."""
    text = text.strip()
    try:
        if text.endswith("ms"):
            return int(text[:-2])
        if text.endswith("s"):
            return int(text[:-1]) * 1000
        return int(text)
    except ValueError:
        raise Err(f"setting `timeout` = {text!r} is invalid: expected e.g. 500ms or 2s")


def describe(error) -> str:
    """One line for a probe error (a variant case such as ProbeError_Refused)."""
    if isinstance(error, probe.ProbeError_Timeout):
        return "timed out"
    kind = type(error).__name__.split("_", 1)[-1].lower()
    return f"{kind}: {error.value}"


class HealthCheck(exports.HealthCheck):
    def init(self, settings: List[Tuple[str, str]]) -> None:
        """Called once per instance with `[plugin.settings]`; raising Err(message)
        is a configuration error: the plugin does not start."""
        values = dict(settings)
        unknown = sorted(set(values) - KNOWN)
        if unknown:
            raise Err(f"unknown setting(s): {', '.join(unknown)}")
        if "address" not in values:
            raise Err("setting `address` is required")
        CONFIG["address"] = values["address"]
        CONFIG["timeout_ms"] = parse_timeout_ms(values.get("timeout", "1000"))

    def check(self) -> str:
        """Called on the host's schedule: returning a detail is healthy, raising
        Err(reason) is not."""
        address = CONFIG["address"]
        try:
            micros = probe.tcp_connect(address, CONFIG["timeout_ms"])
        except Err as error:
            raise Err(describe(error.value))
        return f"connected to {address} in {micros} µs"
