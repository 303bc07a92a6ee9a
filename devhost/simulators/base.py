"""What every simulator's HTTP server shares: a loopback port, a background thread, JSON answers."""

import base64
import binascii
import json
import secrets
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self


class LoopbackServer(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 (port 0 picks a free one), served from a daemon thread."""

    daemon_threads = True

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler], tls: tuple[Path, Path] | None = None) -> None:
        super().__init__(("127.0.0.1", port), handler)
        self.scheme = "http"
        if tls is not None:  # (certificate, key): serve HTTPS, as MSAL and Azurite's OAuth mode require
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
            self.socket = context.wrap_socket(self.socket, server_side=True)
            self.scheme = "https"

    @property
    def url(self) -> str:
        """Base URL."""
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}"

    def start(self) -> Self:
        """Serves in a background thread."""
        threading.Thread(target=self.serve_forever, name=type(self).__name__, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stops serving."""
        self.shutdown()
        self.server_close()


class JsonHandler(BaseHTTPRequestHandler):
    """Request handler that answers JSON and keeps no access log (the tests' log scan reads every log).

    A simulator either overrides `do_<METHOD>` or implements `_route(method)`, which every method reaches.
    """

    # Headers and body go out in two writes; with Nagle on, the client's delayed ACK holds the second for
    # about 40 ms per request, which would make every simulator look slow for no reason a real system has.
    disable_nagle_algorithm = True

    def _route(self, method: str) -> None:
        """Answers one request; a simulator that routes by method overrides this."""
        self.reply(405, {"error": {"message": f"{method} is not supported here"}})

    def do_GET(self) -> None:
        """GET."""
        self._route("GET")

    def do_POST(self) -> None:
        """POST."""
        self._route("POST")

    def do_PATCH(self) -> None:
        """PATCH."""
        self._route("PATCH")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Quiet."""

    def reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        """Sends a JSON answer."""
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def basic_credentials_match(header: str, username: str, password: str) -> bool:
    """Whether an `Authorization: Basic ...` header carries exactly these credentials."""
    if not header.startswith("Basic "):
        return False
    try:
        user, _, given = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return secrets.compare_digest(f"{user}:{given}", f"{username}:{password}")


def fault_arguments(body: dict[str, Any], endpoint: str | None = None) -> tuple[Any, ...]:
    """The arguments of `state.inject(kind, count, value, message[, endpoint])` from a `/_control/fault` body."""
    arguments: tuple[Any, ...] = (
        str(body["kind"]),
        int(body.get("count", 1)),
        float(body.get("value", 0)),
        str(body.get("message", "")),
    )
    return arguments if endpoint is None else (*arguments, str(body.get("endpoint", endpoint)))
