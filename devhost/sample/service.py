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
from typing import Any

from devhost.simulators.base import JsonHandler, LoopbackServer


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


class _Handler(JsonHandler):
    server: "SampleServer"

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def do_GET(self) -> None:
        """Control reads."""
        state = self.server.state
        if self.path == "/_control/bookings":
            with state.lock:
                self.reply(200, {"bookings": state.bookings, "requests": state.booking_requests})
        else:
            self.reply(404, {"error": {"message": "not found"}})

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
                self.reply(503, {"error": {"message": f"opslag af {cpr} fejlede: registeret svarer ikke"}})
                return
            self.reply(200, {"nemkonto": cpr not in state.no_nemkonto})
        elif self.path == "/bookings":
            key = self.headers.get("Idempotency-Key", "")
            if not key:
                self.reply(400, {"error": {"message": "Idempotency-Key mangler"}})
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
            self.reply(201 if created else 200, booking)
        elif self.path == "/_control/faults":
            with state.lock:
                state.faults.update({str(k): int(v) for k, v in body.get("faults", {}).items()})
                state.no_nemkonto.update(str(c) for c in body.get("no_nemkonto", []))
            self.reply(200, {})
        elif self.path == "/_control/hold":
            with state.lock:
                state.hold_after = body.get("after")
                state.release.clear()
            if state.hold_after is None:
                state.release.set()
            self.reply(200, {})
        elif self.path == "/_control/slow":
            state.slow_seconds = float(body.get("seconds", 0))
            self.reply(200, {})
        elif self.path == "/_control/reset":
            state.release.set()
            state.reset()
            self.reply(200, {})
        else:
            self.reply(404, {"error": {"message": "not found"}})


class SampleServer(LoopbackServer):
    """The simulator's HTTP server on a loopback port."""

    def __init__(self, port: int = 0) -> None:
        super().__init__(port, _Handler)
        self.state = SampleService()

    def stop(self) -> None:
        """Releases held requests and stops serving."""
        self.state.release.set()
        super().stop()
