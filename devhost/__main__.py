"""devhost: the local host and its command line. `python -m devhost --help`."""

import argparse
import json
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from devhost import azurite, certs, environment, faults, manifest
from devhost.app_index import load_app
from devhost.host import HostOptions, LocalHost
from devhost.logs import configure_logging
from devhost.report import item_summaries, print_items, print_runs
from devhost.sample.service import SampleServer
from devhost.simulators.cvr import CvrServer
from devhost.simulators.graph import GraphServer
from devhost.simulators.kvantum import KvantumServer
from devhost.simulators.kvantum_posting import KvantumPostingIntake
from devhost.simulators.opus_debitor import OpusDebitorServer
from devhost.simulators.servicenow import ServiceNowServer
from shared import ledger
from shared.outcomes import ItemStatus
from shared.pipeline import Chain

DEFAULT_APP = "devhost.sample.app:app"
DEPLOYED_APP = "function_app:app"


@dataclass
class Environment:
    """What `start` and `demo` run: storage (Azurite unless given) and the external-system simulators."""

    storage: str
    emulator: azurite.Azurite | None
    sample: SampleServer
    servicenow: ServiceNowServer
    graph: GraphServer
    cvr: CvrServer
    kvantum: KvantumServer
    opus_debitor: OpusDebitorServer
    posting: KvantumPostingIntake
    certificates: certs.LoopbackCertificate

    def settings(self) -> dict[str, str]:
        """App settings that point the app at the simulators."""
        return {
            "SAMPLE_SERVICE_URL": self.sample.url,
            "SERVICENOW_INSTANCE_URL": self.servicenow.url,
            "SERVICENOW_CLIENT_ID": self.servicenow.state.client_id,
            "SERVICENOW_CLIENT_SECRET": self.servicenow.state.client_secret,
            **self.graph.settings(),
            **self.cvr.settings(),
            **self.kvantum.settings(),
            **self.opus_debitor.settings(),
            "RULES_FILE": str(environment.devhost_rules_file()),
            # requests (MSAL's session and the connectors') reads it per request: certifi's roots plus devhost's CA.
            "REQUESTS_CA_BUNDLE": str(self.certificates.bundle),
        }

    def stop(self) -> None:
        """Stops the simulators and Azurite."""
        self.posting.stop()
        self.graph.stop()
        self.cvr.stop()
        self.kvantum.stop()
        self.opus_debitor.stop()
        self.servicenow.stop()
        self.sample.stop()
        if self.emulator:
            self.emulator.stop()
        shutil.rmtree(self.certificates.bundle.parent, ignore_errors=True)


def _start_environment(args: argparse.Namespace) -> Environment:
    emulator = None if args.storage else azurite.start()
    storage_connection = args.storage or emulator.connection_string  # type: ignore[union-attr]
    # One throwaway CA per environment, in a folder of its own: two devhosts at once must not share the files.
    certificates = certs.make(Path(tempfile.mkdtemp(prefix="devhost-certs-")))
    started = Environment(
        storage=storage_connection,
        emulator=emulator,
        sample=SampleServer(port=args.sample_port).start(),
        servicenow=ServiceNowServer().start(),
        graph=GraphServer(certificate=certificates).start(),
        cvr=CvrServer().start(),
        kvantum=KvantumServer().start(),
        opus_debitor=OpusDebitorServer().start(),
        posting=KvantumPostingIntake(storage_connection),
        certificates=certificates,
    )
    environment.apply(started.storage, **started.settings())
    return started


def cmd_start(args: argparse.Namespace) -> None:
    """Azurite, the simulators and the host, until Ctrl-C."""
    started = _start_environment(args)
    host = LocalHost(load_app(args.app), connection_string=started.storage)
    host.provision()
    started.posting.start()  # Kvantum answers what lands in its outbox, every half second
    environment.save_state(connection_string=started.storage, app=args.app, **started.settings())
    print(f"devhost: sample service {started.sample.url}, ServiceNow {started.servicenow.url}")
    print(f"devhost: Graph {started.graph.base_url} (sent mail: {started.graph.url}/_outbox)")
    print("devhost: serving; Ctrl-C stops", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: host.stop())
    try:
        host.serve_forever()
    except KeyboardInterrupt:
        host.close()
    finally:
        started.stop()
        environment.STATE_FILE.unlink(missing_ok=True)


def cmd_serve(args: argparse.Namespace) -> None:
    """The host alone, against existing storage (tests run it as a process they can kill)."""
    environment.apply(args.storage, **dict(kv.split("=", 1) for kv in args.setting))
    for spec in args.kill_after:
        faults.install(spec, before=False)
    for spec in args.kill_before:
        faults.install(spec, before=True)
    if args.worker_processes > 1 and (args.kill_after or args.kill_before):
        raise SystemExit("--kill-after/--kill-before act in this process: use them with one worker process")
    options = HostOptions(
        lease_seconds=args.lease_seconds,
        poll_interval=args.poll_interval,
        worker_processes=args.worker_processes,
        app=args.app,
    )
    host = LocalHost(load_app(args.app), connection_string=args.storage, options=options)
    host.provision()
    if args.until_idle:
        host.run_until_idle(timeout=args.timeout)
        host.close()
        return
    signal.signal(signal.SIGTERM, lambda *_: host.stop())
    host.serve_forever()


def cmd_demo(args: argparse.Namespace) -> None:
    """Start, load sample data, run every automation to the end, print the run report, stop."""
    from devhost.sample.data import sample_file

    started = _start_environment(args)
    try:
        # Short retries so the demo's flaky items recover in seconds rather than minutes.
        environment.apply(started.storage, **started.settings(), BACKOFF_BASE_SECONDS="1", BACKOFF_MAX_SECONDS="4")
        options = HostOptions(poll_interval=0.1)
        host = LocalHost(load_app(args.app), connection_string=started.storage, options=options)
        host.provision()
        sample = sample_file(rows=args.rows)
        requests.post(
            f"{started.sample.url}/_control/faults",
            json={"faults": sample.faults, "no_nemkonto": sample.no_nemkonto},
            timeout=5,
        ).raise_for_status()
        from shared import storage as work_storage

        work_storage.container("sample-inbox").upload_blob("udbetalinger-demo.csv", sample.text.encode("utf-8"))
        # A timer that finds nothing still leaves a run: the empty file stands in for it here.
        work_storage.container("sample-inbox").upload_blob("tom-fil.csv", b"id;cpr;navn;beloeb\n")
        # New-supplier requests in ServiceNow, with the register and the ERP seeded to reach every branch.
        from devhost.vendor_data import seed

        seed(started.servicenow.state, started.cvr.state, started.kvantum.state)
        # A claims file reaching every branch, and a file that cannot be read; Kvantum books or rejects.
        from devhost import claims_data

        claims_data.apply_seeds(
            claims_data.seeds(),
            cvr_state=started.cvr.state,
            opus_state=started.opus_debitor.state,
            kvantum_state=started.kvantum.state,
            posting_intake=started.posting,
        )
        samples = environment.ROOT / "samples" / "claims"
        for name in ("krav-blandet-utf8.csv", "fejl-manglende-kolonne.csv"):
            work_storage.container("claims-inbox").upload_blob(
                name, (samples / name).read_bytes(), metadata={"indsendt_af": "kreditorer@devhost.example"}
            )
        clock = time.monotonic()
        host.fire("vendor_intake")
        host.run_until_idle(timeout=300)
        while started.posting.process_pending():  # Kvantum answers the posting files; the host settles them
            host.run_until_idle(timeout=300)
        host.fire("run_closer")
        host.run_until_idle(timeout=60)  # the closed runs' hand-offs and receipts
        host.fire("run_closer")
        host.run_until_idle(timeout=60)
        host.close()
        print(f"\nAll queues drained in {time.monotonic() - clock:.1f} s.")
        tasks = started.servicenow.state.tables["sc_task"].values()
        print(f"{len(tasks)} ServiceNow tasks created for people: {', '.join(t['number'] for t in tasks)}")
        created = started.kvantum.state.created()
        print(f"{len(created)} vendors created in Kvantum: {', '.join(v['NAME1'] for v in created)}")
        print(f"{len(started.posting.answered())} posting files answered by Kvantum's posting intake")
        for mail in started.graph.state.outbox:
            lines = mail["body"].count("\n- ")
            print(f"Mail to {', '.join(mail['to'])}: {mail['subject']!r}, {lines} lines")
        print()
        runs = [run for automation in sorted(Chain.registry) for run in ledger.newest_runs(automation)]
        print_runs(runs, args.json)
        for run in runs:
            handed = item_summaries(run, ItemStatus.HANDED_OFF) + item_summaries(run, ItemStatus.REJECTED)
            if handed and not args.json:
                print(f"\nItems of {run.run_id} for a person:")
                print_items(handed, as_json=False)
    finally:
        started.stop()


def _running() -> dict[str, str]:
    state = environment.load_state()
    environment.apply(state["connection_string"], **{k: v for k, v in state.items() if k.isupper()})
    return state


def cmd_drop(args: argparse.Namespace) -> None:
    """Upload a file into a container of the running environment (a blob event follows)."""
    _running()
    from shared import storage

    path = Path(args.file)
    storage.container(args.container).upload_blob(path.name, path.read_bytes(), overwrite=True)
    print(f"dropped {path.name} into {args.container}")


def cmd_fire(args: argparse.Namespace) -> None:
    """Run a timer function now against the running environment."""
    state = _running()
    host = LocalHost(load_app(state.get("app", args.app)), connection_string=state["connection_string"])
    ok = host.fire(args.function)
    host.close()
    if not ok:
        raise SystemExit(f"{args.function} failed; see the log above")
    print(f"fired {args.function}")


def cmd_drain(args: argparse.Namespace) -> None:
    """Wait until every blob event is delivered and every trigger queue is empty."""
    state = _running()
    host = LocalHost(load_app(state.get("app", args.app)), connection_string=state["connection_string"])
    deadline = time.monotonic() + args.timeout
    while True:
        backlog, events = host.backlog(), host.pending_blob_events()
        if not any(backlog.values()) and not events:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"not drained after {args.timeout} s: {backlog}, {events} blob events")
        time.sleep(0.5)
    host.close()
    print("drained")


def cmd_runs(args: argparse.Namespace) -> None:
    """Newest runs per automation."""
    state = _running()
    load_app(state.get("app", args.app))  # registers the chains, so their automations are known
    automations = [args.automation] if args.automation else sorted(Chain.registry)
    print_runs([run for a in automations for run in ledger.newest_runs(a, args.limit)], args.json)


def cmd_items(args: argparse.Namespace) -> None:
    """A run's items, optionally in one status."""
    _running()
    run = ledger.get_run(args.run)
    if run is None:
        raise SystemExit(f"no run {args.run}")
    print_items(item_summaries(run, ItemStatus(args.status) if args.status else None), args.json)


def cmd_replay(args: argparse.Namespace) -> None:
    """Move messages from QUEUE-poison back to QUEUE, after a fix."""
    _running()
    from shared import storage

    source = storage.queue_service().get_queue_client(f"{args.queue}-poison")
    target = storage.queue_service().get_queue_client(args.queue)
    moved = 0
    while batch := list(source.receive_messages(max_messages=32, visibility_timeout=60)):
        for message in batch:
            target.send_message(message.content)  # already base64: copied as it is
            source.delete_message(message)
            moved += 1
    print(f"replayed {moved} messages from {args.queue}-poison to {args.queue}")


def cmd_manifest(args: argparse.Namespace) -> None:
    """Print the app's manifest (JSON) for the infrastructure checks."""
    print(json.dumps(manifest.build(load_app(args.app)), indent=2))


def parser() -> argparse.ArgumentParser:
    """The command line."""
    main = argparse.ArgumentParser(prog="devhost", description=__doc__)
    main.add_argument("--log-level", default="INFO")
    main.add_argument("--log-file")
    verbs = main.add_subparsers(dest="verb", required=True)

    def verb(name: str, handler: Any, app: str = DEFAULT_APP) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=handler.__doc__)
        sub.set_defaults(handler=handler)
        sub.add_argument("--app", default=app, help="the FunctionApp, as module:attribute")
        return sub

    for name, handler in (("start", cmd_start), ("demo", cmd_demo)):
        sub = verb(name, handler)
        sub.add_argument("--storage", help="use this storage instead of starting Azurite")
        sub.add_argument("--sample-port", type=int, default=0)
        if name == "demo":
            sub.add_argument("--rows", type=int, default=40)
            sub.add_argument("--json", action="store_true")
    serve = verb("serve", cmd_serve)
    serve.add_argument("--storage", required=True)
    serve.add_argument("--setting", action="append", default=[], help="NAME=VALUE app setting")
    serve.add_argument("--lease-seconds", type=int, default=600)
    serve.add_argument("--poll-interval", type=float, default=0.2)
    serve.add_argument("--until-idle", action="store_true")
    serve.add_argument(
        "--worker-processes", type=int, default=1, help="worker processes (FUNCTIONS_WORKER_PROCESS_COUNT)"
    )
    serve.add_argument("--timeout", type=float, default=300)
    serve.add_argument("--kill-after", action="append", default=[], help="module:callable:N (tests)")
    serve.add_argument("--kill-before", action="append", default=[], help="module:callable:N (tests)")
    drop = verb("drop", cmd_drop)
    drop.add_argument("file")
    drop.add_argument("container")
    fire = verb("fire", cmd_fire)
    fire.add_argument("function")
    drain = verb("drain", cmd_drain)
    drain.add_argument("--timeout", type=float, default=300)
    runs = verb("runs", cmd_runs)
    runs.add_argument("--automation")
    runs.add_argument("--limit", type=int, default=20)
    runs.add_argument("--json", action="store_true")
    items = verb("items", cmd_items)
    items.add_argument("run")
    items.add_argument("--status", choices=[s.value for s in ItemStatus])
    items.add_argument("--json", action="store_true")
    replay = verb("replay", cmd_replay)
    replay.add_argument("queue")
    verb("manifest", cmd_manifest, app=DEPLOYED_APP)
    return main


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parser().parse_args(argv)
    configure_logging(args.log_level, args.log_file)
    args.handler(args)


if __name__ == "__main__":
    main()
