"""The host killed at the worst moments and restarted: no item lost, none doubled.

Each test runs devhost as a separate process against the session's Azurite, kills it (SIGKILL, or by the
fault injector's os._exit at a named point), then starts a fresh host that works until idle.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from devhost.faults import KILLED_EXIT_CODE
from devhost.sample.data import sample_file
from tests.integration.test_pipeline import MAX_ATTEMPTS, assert_run_settled

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 3  # how long a crashed host's messages stay invisible


def devhost(
    env, log_dir: Path, name: str, *extra: str, until_idle: bool = True, environ: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A devhost process serving the sample app against the session's Azurite (with extra environment)."""
    log = log_dir / f"devhost-{name}.log"
    args = [
        sys.executable,
        "-m",
        "devhost",
        "--log-level",
        "DEBUG",
        "--log-file",
        str(log),
        "serve",
        "--storage",
        env.connection_string,
        "--setting",
        f"SAMPLE_SERVICE_URL={env.service.url}",
        "--lease-seconds",
        str(LEASE_SECONDS),
        "--poll-interval",
        "0.05",
        *(["--until-idle"] if until_idle else []),
        *extra,
    ]
    stderr = (log_dir / f"devhost-{name}.stderr").open("ab")
    return subprocess.Popen(args, cwd=ROOT, stdout=stderr, stderr=stderr, env={**os.environ, **(environ or {})})


def finish(env, log_dir: Path, name: str) -> None:
    """A fresh host works until every queue is empty."""
    restarted = devhost(env, log_dir, f"{name}-restart")
    assert restarted.wait(timeout=180) == 0, f"restarted host failed; see devhost-{name}-restart.stderr"


def test_killed_after_a_side_effect_and_before_its_ledger_write(sample_env, log_dir):
    sample = sample_file(rows=20, seed=21, max_attempts=MAX_ATTEMPTS)
    sample_env.configure_faults(sample)
    # The simulator records the third booking, then holds every answer: the effect exists, the host never
    # hears of it, and dies before anything reaches the ledger.
    requests.post(f"{sample_env.service.url}/_control/hold", json={"after": 3}, timeout=5).raise_for_status()
    sample_env.drop("crash-held.csv", sample.text)
    host = devhost(sample_env, log_dir, "held")
    deadline = time.monotonic() + 60
    while len(sample_env.bookings()["bookings"]) < 3:
        assert host.poll() is None and time.monotonic() < deadline, "host ended before the booking was held"
        time.sleep(0.05)
    os.kill(host.pid, signal.SIGKILL)
    host.wait()
    requests.post(f"{sample_env.service.url}/_control/hold", json={"after": None}, timeout=5).raise_for_status()

    finish(sample_env, log_dir, "held")
    assert_run_settled(sample_env, "crash-held.csv", sample)
    requests_per_key = sample_env.bookings()["requests"]
    assert max(requests_per_key.values()) == 2, "the held bookings must have been repeated once, harmlessly"


@pytest.mark.parametrize(
    ("point", "where"),
    [
        ("--kill-after", "shared.ledger:create_items:1"),  # intake: items created, nothing sent, run not open
        ("--kill-after", "shared.pipeline:Chain._send:2"),  # intake: half the chunks sent
        ("--kill-before", "shared.ledger:record_transition:2"),  # a step's effects done, its marker not written
        ("--kill-after", "shared.ledger:record_transition:3"),  # marker written, message not yet deleted
        ("--kill-after", "shared.ledger:end_items:4"),  # a chunk's endings written, nothing forwarded yet
        ("--kill-after", "shared.pipeline:Chain._forward:2"),  # forwarded, the chunk's marker not written
    ],
)
def test_killed_at_a_named_point_and_restarted(sample_env, log_dir, point, where):
    sample = sample_file(rows=20, seed=22, max_attempts=MAX_ATTEMPTS)
    sample_env.configure_faults(sample)
    name = where.replace(":", "-").replace(".", "-")
    blob = f"crash-{name}.csv"
    sample_env.drop(blob, sample.text)
    killed = devhost(sample_env, log_dir, name, point, where)
    assert killed.wait(timeout=180) == KILLED_EXIT_CODE, "the host was not killed at the named point"

    finish(sample_env, log_dir, name)
    assert_run_settled(sample_env, blob, sample)
    assert set(sample_env.bookings()["requests"].values()) <= {1, 2}
