"""The identity-based storage connection, for real: `shared.storage` with the real ManagedIdentityCredential,
behind it a fake App Service managed-identity endpoint, in front of it an Azurite that checks bearer tokens
(`--oauth basic`, HTTPS with devhost's own CA).

The module sets its environment for its own tests only and restores it exactly afterwards: the rest of the
session uses the key-based Azurite through the same setting names.
"""

import base64
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceExistsError
from azure.data.tables import TableServiceClient
from azure.identity import ManagedIdentityCredential
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient, QueueServiceClient

from devhost import azurite, certs
from devhost.app_index import load_app
from devhost.host import HostOptions, LocalHost
from devhost.sample.data import sample_file
from devhost.simulators.managed_identity import (
    API_VERSION,
    CLIENT_ID,
    STORAGE_RESOURCE,
    ManagedIdentityServer,
    TokenRequest,
    mint,
)
from functions.operations.run_closer import close_run
from shared import ledger, storage
from shared.outcomes import ItemStatus
from shared.settings import get_settings
from tests.integration.conftest import SAMPLE_APP, Environment

pytestmark = pytest.mark.integration
MAX_ATTEMPTS = 3  # tests.conftest.TEST_SETTINGS
GRANTED = TokenRequest(CLIENT_ID, STORAGE_RESOURCE, API_VERSION, 200)


@dataclass
class IdentityStorage:
    """The OAuth Azurite and the fake managed-identity endpoint behind the app's storage."""

    emulator: azurite.Azurite
    msi: ManagedIdentityServer

    def granted(self) -> list[TokenRequest]:
        """Token requests the fake endpoint answered with a token."""
        return self.msi.state.granted()


def _environment() -> dict[str, str]:
    """The process environment, but for pytest's own marker of the current test."""
    return {name: value for name, value in os.environ.items() if name != "PYTEST_CURRENT_TEST"}


def _forget() -> None:
    """Settings, clients and the cached credential are read again from the environment on next use."""
    get_settings.cache_clear()
    storage.reset_clients()


@pytest.fixture(scope="module")
def identity(env: Environment, tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdentityStorage]:
    """An OAuth Azurite and the fake identity endpoint, the app's storage pointed at them by identity only."""
    folder = tmp_path_factory.mktemp("identity")
    certificate = certs.make(folder)
    before = _environment()
    with ExitStack() as stack:  # unwound last to first: environment, caches, endpoint, emulator
        emulator = azurite.start(oauth=certificate, log_dir=folder)
        stack.callback(emulator.stop)
        msi = ManagedIdentityServer().start()
        stack.callback(msi.stop)
        stack.callback(_forget)
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        for name in ("WorkStorage", "WORK_STORAGE"):
            patch.delenv(name, raising=False)
        settings = {
            "REQUESTS_CA_BUNDLE": str(certificate.bundle),
            **msi.env,
            "WorkStorage__blobServiceUri": emulator.blob_service_uri,
            "WorkStorage__queueServiceUri": emulator.queue_service_uri,
            "WorkStorage__tableServiceUri": emulator.table_service_uri,
            "WorkStorage__credential": "managedidentity",
            "WorkStorage__clientId": CLIENT_ID,
        }
        for name, value in settings.items():
            patch.setenv(name, value)
        _forget()
        # devhost's own clients use the account key, which Azurite still accepts in OAuth mode
        LocalHost(load_app(SAMPLE_APP), connection_string=emulator.connection_string).provision()
        yield IdentityStorage(emulator, msi)
    assert _environment() == before, "the module must leave the session's environment as it found it"
    assert storage.table_service().url == TableServiceClient.from_connection_string(env.connection_string).url


@pytest.fixture(autouse=True)
def fresh_identity(identity: IdentityStorage) -> Iterator[IdentityStorage]:
    """Each test starts with new clients and a new credential, so it must fetch its own token."""
    _forget()
    identity.msi.state.reset()
    yield identity
    _forget()


class FixedToken:
    """A TokenCredential that presents one given token, whatever it says."""

    def __init__(self, token: str) -> None:
        """Presents `token`."""
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """The token, for the storage scope the SDK asks for."""
        assert scopes == (f"{STORAGE_RESOURCE}/.default",)
        return AccessToken(self.token, int(time.time()) + 3600)


def test_the_clients_hold_the_managed_identity_and_no_key(identity):
    for client in (storage.blob_service(), storage.queue_service(), storage.table_service()):
        assert isinstance(client.credential, ManagedIdentityCredential)
        assert client.url.startswith("https://127.0.0.1:") and client.account_name == azurite.ACCOUNT
    assert storage.queue("identity-any").credential is storage.blob_service().credential, "one credential"
    assert identity.granted() == [], "lazily: no token before the first request"


def test_blob_upload_and_download(identity):
    container = storage.container("identity-blobs")
    with suppress(ResourceExistsError):
        container.create_container()
    container.upload_blob("hello.txt", "hej fra identiteten, blåbær".encode(), overwrite=True)
    assert container.download_blob("hello.txt").readall().decode() == "hej fra identiteten, blåbær"
    assert set(identity.granted()) == {GRANTED}


def test_queue_send_receive_delete_keeps_base64(identity):
    queue = storage.queue("identity-queue")
    with suppress(ResourceExistsError):
        queue.create_queue()
    queue.send_message('{"step":"check","æøå":1}')
    # on the wire it is base64, as the Functions host expects (read with the key and no decoding)
    raw = QueueClient.from_connection_string(identity.emulator.connection_string, "identity-queue")
    (peeked,) = raw.peek_messages()
    assert base64.b64decode(peeked.content).decode() == '{"step":"check","æøå":1}'
    (message,) = queue.receive_messages(max_messages=32, visibility_timeout=5)
    assert message.content == '{"step":"check","æøå":1}'.encode()
    queue.delete_message(message)
    assert list(raw.peek_messages()) == []
    assert set(identity.granted()) == {GRANTED}


def test_table_entities_batches_and_queries(identity):
    storage.table_service().create_table_if_not_exists("identitytable")
    table = storage.table("identitytable")
    table.create_entity({"PartitionKey": "p", "RowKey": "001", "Amount": "12,50"})
    table.submit_transaction([("upsert", {"PartitionKey": "p", "RowKey": f"{n:03d}", "N": n}) for n in range(2, 6)])
    rows = list(
        table.query_entities("PartitionKey eq @pk and RowKey ge @first", parameters={"pk": "p", "first": "002"})
    )
    assert [row["RowKey"] for row in rows] == ["002", "003", "004", "005"]
    assert table.get_entity("p", "001")["Amount"] == "12,50"
    assert set(identity.granted()) == {GRANTED}


def _service_calls(emulator: azurite.Azurite, credential: Any) -> dict[str, Callable[[], object]]:
    """One authenticated read per service, with the given credential."""
    return {
        "blob": lambda: BlobServiceClient(emulator.blob_service_uri, credential=credential).get_service_properties(),
        "queue": lambda: QueueServiceClient(emulator.queue_service_uri, credential=credential).get_service_properties(),
        "table": lambda: list(TableServiceClient(emulator.table_service_uri, credential=credential).list_tables()),
    }


def test_a_well_formed_token_is_accepted_without_the_identity_endpoint(identity):
    """The control for the refusals below: only the claim each of them breaks differs."""
    token, _ = mint(STORAGE_RESOURCE, CLIENT_ID)
    for call in _service_calls(identity.emulator, FixedToken(token)).values():
        call()


@pytest.mark.parametrize(
    ("claims", "detail"),
    [
        ({"audience": "https://management.azure.com"}, "Invalid token audience."),
        ({"issuer": "https://login.example.com/tenant/"}, "Invalid token issuer."),
        ({"now": int(time.time()) - 2 * 86400, "lifetime": 3600}, "The token is expired."),
    ],
    ids=["audience", "issuer", "expired"],
)
@pytest.mark.parametrize("service", ["blob", "queue", "table"])
def test_azurite_refuses_a_token_with_a_wrong_claim(identity, service, claims, detail):
    token, _ = mint(STORAGE_RESOURCE, CLIENT_ID, **claims)
    with pytest.raises(HttpResponseError) as refused:
        _service_calls(identity.emulator, FixedToken(token))[service]()
    assert refused.value.status_code == 403
    assert "AuthenticationFailed" in refused.value.response.text() and detail in refused.value.response.text()


@pytest.mark.parametrize("service", ["blob", "queue", "table"])
def test_azurite_refuses_an_anonymous_request(identity, service):
    base = getattr(identity.emulator, f"{service}_service_uri")
    path = {"blob": "/identity-blobs?restype=container", "queue": "/identity-queue/messages", "table": "/Tables"}
    answer = requests.get(base + path[service], headers={"x-ms-version": "2021-08-06"}, timeout=10)
    assert answer.status_code == 403


def test_an_unknown_client_id_is_refused_by_the_identity_endpoint(identity, monkeypatch):
    monkeypatch.setenv("WorkStorage__clientId", "0f0e0d0c-b0a0-4f0e-8d0c-b0a0f0e0d0c0")
    _forget()
    with pytest.raises(ClientAuthenticationError, match="Unable to load the proper Managed Identity"):
        storage.table_service().create_table_if_not_exists("identitytable")
    (refused,) = identity.msi.state.requests
    assert refused == TokenRequest("0f0e0d0c-b0a0-4f0e-8d0c-b0a0f0e0d0c0", STORAGE_RESOURCE, API_VERSION, 400)


def test_the_identity_endpoint_checks_its_secret_header_and_api_version(identity):
    endpoint, secret = identity.msi.env["IDENTITY_ENDPOINT"], identity.msi.env["IDENTITY_HEADER"]
    query = {"api-version": API_VERSION, "resource": STORAGE_RESOURCE, "client_id": CLIENT_ID}
    wrong_header = requests.get(endpoint, params=query, headers={"X-IDENTITY-HEADER": "guess"}, timeout=5)
    old_version = requests.get(
        endpoint, params={**query, "api-version": "2017-09-01"}, headers={"X-IDENTITY-HEADER": secret}, timeout=5
    )
    answer = requests.get(endpoint, params=query, headers={"X-IDENTITY-HEADER": secret}, timeout=5)
    assert (wrong_header.status_code, old_version.status_code, answer.status_code) == (401, 400, 200)
    token = answer.json()
    assert token["token_type"] == "Bearer" and token["client_id"] == CLIENT_ID
    assert token["resource"] == STORAGE_RESOURCE and int(token["expires_on"]) > time.time()
    claims = json.loads(base64.urlsafe_b64decode(token["access_token"].split(".")[1] + "=="))
    assert claims["aud"] == STORAGE_RESOURCE and claims["iss"].startswith("https://sts.windows.net/")
    assert claims["nbf"] <= time.time() < claims["exp"] and claims["appid"] == CLIENT_ID


def test_missing_settings_are_named(monkeypatch):
    monkeypatch.delenv("WorkStorage__tableServiceUri")
    monkeypatch.delenv("WorkStorage__clientId")
    monkeypatch.setenv("WorkStorage__credential", "")
    _forget()
    with pytest.raises(RuntimeError) as missing:
        storage.table("runs")
    message = str(missing.value)
    assert "indstillingen WorkStorage (forbindelsesstreng) mangler" in message
    for name in ("WorkStorage__tableServiceUri", "WorkStorage__clientId", "WorkStorage__credential=managedidentity"):
        assert name in message
    assert "blobServiceUri" not in message and "queueServiceUri" not in message


def test_a_connection_string_wins_over_the_identity_settings(identity, monkeypatch):
    monkeypatch.setenv("WorkStorage", identity.emulator.connection_string)
    _forget()
    assert not isinstance(storage.table_service().credential, ManagedIdentityCredential)
    assert list(storage.table_service().list_tables())
    assert identity.granted() == []


def test_ledger_run_items_and_reconciliation(identity):
    started = datetime.now(UTC)
    run_id = ledger.new_run_id("identity", started, "identity-ledger")
    run = ledger.Run(
        automation="identity",
        run_id=run_id,
        trigger="test",
        source="identity-ledger",
        started_at=started,
        status=ledger.RunStatus.OPEN,
        expected_items=3,
        expected_amount=Decimal("30.00"),
        code_version="test",
        config_version="2026.1",
    )
    assert ledger.create_run(run) == run
    ids = list(ledger.item_ids(3))
    rows = [
        ledger.ItemRow(run_id=run_id, bucket=0, item_id=i, status=ItemStatus.PENDING, amount=Decimal(10)) for i in ids
    ]
    assert ledger.create_items(rows) == rows
    assert ledger.create_items(rows) == [], "created, never overwritten"
    assert run_id in ledger.open_run_ids()

    current = ledger.chunk_rows(run_id, 0, ids)
    ended = [r.model_copy(update={"status": ItemStatus.DONE, "step": "book", "attempts": 1}) for r in rows[:2]]
    handed = rows[2].model_copy(update={"status": ItemStatus.HANDED_OFF, "step": "book", "reason_code": "TEKNISK_FEJL"})
    ledger.end_items([*ended, handed], current)
    ledger.set_case_number(run_id, 0, ids[2], "SCTASK0000001")
    with pytest.raises(ledger.ItemEndedElsewhereError):
        ledger.end_items(ended, current)  # stale ETags: the first end won
    transition = ledger.ChunkTransition(
        run_id=run_id,
        step="book",
        chunk_id="c0",
        attempt=1,
        items=3,
        done=2,
        business=0,
        retried=0,
        technical_handoff=1,
    )
    ledger.record_transition(transition)
    assert ledger.chunk_already_done(run_id, "book", "c0", 1)

    closed = close_run(run_id)
    assert closed is not None and closed.status is ledger.RunStatus.COMPLETE, closed and closed.problems
    assert closed.counts[ItemStatus.DONE] == 2 and closed.counts[ItemStatus.HANDED_OFF] == 1
    assert closed.amount_total == Decimal("30.00") and closed.reasons == {"TEKNISK_FEJL": 1}
    assert ledger.get_run(run_id) == closed and run_id not in ledger.open_run_ids()
    assert set(identity.granted()) == {GRANTED}


def test_sample_chain_settles_with_the_app_on_its_identity(identity, sample_env):
    """devhost polls with the key; every storage request of the app's own code goes through the identity."""
    sample = sample_file(rows=14, seed=31, max_attempts=MAX_ATTEMPTS)
    sample_env.configure_faults(sample)
    storage.container("sample-inbox").upload_blob("identity.csv", sample.text.encode("utf-8"), overwrite=True)
    host = LocalHost(
        load_app(SAMPLE_APP),
        connection_string=identity.emulator.connection_string,
        options=HostOptions(lease_seconds=5, poll_interval=0.05, failure_visibility_seconds=0),
    )
    try:
        host.run_until_idle(timeout=120)
    finally:
        host.close()

    run = sample_env.run_for("identity.csv")
    closed = close_run(run.run_id)
    assert closed is not None and closed.status is ledger.RunStatus.COMPLETE, closed and closed.problems
    items = sample_env.items(closed)
    expected = {f"{n:06d}": outcome for n, outcome in enumerate(sample.expected.values(), start=1)}
    assert {i: (row["Status"], row["ReasonCode"]) for i, row in items.items()} == expected
    assert closed.amount_total == closed.expected_amount == sample.total
    outcomes = Counter(status for status, _ in sample.expected.values())
    assert closed.counts == {status: outcomes.get(status.value, 0) for status in ItemStatus}
    handed = {i for i, row in items.items() if row["Status"] == "handed_off"}
    assert handed and set(sample_env.tasks(run.run_id)) == handed
    assert set(identity.granted()) == {GRANTED}
    # the key-based session storage never saw this run
    key_runs = TableServiceClient.from_connection_string(sample_env.connection_string).get_table_client("runs")
    assert not list(key_runs.query_entities("RunId eq @id", parameters={"id": run.run_id}))
