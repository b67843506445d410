"""The snapshot app's admin, which Django's admin looks for here: each package registers its models."""

import snapshots.capture.admin
import snapshots.restore.admin  # noqa: F401 - the admin modules register their models
