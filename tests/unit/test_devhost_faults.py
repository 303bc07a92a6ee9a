"""devhost's kill injection: where a crash test's process dies, counted the way the crash tests assume."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from devhost.faults import KILLED_EXIT_CODE

ROOT = Path(__file__).resolve().parents[2]

TARGET = """
def work(n):
    if n == 2:
        raise ValueError("refused")  # as Kvantum refuses a vendor: no effect made
    return n
"""


def _run(tmp_path: Path, *, before: bool) -> tuple[int, list[str]]:
    (tmp_path / "target.py").write_text(TARGET)
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import target
        from devhost.faults import install
        install("target:work:2", before={before})
        for n in range(1, 5):
            try:
                target.work(n)
            except ValueError:
                pass
            print(n, flush=True)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    return done.returncode, done.stdout.split()


@pytest.mark.parametrize(
    ("before", "finished"),
    [
        (False, ["1", "2"]),  # the raising second call does not count: it dies inside the third, once it returned
        (True, ["1"]),  # before the second call, whatever that call would have done
    ],
)
def test_the_process_dies_at_the_nth_call_and_after_only_counts_calls_that_returned(tmp_path, before, finished):
    returncode, printed = _run(tmp_path, before=before)
    assert returncode == KILLED_EXIT_CODE
    assert printed == finished
