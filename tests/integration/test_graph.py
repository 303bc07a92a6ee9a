"""The Graph mail connector against the Graph simulator: real MSAL, real HTTPS, the simulator's own CA."""

import time
from collections.abc import Callable, Iterator

import pytest
import requests
from pydantic import ValidationError

from devhost import certs
from devhost.certs import LoopbackCertificate
from devhost.simulators.graph import GraphServer
from shared.connectors.graph import GraphError, GraphMailClient, MailMessage, graph_mail
from shared.settings import get_settings

SENDER = "robot@devhost.example"
CPR = "010190-1234"  # CPR-shaped test data: it must never reach an exception's text
GRAPH_SETTINGS = ("GRAPH_AUTHORITY", "GRAPH_BASE_URL", "GRAPH_CLIENT_ID", "GRAPH_CLIENT_SECRET", "MAIL_SENDER")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> LoopbackCertificate:
    return certs.make(tmp_path_factory.mktemp("graph-certs"))


@pytest.fixture
def graph(certificate, monkeypatch) -> Iterator[GraphServer]:
    # MSAL's session reads REQUESTS_CA_BUNDLE per request, the client's when it is built (after this).
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate.bundle))
    server = GraphServer(certificate=certificate).start()
    yield server
    server.stop()


@pytest.fixture
def waits() -> list[float]:
    return []


def make_client(graph: GraphServer, waits: list[float], **overrides) -> GraphMailClient:
    arguments = {
        "authority": graph.authority,
        "client_id": "devhost",
        "client_secret": "devhost-secret",
        "base_url": graph.base_url,
        "sender": SENDER,
        "timeout": 2,
        "sleep": waits.append,
        **overrides,
    }
    return GraphMailClient(**arguments)


@pytest.fixture
def client(graph, waits) -> GraphMailClient:
    return make_client(graph, waits)


def wait_for(condition: Callable[[], bool], attempts: int = 200) -> None:
    """Polls until the simulator's background work is done (no assertion on how long it takes)."""
    for _ in range(attempts):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("the simulator never got there")


def receipt(n: int = 1) -> MailMessage:
    return MailMessage(
        to=[f"borger{n}@example.dk"], subject=f"Kvittering {n}", body=f"Vi har modtaget din sag {n}.\nVenlig hilsen"
    )


def test_a_mail_lands_in_the_outbox_with_its_fields_and_the_token_is_fetched_once(client, graph):
    client.send_mail(
        MailMessage(
            to=["a@example.dk", "b@example.dk"], subject="Kvittering", body="Linje 1\nLinje 2", reply_to="svar@kk.dk"
        )
    )
    client.send_mail(receipt(2))
    first, second = graph.state.outbox
    assert first["sender"] == SENDER
    assert first["to"] == ["a@example.dk", "b@example.dk"] and first["reply_to"] == ["svar@kk.dk"]
    assert (first["subject"], first["body"], first["content_type"]) == ("Kvittering", "Linje 1\nLinje 2", "Text")
    assert first["save_to_sent_items"] is True
    assert second["to"] == ["borger2@example.dk"] and second["reply_to"] == []
    assert graph.state.token_requests == 1, "MSAL's cache serves the second send"
    assert graph.state.count("GET", "/openid-configuration") == 1, "the authority is discovered once"


def test_constructing_the_client_makes_no_request(graph, waits):
    client = make_client(graph, waits)
    assert graph.state.requests == [] and graph.state.token_requests == 0
    client.send_mail(receipt())
    assert graph.state.requests[0] == ("GET", f"/{graph.state.tenant}/v2.0/.well-known/openid-configuration")


def test_the_factory_reads_settings_and_stays_lazy(graph, monkeypatch):
    for name, value in graph.settings().items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    graph_mail.cache_clear()
    try:
        client = graph_mail()
        assert graph_mail() is client, "one client per process"
        assert (client.sender, client.base_url) == (SENDER, graph.base_url)
        assert graph.state.requests == []
        client.send_mail(receipt())
        assert len(graph.state.outbox) == 1
    finally:
        get_settings.cache_clear()
        graph_mail.cache_clear()


def test_the_factory_names_missing_settings(monkeypatch):
    for name in GRAPH_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    graph_mail.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="GRAPH_AUTHORITY"):
            graph_mail()
    finally:
        get_settings.cache_clear()
        graph_mail.cache_clear()


def test_an_expired_token_is_refreshed_once_on_401(client, graph, waits):
    client.send_mail(receipt(1))
    graph.state.expire_tokens()
    client.send_mail(receipt(2))
    assert graph.state.token_requests == 2
    assert graph.state.count("POST", "/sendMail") == 3, "the rejected send, then its one retry"
    assert len(graph.state.outbox) == 2 and waits == []


def test_a_token_refused_again_after_the_refresh_is_reported(client, graph, waits):
    graph.state.inject("401", count=2)
    with pytest.raises(GraphError) as error:
        client.send_mail(receipt())
    assert error.value.status == 401 and "InvalidAuthenticationToken" in str(error.value)
    assert graph.state.token_requests == 2, "one fresh token, not a loop"
    assert graph.state.outbox == []


def test_429_waits_as_long_as_retry_after_says_then_sends(client, graph, waits):
    graph.state.inject("429", count=2, value=7)
    client.send_mail(receipt())
    assert waits == [7.0, 7.0]
    assert len(graph.state.outbox) == 1 and graph.state.count("POST", "/sendMail") == 3


def test_a_retry_after_longer_than_allowed_is_reported_not_retried_early(client, graph, waits):
    graph.state.inject("429", count=1, value=600)
    with pytest.raises(GraphError) as error:
        client.send_mail(receipt())
    assert error.value.status == 429 and "ApplicationThrottled" in str(error.value)
    assert waits == [] and graph.state.count("POST", "/sendMail") == 1


def test_429_that_never_ends_runs_out_of_attempts(graph, waits):
    client = make_client(graph, waits, max_retries=2)
    graph.state.inject("429", count=5, value=1)
    with pytest.raises(GraphError, match="429"):
        client.send_mail(receipt())
    assert waits == [1.0, 1.0] and graph.state.count("POST", "/sendMail") == 3


@pytest.mark.parametrize("status", ["503", "504"])
def test_a_gateway_error_on_send_is_reported_without_a_second_post(client, graph, waits, status):
    # The gateway may answer after Graph accepted the mail: a second POST could send it twice.
    graph.state.inject(status, count=1)
    with pytest.raises(GraphError) as error:
        client.send_mail(receipt())
    assert error.value.status == int(status)
    assert graph.state.count("POST", "/sendMail") == 1 and waits == []
    assert graph.state.outbox == []


def test_a_timeout_is_reported_and_never_resent(graph, waits):
    client = make_client(graph, waits, timeout=0.5)
    graph.state.inject("timeout", count=1, value=1.5)  # answered, and sent, after the client gave up
    with pytest.raises(GraphError) as error:
        client.send_mail(receipt())
    assert error.value.status is None and "ReadTimeout" in str(error.value)
    assert graph.state.count("POST", "/sendMail") == 1 and waits == []
    wait_for(lambda: len(graph.state.outbox) == 1)  # the mail went out: a resend would have doubled it
    assert graph.state.count("POST", "/sendMail") == 1


def test_a_send_that_never_connected_is_retried(graph, waits):
    from devhost.azurite import free_port

    client = make_client(graph, waits, base_url=f"https://127.0.0.1:{free_port()}/v1.0", max_retries=2)
    with pytest.raises(GraphError, match="ConnectionError"):
        client.send_mail(receipt())
    assert waits == [0.5, 1.0], "a refused connection cannot have sent anything, so it is retried"
    assert graph.state.token_requests == 1


def test_a_timeout_at_the_token_endpoint_is_retried_as_nothing_was_sent(graph, waits):
    client = make_client(graph, waits, timeout=0.5)
    graph.state.inject("timeout", count=1, value=1.5, endpoint="token")
    client.send_mail(receipt())
    assert waits == [0.5] and len(graph.state.outbox) == 1
    assert graph.state.count("POST", "/sendMail") == 1


def test_a_wrong_secret_is_reported_with_msals_error(graph, waits):
    client = make_client(graph, waits, client_secret="wrong")
    with pytest.raises(GraphError) as error:
        client.send_mail(receipt())
    assert "invalid_client" in str(error.value) and "AADSTS7000215" in str(error.value)
    assert graph.state.count("POST", "/sendMail") == 0 and waits == []


def test_a_revoked_secret_is_reported_when_the_cached_token_runs_out(client, graph, waits):
    client.send_mail(receipt(1))
    graph.state.revoke_secret()
    graph.state.expire_tokens()
    with pytest.raises(GraphError, match="invalid_client"):
        client.send_mail(receipt(2))
    assert len(graph.state.outbox) == 1


def test_an_unknown_tenant_is_reported(graph, waits):
    client = make_client(graph, waits, authority=f"{graph.url}/no-such-tenant")
    with pytest.raises(GraphError, match="unusable"):
        client.send_mail(receipt())
    assert graph.state.token_requests == 0


def test_an_unknown_sender_is_reported_with_graphs_code(graph, waits):
    client = make_client(graph, waits, sender="nobody@devhost.example")
    with pytest.raises(GraphError) as error:
        client.send_mail(receipt())
    assert error.value.status == 404 and "ErrorInvalidUser" in str(error.value)
    assert graph.state.outbox == [] and waits == []


def test_personal_data_in_a_graph_error_stays_out_of_the_exception(client, graph, waits):
    graph.state.inject("400", count=1, message=f"Recipient for {CPR} is not valid")
    with pytest.raises(GraphError) as error:
        client.send_mail(receipt())
    text = str(error.value)
    assert "Recipient for" in text and "[CPR]" in text
    assert CPR not in text and CPR.replace("-", "") not in text
    assert error.value.args == (text,)


def test_an_untrusted_certificate_is_refused(graph, waits, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    client = make_client(graph, waits, max_retries=0)
    with pytest.raises(GraphError, match="SSLError"):
        client.send_mail(receipt())
    assert graph.state.token_requests == 0 and graph.state.outbox == []


def test_the_message_is_checked_before_anything_is_sent():
    with pytest.raises(ValidationError):
        MailMessage(to=[], subject="Kvittering", body="x")
    with pytest.raises(ValidationError):
        MailMessage(to=["not an address"], subject="Kvittering", body="x")
    with pytest.raises(ValidationError) as error:
        MailMessage(to=[f"{CPR}"], subject="Kvittering", body="x")
    assert CPR not in str(error.value), "boundary models never echo their input"
    assert MailMessage(to=["a@example.dk"], subject="s", body="b").graph_body() == {
        "message": {
            "subject": "s",
            "body": {"contentType": "Text", "content": "b"},
            "toRecipients": [{"emailAddress": {"address": "a@example.dk"}}],
        },
        "saveToSentItems": True,
    }


def test_the_simulator_checks_what_graph_checks(graph):
    bundle = str(graph.certificate.bundle)
    form = {"grant_type": "client_credentials", "scope": "https://graph.microsoft.com/.default"}
    issued = requests.post(
        f"{graph.authority}/oauth2/v2.0/token",
        data={**form, "client_id": "devhost", "client_secret": "devhost-secret"},
        timeout=5,
        verify=bundle,
    ).json()
    assert issued["token_type"] == "Bearer" and issued["expires_in"] > 300
    token = issued["access_token"]
    url = f"{graph.base_url}/users/{SENDER}/sendMail"

    def post(body: object, bearer: str | None = token) -> requests.Response:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        return requests.post(url, json=body, headers=headers, timeout=5, verify=bundle)

    no_token = post({"message": {}}, bearer=None)
    assert no_token.status_code == 401 and no_token.json()["error"]["code"] == "InvalidAuthenticationToken"
    no_recipients = post({"message": {"subject": "s", "body": {"contentType": "Text", "content": "b"}}})
    assert no_recipients.status_code == 400 and no_recipients.json()["error"]["code"] == "ErrorInvalidRecipients"
    malformed = post({"message": {"toRecipients": [{"emailAddress": {}}]}})
    assert malformed.json()["error"]["code"] == "ErrorInvalidRecipients"
    assert post(["not", "a", "message"]).json()["error"]["code"] == "BadRequest"
    assert graph.state.outbox == []
    accepted = post({"message": {"toRecipients": [{"emailAddress": {"address": "a@example.dk"}}]}})
    assert accepted.status_code == 202 and accepted.content == b""
    outbox = requests.get(f"{graph.url}/_outbox", timeout=5, verify=bundle).json()
    assert [mail["to"] for mail in outbox] == [["a@example.dk"]]
    requests.post(f"{graph.url}/_control/reset", timeout=5, verify=bundle).raise_for_status()
    assert graph.state.outbox == [] and graph.state.requests == []
