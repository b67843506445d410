"""The Celery broker's transport: kombu's Redis transport, with one fix for a lost connection.

Celery 5.7 handles a lost broker connection by collecting the connection (which detaches its
transport from it) and then closing it. Closing closes the connection's channels, and a channel
holding an unacknowledged message (any task running with acks_late) then asks for a Redis
client to put the message back: the Redis transport builds one from the detached connection
and fails with `AttributeError: 'NoneType' object has no attribute 'hostname'`. An
AttributeError is not a connection error, so nothing ignores it, and the worker exits
("Unrecoverable error"). When the running task ends, its acknowledgement goes the same way.

Here a channel whose connection was detached (or that was closed) raises Redis's ConnectionError instead: Celery
ignores it while closing, logs the acknowledgement it cannot send, reconnects and goes on. The
message needs nothing more: Redis lost it (restarted empty) or still holds it among the
unacknowledged ones, which a worker restores after the visibility timeout, and the job runner
runs a finished job's message as a no-op. PostgreSQL's job row is the truth either way.
"""

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    """A Redis channel that reports a detached or closed connection as a connection error."""

    def _connparams(self, asynchronous=False):
        if self.connection is None or self.connection.client is None:
            raise redis.ConnectionError("The broker connection was closed after a connection loss.")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with Channel above (settings.CELERY_BROKER_TRANSPORT names it)."""

    Channel = Channel
