"""Session set-up: logging to .testrun/logs, the CPR scan at the end, Azurite and the sample simulator."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.logs import install as install_logging
from tests.logscan import scan

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / ".testrun" / "logs"

#: Settings every test runs under: short retries, few attempts, small chunks so chunking is exercised.
TEST_SETTINGS = {
    "PSEUDONYM_KEY": "test-key-not-a-secret",
    "PSEUDONYM_KEY_VERSION": "1",
    "CHUNK_SIZE": "8",
    "MAX_ATTEMPTS": "3",
    "BACKOFF_BASE_SECONDS": "1",
    "BACKOFF_MAX_SECONDS": "2",
    "ITEMS_PER_BUCKET": "100",
    "RUN_CLOSER_SCHEDULE": "0 0 0 1 1 *",
    "SWEEPER_SCHEDULE": "0 0 0 1 1 *",
    "CODE_VERSION": "test",
}


def pytest_configure(config: pytest.Config) -> None:
    """Starts each run with an empty log folder and redaction installed before the first record."""
    if not hasattr(config, "workerinput"):
        shutil.rmtree(LOG_DIR, ignore_errors=True)
        LOG_DIR.mkdir(parents=True, exist_ok=True)
    install_logging()
    os.environ.update(TEST_SETTINGS)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fails the run if anything the tests logged (this process and every devhost process) is CPR-shaped."""
    findings = scan(LOG_DIR)
    logged = sum(p.stat().st_size for p in LOG_DIR.rglob("*") if p.is_file())
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter:
        reporter.write_line(f"personal-data scan: {logged} bytes of logs in {LOG_DIR}, {len(findings)} findings")
    if findings:
        if reporter:
            reporter.write_line("CPR-shaped strings in the test run's logs:\n  " + "\n  ".join(findings[:50]), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def log_dir() -> Path:
    """Where devhost processes started by tests write their logs (scanned at the end)."""
    return LOG_DIR


@pytest.fixture(scope="session")
def azurite_connection() -> Iterator[str]:
    """A fresh in-memory Azurite for the session, started from the project's node_modules."""
    from devhost import azurite

    emulator = azurite.start(log_dir=LOG_DIR.parent)
    yield emulator.connection_string
    emulator.stop()
