"""The snapshot app's admin, which Django's admin looks for here: each package registers its models."""

import snapshots.capture.admin  # noqa: F401 - registers the snapshot, tag, schedule and restore admins
