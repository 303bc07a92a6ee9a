"""The app-wide concurrency limit on Azurite: blob leases as slots, shared by every caller."""

import threading

import pytest

from shared.limiter import LimiterBusyError, limited

pytestmark = pytest.mark.integration


def test_a_slot_is_held_by_one_caller_at_a_time_and_freed_after(env):
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with limited("test-one", 1):
            inside.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(10)
    waits: list[float] = []
    with pytest.raises(LimiterBusyError), limited("test-one", 1, max_wait_seconds=0.3, sleep=waits.append):
        pass
    assert waits, "the second caller waited before giving up"
    release.set()
    holder.join()
    with limited("test-one", 1, max_wait_seconds=0.3):  # freed: taken at once
        entered = True
    assert entered


def test_as_many_callers_as_slots_run_at_once(env):
    barrier = threading.Barrier(3, timeout=10)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with limited("test-three", 3, max_wait_seconds=1):
                barrier.wait()  # all three inside together, or the barrier breaks
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_a_slot_held_longer_than_its_lease_stays_held(env, monkeypatch):
    from shared import limiter

    monkeypatch.setattr(limiter, "LEASE_SECONDS", 15)  # the shortest lease Azure allows
    monkeypatch.setattr(limiter, "RENEW_EVERY_SECONDS", 5)
    entered = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with limited("test-renew", 1):
            entered.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    assert entered.wait(10)
    try:
        release.wait(20)  # past the 15 s lease: only renewal keeps the slot
        with pytest.raises(LimiterBusyError), limited("test-renew", 1, max_wait_seconds=0.2):
            pass
    finally:
        release.set()
        holder.join()
