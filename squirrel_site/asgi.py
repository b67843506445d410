"""ASGI entry point: Django for HTTP (bounded: squirrel_site.admission), Channels for WebSockets
(served by daphne)."""

import gc
import os

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "squirrel_site.settings")
# A web process takes its database connections from a pool sized by SQUIRREL_WEB_CONCURRENCY
# (settings.DB_POOL): on by default when this module loads the settings, as daphne's does. Not
# when they were loaded already (tests importing the application), so that the variable never
# reaches a worker started afterwards: workers must not use the pool.
if not settings.configured:
    os.environ.setdefault("SQUIRREL_DB_POOL", "1")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from squirrel_site.admission import bounded  # noqa: E402
from squirrel_site.request_limits import RequestBodyLimit  # noqa: E402
from squirrel_site.routing import websocket_urlpatterns  # noqa: E402
from squirrel_site.ws_security import SameOriginValidator  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Bodies over their route's limit are refused first; then at most SQUIRREL_WEB_CONCURRENCY
        # requests run in Django at once, with a bounded queue, then 503.
        "http": RequestBodyLimit(bounded(django_asgi_app)),
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# Everything loaded so far lives as long as the process: keep it out of the cyclic GC, whose full
# collections otherwise pause the event loop for 60-90 ms (bench_live.py: live-update p95 from the
# change notice to the browser 110 -> 72 ms).
gc.freeze()
