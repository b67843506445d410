"""Which protocol an address speaks: the one place that reads an address's ``pva://`` or ``ca://``.

An address is a channel name, optionally prefixed by its protocol, as EPICS tools write it
(pvget/pvmonitor, Phoebus, p4p): ``pva://NAME`` is pvAccess, ``ca://NAME`` and a bare ``NAME``
are Channel Access. The registry stores Channel Access addresses bare (``ca://`` is dropped when
an address is saved, :func:`normalized`), so one channel has one spelling; a pvAccess address
keeps its ``pva://`` everywhere: in the registry, in Redis, in snapshots and in the API.
"""

from __future__ import annotations

from collections.abc import Iterable

CA = "ca"
PVA = "pva"
PROTOCOLS = (CA, PVA)
PVA_PREFIX = "pva://"
CA_PREFIX = "ca://"
_SCHEMES = {"ca": CA, "pva": PVA}
# How pages, the admin and the API's filter name each protocol.
LABELS = {CA: "Channel Access", PVA: "pvAccess"}
CHOICES = [(protocol, LABELS[protocol]) for protocol in PROTOCOLS]


def protocol_of(address: str) -> str:
    """``"pva"`` for a ``pva://`` address, else ``"ca"`` (a normalized address: see :func:`normalized`)."""
    return PVA if address.startswith(PVA_PREFIX) else CA


def name_of(address: str) -> str:
    """The channel name an address asks the network for (its protocol prefix removed)."""
    if address.startswith(PVA_PREFIX):
        return address[len(PVA_PREFIX) :]
    if address.startswith(CA_PREFIX):
        return address[len(CA_PREFIX) :]
    return address


def scheme_of(address: str) -> tuple[str | None, str]:
    """(protocol, name) as written: the protocol of a ``scheme://`` prefix (None for an unknown
    scheme, ``"ca"`` for none), and the rest. Scheme names are case-insensitive."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        return CA, address
    return _SCHEMES.get(scheme.lower()), rest


def normalized(address: str) -> str:
    """The registry's spelling: ``ca://X`` → ``X``, ``PVA://X`` → ``pva://X``; anything else unchanged
    (an unknown scheme is left for the validator to refuse)."""
    protocol, name = scheme_of(address)
    if protocol == CA:
        return name
    if protocol == PVA:
        return PVA_PREFIX + name
    return address


def search_of(text: str) -> tuple[str | None, str]:
    """(protocol, text) of what someone searches addresses for: text written with a protocol is
    that protocol and the rest in the registry's spelling (``PVA://SR:Q`` → ``("pva", "pva://SR:Q")``,
    ``ca://SR:Q`` → ``("ca", "SR:Q")``); other text (no prefix, an unknown scheme) is ``(None, text)``,
    looked for as written in addresses of either protocol."""
    protocol, _name = scheme_of(text)
    if "://" not in text or protocol is None:
        return None, text
    return protocol, normalized(text)


def split(addresses: Iterable[str]) -> tuple[list[str], list[str]]:
    """(Channel Access addresses, pvAccess addresses), each in the order given."""
    ca: list[str] = []
    pva: list[str] = []
    for address in addresses:
        (pva if address.startswith(PVA_PREFIX) else ca).append(address)
    return ca, pva
