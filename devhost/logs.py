"""devhost's logging: the app's redaction and context, to stderr and optionally a file (host and worker processes)."""

import logging
import sys

from shared.logs import install as install_logging


def configure_logging(level: str | int, log_file: str | None) -> None:
    """Every record redacted and with its run context, at `level`, to stderr and `log_file` if given."""
    install_logging()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    logging.basicConfig(
        level=level,
        handlers=handlers,
        format="%(asctime)s %(levelname)s %(name)s [%(automation)s %(run_id)s %(step)s %(item_id)s] %(message)s",
        force=True,
    )
    for noisy in ("azure", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def current_log_file() -> str | None:
    """The file the root logger writes to, if any (so a worker process writes to the same one)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return None
