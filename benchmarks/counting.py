"""Counts every storage request this process makes, by service and operation, through azure-core's transport."""

import json
import os
import threading
from collections import Counter
from collections.abc import Callable
from urllib.parse import urlparse

from azure.core.pipeline.transport import RequestsTransport

from devhost.host import EVENT_GRID_AGENT


class RequestCounter:
    """Storage requests by (service, operation); requests tagged as Event Grid emulation are kept apart."""

    def __init__(self, ports: dict[int, str]) -> None:
        self.ports = ports
        self.counts: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()
        self._original = RequestsTransport.send

    def install(self) -> "RequestCounter":
        """Wraps the transport's send."""
        counter = self

        def send(transport: RequestsTransport, request, **kwargs):  # noqa: ANN001, ANN003, ANN202
            response = counter._original(transport, request, **kwargs)
            counter.record(request, response)
            return response

        RequestsTransport.send = send  # type: ignore[method-assign]
        return self

    def uninstall(self) -> None:
        """Restores the transport."""
        RequestsTransport.send = self._original  # type: ignore[method-assign]

    def record(self, request, response) -> None:  # noqa: ANN001
        """Classifies one request."""
        url = urlparse(request.url)
        service = self.ports.get(url.port or 0, "other")
        path = url.path.split("/")[2:]  # after the account
        query = url.query
        method = request.method
        if EVENT_GRID_AGENT in request.headers.get("User-Agent", "") or "devhostblobevents" in url.path:
            operation = "eventgrid-emulation"
        elif service == "queue" and path[-1:] == ["messages"] and method == "GET":
            empty = b"<QueueMessage>" not in (response.body() or b"")
            operation = "receive-empty" if empty else "receive"
        elif service == "queue":
            operation = {"POST": "send", "DELETE": "delete", "PUT": "update", "GET": "properties"}.get(method, method)
        elif service == "table" and path and path[0] == "$batch":
            operation = "batch"
        elif service == "table":
            operation = {
                "GET": "query/get",
                "PUT": "upsert",
                "PATCH": "upsert",
                "MERGE": "upsert",
                "POST": "insert",
                "DELETE": "delete",
            }.get(method, method)
        elif service == "blob":
            if "comp=list" in query:
                operation = "list"
            elif "comp=lease" in query:  # the limiter's slots and the staged posting files
                operation = "lease"
            else:
                operation = {"PUT": "upload", "GET": "download", "HEAD": "properties"}.get(method, method)
        else:
            operation = method
        with self.lock:
            self.counts[(service, operation)] += 1

    def total(self, *, exclude: tuple[str, ...] = ()) -> int:
        """Requests counted, leaving out the named operations."""
        return sum(n for (_, op), n in self.counts.items() if op not in exclude)

    def reset(self) -> None:
        """Starts counting afresh."""
        with self.lock:
            self.counts.clear()


#: The storage ports a worker process counts requests to, as JSON {port: service}; set by the benchmark.
PORTS_VARIABLE = "BENCH_STORAGE_PORTS"


def count_in_worker() -> "Callable[[], dict[tuple[str, str], int]]":
    """A devhost worker's initializer (`HostOptions.worker_initializer`): counts that process's requests and
    hands the counts back as the worker stops."""
    ports = {int(port): service for port, service in json.loads(os.environ[PORTS_VARIABLE]).items()}
    counter = RequestCounter(ports).install()
    return lambda: dict(counter.counts)
