"""What refuses or stops a restore: the errors the preview and execution raise (their messages are
meant for the operator)."""


class RestoreError(Exception):
    """A restore that cannot be previewed or executed; the message is meant for the operator."""


class RestoreBusy(RestoreError):
    """Another runner is executing this restore right now."""


class RestoreExpired(RestoreError):
    """The restore's job is past its start deadline and nothing was written: it is not started."""


class NeedsChannelAccess(RestoreError):
    """A cache-only preview found the monitor's cache stale or incomplete: make it in a worker."""
