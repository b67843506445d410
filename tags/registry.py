"""Writing the registry (PVs, tags, tag groups): one transaction, and a conflict with a concurrent
change becomes RegistryChanged. Here, below `pvs`, because both `pvs.services` and `tags.services`
write the registry (a PV has tags; tags know no PV)."""

from contextlib import contextmanager

from django.db import IntegrityError, transaction


class RegistryChanged(Exception):
    """The registry changed between validation and writing (a PV deleted, an address or tag
    taken or deleted by someone else); nothing was stored and trying again will say why."""


@contextmanager
def registry_write():
    """One transaction; a unique or foreign key conflict with a concurrent change becomes
    RegistryChanged (validation saw the registry before the other change committed). Writes of
    PVs (pvs.services), and of tags and tag groups (tags.services)."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError as error:
        reason = str(error).splitlines()[0]
        message = f"The registry changed during the request ({reason}); nothing was stored."
        raise RegistryChanged(message) from error
