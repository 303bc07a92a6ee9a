"""Process-kill injection for crash tests: `devhost serve --kill-after shared.ledger:create_items:3`.

The named callable is wrapped so the whole process dies (as a host instance does when it is recycled or
crashes) right before its N-th call, or right after the N-th call that returned. A call that raised does not count
for "after": the point is the window between an effect and its record, and a refused call made no effect (a
vendor that Kvantum refuses would otherwise let the kill pass by when it happens to be the N-th). Only devhost
installs this; the app never sees it.
"""

import importlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

KILLED_EXIT_CODE = 137


def install(spec: str, *, before: bool) -> None:
    """Wraps 'module:attribute.path:N' so the process exits before its N-th call or after its N-th returned one."""
    target, _, count = spec.rpartition(":")
    module_name, _, path = target.partition(":")
    owner: Any = importlib.import_module(module_name)
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    original: Callable[..., Any] = getattr(owner, name)
    lock = threading.Lock()
    calls = 0
    limit = int(count)

    def die() -> None:
        sys.stderr.write(f"devhost: killed {'before' if before else 'after'} call {limit} of {target}\n")
        sys.stderr.flush()
        os._exit(KILLED_EXIT_CODE)

    def counted() -> int:
        nonlocal calls
        with lock:
            calls += 1
            return calls

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if before and counted() == limit:
            die()
        result = original(*args, **kwargs)
        if not before and counted() == limit:
            die()
        return result

    setattr(owner, name, wrapper)
