"""WebSocket routes; consumers are added by the live-table and job-progress features."""

websocket_urlpatterns: list = []
