"""The web process: daphne serving squirrel_site.asgi:application, receiving requests with bounds.

    python -m squirrel_site.web_server -b 127.0.0.1 -p 8000 squirrel_site.asgi:application

takes daphne's own arguments. Two things change in how daphne (through Twisted) receives a request,
both before the application sees it:

- A body whose Content-Length is over its route's limit (squirrel_site.request_limits) is answered
  413 as soon as the headers are in, and the connection is closed: the body is never received.
- Twisted parses a POST's form body into `request.args`, a copy of the whole body in memory (several
  for multipart/form-data) that daphne never uses: it hands the raw body to the application. That
  parsing is switched off; three anonymous 60 MB multipart POSTs took daphne from 120 to 840 MB.
"""

import os
import sys
from io import RawIOBase
from urllib.parse import unquote

# A web process: its database connections come from the pool (squirrel_site/asgi.py says why only
# web processes). Set before anything below loads the settings.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "squirrel_site.settings")
os.environ.setdefault("SQUIRREL_DB_POOL", "1")

from daphne import http_protocol
from daphne.cli import CommandLineInterface

from squirrel_site.request_limits import body_limit_for, too_large_response_bytes


class _Discard(RawIOBase):
    """Where the body of a refused request goes if any of it arrives before the connection closes."""

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        return len(data)


class BoundedWebRequest(http_protocol.WebRequest):
    """daphne's request, refusing oversize bodies from their headers and parsing no form body."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._parsePOSTFormSubmission = False

    def gotLength(self, length):
        path = unquote(self.channel._path.split(b"?", 1)[0].decode("latin-1"))
        if length is not None and length > body_limit_for(path):
            self.content = _Discard()
            self.channel.transport.write(too_large_response_bytes(path, body_limit_for(path)))
            self.channel.loseConnection()
            return
        super().gotLength(length)

    def requestReceived(self, command, path, version):
        if isinstance(self.content, _Discard):
            return  # refused in gotLength; the rest of its body was thrown away
        super().requestReceived(command, path, version)


def main() -> None:
    # daphne's HTTPFactory builds each request from this module-level name.
    http_protocol.WebRequest = BoundedWebRequest
    sys.exit(CommandLineInterface.entrypoint())


if __name__ == "__main__":
    main()
