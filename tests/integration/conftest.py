"""Integration fixtures: the session's Azurite as the app's storage, the sample simulator, a local host."""

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from devhost import environment
from devhost.app_index import load_app
from devhost.host import HostOptions, LocalHost
from devhost.sample.data import SampleFile
from devhost.sample.service import SampleServer
from devhost.simulators.cvr import CvrServer
from devhost.simulators.graph import GraphServer
from devhost.simulators.kvantum import KvantumServer
from devhost.simulators.kvantum_posting import KvantumPostingIntake
from devhost.simulators.opus_debitor import OpusDebitorServer
from devhost.simulators.servicenow import ServiceNowServer
from shared import ledger, storage
from tests.conftest import TEST_SETTINGS

SAMPLE_APP = "devhost.sample.app:app"


@dataclass
class Environment:
    connection_string: str
    service: SampleServer
    servicenow: ServiceNowServer
    graph: GraphServer
    cvr: CvrServer
    kvantum: KvantumServer
    opus_debitor: OpusDebitorServer
    posting: KvantumPostingIntake

    def mails(self, subject: str | None = None) -> list[dict]:
        """Mails in the Graph simulator's outbox (of one subject)."""
        return [m for m in self.graph.state.outbox if subject is None or m["subject"] == subject]

    def tasks(self, run_id: str) -> dict[str, list[dict]]:
        """Hand-off tasks of a run in the ServiceNow simulator, by item id."""
        tasks: dict[str, list[dict]] = {}
        for task in self.servicenow.state.tables["sc_task"].values():
            run, _, item = task.get("correlation_id", "").partition("/")
            if run == run_id:
                tasks.setdefault(item, []).append(task)
        return tasks

    def configure_faults(self, sample: SampleFile) -> None:
        requests.post(
            f"{self.service.url}/_control/faults",
            json={"faults": sample.faults, "no_nemkonto": sample.no_nemkonto},
            timeout=5,
        ).raise_for_status()

    def drop(self, name: str, text: str) -> None:
        storage.container("sample-inbox").upload_blob(name, text.encode("utf-8"), overwrite=True)

    def run_for(self, name: str) -> ledger.Run:
        runs = [r for r in ledger.newest_runs("sample", 200) if r.source == f"sample-inbox/{name}"]
        assert len(runs) == 1, f"expected one run for {name}, found {len(runs)}"
        return runs[0]

    def items(self, run: ledger.Run) -> dict[str, dict]:
        return {row["ItemId"]: row for row in ledger.item_rows(run)}

    def bookings(self) -> dict:
        return requests.get(f"{self.service.url}/_control/bookings", timeout=5).json()


@pytest.fixture(scope="session")
def env(azurite_connection: str) -> Iterator[Environment]:
    service = SampleServer().start()
    servicenow = ServiceNowServer().start()
    graph = GraphServer().start()
    cvr = CvrServer().start()
    kvantum = KvantumServer().start()
    opus_debitor = OpusDebitorServer().start()
    os.environ["REQUESTS_CA_BUNDLE"] = str(graph.certificate.bundle)  # trusts the simulator's test CA
    environment.apply(
        azurite_connection,
        **TEST_SETTINGS,
        **graph.settings(),
        **cvr.settings(),
        **kvantum.settings(),
        **opus_debitor.settings(),
        RULES_FILE=str(environment.devhost_rules_file()),
        SAMPLE_SERVICE_URL=service.url,
        SERVICENOW_INSTANCE_URL=servicenow.url,
        SERVICENOW_CLIENT_ID=servicenow.state.client_id,
        SERVICENOW_CLIENT_SECRET=servicenow.state.client_secret,
    )
    LocalHost(load_app(SAMPLE_APP), connection_string=azurite_connection).provision()
    posting = KvantumPostingIntake(azurite_connection)
    yield Environment(azurite_connection, service, servicenow, graph, cvr, kvantum, opus_debitor, posting)
    opus_debitor.stop()
    kvantum.stop()
    cvr.stop()
    os.environ.pop("REQUESTS_CA_BUNDLE", None)
    graph.stop()
    servicenow.stop()
    service.stop()


@pytest.fixture
def sample_env(env: Environment) -> Environment:
    """The environment with the simulator reset."""
    env.service.state.release.set()
    env.service.state.reset()
    env.graph.state.reset()
    return env


def make_host(env: Environment, **options: object) -> LocalHost:
    defaults = {"lease_seconds": 5, "poll_interval": 0.05, "failure_visibility_seconds": 0}
    return LocalHost(
        load_app(SAMPLE_APP),
        connection_string=env.connection_string,
        options=HostOptions(**{**defaults, **options}),  # type: ignore[arg-type]
    )


@pytest.fixture
def host(sample_env: Environment) -> Iterator[LocalHost]:
    local = make_host(sample_env)
    yield local
    local.close()
