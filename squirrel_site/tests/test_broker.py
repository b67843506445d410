"""The broker transport turns a detached connection into a connection error (squirrel_site.broker).

The worker's own exit is reproduced end to end in test_faults_processes.py (Redis killed while a
task runs); here, the transport's part of the fix, without killing anything.
"""

import pytest
from django.conf import settings
from kombu import Connection, Queue


@pytest.fixture
def collected_channel(redis_db):
    """A channel of a connection that Celery collected after losing the broker."""
    connection = Connection(settings.CELERY_BROKER_URL, transport="squirrel_site.broker:Transport")
    channel = connection.default_channel
    Queue("squirrel-test-broker", channel=channel).declare()
    connection.collect()  # detaches the transport, as Celery 5.7's consumer does on a connection loss
    yield connection, channel
    connection.release()


def test_a_collected_connection_s_channel_needing_redis_raises_a_connection_error(collected_channel):
    connection, channel = collected_channel
    with pytest.raises(connection.connection_errors):
        channel.queue_purge("squirrel-test-broker")


def test_the_celery_app_uses_the_transport():
    from squirrel_site.celery import app

    assert type(app.connection_for_write().transport).__module__ == "squirrel_site.broker"
