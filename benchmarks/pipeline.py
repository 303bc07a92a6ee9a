"""Pipeline throughput and storage requests per item: N items through three chained no-op steps.

Three figures from one run, on the same machine and the same Azurite:
  1. the platform on Azurite via devhost: intake from a dropped file, three queue-triggered no-op steps,
     the run closer; items per second and storage requests per item (counted across blob, queue, table);
  2. the same steps in-process without storage: message encoding, chunk data as JSON lines, the per-item
     loop - the ceiling the platform's own Python sets;
  3. Azurite's own rate for 100-entity batch transactions with four threads - the ceiling storage sets.

Usage: python benchmarks/pipeline.py [--items 100000] [--chunk-size 500]
"""

import argparse
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import azure.functions as func  # noqa: E402
from azure.data.tables import TableServiceClient  # noqa: E402
from azurefunctions.extensions.bindings.blob import BlobClient  # noqa: E402

from benchmarks.counting import RequestCounter  # noqa: E402
from devhost import azurite, environment  # noqa: E402
from devhost.host import HostOptions, LocalHost  # noqa: E402
from function_app import BLUEPRINTS  # noqa: E402
from functions.operations.run_closer import close_run  # noqa: E402
from shared import ledger, storage, tables  # noqa: E402
from shared.messages import ItemRef, StepMessage, chunked, json_lines, read_json_lines  # noqa: E402
from shared.pipeline import Chain, NewItem, WorkItem  # noqa: E402
from shared.settings import WORK_CONNECTION  # noqa: E402

STEPS = ("one", "two", "three")
chain = Chain("bench", STEPS)
bp = func.Blueprint()


def no_op(item: WorkItem) -> None:
    """A step that decides nothing: what is measured is the platform around it."""


def parse(text: str) -> list[NewItem]:
    """Bench rows: id;amount."""
    rows = text.splitlines()[1:]
    return [NewItem(data={"id": r.split(";")[0]}, amount=Decimal(r.split(";")[1])) for r in rows]


@bp.function_name("bench_intake")
@bp.blob_trigger(
    arg_name="blob", path="bench-inbox/{name}", connection=WORK_CONNECTION, source=func.BlobSource.EVENT_GRID
)
def bench_intake(blob: BlobClient) -> None:
    """Blob created in bench-inbox: opens a run."""
    props = blob.get_blob_properties()
    text = blob.download_blob().readall().decode()
    chain.start_run(trigger="blob", source=blob.blob_name, run_key=f"{blob.blob_name}@{props.etag}", items=parse(text))


def _step(name: str):  # noqa: ANN202
    def handler(msg: func.QueueMessage) -> None:
        chain.run_step(name, msg, no_op)

    handler.__name__ = f"bench_{name}"
    handler.__doc__ = f"Queue bench-{name}: a no-op step."
    return handler


for _name in STEPS:
    bp.function_name(f"bench_{_name}")(
        bp.queue_trigger(arg_name="msg", queue_name=f"bench-{_name}", connection=WORK_CONNECTION)(_step(_name))
    )


def in_process(items: int, chunk_size: int) -> float:
    """Items per second for the same three steps with no storage at all."""
    records = [{"id": f"B{n:07d}"} for n in range(items)]
    refs = [ItemRef(id=f"{n + 1:06d}", line=n % chunk_size) for n in range(items)]
    started = time.perf_counter()
    for number, chunk in chunked(refs, chunk_size):
        blob = json_lines(records[number * chunk_size : number * chunk_size + len(chunk)])
        body = StepMessage(
            automation="bench", run_id="r", step="one", chunk_id=f"c{number}", bucket=0, data="d", items=tuple(chunk)
        ).encode()
        for step in STEPS:
            message = StepMessage.decode(body)
            lines = read_json_lines(blob)
            for ref in message.items:
                no_op(WorkItem("r", ref.id, step, 1, lines[ref.line]))
            blob = json_lines(lines)
            body = message.model_copy(update={"step": step}).encode()
    return items / (time.perf_counter() - started)


def batch_write_rate(connection: str, entities: int = 20_000, threads: int = 4) -> float:
    """Azurite's entities per second in 100-entity batch transactions, four threads, one partition each (sent as
    the ledger sends them, so the figure is Azurite's and not the SDK's batch encoder's)."""
    service = TableServiceClient.from_connection_string(connection)
    table = service.create_table(f"bench{uuid.uuid4().hex[:8]}")
    per_thread = entities // threads

    def write(thread: int) -> None:
        for start in range(0, per_thread, 100):
            tables.transact(
                table,
                [
                    ("upsert", {"PartitionKey": f"p{thread}", "RowKey": f"{start + i:07d}", "Status": "done", "N": i})
                    for i in range(100)
                ],
            )

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(write, range(threads)))
    rate = entities / (time.perf_counter() - started)
    service.delete_table(table.table_name)
    return rate


def main() -> None:
    """Runs the three measurements and prints them."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--chunk-size", type=int, default=500)
    args = parser.parse_args()

    emulator = azurite.start()
    try:
        os.environ.setdefault("PSEUDONYM_KEY", "bench-key")
        environment.apply(emulator.connection_string, CHUNK_SIZE=str(args.chunk_size), ITEMS_PER_BUCKET="5000")
        app = func.FunctionApp()
        for blueprint in (*BLUEPRINTS, bp):  # the deployed platform functions too: the closer asks the mailer
            app.register_functions(blueprint)
        host = LocalHost(app, connection_string=emulator.connection_string, options=HostOptions(poll_interval=0.2))
        host.provision()
        text = "id;amount\n" + "".join(f"B{n:07d};{n % 1000}.{n % 100:02d}\n" for n in range(args.items))
        storage.container("bench-inbox").upload_blob("bench.csv", text.encode())

        ports = dict(zip(emulator.ports, ("blob", "queue", "table"), strict=True))
        counter = RequestCounter(ports).install()
        started = time.perf_counter()
        host.run_until_idle(timeout=3600)
        (run,) = ledger.newest_runs("bench", 1)
        closed = close_run(run.run_id)
        elapsed = time.perf_counter() - started
        counter.uninstall()
        host.close()
        assert closed is not None and closed.status is ledger.RunStatus.COMPLETE, closed
        assert closed.counts[ledger.ItemStatus.DONE] == args.items

        on_azurite = args.items / elapsed
        excluded = ("eventgrid-emulation", "receive-empty")
        work_requests = counter.total(exclude=excluded)
        baseline = in_process(args.items, args.chunk_size)
        batch_rate = batch_write_rate(emulator.connection_string)

        print(f"pipeline benchmark: {args.items} items, chunks of {args.chunk_size}, three no-op steps + closer")
        print(f"  on Azurite via devhost : {on_azurite:10.0f} items/s  ({elapsed:.1f} s)")
        print(f"  in-process, no storage : {baseline:10.0f} items/s")
        print(f"  Azurite batch writes   : {batch_rate:10.0f} entities/s (100-entity transactions, 4 threads)")
        print(f"  ratio in-process / devhost        : {baseline / on_azurite:8.1f}")
        ledger_writes = 2 * args.items / elapsed  # each item's row is written when created and when it ends
        print(
            f"  ledger item-row writes : {ledger_writes:10.0f} entities/s"
            f" = {ledger_writes / batch_rate:.2f} of Azurite's batch rate"
        )
        print(
            f"  storage requests per item: {work_requests / args.items:.4f} (target <= 0.1), {work_requests} requests"
        )
        print(f"    plus idle polls of empty queues: {counter.counts[('queue', 'receive-empty')]}")
        print(
            f"    plus Event Grid emulation (free in Azure): {counter.counts.get(('blob', 'eventgrid-emulation'), 0)}"
            f" blob + {counter.counts.get(('table', 'eventgrid-emulation'), 0)} table"
        )
        print("  by service and operation:")
        for (service, operation), count in sorted(counter.counts.items()):
            print(f"    {service:6} {operation:20} {count:8}  {count / args.items:.4f}/item")
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
