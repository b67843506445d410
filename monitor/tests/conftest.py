"""Fixtures for the monitor tests: an empty Redis test database."""

import pytest
from django.conf import settings

from monitor import live


@pytest.fixture
def redis_db():
    """The live-value Redis client on the test database, flushed before and after the test."""
    # FLUSHDB on a real instance: refuse anything but the test settings' database.
    assert settings.SETTINGS_MODULE.endswith("settings_test"), settings.SETTINGS_MODULE
    client = live.redis_client()
    client.flushdb()
    yield client
    client.flushdb()
