"""Claim payouts end to end: a generated file of N claims, every look-up on, through to Kvantum's responses.

Figures from one run, on the same machine and the same Azurite:
  1. the automation on Azurite via devhost: the file dropped in claims-inbox, intake (two streamed passes),
     validate (CVR, chart of accounts, payout index), decide (Opus Debitor), post (posting files), Kvantum's
     posting intake answering, the responses, the run closer and the batch report, with the functions in two
     worker processes (`WORKERS`); claims per second, storage requests per claim (the host and its workers,
     across blob, queue and table) and peak RSS (the host's plus each worker's; the simulators and Kvantum's
     posting intake run in a process of their own);
  2. reading and checking the same file in-process with no storage (reader + the pure claim checks);
  3. Azurite's own rate for 100-entity batch transactions in the same run.
`--compare` runs the benchmark at 10,000 claims and at N in fresh processes and compares their peak RSS.

Usage: python benchmarks/claims.py [--items 100000] [--compare]
Targets: at most 0.15 storage requests per claim, at least 1,000 claims/s, peak RSS at 100,000 at most 1.2x 10,000.
"""

import argparse
import contextlib
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from benchmarks.counting import PORTS_VARIABLE, RequestCounter  # noqa: E402
from benchmarks.pipeline import batch_write_rate  # noqa: E402
from devhost import azurite, certs, claims_data, environment  # noqa: E402
from devhost.app_index import load_app  # noqa: E402
from devhost.host import HostOptions, LocalHost  # noqa: E402

SIMULATORS = "--simulators"
APP = "function_app:app"
#: infra/modules/function-app.bicep sets the same for the deployed worker.
ARENAS = "2"


def simulators(connection: str) -> None:
    """The simulators' process: starts and seeds them, prints their settings, runs until stdin closes."""
    from devhost.simulators.cvr import CvrServer
    from devhost.simulators.graph import GraphServer
    from devhost.simulators.kvantum import KvantumServer
    from devhost.simulators.kvantum_posting import KvantumPostingIntake
    from devhost.simulators.opus_debitor import OpusDebitorServer
    from devhost.simulators.servicenow import ServiceNowServer

    certificate = certs.make(Path(tempfile.mkdtemp(prefix="bench-certs-")))
    graph = GraphServer(certificate=certificate).start()
    servicenow = ServiceNowServer().start()
    cvr, kvantum, opus = CvrServer().start(), KvantumServer().start(), OpusDebitorServer().start()
    posting = KvantumPostingIntake(connection)
    seeds = claims_data.seeds()
    seeds = dataclasses.replace(seeds, companies=[*seeds.companies, *claims_data.benchmark_companies()])
    claims_data.apply_seeds(
        seeds, cvr_state=cvr.state, opus_state=opus.state, kvantum_state=kvantum.state, posting_intake=posting
    )
    posting.start(poll_seconds=0.2)
    settings = {
        **graph.settings(),
        **cvr.settings(),
        **kvantum.settings(),
        **opus.settings(),
        "SERVICENOW_INSTANCE_URL": servicenow.url,
        "SERVICENOW_CLIENT_ID": servicenow.state.client_id,
        "SERVICENOW_CLIENT_SECRET": servicenow.state.client_secret,
        "REQUESTS_CA_BUNDLE": str(certificate.bundle),
    }
    print(json.dumps(settings), flush=True)
    sys.stdin.read()  # until the benchmark closes the pipe
    posting.stop()


def in_process(path: Path) -> float:
    """Claims per second read from the file and checked with the pure rules, no storage and no look-ups."""
    from functions.claim_payouts.reader import iter_rows
    from functions.claim_payouts.rules import ClaimRefusalError, check_claim
    from shared import config

    rules = config.rules().in_force(datetime.now(UTC)).rules("claim_payouts")
    today = date.today()
    started = time.perf_counter()
    count = 0
    with path.open("rb") as stream:
        for row in iter_rows(stream):
            with contextlib.suppress(ClaimRefusalError):  # a refused claim is a result too
                check_claim(row.model_dump(), rules, today)
            count += 1
    return count / (time.perf_counter() - started)


#: Worker processes the functions run in: one per core here, as two 1-vCPU instances (or one 2-vCPU instance with
#: FUNCTIONS_WORKER_PROCESS_COUNT=2) would run them; each with half of the host's 16 concurrent invocations.
WORKERS = 2
WORKER_THREADS = 8


def rss_mib(pids: Sequence[int] = ()) -> float:
    """The resident set size now of this process and `pids` together."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    pages += sum(int(Path(f"/proc/{pid}/statm").read_text().split()[1]) for pid in pids)
    return pages * resource.getpagesize() / 2**20


def peak_kib(pid: int) -> int:
    """A process's peak resident set size so far (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pids: Sequence[int | None]) -> float:
    """CPU time (user + system) processes have used so far: this one (None) and the others named."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid or 'self'}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def peak_rss_mib() -> float:
    """This process's peak resident set size (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _phases(run_id: str, wall_start: float) -> str:
    """Each step's first and last chunk transition, in seconds from the start (from the run's history)."""
    from shared import ledger

    moments: dict[str, list[float]] = {}
    run = ledger.get_run(run_id)
    if run is not None and run.opened_at is not None:  # the intake's last chunk was sent
        moments["intake"] = [run.started_at.timestamp() - wall_start, run.opened_at.timestamp() - wall_start]
    for row in ledger.transitions(run_id):
        moments.setdefault(str(row["Step"]), []).append(row["At"].timestamp() - wall_start)
    ordered = sorted(moments.items(), key=lambda entry: min(entry[1]))
    return " ".join(f"{step} {min(at):.0f}-{max(at):.0f}" for step, at in ordered)


def run(items: int) -> dict[str, float]:
    """One measured run; prints and returns its figures."""
    emulator = azurite.start()
    helper = subprocess.Popen(
        [sys.executable, __file__, SIMULATORS, emulator.connection_string],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        settings = json.loads(helper.stdout.readline())  # type: ignore[union-attr]
        environment.apply(
            emulator.connection_string,
            **settings,
            PSEUDONYM_KEY=os.environ.get("PSEUDONYM_KEY", "bench-key"),
            CHUNK_SIZE="500",
            ITEMS_PER_BUCKET="5000",
            RULES_FILE=str(environment.devhost_rules_file()),
        )
        from functions.claim_payouts.intake import INBOX
        from functions.operations.run_closer import close_run
        from shared import ledger, storage

        ports = dict(zip(emulator.ports, ("blob", "queue", "table"), strict=True))
        os.environ[PORTS_VARIABLE] = json.dumps(ports)  # read by each worker's request counter
        options = HostOptions(
            poll_interval=0.2,
            worker_processes=WORKERS,
            worker_threads=WORKER_THREADS,
            app=APP,
            worker_initializer="benchmarks.counting:count_in_worker",
        )
        host = LocalHost(load_app(APP), connection_string=emulator.connection_string, options=options)
        host.provision()
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "krav.csv"
            with path.open("wb") as stream:
                rows, total = claims_data.generate(items, stream)
            with path.open("rb") as stream:
                storage.container(INBOX).upload_blob("krav-benchmark.csv", stream, metadata={"indsendt_af": "b@x.dk"})
            counter = RequestCounter(ports).install()
            processes: dict[str, list[int | None]] = {
                "host": [None],
                "workers": list(host.worker_pids),
                "azurite": [emulator.process.pid],
                "simulators": [helper.pid],
            }
            cpu_before = {name: cpu_seconds(pids) for name, pids in processes.items()}
            started = time.perf_counter()
            samples: list[tuple[float, float, dict[str, float]]] = []
            sampling = threading.Event()

            def sample() -> None:
                while not sampling.wait(2.0):
                    busy = {name: cpu_seconds(pids) for name, pids in processes.items()}
                    samples.append((time.perf_counter() - started, rss_mib(host.worker_pids), busy))

            threading.Thread(target=sample, daemon=True).start()
            closed = None
            while True:
                host.run_until_idle(timeout=3600)
                runs = ledger.newest_runs("claim_payouts", 1)
                if runs and runs[0].status is not ledger.RunStatus.INTAKE:
                    closed = close_run(runs[0].run_id)
                    if closed is not None:
                        waiting = f"{closed.missing_count} of {closed.expected_items} claims not settled yet"
                        print(f"  {time.perf_counter() - started:6.1f} s: {waiting}", file=sys.stderr, flush=True)
                    if closed and closed.status is ledger.RunStatus.COMPLETE:
                        host.run_until_idle(timeout=600)  # the receipts
                        break
                time.sleep(0.2)
            elapsed = time.perf_counter() - started
            phases = _phases(runs[0].run_id, time.time() - (time.perf_counter() - started))
            cpu = {name: cpu_seconds(pids) - cpu_before[name] for name, pids in processes.items()}
            sampling.set()
            workers_peaks = [peak_kib(pid) / 1024 for pid in host.worker_pids]
            host.close()
            counter.uninstall()
            for counts in host.worker_reports:  # the requests the functions made in the worker processes
                counter.counts.update(counts)
            # The host's own peak (before the in-process baseline and the batch probe run in this process) and each
            # worker's: their sum is at least the peak of the whole.
            own_peak = peak_rss_mib()
            host_peak = own_peak + sum(workers_peaks)
            assert len(host.worker_reports) == WORKERS, "a worker's request counts are missing"
            assert closed.counts[ledger.ItemStatus.DONE] == rows, closed.counts
            assert closed.expected_amount == total
            baseline = in_process(path)
        batch_rate = batch_write_rate(emulator.connection_string)
        work_requests = counter.total(exclude=("eventgrid-emulation", "receive-empty"))
        figures = {
            "items": items,
            "claims_per_second": items / elapsed,
            "seconds": elapsed,
            "requests_per_claim": work_requests / items,
            "requests": work_requests,
            "peak_rss_mib": host_peak,
            "in_process_per_second": baseline,
            "azurite_batch_entities_per_second": batch_rate,
            **{f"cpu_seconds_{name}": seconds for name, seconds in cpu.items()},
        }
        print(f"claims benchmark: {items} claims, every look-up on, chunks of 500")
        print(f"  on Azurite via devhost : {figures['claims_per_second']:10.0f} claims/s ({elapsed:.1f} s)")
        print(f"  in-process read+check  : {baseline:10.0f} claims/s (no storage, no look-ups)")
        print(f"  Azurite batch writes   : {batch_rate:10.0f} entities/s (100-entity transactions, 4 threads)")
        print(f"  storage requests/claim : {figures['requests_per_claim']:.4f} (target <= 0.15), {work_requests}")
        print(f"    plus idle polls of empty queues: {counter.counts[('queue', 'receive-empty')]}")
        busy = ", ".join(f"{name} {seconds:.0f} s ({seconds / elapsed:.0%})" for name, seconds in cpu.items())
        print(f"  CPU time (share of one core): {busy}")
        print(
            f"  host peak RSS          : {figures['peak_rss_mib']:10.1f} MiB: host {own_peak:.1f} + workers "
            + " + ".join(f"{peak:.1f}" for peak in workers_peaks)
            + " (each at its own peak; simulators in their own process)"
        )
        every = samples[:: max(1, len(samples) // 12)]
        timeline = " ".join(f"{t:.0f}s:{rss:.0f}" for t, rss, _ in every)
        previous = (0.0, cpu_before)
        shares = []
        for t, _, busy in every:  # each process's share of a core between two printed samples
            spent = {name: (busy[name] - previous[1][name]) / max(t - previous[0], 1e-9) for name in busy}
            shares.append(f"{t:.0f}s:" + "/".join(f"{spent[name]:.0%}" for name in processes))
            previous = (t, busy)
        print(f"    RSS over the run (MiB): {timeline}")
        print(f"    CPU over the run ({'/'.join(processes)}): {' '.join(shares)}")
        print(f"  steps, first and last chunk done (s): {phases}")
        print("  by service and operation:")
        for (service, operation), count in sorted(counter.counts.items()):
            print(f"    {service:6} {operation:20} {count:8}  {count / items:.4f}/claim")
        print("FIGURES " + json.dumps(figures), flush=True)
        return figures
    finally:
        helper.stdin.close()  # type: ignore[union-attr]
        helper.wait(timeout=30)
        emulator.stop()


def compare(items: int) -> None:
    """Runs 10,000 and `items` claims in fresh processes and compares their peak memory."""
    figures = {}
    for count in (10_000, items):
        out = subprocess.run(
            [sys.executable, __file__, "--items", str(count)], capture_output=True, text=True, cwd=ROOT, check=True
        ).stdout
        print(out)
        figures[count] = json.loads(out.split("FIGURES ", 1)[1].splitlines()[0])
    ratio = figures[items]["peak_rss_mib"] / figures[10_000]["peak_rss_mib"]
    print(f"peak RSS at {items} / at 10000: {ratio:.2f} (target <= 1.2)")


def main() -> None:
    """Parses the command line (and runs under the deployed app's MALLOC_ARENA_MAX, set before Python starts)."""
    if os.environ.get("MALLOC_ARENA_MAX") != ARENAS:
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "MALLOC_ARENA_MAX": ARENAS})  # noqa: S606
    if len(sys.argv) > 2 and sys.argv[1] == SIMULATORS:
        simulators(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--compare", action="store_true")
    args = parser.parse_args()
    if args.compare:
        compare(args.items)
    else:
        run(args.items)


if __name__ == "__main__":
    main()
