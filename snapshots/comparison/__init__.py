"""Comparing snapshots with snapshots or live values: the tolerance rule, its SQL, the rows, drift."""
