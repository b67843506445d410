"""Channel Access and pvAccess stay on loopback unless the operator configures real IOC networks.

Applied by the settings (every Django process), by pvs.epics_bulk before libca loads and by
pvs.pva_bulk before its client context starts (any other process that uses the project's EPICS
layers, such as scripts and the CA repeater), so no code path of ours falls back to libca's or
pvxs' default of searching on every interface.
"""

import os

LOOPBACK_DEFAULTS = {
    "EPICS_CA_AUTO_ADDR_LIST": "NO",
    "EPICS_CA_ADDR_LIST": "127.0.0.1",
    "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1",
    "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
    "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1",
    # pvAccess (pvs.pva_bulk's client, and any pvAccess server a process of ours starts).
    "EPICS_PVA_AUTO_ADDR_LIST": "NO",
    "EPICS_PVA_ADDR_LIST": "127.0.0.1",
    "EPICS_PVAS_INTF_ADDR_LIST": "127.0.0.1",
}


def apply_loopback_defaults() -> None:
    """Set each EPICS address variable the environment does not set already."""
    for name, value in LOOPBACK_DEFAULTS.items():
        os.environ.setdefault(name, value)
