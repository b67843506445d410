"""Every app's WebSocket routes."""

from jobs.routing import websocket_urlpatterns as job_routes
from monitor.routing import websocket_urlpatterns as live_routes

websocket_urlpatterns = [*job_routes, *live_routes]
