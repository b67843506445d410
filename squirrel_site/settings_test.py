"""Settings for the test suite: real PostgreSQL and Redis, a private CA port for the test IOC."""

import os

# The test IOC gets its own Channel Access port so it never answers the demo's clients
# (and the demo IOC never answers the tests); libca reads this when it first loads.
os.environ.setdefault("EPICS_CA_SERVER_PORT", "15064")
os.environ.setdefault("SQUIRREL_DEBUG", "0")
os.environ.setdefault("SQUIRREL_SECRET_KEY", "test-secret-key")

from squirrel_site.settings import *  # noqa: F403
from squirrel_site.testing.workers import worker_redis_url

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The tests FLUSHDB it. In a parallel run (pytest-xdist) each worker has its own database on a
# private server instead (squirrel_site.testing.parallel).
REDIS_URL = worker_redis_url() or os.environ.get("SQUIRREL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": "squirrel-test:channels:"},
    }
}
CELERY_BROKER_URL = REDIS_URL

# Tests render admin pages without running collectstatic first.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_AUTOREFRESH = True
