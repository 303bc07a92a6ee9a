"""Application Insights' ingestion endpoint (`POST <IngestionEndpoint>/v2.1/track`), over HTTPS, into a list.

The Azure Monitor exporter sends envelopes only to an https endpoint when it authenticates with a token, so the
simulator serves TLS with devhost's own certificate; it insists on a bearer token, as an Application Insights
resource with local authentication disabled does, and keeps every envelope for tests to read.
"""

import base64
import gzip
import json
import threading
from typing import Any

from devhost import certs
from devhost.simulators.base import JsonHandler, LoopbackServer

INSTRUMENTATION_KEY = "00000000-0000-4000-8000-00000000a1a1"
AUDIENCES = ("https://monitor.azure.com", "https://monitor.azure.com/")


def _audience(token: str) -> str | None:
    """The `aud` claim of a JWT (signatures are Entra ID's business, not the simulator's)."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["aud"]
    except (IndexError, ValueError, KeyError):
        return None


class IngestionState:
    """Envelopes received, and the tokens they came with."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.envelopes: list[dict[str, Any]] = []
        self.tokens: list[str] = []

    def custom_events(self) -> list[dict[str, Any]]:
        """Name and properties of every custom event received."""
        with self.lock:
            return [
                {"name": e["data"]["baseData"]["name"], **e["data"]["baseData"].get("properties", {})}
                for e in self.envelopes
                if e.get("data", {}).get("baseType") == "EventData"
            ]


class _Handler(JsonHandler):
    server: "IngestionServer"

    def do_POST(self) -> None:
        """`/v2.1/track`: a JSON array of envelopes (possibly gzipped); answers like the real endpoint."""
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if not self.path.rstrip("/").endswith("/track"):
            self.reply(404, {"error": "unknown path"})
            return
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or _audience(auth.removeprefix("Bearer ")) not in AUDIENCES:
            # Local authentication disabled: the real resource refuses a write without a token for Azure Monitor.
            self.reply(401, {"itemsReceived": 0, "itemsAccepted": 0, "errors": [{"statusCode": 401}]})
            return
        envelopes = json.loads(body)
        if isinstance(envelopes, dict):
            envelopes = [envelopes]
        state = self.server.state
        with state.lock:
            state.envelopes.extend(envelopes)
            state.tokens.append(auth.removeprefix("Bearer "))
        self.reply(200, {"itemsReceived": len(envelopes), "itemsAccepted": len(envelopes), "errors": []})


class IngestionServer(LoopbackServer):
    """The ingestion simulator on a free loopback port."""

    def __init__(self, certificate: certs.LoopbackCertificate, port: int = 0) -> None:
        super().__init__(port, _Handler, tls=(certificate.cert, certificate.key))
        self.state = IngestionState()

    @property
    def connection_string(self) -> str:
        """An Application Insights connection string that points the exporter here."""
        return f"InstrumentationKey={INSTRUMENTATION_KEY};IngestionEndpoint={self.url}/"
