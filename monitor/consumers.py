"""WebSocket /ws/live/: live values of the addresses a page shows (see docs/live_updates.md)."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from monitor.payloads import Ack, WatchHealth, error_message, parse_client_message
from monitor.streams import LiveStream, hub_for_running_loop
from squirrel_site.ws_security import SessionWatch

PERMISSION = "pvs.view_pv"


class LiveTableConsumer(AsyncWebsocketConsumer):
    """Streams live values to a page: full values first, then coalesced diffs.

    Handshakes of users without pvs.view_pv (anonymous ones too) are refused (HTTP 403); the ASGI
    app refuses foreign Origins before this. An open socket is closed once its user logs out, is
    deactivated or loses the permission (squirrel_site.ws_security.SessionWatch).
    All the logic is in monitor.streams; this only translates between the socket and the stream.
    """

    # Changes come from the live hub, never through the channel layer: no channel to listen on.
    channel_layer_alias = None

    async def connect(self):
        if not await self._may_read_live_values(self.scope.get("user")):
            await self.close()
            return
        self.stream = LiveStream(hub_for_running_loop(), self._send_text, self.close)
        self.watch = SessionWatch(self, PERMISSION)
        await self.accept()
        self.watch.start()

    async def receive(self, text_data=None, bytes_data=None):
        try:
            message = parse_client_message(text_data)
            if isinstance(message, Ack):
                self.stream.ack(message.seq)
            elif isinstance(message, WatchHealth):
                self.stream.watch_health()
            else:
                self.stream.subscribe(message.addresses)
        except ValueError as exc:
            await self.send(text_data=error_message(str(exc)))

    async def disconnect(self, code):
        watch = getattr(self, "watch", None)
        if watch is not None:
            await watch.stop()
        stream = getattr(self, "stream", None)
        if stream is not None:
            await stream.close()

    async def _send_text(self, text: str) -> None:
        await self.send(text_data=text)

    @database_sync_to_async
    def _may_read_live_values(self, user) -> bool:
        # has_perm reads the user's groups from the database: not on the event loop.
        return user is not None and user.is_authenticated and user.has_perm(PERMISSION)
