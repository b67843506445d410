"""WebSocket routes of the monitor app."""

from django.urls import path

from monitor.consumers import LiveTableConsumer

websocket_urlpatterns = [
    path("ws/live/", LiveTableConsumer.as_asgi()),
]
