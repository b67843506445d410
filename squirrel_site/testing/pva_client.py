"""pvAccess from outside Squirrel, for fault tests: read and write a simulated pvAccess server from
separate processes with p4p's own threaded client (``p4p.client.thread.Context``), sharing nothing
with pvs.pva_bulk, as squirrel_site.testing.channel_access does for Channel Access.

Both functions take the search address list of the one server to ask (``EPICS_PVA_ADDR_LIST``
of the test's processes) and read no other configuration.
"""

from __future__ import annotations

import json
import subprocess
import sys

P4P_TIMEOUT = 60.0  # seconds one read or write subprocess may take

_CLIENT = """
import json, sys
from p4p.client.thread import Context, TimeoutError
payload = json.loads(sys.argv[1])
conf = {"EPICS_PVA_AUTO_ADDR_LIST": "NO", "EPICS_PVA_ADDR_LIST": payload["addr_list"]}
ctxt = Context("pva", nt=False, conf=conf, useenv=False)
def plain(v):
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v.tolist() if hasattr(v, "tolist") else v
"""

_GET = (
    _CLIENT
    + """
out = {}
values = ctxt.get(payload["names"], timeout=payload["timeout"], throw=False)
for name, value in zip(payload["names"], values):
    out[name] = None if isinstance(value, Exception) else plain(value.todict())
print(json.dumps(out))
"""
)

_PUT = (
    _CLIENT
    + """
for name, value in payload["values"].items():
    ctxt.put(name, value, wait=True, timeout=10)
print("{}")
"""
)


def _run(code: str, payload: dict):
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(payload)], capture_output=True, text=True, timeout=P4P_TIMEOUT
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def pvget(addr_list: str, names: list[str], timeout: float = 5.0) -> dict:
    """{name: the p4p value as a dict (arrays as lists), or None when no server answered within
    `timeout` seconds}."""
    return _run(_GET, {"addr_list": addr_list, "names": list(names), "timeout": timeout})


def pvput(addr_list: str, values: dict) -> None:
    """Put {name: {field: value}} (``{"value": 1.5}``, ``{"value.index": 2}``) with completion."""
    _run(_PUT, {"addr_list": addr_list, "values": values})
