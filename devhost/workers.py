"""Language-worker processes for the local host, as `FUNCTIONS_WORKER_PROCESS_COUNT` gives the Functions host.

The Functions host keeps its listeners (queue polling, leases, Event Grid) in one process and sends each
invocation to one of N Python worker processes, each running its own thread pool. With one worker a
CPU-bound Python app is held to one core by the GIL whatever the plan has; with two it can use two. Here the
`LocalHost` stays the host (it receives, leases, settles and retries exactly as with one process) and hands
each invocation to the least busy worker over a pipe: the function's name and what its trigger carries (a
queue message's fields, a blob's container and name, a timer's past-due flag). The worker builds the
argument as the in-process host would and answers whether the function succeeded.

A worker that dies fails the invocations it held, and gets no more; the host then treats those as it treats
any failure (the message comes back after its visibility timeout, the blob event is offered again).
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
    gone: bool = False  # its pipe closed: it answers nothing more
    collector: threading.Thread | None = None


class WorkerPool:
    """N worker processes, each loading the app by reference ('module:attribute') with `threads` threads."""

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
        context = multiprocessing.get_context("spawn")  # a fresh interpreter, as the host starts its workers
        root = logging.getLogger()
        config = WorkerConfig(
            app, connection_string, threads, environ, initializer, root.getEffectiveLevel(), current_log_file()
        )
        self._ids = itertools.count(1)
        self._workers: list[_Worker] = []
        #: What each worker's initializer reported when the worker stopped (e.g. a benchmark's request counts).
        self.reports: list[Any] = []
        for number in range(count):
            here, there = context.Pipe()
            process = context.Process(
                target=serve,
                args=(there, config),
                name=f"devhost-worker-{number}",
                daemon=True,
            )
            process.start()
            there.close()
            worker = _Worker(process, here)
            worker.collector = threading.Thread(target=self._collect, args=(worker,), daemon=True)
            worker.collector.start()
            self._workers.append(worker)

    @property
    def pids(self) -> list[int]:
        """The worker processes' ids (for CPU and memory figures)."""
        return [worker.process.pid for worker in self._workers]

    def invoke(self, invocation: Invocation) -> bool:
        """Runs one invocation on the least busy worker and waits; True if the function succeeded."""
        alive = [worker for worker in self._workers if not worker.gone and worker.process.is_alive()]
        if not alive:
            _log.error("every worker process has died; %s fails", invocation.function)
            return False
        worker = min(alive, key=lambda w: len(w.pending))
        future: Future[bool] = Future()
        request = next(self._ids)
        with worker.lock:
            if worker.gone:  # died since the look above: its answers are over
                return False
            worker.pending[request] = future
            try:
                worker.connection.send((request, invocation))
            except OSError:  # it died just now
                worker.pending.pop(request)
                return False
        return future.result()

    def _collect(self, worker: _Worker) -> None:
        """Reads one worker's answers; when it dies, whatever it held has failed."""
        while True:
            try:
                request, answer = worker.connection.recv()
            except (EOFError, OSError):
                break
            if request == 0:  # its initializer's report, sent as it stops
                self.reports.append(answer)
                continue
            with worker.lock:
                future = worker.pending.pop(request, None)
            if future is not None:
                future.set_result(bool(answer))
        with worker.lock:
            worker.gone = True
            failed, worker.pending = worker.pending, {}
        for future in failed.values():
            future.set_result(False)

    def close(self, timeout: float = 60.0) -> None:
        """Lets each worker finish what it holds and stop."""
        for worker in self._workers:
            with worker.lock, suppress(OSError):
                worker.connection.send(None)
        for worker in self._workers:
            worker.process.join(timeout)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(5)
            if worker.collector is not None:  # it has read the worker's last words (its report) once it ends
                worker.collector.join(5)


def serve(connection: Connection, config: "WorkerConfig") -> None:
    """A worker process: loads the app, runs each invocation it is sent on its thread pool, answers."""
    os.environ.update(config.environ)
    configure_logging(config.log_level, config.log_file)  # as the host logs: redacted, to the same file
    from devhost.app_index import load_app
    from devhost.host import HostOptions, LocalHost

    report: Callable[[], Any] | None = None
    if config.initializer:
        module, _, name = config.initializer.partition(":")
        report = getattr(importlib.import_module(module), name)()
    host = LocalHost(load_app(config.app), connection_string=config.connection_string, options=HostOptions())
    pool = ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="fn")
    sending = threading.Lock()

    def run(request: int, invocation: Invocation) -> None:
        try:
            ok = host.run_invocation(invocation)
        except Exception:  # e.g. a function this app does not have: a failure, never a host left waiting
            logging.getLogger("devhost").exception("invocation of %s failed in the worker", invocation.function)
            ok = False
        with sending, suppress(OSError):
            connection.send((request, ok))

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
        with sending, suppress(OSError):
            connection.send((0, report()))
    connection.close()
