"""Structured, redacted logging: run id, item id, automation and step on every record; no CPR anywhere.

Both jobs are done where records are made (`Logger.makeRecord`) rather than in a handler filter, so that they
hold for every logger and every handler the Functions worker or OpenTelemetry installs, whatever order they
come in; the record factory would be too early, as `extra=` fields are added after it runs.
"""

import contextvars
import logging
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from shared.personal_data import redact

CONTEXT_FIELDS = ("automation", "run_id", "step", "item_id")
_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("log_context", default={})  # noqa: B039
_installed: list[bool] = []  # a list, not a global flag, so install() needs no `global`


class RedactedError(Exception):
    """Stands in for a logged exception whose text carried personal data."""


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Adds automation/run_id/step/item_id to every record logged inside the block."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"unknown log context fields: {sorted(unknown)}")
    merged = {**_context.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


@contextmanager
def redacted_errors() -> Iterator[None]:
    """Re-raises any exception with its text redacted: the worker reports an escaping exception to the host
    (and Application Insights) without passing it through logging, so redaction must happen before."""
    try:
        yield
    except Exception as error:
        redacted = RedactedError(redact("".join(traceback.format_exception_only(error)).strip()))
        redacted = redacted.with_traceback(error.__traceback__)
    else:
        return
    # "from None": the original, unredacted exception is not printed as the context of this one.
    raise redacted from None


def _redact_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return value if redact(str(value)) == str(value) else redact(str(value))
    return redact(value if isinstance(value, str) else str(value))


def sanitise(record: logging.LogRecord) -> logging.LogRecord:
    """Fills context fields and removes CPR-shaped text from message, arguments, exception and extras."""
    for name in CONTEXT_FIELDS:
        if not hasattr(record, name) or getattr(record, name) is None:
            setattr(record, name, _context.get().get(name, ""))
    # Render the message once, redacted, so no formatter ever sees the raw arguments.
    try:
        message = record.getMessage()
    except Exception:  # a broken format string must not hide the record
        message = f"{record.msg!r} {record.args!r}"
    record.msg = redact(message)
    record.args = None
    if record.exc_info and record.exc_info[1] is not None:
        exc_type, exc, tb = record.exc_info
        record.exc_text = redact("".join(traceback.format_exception(exc)).rstrip("\n"))
        replacement = RedactedError(redact(f"{exc_type.__name__ if exc_type else 'Error'}: {exc}"))
        record.exc_info = (RedactedError, replacement, tb)
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    for key, value in list(record.__dict__.items()):
        if key not in _STANDARD_ATTRIBUTES:
            record.__dict__[key] = _redact_value(value)
    return record


_STANDARD_ATTRIBUTES = set(logging.LogRecord("x", 0, "x", 0, "x", None, None).__dict__) | {
    "message",
    "asctime",
}


def install() -> None:
    """Makes every log record in this process structured and redacted (idempotent)."""
    if _installed:
        return
    make_record = logging.Logger.makeRecord

    def make_sanitised_record(self: logging.Logger, *args: Any, **kwargs: Any) -> logging.LogRecord:
        return sanitise(make_record(self, *args, **kwargs))

    logging.Logger.makeRecord = make_sanitised_record  # type: ignore[method-assign]
    # logging's own error report prints the traceback being handled, unredacted, to stderr.
    logging.raiseExceptions = False
    _installed.append(True)


def get_logger(name: str) -> logging.Logger:
    """A logger whose records are structured and redacted."""
    install()
    return logging.getLogger(name)
