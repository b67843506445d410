"""Fixtures the comparison tests share: a signed-in viewer, and the two snapshots both the two-way
and the N-way tests compare (the N-way ones add columns to them)."""

import pytest

from squirrel_site.testing.snapshots import Enum

NAN = float("nan")


@pytest.fixture
def signed_in(client, viewer):
    """The test client, logged in as a user who may only read."""
    client.force_login(viewer)
    return viewer


@pytest.fixture
def before_after(make_snapshot, make_pvs):
    """Snapshots A and B of PVs P:A to P:F (device MAG, tolerance 0.1, precision 2), P:G only in B
    and P:F only in A: within tolerance, out of it, NaN against a number, enums, arrays, a string."""
    make_pvs("P:A", "P:B", "P:C", "P:D", "P:E", "P:F", abs_tolerance=0.1, device="MAG")
    a = make_snapshot(
        "Before",
        {"P:A": 1.0, "P:B": 2.0, "P:C": NAN, "P:D": Enum(1), "P:E": [1.0, 2.0, 3.0], "P:F": "auto"},
        precision=2,
    )
    b = make_snapshot(
        "After", {"P:A": 1.05, "P:B": 3.0, "P:C": 1.0, "P:D": Enum(2), "P:E": [1.0, 2.5, 3.0], "P:G": 7.0}, precision=2
    )
    return a, b
