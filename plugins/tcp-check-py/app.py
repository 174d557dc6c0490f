"""tcp-check in Python: healthy while a TCP connection to `address` succeeds.

The twin of plugins/tcp-check (Rust), built with componentize-py against the
same WIT world (`wasmbgp:plugin/healthcheck` of `wasmbgp:plugin@0.2.0`, named in
the file `world`). Settings: `address`
("IP:PORT", required), `timeout` (milliseconds or e.g. "500ms"/"2s",
default 1s).
"""

from typing import List, Tuple

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import probe

KNOWN = {"address", "timeout"}


def parse_timeout_ms(text: str) -> int:
    """Parses "500ms", "2s" or a bare number of milliseconds."""
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
    """One line for a probe error variant."""
    if isinstance(error, probe.ProbeError_Timeout):
        return "timed out"
    kind = type(error).__name__.split("_", 1)[-1].lower()
    return f"{kind}: {error.value}"


# componentize-py may make a new HealthCheck object for every call, so the
# configuration lives at module level (one instance per component instance).
CONFIG = {"address": "", "timeout_ms": 1000}


class HealthCheck(exports.HealthCheck):
    def init(self, settings: List[Tuple[str, str]]) -> None:
        values = dict(settings)
        unknown = sorted(set(values) - KNOWN)
        if unknown:
            raise Err(f"unknown setting(s): {', '.join(unknown)}")
        if "address" not in values:
            raise Err("setting `address` is required")
        CONFIG["address"] = values["address"]
        CONFIG["timeout_ms"] = parse_timeout_ms(values.get("timeout", "1000"))

    def check(self) -> str:
        address = CONFIG["address"]
        try:
            micros = probe.tcp_connect(address, CONFIG["timeout_ms"])
        except Err as error:
            raise Err(describe(error.value))
        return f"connected to {address} in {micros} µs"
