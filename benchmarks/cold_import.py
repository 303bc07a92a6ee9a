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
APP = "import function_app"
OWN_PACKAGES = {"function_app", "functions", "shared"}
#: Prints every third-party module `import function_app` loads: importing exactly those is "its SDKs alone".
LIST_SDK_MODULES = """
import sys
before = set(sys.modules)
import function_app
own = {"function_app", "functions", "shared"}
names = sorted(
    name for name in set(sys.modules) - before
    if name.split(".")[0] not in own and name.split(".")[0] not in sys.stdlib_module_names
    and not name.split(".")[-1].startswith("_")
)
print("\\n".join(names))
"""


def sdk_import_statement() -> str:
    """`import ...` of every third-party module the app loads, in the order the app loads them."""
    listed = subprocess.run(
        [sys.executable, "-c", LIST_SDK_MODULES], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    return "\n".join(f"try:\n    import {name}\nexcept Exception:\n    pass" for name in listed)


def median_seconds(code: str, runs: int) -> tuple[float, float]:
    """Median and minimum wall time of `python -c code` in a fresh interpreter (startup included)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times)


def own_self_time_ms(runs: int) -> float:
    """Median over runs of the self time `-X importtime` gives the app's own modules (steadier than wall time)."""
    totals = []
    for _ in range(runs):
        report = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", APP], cwd=ROOT, check=True, capture_output=True, text=True
        ).stderr
        total = 0
        for line in report.splitlines():
            parts = line.split("|")
            if len(parts) == 3 and parts[2].strip().split(".")[0] in OWN_PACKAGES:
                total += int(parts[0].split(":")[1])
        totals.append(total / 1000)
    return statistics.median(totals)


def main() -> None:
    """Prints the three medians and the app's own share."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    bare, bare_min = median_seconds("pass", runs)
    sdks, sdks_min = median_seconds(sdk_import_statement(), runs)
    app, app_min = median_seconds(APP, runs)
    print(f"cold import, median (min) of {runs} fresh interpreters:")
    print(f"  python alone        : {bare * 1000:7.0f} ms ({bare_min * 1000:.0f})")
    print(f"  SDKs alone          : {sdks * 1000:7.0f} ms ({sdks_min * 1000:.0f})")
    print(f"  import function_app : {app * 1000:7.0f} ms ({app_min * 1000:.0f})")
    print(f"  the app's own share : {(app - sdks) * 1000:7.0f} ms beyond its SDKs (difference of medians)")
    print(f"  own modules' self time (-X importtime): {own_self_time_ms(runs):.0f} ms")


if __name__ == "__main__":
    main()
