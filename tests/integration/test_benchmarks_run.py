"""The benchmarks stay runnable: a small run of each, checked for its figures (never for its speed)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def benchmark(timeout: int, *args: str) -> str:
    """A benchmark's printed figures (it must succeed)."""
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=True
    ).stdout


def test_pipeline_benchmark_runs_and_reports_requests_per_item():
    stdout = benchmark(300, "benchmarks/pipeline.py", "--items", "300", "--chunk-size", "50")
    per_item = re.search(r"storage requests per item: ([0-9.]+)", stdout)
    assert per_item, stdout
    assert 0 < float(per_item.group(1)) < 1
    assert "in-process, no storage" in stdout and "Azurite batch writes" in stdout


def test_cold_import_benchmark_runs():
    stdout = benchmark(120, "benchmarks/cold_import.py", "--runs", "2")
    assert "import function_app" in stdout


def test_claims_benchmark_runs_end_to_end_and_reports_its_figures():
    stdout = benchmark(600, "benchmarks/claims.py", "--items", "400")
    figures = json.loads(stdout.split("FIGURES ", 1)[1].splitlines()[0])
    assert figures["items"] == 400 and 0 < figures["requests_per_claim"] < 2
    assert figures["peak_rss_mib"] > 0 and figures["azurite_batch_entities_per_second"] > 0
    assert "in-process read+check" in stdout
