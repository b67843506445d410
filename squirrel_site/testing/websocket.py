"""The live WebSocket in-process (Channels communicator): connect as a browser would, subscribe."""

from channels.testing import WebsocketCommunicator

from squirrel_site.asgi import application

ORIGIN = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]


PATH = "/ws/live/"


TIMEOUT = 5


async def connect(headers) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, PATH, headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def subscribe(communicator, addresses, ack=True) -> dict:
    """Subscribe and return the first message (full), acknowledged unless `ack` is False."""
    await communicator.send_json_to({"subscribe": list(addresses)})
    first = await communicator.receive_json_from(timeout=TIMEOUT)
    assert first["full"] is True, first
    if ack:
        await communicator.send_json_to({"ack": first["seq"]})
    return first
