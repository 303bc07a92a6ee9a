"""The local Functions host: drives the app's real handlers against Azurite with the host's semantics.

- timers on their NCRONTAB schedule (six fields, seconds first), or on demand (`fire`);
- timers with `useMonitor`: the last occurrence is remembered in a table, so an occurrence missed while the
  host was down fires once at start with `past_due`, as the host's schedule monitor does;
- blob triggers with the Event Grid source: one event per blob name and ETag whose name matches the path
  pattern, remembered in a table so a restarted host does not fire it again; a failed invocation is offered
  again with doubling delays (Event Grid retries, compressed) and given up with an error after a few;
- listeners side by side, as in the host: a blob trigger does not hold up the queues, nor one queue another;
  each queue gets a new batch once its messages in hand are down to host.json's newBatchThreshold;
- queue triggers: receive up to host.json's batchSize, run them concurrently, keep in-flight messages
  invisible (renewing as the host does), delete on success, make visible again after host.json's
  visibilityTimeout on failure, and move a message to `<queue>-poison` once its dequeue count reaches
  maxDequeueCount (or, received with a count already past it - it crashed the host each time - without
  invoking anything); bodies are base64 as the host expects, and a body that is not is a failure.

It emulates the host; it does not replace the code under test.
"""

import base64
import inspect
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableServiceClient
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest
from azure.storage.blob import BlobClient, BlobServiceClient
from azure.storage.queue import QueueMessage as StoredMessage
from azure.storage.queue import QueueServiceClient

from devhost import manifest
from devhost.app_index import FunctionSpec, binding_problems, index
from devhost.workers import Invocation, WorkerPool
from shared.personal_data import digest
from shared.schedules import next_occurrence

ROOT = Path(__file__).resolve().parent.parent
BLOB_EVENTS_TABLE = "devhostblobevents"
TIMERS_TABLE = "devhosttimers"
EVENT_GRID_AGENT = "devhost-eventgrid"
#: HTTP routes come once the app has an HTTP function.
SUPPORTED_TRIGGERS = frozenset({"queueTrigger", "timerTrigger", "blobTrigger"})
_log = logging.getLogger("devhost")


def _timespan_seconds(value: str) -> float:
    hours, minutes, seconds = value.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@dataclass(frozen=True)
class QueueSettings:
    """host.json's extensions.queues, with the host's defaults."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0
    max_polling_interval: float = 2.0

    @classmethod
    def from_host_json(cls, path: Path) -> "QueueSettings":
        """Reads host.json."""
        queues = json.loads(path.read_text()).get("extensions", {}).get("queues", {})
        batch_size = int(queues.get("batchSize", 16))
        return cls(
            batch_size=batch_size,
            new_batch_threshold=int(queues.get("newBatchThreshold", batch_size // 2)),
            max_dequeue_count=int(queues.get("maxDequeueCount", 5)),
            visibility_timeout=_timespan_seconds(queues.get("visibilityTimeout", "00:00:00")),
            max_polling_interval=_timespan_seconds(queues.get("maxPollingInterval", "00:01:00")),
        )


@dataclass
class HostOptions:
    """How the local host behaves; tests shorten the timings."""

    #: How long a received message stays invisible while its handler runs (the host uses 10 minutes);
    #: after a crash it becomes visible again after this long.
    lease_seconds: int = 600
    poll_interval: float = 0.2
    #: Deliver every queue message twice (at-least-once delivery made certain), for idempotency tests.
    duplicate_delivery: bool = False
    #: Deliver every queue message twice at the same time (two instances got it), for idempotency tests.
    concurrent_duplicates: bool = False
    #: Blob event delivery attempts before the event is given up (Event Grid gives up too, after 24 h).
    blob_event_attempts: int = 5
    #: First delay before a failed blob event is offered again; it doubles with each attempt.
    blob_event_retry_seconds: float = 2.0
    #: Overrides host.json's visibilityTimeout (the delay before a failed message is offered again).
    failure_visibility_seconds: int | None = None
    #: Worker processes the invocations run in (the app setting FUNCTIONS_WORKER_PROCESS_COUNT); 1 runs them in
    #: this process. More need `app` (the app as 'module:attribute', which each worker imports).
    worker_processes: int = 1
    #: Threads of each worker process (PYTHON_THREADPOOL_THREAD_COUNT).
    worker_threads: int = 8
    app: str | None = None
    #: 'module:callable' each worker calls at start; what the callable returns is called as the worker stops,
    #: and its result lands in `LocalHost.worker_reports` (a benchmark counts the workers' requests so).
    worker_initializer: str | None = None


def _invocation(spec: FunctionSpec, argument: Any) -> Invocation:
    """What a worker process needs to build a trigger's argument itself: plain values, never a client."""
    if spec.trigger_type == "queueTrigger":
        content = {
            "id": argument.id,
            "body": argument.get_body(),
            "dequeue_count": argument.dequeue_count,
            "expiration_time": argument.expiration_time,
            "insertion_time": argument.insertion_time,
            "time_next_visible": argument.time_next_visible,
            "pop_receipt": argument.pop_receipt,
        }
    elif spec.trigger_type == "blobTrigger":
        content = {"container": argument.container_name, "name": argument.blob_name}
    else:
        content = {"past_due": argument.past_due}
    return Invocation(spec.name, spec.trigger_type, content)


def _later(seen: dict[str, Any], now: datetime) -> bool:
    """Whether a blob event that failed before waits for its next attempt."""
    return bool(seen.get("NextAttemptAt") and seen["NextAttemptAt"] > now)


@dataclass
class _Timer:
    spec: FunctionSpec
    schedule: str
    next_due: datetime
    monitored: bool


@dataclass
class _InFlight:
    """A queue message being handled: where it came from and when its lease needs renewing."""

    client: Any
    queue: str
    message: StoredMessage
    renew_at: float


@dataclass
class Stats:
    """What the host did; tests and benchmarks read it."""

    invocations: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    poisoned: dict[str, int] = field(default_factory=dict)

    def count(self, bucket: dict[str, int], name: str) -> None:
        """Adds one to a counter."""
        bucket[name] = bucket.get(name, 0) + 1


class LocalHost:
    """Runs one FunctionApp's functions against a storage account (Azurite)."""

    def __init__(
        self,
        app: func.FunctionApp,
        *,
        connection_string: str,
        settings: Mapping[str, str] | None = None,
        options: HostOptions | None = None,
        host_json: Path = ROOT / "host.json",
    ) -> None:
        self.app = app
        self.connection_string = connection_string
        self.settings = {**os.environ, **(settings or {})}
        self.options = options or HostOptions()
        self.queue_settings = QueueSettings.from_host_json(host_json)
        self.functions = index(app)
        problems = [p for spec in self.functions for p in binding_problems(spec)]
        if problems:
            raise RuntimeError("the worker would refuse this app: " + "; ".join(problems))
        unsupported = [s.name for s in self.functions if s.trigger_type not in SUPPORTED_TRIGGERS]
        if unsupported:
            raise RuntimeError(f"devhost cannot host these triggers yet: {unsupported}")
        self.stats = Stats()
        self._queues = QueueServiceClient.from_connection_string(connection_string)
        # Tagged so that request counts can tell Event Grid's emulation (free in Azure) from the app's work.
        self._blobs = BlobServiceClient.from_connection_string(connection_string, user_agent=EVENT_GRID_AGENT)
        self._tables = TableServiceClient.from_connection_string(connection_string)
        self._pool = ThreadPoolExecutor(max_workers=max(4, self.queue_settings.batch_size), thread_name_prefix="fn")
        self._stop = threading.Event()
        self._timers: list[_Timer] | None = None  # read from the schedule monitor on first use
        self._messages: dict[Future[bool], _InFlight] = {}  # queue messages being handled, as the host leases them
        self._blob_deliveries: dict[str, Future[None]] = {}  # blob events being delivered, by event key
        # Events known delivered or given up (final states): a scan that lists only these skips the events table.
        self._settled_blob_events: set[str] = set()
        self._next_blob_scan = 0.0
        self._next_receive: dict[str, float] = {}  # per queue: an empty one is polled again after poll_interval
        self._workers: WorkerPool | None = None
        if self.options.worker_processes > 1:
            if not self.options.app:
                raise ValueError("worker processes import the app: HostOptions.app names it ('module:attribute')")
            self._workers = WorkerPool(
                self.options.worker_processes,
                app=self.options.app,
                connection_string=connection_string,
                threads=self.options.worker_threads,
                environ=dict(settings or {}),
                initializer=self.options.worker_initializer,
            )

    # --- set-up -------------------------------------------------------------------------------------------

    def resolve(self, value: str) -> str:
        """Replaces %SETTING% references with app settings, as the host does for binding expressions."""

        def setting(match: re.Match[str]) -> str:
            if match.group(1) not in self.settings:
                raise KeyError(f"app setting {match.group(1)} is not set")
            return self.settings[match.group(1)]

        return re.sub(r"%([A-Za-z0-9_]+)%", setting, value)

    def provision(self) -> None:
        """Creates the queues, poison queues, containers and tables the manifest names (infra/ does it in Azure)."""
        description = manifest.build(self.app)
        for queue in description["queues"]:
            for name in (queue["name"], queue["poison"]):
                with suppress(ResourceExistsError):
                    self._queues.create_queue(name)
        for name in description["containers"]:
            with suppress(ResourceExistsError):
                self._blobs.create_container(name)
        for name in [*description["tables"], BLOB_EVENTS_TABLE, TIMERS_TABLE]:
            self._tables.create_table_if_not_exists(name)

    # --- timers -------------------------------------------------------------------------------------------

    @staticmethod
    def _next_due(schedule: str, after: datetime) -> datetime:
        return next_occurrence(schedule, after)

    def fire(self, name: str, *, past_due: bool = False) -> bool:
        """Runs a timer function now, as the host would at its schedule; False if it failed."""
        spec = self._spec(name, "timerTrigger")
        return self._invoke(spec, {spec.trigger["name"]: TimerRequest(past_due=past_due)})

    def _load_timers(self) -> list[_Timer]:
        now = datetime.now(UTC)
        status = self._tables.get_table_client(TIMERS_TABLE)
        timers = []
        for spec in self.functions:
            if spec.trigger_type != "timerTrigger":
                continue
            schedule = self.resolve(spec.trigger["schedule"])
            monitored = bool(spec.trigger.get("useMonitor", True))
            last = None
            if monitored:
                with suppress(ResourceNotFoundError):
                    last = status.get_entity("timers", spec.name)["Last"]
            timers.append(_Timer(spec, schedule, self._next_due(schedule, last or now), monitored))
        return timers

    def _due_timers(self) -> int:
        if self._timers is None:
            self._timers = self._load_timers()
        now = datetime.now(UTC)
        fired = 0
        for timer in self._timers:
            if timer.next_due <= now:
                past_due = now - timer.next_due > timedelta(seconds=5)
                occurrence, timer.next_due = timer.next_due, self._next_due(timer.schedule, now)
                self.fire(timer.spec.name, past_due=past_due)
                if timer.monitored:
                    self._tables.get_table_client(TIMERS_TABLE).upsert_entity(
                        {"PartitionKey": "timers", "RowKey": timer.spec.name, "Last": occurrence}
                    )
                fired += 1
        return fired

    # --- blob events (Event Grid source) ------------------------------------------------------------------

    def _blob_events(self) -> int:
        """Delivers every due blob event, concurrently on the worker pool as the Functions host does, and waits."""
        started = self._start_blob_events()
        self._drain()
        return started

    def _start_blob_events(self) -> int:
        """Starts delivering each due blob event not already being delivered; does not wait."""
        now = datetime.now(UTC)
        started = 0
        for spec, client, seen in self._undelivered_blob_events():
            if _later(seen, now) or seen["RowKey"] in self._blob_deliveries:
                continue
            self._blob_deliveries[seen["RowKey"]] = self._pool.submit(self._deliver_blob_event, spec, client, seen, now)
            started += 1
        self._next_blob_scan = time.monotonic() + self.options.poll_interval
        return started

    def _deliver_blob_event(self, spec: FunctionSpec, client: BlobClient, seen: dict[str, Any], now: datetime) -> None:
        if self._workers is not None:  # the worker reads the blob, as it builds the binding
            ok = self._invoke(spec, {spec.trigger["name"]: client})
        else:
            ok = self._deliver_blob(spec, client)
        attempts = seen["Attempts"] + 1
        retry_in = self.options.blob_event_retry_seconds * 2 ** (attempts - 1)
        self._tables.get_table_client(BLOB_EVENTS_TABLE).upsert_entity(
            {**seen, "Delivered": ok, "Attempts": attempts, "NextAttemptAt": now + timedelta(seconds=retry_in)}
        )
        if ok or attempts >= self.options.blob_event_attempts:
            self._settled_blob_events.add(seen["RowKey"])
        if not ok and attempts >= self.options.blob_event_attempts:
            _log.error("blob event for %s given up after %d attempts", client.blob_name, attempts)

    def _undelivered_blob_events(self) -> Iterator[tuple[FunctionSpec, BlobClient, dict[str, Any]]]:
        events = self._tables.get_table_client(BLOB_EVENTS_TABLE)
        for spec in self.functions:
            if spec.trigger_type != "blobTrigger":
                continue
            container_name, _, pattern = self.resolve(spec.trigger["path"]).partition("/")
            matches = re.compile(re.sub(r"\\\{[^}]*\\\}", ".+", re.escape(pattern))).fullmatch
            container = self._blobs.get_container_client(container_name)
            listed = {
                digest(f"{blob.name}\n{blob.etag}", 64): blob.name
                for blob in container.list_blobs(name_starts_with=pattern.split("{", 1)[0] or None)
                if matches(blob.name)
            }
            open_keys = listed.keys() - self._settled_blob_events
            if not open_keys:
                continue  # every blob's event has been delivered or given up: no need to read the events table
            seen_events = {
                e["RowKey"]: e for e in events.query_entities("PartitionKey eq @pk", parameters={"pk": spec.name})
            }
            for key in sorted(open_keys, key=listed.__getitem__):
                seen = seen_events.get(
                    key, {"PartitionKey": spec.name, "RowKey": key, "Delivered": False, "Attempts": 0}
                )
                if seen["Delivered"] or seen["Attempts"] >= self.options.blob_event_attempts:
                    self._settled_blob_events.add(key)
                else:
                    yield spec, container.get_blob_client(listed[key]), dict(seen)

    def lose_blob_events(self) -> int:
        """Drops every undelivered blob event, as a lost Event Grid event would be; returns how many."""
        events = self._tables.get_table_client(BLOB_EVENTS_TABLE)
        lost = list(self._undelivered_blob_events())
        for _, _, seen in lost:
            events.upsert_entity({**seen, "Attempts": self.options.blob_event_attempts, "Lost": True})
        return len(lost)

    def pending_blob_events(self) -> int:
        """Blob events not yet delivered (and not given up)."""
        return sum(1 for _ in self._undelivered_blob_events())

    def _deliver_blob(self, spec: FunctionSpec, client: BlobClient) -> bool:
        """Invokes a blob trigger in this process with the binding its handler asks for; False if it failed."""
        try:
            argument = self._blob_argument(spec, client)
        except Exception:  # the blob vanished or is unreadable: a failed delivery, offered again later
            _log.exception("could not read %s for %s", client.blob_name, spec.name)
            return False
        return self._invoke(spec, {spec.trigger["name"]: argument})

    def _blob_argument(self, spec: FunctionSpec, client: BlobClient) -> Any:
        annotation = inspect.signature(spec.handler).parameters[spec.trigger["name"]].annotation
        if isinstance(annotation, type) and issubclass(annotation, BlobClient):
            return BlobClient.from_connection_string(self.connection_string, client.container_name, client.blob_name)
        data = client.download_blob().readall()
        return func.blob.InputStream(
            data=data, name=f"{client.container_name}/{client.blob_name}", uri=client.url, length=len(data)
        )

    # --- queues -------------------------------------------------------------------------------------------

    def _queue_pass(self) -> int:
        """One batch per trigger queue, handled concurrently; waits until they are all settled."""
        started = sum(self._receive(spec) for spec in self.functions if spec.trigger_type == "queueTrigger")
        self._drain()
        return started

    def _receive(self, spec: FunctionSpec, *, room: int | None = None) -> int:
        """Receives up to `room` messages (a batch) of a function's queue and starts handling them; does not wait."""
        name = self.resolve(spec.trigger["queueName"])
        client = self._queues.get_queue_client(name)
        wanted = self.queue_settings.batch_size if room is None else room
        received = list(
            client.receive_messages(
                messages_per_page=min(32, wanted), max_messages=wanted, visibility_timeout=self.options.lease_seconds
            )
        )
        if not received:
            self._next_receive[name] = time.monotonic() + self.options.poll_interval
            return 0
        crashed = [m for m in received if (m.dequeue_count or 0) > self.queue_settings.max_dequeue_count]
        for message in crashed:  # it took the host down every time: the host poisons it without a try
            self._poison(client, name, message)
        renew_at = time.monotonic() + self.options.lease_seconds / 2
        for message in received:
            if message not in crashed:
                future = self._pool.submit(self._deliver, spec, message)
                self._messages[future] = _InFlight(client, name, message, renew_at)
        return len(received)

    def _listen(self) -> int:
        """Each queue listener on its own, as the host runs them: a new batch once a queue's messages in hand are
        down to host.json's newBatchThreshold, an empty queue polled again after the interval."""
        in_hand: dict[str, int] = {}
        for flight in self._messages.values():
            in_hand[flight.queue] = in_hand.get(flight.queue, 0) + 1
        started = 0
        now = time.monotonic()
        for spec in self.functions:
            if spec.trigger_type != "queueTrigger":
                continue
            name = self.resolve(spec.trigger["queueName"])
            held = in_hand.get(name, 0)
            if held <= self.queue_settings.new_batch_threshold and now >= self._next_receive.get(name, 0.0):
                started += self._receive(spec, room=self.queue_settings.batch_size - held)
        return started

    def _renew_leases(self) -> None:
        """Keeps messages still being handled halfway through their lease invisible, as the host does."""
        now = time.monotonic()
        for future, flight in self._messages.items():
            if not future.done() and now >= flight.renew_at:
                with suppress(ResourceNotFoundError):
                    renewed = flight.client.update_message(
                        flight.message, visibility_timeout=self.options.lease_seconds
                    )
                    flight.message.pop_receipt = renewed.pop_receipt
                flight.renew_at = now + self.options.lease_seconds / 2

    def _settle_finished(self) -> int:
        """Deletes (or returns, or poisons) the messages whose handling ended; forgets finished blob deliveries."""
        settled = 0
        for future in [f for f in self._messages if f.done()]:
            flight = self._messages.pop(future)
            try:
                self._settle_message(flight.client, flight.queue, flight.message, future.result())
            except Exception:  # e.g. the lease was lost: the message simply comes back, as with the real host
                _log.exception("could not settle message %s on %s", flight.message.id, flight.queue)
            settled += 1
        for key in [k for k, f in self._blob_deliveries.items() if f.done()]:
            self._blob_deliveries.pop(key).result()
            settled += 1
        return settled

    def _pump(self) -> int:
        """One turn of the listeners, none waiting for another: settles what finished, starts due blob events
        (scanned at most every poll interval) and new queue batches; returns how much it started or settled."""
        moved = self._settle_finished()
        if time.monotonic() >= self._next_blob_scan:
            moved += self._start_blob_events()
        moved += self._listen()
        self._renew_leases()
        return moved

    def _busy(self) -> list[Future[Any]]:
        return [*self._messages, *self._blob_deliveries.values()]

    def _settle_message(self, client: Any, name: str, message: StoredMessage, ok: bool) -> None:
        if ok:
            client.delete_message(message)
        elif message.dequeue_count is not None and message.dequeue_count >= self.queue_settings.max_dequeue_count:
            self._poison(client, name, message)
        else:
            delay = self.options.failure_visibility_seconds
            if delay is None:
                delay = int(self.queue_settings.visibility_timeout)
            client.update_message(message, visibility_timeout=delay)

    def _poison(self, client: Any, name: str, message: StoredMessage) -> None:
        self._queues.get_queue_client(f"{name}-poison").send_message(message.content)
        client.delete_message(message)
        self.stats.count(self.stats.poisoned, name)
        _log.error("message %s moved to %s-poison after %d attempts", message.id, name, message.dequeue_count)

    def _deliver(self, spec: FunctionSpec, stored: StoredMessage) -> bool:
        try:
            body = base64.b64decode(stored.content, validate=True)
        except (ValueError, TypeError):
            _log.error("message %s on %s is not base64; the host cannot read it", stored.id, spec.name)
            self.stats.count(self.stats.failures, spec.name)
            return False
        message = QueueMessage(
            id=stored.id,
            body=body,
            dequeue_count=stored.dequeue_count,
            expiration_time=stored.expires_on,
            insertion_time=stored.inserted_on,
            time_next_visible=stored.next_visible_on,
            pop_receipt=stored.pop_receipt,
        )
        arguments = {spec.trigger["name"]: message}
        # A second instance gets a message only once the first one's lease has run out, so it sees the next
        # dequeue count, as it would in Azure.
        twin_message = QueueMessage(
            id=stored.id,
            body=body,
            dequeue_count=stored.dequeue_count + 1,
            expiration_time=stored.expires_on,
            insertion_time=stored.inserted_on,
            time_next_visible=stored.next_visible_on,
            pop_receipt=stored.pop_receipt,
        )
        twin = threading.Thread(target=self._invoke, args=(spec, {spec.trigger["name"]: twin_message}))
        if self.options.concurrent_duplicates:
            twin.start()
        ok = self._invoke(spec, arguments)
        if self.options.concurrent_duplicates:
            twin.join()
        if ok and self.options.duplicate_delivery:
            ok = self._invoke(spec, arguments)
        return ok

    # --- invoking -----------------------------------------------------------------------------------------

    def _spec(self, name: str, trigger_type: str) -> FunctionSpec:
        for spec in self.functions:
            if spec.name == name and spec.trigger_type == trigger_type:
                return spec
        raise KeyError(f"no {trigger_type} function named {name}")

    def _invoke(self, spec: FunctionSpec, arguments: dict[str, Any]) -> bool:
        self.stats.count(self.stats.invocations, spec.name)
        if self._workers is not None:
            ok = self._workers.invoke(_invocation(spec, arguments[spec.trigger["name"]]))
            if not ok:  # the worker logged why
                self.stats.count(self.stats.failures, spec.name)
            return ok
        try:
            spec.handler(**arguments)
            return True
        except Exception:
            self.stats.count(self.stats.failures, spec.name)
            _log.exception("function %s failed", spec.name)
            return False

    def run_invocation(self, invocation: Invocation) -> bool:
        """Runs an invocation a host sent this worker process, in this process; True if the function succeeded."""
        spec = self._spec(invocation.function, invocation.trigger_type)
        content = invocation.content
        if spec.trigger_type == "blobTrigger":
            return self._deliver_blob(spec, self._blobs.get_blob_client(content["container"], content["name"]))
        if spec.trigger_type == "queueTrigger":
            argument: Any = QueueMessage(**content)
        else:
            argument = TimerRequest(past_due=content["past_due"])
        return self._invoke(spec, {spec.trigger["name"]: argument})

    @property
    def worker_pids(self) -> list[int]:
        """The worker processes' ids; none when the functions run in this process."""
        return self._workers.pids if self._workers else []

    @property
    def worker_reports(self) -> list[Any]:
        """What each worker's initializer reported as it stopped (after `close`)."""
        return self._workers.reports if self._workers else []

    # --- driving ------------------------------------------------------------------------------------------

    def run_once(self) -> int:
        """One pass: due timers, new blobs, one batch per queue. Returns how many invocations it made."""
        return self._due_timers() + self._blob_events() + self._queue_pass()

    def backlog(self) -> dict[str, int]:
        """Messages waiting (visible or not) on every trigger queue."""
        counts = {}
        for spec in self.functions:
            if spec.trigger_type == "queueTrigger":
                name = self.resolve(spec.trigger["queueName"])
                counts[name] = self._queues.get_queue_client(name).get_queue_properties().approximate_message_count
        return counts

    def run_until_idle(self, timeout: float = 120.0) -> None:
        """Works until no blob is new and every trigger queue is empty, including delayed retries; the listeners
        run side by side, as in the host (a blob trigger does not hold up the queues, nor one queue another)."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                moved = self._pump()
                busy = self._busy()
                if busy:
                    wait(busy, timeout=self.options.poll_interval, return_when=FIRST_COMPLETED)
                elif not moved:
                    if not any(self.backlog().values()) and self.pending_blob_events() == 0:
                        return
                    time.sleep(self.options.poll_interval)
        finally:
            self._drain()
        raise TimeoutError(f"still busy after {timeout} s: {self.backlog()}")

    def serve_forever(self) -> None:
        """Runs until stop(): timers on schedule, blob events and queue listeners side by side, polling slower
        when idle."""
        idle = self.options.poll_interval
        while not self._stop.is_set():
            moved = self._due_timers() + self._pump()
            busy = self._busy()
            if busy:
                wait(busy, timeout=self.options.poll_interval, return_when=FIRST_COMPLETED)
                idle = self.options.poll_interval
            elif moved:
                idle = self.options.poll_interval
            else:
                self._stop.wait(idle)
                idle = min(idle * 2, self.queue_settings.max_polling_interval)
        self._drain()
        self._pool.shutdown(wait=True)
        if self._workers is not None:
            self._workers.close()

    def _drain(self) -> None:
        """Waits for what is in hand and settles it (leaving nothing leased by a host that stops)."""
        while self._busy():
            wait(self._busy(), timeout=self.options.lease_seconds / 2)
            self._renew_leases()
            self._settle_finished()

    def stop(self) -> None:
        """Ends serve_forever after the invocations in flight (safe from a signal handler)."""
        self._stop.set()

    def close(self) -> None:
        """Stops and waits for the worker threads (and processes), for a host driven by run_once or run_until_idle."""
        self._stop.set()
        self._pool.shutdown(wait=True)
        if self._workers is not None:
            self._workers.close()
