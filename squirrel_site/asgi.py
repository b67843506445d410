"""ASGI entry point: Django for HTTP, Channels for WebSockets (served by daphne)."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "squirrel_site.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from squirrel_site.request_limits import RequestBodyLimit  # noqa: E402
from squirrel_site.routing import websocket_urlpatterns  # noqa: E402
from squirrel_site.ws_security import SameOriginValidator  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": RequestBodyLimit(django_asgi_app),
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# Everything loaded so far lives as long as the process: keep it out of the cyclic GC, whose full
# collections otherwise pause the event loop for 60-90 ms (bench_live.py: live-update p95 from the
# change notice to the browser 110 -> 72 ms).
gc.freeze()
