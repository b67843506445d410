"""Restoring a snapshot: preview, execute (claim, undo point, staged puts), verify, undo."""
