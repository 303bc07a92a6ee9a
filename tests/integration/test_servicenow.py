"""The ServiceNow connector against the ServiceNow simulator, over real HTTP."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from devhost.simulators.servicenow import ServiceNowServer
from shared.connectors.servicenow import ServiceNowClient, ServiceNowError

CPR = "2412581234"
NEW_SUPPLIER = "cat-new-supplier"


@pytest.fixture
def instance() -> Iterator[ServiceNowServer]:
    server = ServiceNowServer().start()
    yield server
    server.stop()


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def client(instance, waits) -> ServiceNowClient:
    return ServiceNowClient(instance.url, "devhost", "devhost-secret", timeout=2, sleep=waits.append)


def request_item(instance: ServiceNowServer, n: int, **overrides) -> dict:
    record = {
        "cat_item": NEW_SUPPLIER,
        "state": "1",
        "short_description": f"Ny leverandør {n}",
        "variables": {"cvr": f"1234567{n % 10}", "navn": f"Firma {n} ApS", "leverandoer_type": "DK_VIRKSOMHED"},
        **overrides,
    }
    return instance.state.insert("sc_req_item", record)


def test_create_read_and_patch(client, instance):
    task = client.create("sc_task", {"short_description": "Kontrollér leverandør", "correlation_id": "r1/000001"})
    assert task["number"].startswith("SCTASK") and task["state"] == "1"
    assert client.get("sc_task", task["sys_id"], ["number", "correlation_id"]) == {
        "number": task["number"],
        "correlation_id": "r1/000001",
    }
    patched = client.patch("sc_task", task["sys_id"], {"state": "3"})
    assert patched["state"] == "3"
    assert instance.state.token_requests == 1, "the token is cached"


def test_query_collects_every_page_in_creation_order_with_the_filter(client, instance):
    wanted = [request_item(instance, n) for n in range(25)]
    request_item(instance, 99, state="3")  # closed: filtered out
    request_item(instance, 98, cat_item="something-else")
    found = client.query("sc_req_item", f"active=true^state=1^cat_item={NEW_SUPPLIER}", ["number", "sys_id"], 10)
    assert [r["number"] for r in found] == [r["number"] for r in wanted]
    pages = [p for m, p in instance.state.requests if m == "GET" and p == "/api/now/table/sc_req_item"]
    assert len(pages) == 4, "three full or short pages, then the empty page that ends it"


def test_catalog_variables_come_back_only_when_asked_for(client, instance):
    item = request_item(instance, 1)
    plain = client.get("sc_req_item", item["sys_id"])
    assert "variables" not in plain and "variables.cvr" not in plain
    asked = client.get("sc_req_item", item["sys_id"], ["number", "variables.cvr", "variables.navn"])
    assert asked == {"number": item["number"], "variables.cvr": "12345671", "variables.navn": "Firma 1 ApS"}


def test_an_expired_token_is_renewed_once_on_401(client, instance):
    item = request_item(instance, 1)
    client.get("sc_req_item", item["sys_id"])
    instance.state.expire_tokens()
    assert client.get("sc_req_item", item["sys_id"])["number"] == item["number"]
    assert instance.state.token_requests == 2


def test_wrong_credentials_are_reported_not_retried(instance, waits):
    wrong = ServiceNowClient(instance.url, "devhost", "wrong", sleep=waits.append)
    with pytest.raises(ServiceNowError, match="401"):
        wrong.query("sc_req_item", "active=true")
    assert waits == []


def test_429_waits_as_long_as_retry_after_says(client, instance, waits):
    request_item(instance, 1)
    instance.state.inject("429", count=2, value=7)
    assert len(client.query("sc_req_item", "active=true")) == 1
    assert waits == [7.0, 7.0]


def test_5xx_is_retried_with_growing_bounded_waits_then_reported(client, instance, waits):
    request_item(instance, 1)
    instance.state.inject("502", count=2)
    assert len(client.query("sc_req_item", "active=true")) == 1
    assert waits == [0.5, 1.0]
    waits.clear()
    instance.state.inject("500", count=10)
    with pytest.raises(ServiceNowError, match="500"):
        client.query("sc_req_item", "active=true")
    assert waits == [0.5, 1.0, 2.0, 4.0]


def test_a_timeout_is_retried_for_reads_but_never_for_creates(client, instance, waits):
    item = request_item(instance, 1)
    instance.state.inject("hang", count=1, value=3)  # longer than the client's 2 s timeout
    assert client.get("sc_req_item", item["sys_id"])["number"] == item["number"]
    assert waits == [0.5]
    instance.state.inject("hang", count=1, value=3)
    with pytest.raises(ServiceNowError, match="ReadTimeout"):
        client.create("sc_task", {"short_description": "x"})


def test_a_create_is_retried_only_when_refused_by_the_rate_limiter(client, instance, waits):
    instance.state.inject("429", count=1, value=1)
    created = client.create("sc_task", {"short_description": "x"})
    assert created["number"].startswith("SCTASK") and waits == [1.0]
    instance.state.inject("503", count=1)  # a gateway may answer 503 after the instance got the request
    with pytest.raises(ServiceNowError, match="503"):
        client.create("sc_task", {"short_description": "y"})
    assert len(instance.state.tables["sc_task"]) == 1


def test_a_retry_after_longer_than_allowed_is_reported_not_retried_early(client, instance, waits):
    instance.state.inject("429", count=1, value=600)
    with pytest.raises(ServiceNowError, match="429"):
        client.query("sc_req_item", "active=true")
    assert waits == []


def test_an_expired_token_on_the_last_attempt_is_still_renewed(instance, waits):
    item = request_item(instance, 1)
    no_retries = ServiceNowClient(instance.url, "devhost", "devhost-secret", max_retries=0, sleep=waits.append)
    no_retries.get("sc_req_item", item["sys_id"])
    instance.state.expire_tokens()
    assert no_retries.get("sc_req_item", item["sys_id"])["number"] == item["number"]


def test_other_errors_keep_the_response_text_without_personal_data(client, instance, waits):
    with pytest.raises(ServiceNowError) as error:
        client.get("sc_req_item", f"no-such-{CPR}")
    assert "404" in str(error.value) and "No Record found" in str(error.value)
    with pytest.raises(ServiceNowError) as error:
        client.query("no_such_table", "active=true")
    assert "400" in str(error.value) and waits == []
    instance.state.inject("400", count=1, message=f"Invalid query: caller {CPR[:6]}-{CPR[6:]} not found")
    with pytest.raises(ServiceNowError) as error:
        client.query("sc_req_item", "active=true")
    assert "Invalid query" in str(error.value) and CPR[:6] not in str(error.value)


def test_slowness_is_survived_within_the_timeout(client, instance):
    instance.state.slow_seconds = 0.3
    request_item(instance, 1)
    assert len(client.query("sc_req_item", "active=true")) == 1


def test_a_create_that_never_connected_is_retried(waits):
    from devhost.azurite import free_port

    nobody = ServiceNowClient(f"http://127.0.0.1:{free_port()}", "devhost", "x", max_retries=2, sleep=waits.append)
    nobody._token = ("token", datetime.now(UTC) + timedelta(hours=1))  # skip the token call: nothing listens
    with pytest.raises(ServiceNowError, match="ConnectionError"):
        nobody.create("sc_task", {"short_description": "x"})
    assert waits == [0.5, 1.0], "a refused connection cannot have created anything, so it is retried"
