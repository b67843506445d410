"""Live values and their metadata shaped as the monitor writes them (monitor.live)."""

from monitor.live import LiveMeta
from squirrel_site.epics_values import Value


def make_value(address="SIM:A", kind="float", value=1.5, **overrides) -> Value:
    fields = dict(status=0, severity=0, timestamp=1_700_000_000.25, received=1_700_000_000.5, connected=True)
    fields.update(overrides)
    return Value(address, kind, value, **fields)


def make_meta(**overrides) -> LiveMeta:
    fields = dict(
        units="mA",
        precision=3,
        enum_labels=None,
        lower_limit=-10.0,
        upper_limit=10.0,
        host="127.0.0.1:15064",
        kind="float",
        count=1,
        read_access=True,
        write_access=True,
    )
    fields.update(overrides)
    return LiveMeta(**fields)
