"""The snapshot app's models, which Django looks for here: each package defines its own."""

from snapshots.capture.models import (
    GOLDEN_TAG,
    MANAGE_PROTECTED_TAGS,
    SET_SCHEDULE_OWNER,
    Severity,
    Snapshot,
    SnapshotMode,
    SnapshotOrigin,
    SnapshotSchedule,
    SnapshotTag,
    SnapshotValue,
    ValueSource,
    ValueType,
)
from snapshots.restore.models import (
    LiveSource,
    Restore,
    RestoreAction,
    RestoreItem,
    RestoreItemStatus,
    RestorePreview,
    RestorePreviewItem,
    RestoreStatus,
)

__all__ = [
    "GOLDEN_TAG",
    "MANAGE_PROTECTED_TAGS",
    "SET_SCHEDULE_OWNER",
    "LiveSource",
    "Restore",
    "RestoreAction",
    "RestoreItem",
    "RestoreItemStatus",
    "RestorePreview",
    "RestorePreviewItem",
    "RestoreStatus",
    "Severity",
    "Snapshot",
    "SnapshotMode",
    "SnapshotOrigin",
    "SnapshotSchedule",
    "SnapshotTag",
    "SnapshotValue",
    "ValueSource",
    "ValueType",
]
