"""Language-worker processes for the local host, as `FUNCTIONS_WORKER_PROCESS_COUNT` gives the Functions host.

The Functions host keeps its listeners (queue polling, leases, Event Grid) in one process and sends each
invocation to one of N Python worker processes, each running its own thread pool. With one worker a
CPU-bound Python app is held to one core by the GIL whatever the plan has; with two it can use two. Here the
`LocalHost` stays the host (it receives, leases, settles and retries exactly as with one process) and hands
each invocation to the least busy worker over a pipe: the function's name and what its trigger carries (a
queue message's fields, a blob's container and name, a timer's past-due flag). The worker builds the
argument as the in-process host would and answers whether the function succeeded.

A worker that dies fails the invocations it held, and another is started in its place; the host treats those
invocations as any failure (the message comes back after its visibility timeout, the blob event is offered
again). Each worker logs, redacted as the host does, to a file of its own beside the host's.
"""

import importlib
import itertools
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from devhost.logs import configure_logging, current_log_file

_log = logging.getLogger("devhost")


@dataclass(frozen=True)
class Invocation:
    """What the host sends a worker: the function, and its trigger's content as plain values."""

    function: str
    trigger_type: str
    content: dict[str, Any]


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker process starts from."""

    app: str
    connection_string: str
    threads: int
    environ: dict[str, str]
    initializer: str | None
    log_level: int
    log_file: str | None


@dataclass
class _Worker:
    process: Any
    connection: Connection
    lock: threading.Lock = field(default_factory=threading.Lock)
    pending: dict[int, Future[bool]] = field(default_factory=dict)
    ready: threading.Event = field(default_factory=threading.Event)  # it has loaded the app
    gone: bool = False  # its pipe closed: it answers nothing more
    collector: threading.Thread | None = None


#: Message ids a worker sends of its own accord (invocations are numbered from 1).
_READY, _REPORT = -1, 0
#: How long a worker may take to import the app before the host gives up on it.
START_SECONDS = 120.0


class WorkerPool:
    """N worker processes, each loading the app by reference ('module:attribute') with `threads` threads; a
    worker that dies is replaced, as the Functions host restarts its language workers."""

    def __init__(
        self,
        count: int,
        *,
        app: str,
        connection_string: str,
        threads: int,
        environ: dict[str, str],
        initializer: str | None = None,
    ) -> None:
        self._context = multiprocessing.get_context("spawn")  # a fresh interpreter, as the host starts its workers
        root = logging.getLogger()
        self._config = WorkerConfig(
            app, connection_string, threads, environ, initializer, root.getEffectiveLevel(), current_log_file()
        )
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # guards the list of workers
        self._closing = False
        #: What each worker's initializer reported when the worker stopped (e.g. a benchmark's request counts).
        self.reports: list[Any] = []
        self._workers = [self._start() for _ in range(count)]
        for worker in self._workers:
            if not worker.ready.wait(START_SECONDS) or worker.gone:
                self.close(timeout=5)
                raise RuntimeError("a worker process did not load the app; its log says why")

    def _start(self) -> _Worker:
        here, there = self._context.Pipe()
        process = self._context.Process(target=serve, args=(there, self._config), daemon=True)
        process.start()
        there.close()
        worker = _Worker(process, here)
        worker.collector = threading.Thread(target=self._collect, args=(worker,), daemon=True)
        worker.collector.start()
        return worker

    @property
    def pids(self) -> list[int]:
        """The worker processes' ids now (for CPU and memory figures)."""
        with self._lock:
            return [worker.process.pid for worker in self._workers]

    def invoke(self, invocation: Invocation) -> bool:
        """Runs one invocation on the least busy worker and waits; True if the function succeeded."""
        with self._lock:
            worker = min(self._workers, key=lambda w: (w.gone, len(w.pending)))
        future: Future[bool] = Future()
        request = next(self._ids)
        with worker.lock:
            if worker.gone:  # every worker died at once and none is back yet: a failure, retried as any
                return False
            worker.pending[request] = future
            try:
                worker.connection.send((request, invocation))
            except OSError:  # it died just now; its collector replaces it
                worker.pending.pop(request)
                return False
        return future.result()

    def _collect(self, worker: _Worker) -> None:
        """Reads one worker's answers; when it dies, whatever it held has failed and a new one takes its place."""
        try:
            with suppress(EOFError, OSError):  # its pipe closed: it ended
                while True:
                    request, answer = worker.connection.recv()
                    if request == _READY:
                        worker.ready.set()
                    elif request == _REPORT:  # sent as it stops
                        self.reports.append(answer)
                    else:
                        with worker.lock:
                            future = worker.pending.pop(request, None)
                        if future is not None:
                            future.set_result(bool(answer))
        finally:  # whatever ended the reading (an answer it could not read, too), nothing held may wait for ever
            with worker.lock:
                worker.gone = True
                failed, worker.pending = worker.pending, {}
            worker.ready.set()  # wakes a start that waits for it
            for future in failed.values():
                future.set_result(False)
            self._replace(worker)

    def _replace(self, worker: _Worker) -> None:
        """Starts a worker in the place of one that died (not when the pool is closing)."""
        with self._lock:
            if self._closing or worker not in self._workers:
                return
            _log.error(
                "worker process %s ended (exit code %s); starting another", worker.process.pid, worker.process.exitcode
            )
            self._workers[self._workers.index(worker)] = self._start()

    def close(self, timeout: float = 60.0) -> None:
        """Lets each worker finish what it holds and stop."""
        with self._lock:
            self._closing = True
            workers = list(self._workers)
        for worker in workers:
            with worker.lock, suppress(OSError):
                worker.connection.send(None)
        for worker in workers:
            worker.process.join(timeout)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(5)
            if worker.collector is not None:  # it has read the worker's last words (its report) once it ends
                worker.collector.join(5)


def _own_log_file(log_file: str | None) -> str | None:
    """A worker's log file beside the host's (`pytest.log` -> `pytest.worker-<pid>.log`): the host may truncate
    its own, and lines of two processes would interleave."""
    if not log_file:
        return None
    path = Path(log_file)
    return str(path.with_name(f"{path.stem}.worker-{os.getpid()}{path.suffix}"))


def serve(connection: Connection, config: WorkerConfig) -> None:
    """A worker process: loads the app, says it is ready, runs each invocation it is sent on its thread pool and
    answers each, and reports (its initializer's report) when told to stop."""
    os.environ.update(config.environ)
    configure_logging(config.log_level, _own_log_file(config.log_file))  # redacted, as the host logs
    from devhost.app_index import load_app
    from devhost.host import HostOptions, LocalHost

    report: Callable[[], Any] | None = None
    if config.initializer:
        module, _, name = config.initializer.partition(":")
        report = getattr(importlib.import_module(module), name)()
    host = LocalHost(load_app(config.app), connection_string=config.connection_string, options=HostOptions())
    pool = ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="fn")
    sending = threading.Lock()

    def answer(request: int, value: Any) -> None:
        with sending, suppress(OSError):
            connection.send((request, value))

    def run(request: int, invocation: Invocation) -> None:
        ok = False
        try:
            ok = host.run_invocation(invocation)
        except BaseException:  # e.g. a function this app does not have, a SystemExit: never a host left waiting
            logging.getLogger("devhost").exception("invocation of %s failed in the worker", invocation.function)
        finally:
            answer(request, ok)

    answer(_READY, None)
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            break
        if message is None:
            break
        pool.submit(run, *message)
    pool.shutdown(wait=True)
    if report is not None:
        answer(_REPORT, report())
    connection.close()
