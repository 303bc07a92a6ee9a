"""Process-kill injection for crash tests: `devhost serve --kill-after shared.ledger:create_items:3`.

The named callable is wrapped so the whole process dies (as a host instance does when it is recycled or
crashes) right before or right after its N-th call. Only devhost installs this; the app never sees it.
"""

import importlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

KILLED_EXIT_CODE = 137


def install(spec: str, *, before: bool) -> None:
    """Wraps 'module:attribute.path:N' so the process exits before/after its N-th call."""
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

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        with lock:
            calls += 1
            this_call = calls
        if before and this_call == limit:
            die()
        result = original(*args, **kwargs)
        if not before and this_call == limit:
            die()
        return result

    setattr(owner, name, wrapper)
