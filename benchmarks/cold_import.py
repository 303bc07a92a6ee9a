"""Cold start: `import function_app` in a fresh interpreter, against importing its SDKs alone.

Flex Consumption gives the app 30 s to start and every cold start pays this; the app's own share should
be small beside the SDKs it cannot avoid. Usage: python benchmarks/cold_import.py [--runs 15]
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SDKS = (
    "import azure.functions, azure.storage.blob, azure.storage.queue, azure.data.tables, "
    "azurefunctions.extensions.bindings.blob, pydantic, pydantic_settings"
)
APP = "import function_app"


def median_seconds(code: str, runs: int) -> tuple[float, float]:
    """Median and minimum wall time of `python -c code` in a fresh interpreter (startup included)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times)


def main() -> None:
    """Prints the three medians and the app's own share."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    bare, bare_min = median_seconds("pass", runs)
    sdks, sdks_min = median_seconds(SDKS, runs)
    app, app_min = median_seconds(APP, runs)
    print(f"cold import, median (min) of {runs} fresh interpreters:")
    print(f"  python alone        : {bare * 1000:7.0f} ms ({bare_min * 1000:.0f})")
    print(f"  SDKs alone          : {sdks * 1000:7.0f} ms ({sdks_min * 1000:.0f})")
    print(f"  import function_app : {app * 1000:7.0f} ms ({app_min * 1000:.0f})")
    print(f"  the app's own share : {(app - sdks) * 1000:7.0f} ms beyond its SDKs")


if __name__ == "__main__":
    main()
