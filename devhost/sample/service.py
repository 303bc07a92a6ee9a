"""Simulator of the sample chain's external system: a person look-up and a booking endpoint, over HTTP.

- `POST /lookup` {"cpr": ...} -> {"nemkonto": bool}; faults are set per CPR through `/_control/faults`
  (a number of 503 answers, or -1 for always), and `/_control/slow` adds latency.
- `POST /bookings` with an `Idempotency-Key` header -> 201 with a new booking, or 200 with the existing one
  for a key seen before. `/_control/hold` makes booking requests record their effect and then hang, so a
  test can kill the host after a side effect and before its ledger write.
- `GET /_control/bookings` lists the effects and how many requests each key received.

Personal data: CPR numbers arrive in request bodies only; the simulator logs nothing but method and path.
"""

import json
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class SampleService:
    """State of the simulated system; thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.faults: dict[str, int] = {}
        self.no_nemkonto: set[str] = set()
        self.lookups: dict[str, int] = {}
        self.bookings: dict[str, dict[str, Any]] = {}
        self.booking_requests: dict[str, int] = {}
        self.hold_after: int | None = None
        self.release = threading.Event()
        self.slow_seconds = 0.0

    def reset(self) -> None:
        """Forgets everything (between tests)."""
        with self.lock:
            self.__init__()  # type: ignore[misc]


class _Handler(BaseHTTPRequestHandler):
    server: "SampleServer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Quiet: the access log would add nothing but noise."""

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def do_GET(self) -> None:
        """Control reads."""
        state = self.server.state
        if self.path == "/_control/bookings":
            with state.lock:
                self._reply(200, {"bookings": state.bookings, "requests": state.booking_requests})
        else:
            self._reply(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        """Look-ups, bookings and control writes."""
        state = self.server.state
        body = self._body()
        if state.slow_seconds and not self.path.startswith("/_control"):
            time.sleep(state.slow_seconds)
        if self.path == "/lookup":
            cpr = str(body.get("cpr", ""))
            with state.lock:
                state.lookups[cpr] = state.lookups.get(cpr, 0) + 1
                remaining = state.faults.get(cpr, 0)
                if remaining:
                    state.faults[cpr] = remaining - 1 if remaining > 0 else remaining
            if remaining:
                # Real registers echo the query in their errors; the platform must redact it.
                self._reply(503, {"error": {"message": f"opslag af {cpr} fejlede: registeret svarer ikke"}})
                return
            self._reply(200, {"nemkonto": cpr not in state.no_nemkonto})
        elif self.path == "/bookings":
            key = self.headers.get("Idempotency-Key", "")
            if not key:
                self._reply(400, {"error": {"message": "Idempotency-Key mangler"}})
                return
            with state.lock:
                state.booking_requests[key] = state.booking_requests.get(key, 0) + 1
                created = key not in state.bookings
                if created:
                    state.bookings[key] = {"amount": str(Decimal(body["amount"])), "reference": body["reference"]}
                booking = {"id": key, **state.bookings[key]}
                hold = state.hold_after is not None and len(state.bookings) >= state.hold_after
            if hold:
                state.release.wait()
            self._reply(201 if created else 200, booking)
        elif self.path == "/_control/faults":
            with state.lock:
                state.faults.update({str(k): int(v) for k, v in body.get("faults", {}).items()})
                state.no_nemkonto.update(str(c) for c in body.get("no_nemkonto", []))
            self._reply(200, {})
        elif self.path == "/_control/hold":
            with state.lock:
                state.hold_after = body.get("after")
                state.release.clear()
            if state.hold_after is None:
                state.release.set()
            self._reply(200, {})
        elif self.path == "/_control/slow":
            state.slow_seconds = float(body.get("seconds", 0))
            self._reply(200, {})
        elif self.path == "/_control/reset":
            state.release.set()
            state.reset()
            self._reply(200, {})
        else:
            self._reply(404, {"error": {"message": "not found"}})


class SampleServer(ThreadingHTTPServer):
    """The simulator's HTTP server on a loopback port."""

    daemon_threads = True

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.state = SampleService()

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> "SampleServer":
        """Serves in a background thread."""
        threading.Thread(target=self.serve_forever, name="sample-service", daemon=True).start()
        return self

    def stop(self) -> None:
        """Releases held requests and stops serving."""
        self.state.release.set()
        self.shutdown()
        self.server_close()
