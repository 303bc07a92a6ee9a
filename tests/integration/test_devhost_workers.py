"""devhost with worker processes (FUNCTIONS_WORKER_PROCESS_COUNT): the host keeps its listeners, the workers
run the functions, and the chain settles exactly as in one process."""

import os
import signal
from collections.abc import Callable

import pytest

from devhost.sample.data import sample_file
from tests.integration.conftest import SAMPLE_APP, make_host
from tests.integration.test_pipeline import MAX_ATTEMPTS, assert_run_settled

pytestmark = pytest.mark.integration


def report_pid() -> Callable[[], int]:
    """A worker initializer: reports the worker's process id as it stops."""
    return os.getpid


def test_the_chain_settles_every_item_once_with_its_functions_in_two_worker_processes(sample_env):
    initializer = f"{__name__}:report_pid"
    host = make_host(sample_env, worker_processes=2, worker_threads=4, app=SAMPLE_APP, worker_initializer=initializer)
    pids = set(host.worker_pids)
    try:
        assert len(pids) == 2
        sample = sample_file(rows=40, seed=91, max_attempts=MAX_ATTEMPTS)
        sample_env.configure_faults(sample)
        sample_env.drop("workers.csv", sample.text)
        host.run_until_idle(timeout=180)
        assert_run_settled(sample_env, "workers.csv", sample)
        assert host.stats.invocations["sample_intake"] == 1 and "sample_intake" not in host.stats.failures
    finally:
        host.close()
    assert sorted(host.worker_reports) == sorted(pids), "each worker reported as it stopped"


def test_workers_that_die_are_replaced_and_the_work_goes_on(sample_env):
    host = make_host(sample_env, worker_processes=2, worker_threads=2, app=SAMPLE_APP)
    first = set(host.worker_pids)
    try:
        for pid in first:  # both at once, as an out-of-memory kill might
            os.kill(pid, signal.SIGKILL)
        sample = sample_file(rows=12, seed=92, max_attempts=MAX_ATTEMPTS)
        sample_env.configure_faults(sample)
        sample_env.drop("worker-died.csv", sample.text)
        host.run_until_idle(timeout=180)
        assert_run_settled(sample_env, "worker-died.csv", sample)
        assert len(set(host.worker_pids)) == 2 and not set(host.worker_pids) & first, "two new workers"
    finally:
        host.close()
