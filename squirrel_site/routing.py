"""Every app's WebSocket routes."""

from jobs.routing import websocket_urlpatterns as job_routes

websocket_urlpatterns = [*job_routes]
