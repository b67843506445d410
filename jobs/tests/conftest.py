"""Fixtures for the jobs tests."""

from monitor.tests.conftest import redis_db  # noqa: F401 - the flushed Redis test database
