"""The CVR connector against the CVR register simulator, over real HTTP."""

from collections.abc import Iterator

import pytest
import requests

from devhost.simulators.cvr import SEARCH_PATH, CvrServer, CvrState
from shared.connectors.cvr import (
    CompanyStatus,
    CvrAmbiguousError,
    CvrClient,
    CvrError,
    CvrNotFoundError,
    cvr_client,
)
from shared.personal_data import contains_cpr
from shared.settings import get_settings

ACTIVE = "13703701"
OTHER = "37160474"
CPR = "2412581234"


@pytest.fixture(scope="module")
def server() -> Iterator[CvrServer]:
    # One server for the module: stopping one waits out serve_forever's half-second poll.
    running = CvrServer().start()
    yield running
    running.stop()


@pytest.fixture
def register(server) -> CvrServer:
    server.state.reset()
    return server


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def client(register, waits) -> CvrClient:
    return make_client(register, waits)


def make_client(register: CvrServer, waits: list[float], **options) -> CvrClient:
    state = register.state
    return CvrClient(register.url, state.username, state.password, sleep=waits.append, **{"timeout": 2, **options})


def seed(register: CvrServer, cvr: str = ACTIVE, status: str = "NORMAL") -> dict:
    return register.state.add_company(
        cvr, "Vesterbro Data ApS", "Vesterbrogade", 10, "1620", "København V", status=status, letter="A"
    )


def search(register: CvrServer, body: object, auth: tuple[str, str] | None = ("devhost", "devhost-secret")):
    return requests.post(f"{register.url}{SEARCH_PATH}", json=body, auth=auth, timeout=5)


def test_an_active_company_is_read_into_a_company(client, register, waits):
    register.state.add_company(
        ACTIVE, "Vesterbro Data ApS", "Vesterbrogade", 10, "1620", "København V", letter="A", co_name="c/o Hansen"
    )
    company = client.lookup(ACTIVE)
    assert company.cvr == ACTIVE and company.name == "Vesterbro Data ApS"
    assert (company.street, company.postal_code, company.city, company.country) == (
        "Vesterbrogade 10A",
        "1620",
        "København V",
        "DK",
    )
    assert company.co_name == "c/o Hansen" and company.company_form == "APS"
    assert company.status is CompanyStatus.ACTIVE and company.active and company.status_text == "NORMAL"
    assert register.state.requests[ACTIVE] == 1 and waits == []


def test_a_postal_code_below_1000_keeps_its_leading_zero_and_a_plain_number_has_no_letter(client, register):
    register.state.add_company(ACTIVE, "Taastrup Post A/S", "Postvej", 1, "0800", "Høje Taastrup", form="A/S")
    company = client.lookup(ACTIVE)
    assert (company.street, company.postal_code, company.company_form) == ("Postvej 1", "0800", "A/S")


@pytest.mark.parametrize("status", ["NORMAL", "Aktiv", "AKTIV", "normal"])
def test_normal_and_aktiv_are_active_whatever_the_case(client, register, status):
    seed(register, status=status)
    company = client.lookup(ACTIVE)
    assert company.status is CompanyStatus.ACTIVE and company.status_text == status


@pytest.mark.parametrize(
    "status",
    ["UNDER KONKURS", "OPHØRT", "UNDER FRIVILLIG LIKVIDATION", "UNDER TVANGSOPLØSNING", "UNDER REKONSTRUKTION", ""],
)
def test_every_other_status_is_not_active_and_kept_verbatim(client, register, status):
    seed(register, status=status)
    company = client.lookup(ACTIVE)
    assert company.status is CompanyStatus.NOT_ACTIVE and not company.active
    assert company.status_text == status


@pytest.mark.parametrize("as_object", [False, True], ids=["number", "value-relation"])
def test_hits_total_is_read_in_both_shapes(register, waits, as_object):
    register.state.total_as_object = as_object
    seed(register)
    seed(register, OTHER)
    seed(register, OTHER)
    client = make_client(register, waits)
    shape = search(register, {"query": {"term": {"Vrvirksomhed.cvrNummer": int(ACTIVE)}}}).json()["hits"]["total"]
    assert isinstance(shape, dict) is as_object
    assert client.lookup(ACTIVE).cvr == ACTIVE
    with pytest.raises(CvrAmbiguousError) as ambiguous:
        client.lookup(OTHER)
    assert ambiguous.value.count == 2


def test_an_unknown_number_is_not_found(client, register):
    seed(register)
    with pytest.raises(CvrNotFoundError) as missing:
        client.lookup(OTHER)
    assert missing.value.cvr == OTHER and register.state.requests[OTHER] == 1


def test_two_documents_for_one_number_are_ambiguous(client, register, waits):
    seed(register)
    seed(register, status="OPHØRT")
    with pytest.raises(CvrAmbiguousError) as ambiguous:
        client.lookup(ACTIVE)
    assert ambiguous.value.count == 2 and waits == []


def test_a_wrong_password_is_reported_once_and_never_retried(register, waits):
    seed(register)
    wrong = CvrClient(register.url, "devhost", "wrong", sleep=waits.append)
    with pytest.raises(CvrError) as refused:
        wrong.lookup(ACTIVE)
    assert refused.value.status == 401
    assert waits == [] and register.state.requests[ACTIVE] == 1, "a refused login is not repeated"


def test_a_503_is_retried_although_the_search_is_a_post(client, register, waits):
    seed(register)
    register.state.inject("503")
    assert client.lookup(ACTIVE).cvr == ACTIVE
    assert waits == [0.5] and register.state.requests[ACTIVE] == 2


def test_a_lasting_5xx_is_reported_after_max_retries(client, register, waits):
    seed(register)
    register.state.inject("503", count=10)
    with pytest.raises(CvrError) as failure:
        client.lookup(ACTIVE)
    assert failure.value.status == 503 and "cluster_block_exception" in str(failure.value)
    assert register.state.requests[ACTIVE] == 5, "max_retries (4) + 1"
    assert waits == [0.5, 1.0, 2.0, 4.0]


def test_429_waits_as_long_as_retry_after_says(client, register, waits):
    seed(register)
    register.state.inject("429", value=2)
    assert client.lookup(ACTIVE).cvr == ACTIVE
    assert waits == [2.0] and register.state.requests[ACTIVE] == 2


def test_a_retry_after_longer_than_allowed_is_reported_not_retried_early(client, register, waits):
    seed(register)
    register.state.inject("429", value=600)
    with pytest.raises(CvrError) as failure:
        client.lookup(ACTIVE)
    assert failure.value.status == 429 and waits == [] and register.state.requests[ACTIVE] == 1


def test_a_timeout_is_retried_although_the_search_is_a_post(register, waits):
    seed(register)
    client = make_client(register, waits, timeout=0.3)
    register.state.inject("timeout", value=1.5)  # longer than the client waits
    assert client.lookup(ACTIVE).cvr == ACTIVE
    assert waits == [0.5] and register.state.requests[ACTIVE] == 2


def test_timeouts_and_5xx_share_one_budget_and_one_growing_backoff(register, waits):
    seed(register)
    client = make_client(register, waits, timeout=0.3, max_retries=3)
    register.state.inject("timeout", value=1.5)
    register.state.inject("502")
    register.state.inject("timeout", value=1.5)
    register.state.inject("500")
    with pytest.raises(CvrError) as failure:
        client.lookup(ACTIVE)
    assert failure.value.status == 500
    assert register.state.requests[ACTIVE] == 4, "max_retries (3) + 1, however the failures alternate"
    assert waits == [0.5, 1.0, 2.0]


def test_lasting_timeouts_are_reported_after_max_retries(register, waits):
    seed(register)
    client = make_client(register, waits, timeout=0.3, max_retries=2)
    register.state.inject("timeout", count=3, value=1.5)
    with pytest.raises(CvrError, match="ReadTimeout") as failure:
        client.lookup(ACTIVE)
    assert failure.value.status is None
    assert register.state.requests[ACTIVE] == 3 and waits == [0.5, 1.0]


def test_a_partial_answer_is_retried_not_taken_for_not_found(client, register, waits):
    seed(register)
    register.state.inject("partial")
    assert client.lookup(ACTIVE).cvr == ACTIVE
    assert waits == [0.5] and register.state.requests[ACTIVE] == 2


@pytest.mark.parametrize("cvr", ["1370370", "137037011", "1370370a", " 13703701", "", "١٣٧٠٣٧٠١", CPR])
def test_a_cvr_that_is_not_8_digits_is_refused_before_any_request(client, register, cvr):
    with pytest.raises(ValueError, match="8 digits") as refused:
        client.lookup(cvr)
    assert not register.state.requests
    assert CPR not in str(refused.value), "the input is never echoed: it may be a CPR number"


def test_a_malformed_document_is_a_technical_error(client, register, waits):
    document = seed(register)
    del document["Vrvirksomhed"]["virksomhedMetadata"]["nyesteBeliggenhedsadresse"]
    with pytest.raises(CvrError, match="nyesteBeliggenhedsadresse") as failure:
        client.lookup(ACTIVE)
    assert failure.value.status == 200 and waits == []
    document["Vrvirksomhed"]["virksomhedMetadata"]["nyesteBeliggenhedsadresse"] = {"vejnavn": "Vesterbrogade"}
    with pytest.raises(CvrError, match="postnummer"):
        client.lookup(ACTIVE)


def test_a_document_for_another_number_is_refused(client, register):
    document = seed(register)
    document["Vrvirksomhed"]["cvrNummer"] = int(OTHER)
    with pytest.raises(CvrError, match="another CVR number"):
        client.lookup(ACTIVE)


def test_error_texts_keep_the_registers_reason_without_personal_data(client, register):
    seed(register)
    register.state.inject("500", count=5, message=f"failed to parse [{CPR[:6]}-{CPR[6:]}]")
    with pytest.raises(CvrError) as failure:
        client.lookup(ACTIVE)
    assert "search_phase_execution_exception: failed to parse" in str(failure.value)
    assert CPR[:6] not in str(failure.value) and "[CPR]" in str(failure.value)


def test_the_simulator_speaks_elasticsearch(register):
    seed(register)
    by_text = search(
        register, {"query": {"term": {"Vrvirksomhed.cvrNummer": ACTIVE}}, "_source": ["Vrvirksomhed.cvrNummer"]}
    )
    assert by_text.status_code == 200
    hit = by_text.json()["hits"]["hits"][0]
    assert hit["_source"] == {"Vrvirksomhed": {"cvrNummer": int(ACTIVE)}} and hit["_index"].startswith("cvr-permanent")
    long_form = search(register, {"query": {"term": {"Vrvirksomhed.cvrNummer": {"value": int(ACTIVE)}}}, "size": 0})
    assert long_form.json()["hits"]["total"] == 1 and long_form.json()["hits"]["hits"] == []
    bad = search(register, {"query": {"match": {"Vrvirksomhed.virksomhedMetadata.nyesteNavn.navn": "Vesterbro"}}})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "parsing_exception"
    assert bad.json()["status"] == 400
    not_a_number = search(register, {"query": {"term": {"Vrvirksomhed.cvrNummer": "Vesterbro"}}})
    assert not_a_number.status_code == 400
    anonymous = search(register, {"query": {"term": {"Vrvirksomhed.cvrNummer": int(ACTIVE)}}}, auth=None)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["type"] == "security_exception"
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    elsewhere = requests.post(f"{register.url}/cvr-permanent/produktionsenhed/_search", json={}, timeout=5)
    assert elsewhere.status_code == 404 and elsewhere.json()["error"]["type"] == "index_not_found_exception"


def test_devhost_users_seed_and_break_it_over_http(client, register, waits):
    added = requests.post(
        f"{register.url}/_control/company",
        json={
            "cvr": OTHER,
            "name": "Nørrebro Revision I/S",
            "street_name": "Nørrebrogade",
            "house_number": 52,
            "postal_code": "2200",
            "city": "København N",
            "form": "I/S",
            "status": "UNDER KONKURS",
        },
        timeout=5,
    )
    assert added.status_code == 201
    requests.post(f"{register.url}/_control/fault", json={"kind": "502", "count": 1}, timeout=5).raise_for_status()
    company = client.lookup(OTHER)
    assert company.status is CompanyStatus.NOT_ACTIVE and company.company_form == "I/S" and waits == [0.5]
    requests.post(f"{register.url}/_control/fault", json={"kind": "503", "count": 3}, timeout=5).raise_for_status()
    register.state.total_as_object = True
    requests.post(f"{register.url}/_control/reset", timeout=5).raise_for_status()
    state = register.state
    assert not (state.requests or state.faults or state.companies or state.total_as_object)
    with pytest.raises(CvrNotFoundError):
        client.lookup(OTHER)


def test_the_factory_reads_settings(register, monkeypatch):
    seed(register)
    for name, value in register.settings().items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    cvr_client.cache_clear()
    try:
        client = cvr_client()
        assert cvr_client() is client, "one client per process"
        assert client.lookup(ACTIVE).cvr == ACTIVE
    finally:
        get_settings.cache_clear()
        cvr_client.cache_clear()


def test_the_factory_names_missing_settings(monkeypatch):
    monkeypatch.setenv("CVR_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("CVR_USERNAME", raising=False)
    monkeypatch.delenv("CVR_PASSWORD", raising=False)
    get_settings.cache_clear()
    cvr_client.cache_clear()
    try:
        with pytest.raises(RuntimeError, match=r"\(CVR_USERNAME, CVR_PASSWORD\)"):
            cvr_client()
    finally:
        get_settings.cache_clear()
        cvr_client.cache_clear()


def test_the_state_refuses_a_seed_that_is_not_a_cvr_number():
    with pytest.raises(ValueError, match="8 digits"):
        CvrState().add_company("1234", "X", "Vej", 1, "1000", "København K")


# --- lookup_many: terms searches of many numbers ----------------------------------------------------------------


INACTIVE = "25052943"
MISSING = "10403782"
AMBIGUOUS = "29189900"


def test_many_numbers_are_read_in_one_search_with_every_outcome(client, register, waits):
    seed(register)
    seed(register, INACTIVE, status="UNDER KONKURS")
    seed(register, AMBIGUOUS)
    seed(register, AMBIGUOUS, status="OPHØRT")
    found = client.lookup_many([ACTIVE, INACTIVE, MISSING, AMBIGUOUS, ACTIVE])
    assert list(found) == [ACTIVE, INACTIVE, MISSING, AMBIGUOUS], "each distinct number once, in the order given"
    active, inactive, missing, ambiguous = found.values()
    assert active.cvr == ACTIVE and active.active and active.street == "Vesterbrogade 10A"
    assert inactive.cvr == INACTIVE and inactive.status is CompanyStatus.NOT_ACTIVE
    assert inactive.status_text == "UNDER KONKURS"
    assert isinstance(missing, CvrNotFoundError) and missing.cvr == MISSING
    assert isinstance(ambiguous, CvrAmbiguousError) and (ambiguous.cvr, ambiguous.count) == (AMBIGUOUS, 2)
    assert register.state.searches == [(ACTIVE, INACTIVE, MISSING, AMBIGUOUS)], "one search, each number once"
    assert waits == []


def test_more_than_a_hundred_numbers_take_several_searches(client, register):
    numbers = [f"{30000000 + n:08d}" for n in range(250)]
    for number in numbers[::7]:
        seed(register, number)
    found = client.lookup_many(numbers)
    assert [len(search) for search in register.state.searches] == [100, 100, 50]
    assert sum(register.state.requests.values()) == 250, "every number asked for once"
    assert {cvr for cvr, result in found.items() if not isinstance(result, Exception)} == set(numbers[::7])
    assert all(isinstance(found[cvr], CvrNotFoundError) for cvr in set(numbers) - set(numbers[::7]))


def test_the_numbers_per_search_can_be_lowered(client, register):
    client.terms_per_search = 3
    seed(register)
    found = client.lookup_many([ACTIVE, OTHER, MISSING, INACTIVE, AMBIGUOUS])
    assert len(register.state.searches) == 2 and found[ACTIVE].cvr == ACTIVE


def test_a_503_in_a_search_of_many_is_retried(client, register, waits):
    seed(register)
    register.state.inject("503")
    found = client.lookup_many([ACTIVE, OTHER])
    assert found[ACTIVE].cvr == ACTIVE and isinstance(found[OTHER], CvrNotFoundError)
    assert waits == [0.5] and register.state.searches == [(ACTIVE, OTHER)] * 2


def test_a_partial_answer_to_many_is_retried_not_taken_for_not_found(client, register, waits):
    seed(register)
    register.state.inject("partial")
    assert client.lookup_many([ACTIVE])[ACTIVE].cvr == ACTIVE
    assert waits == [0.5] and len(register.state.searches) == 2


def test_a_lasting_5xx_fails_the_whole_call_with_a_redacted_reason(client, register, waits):
    seed(register)
    register.state.inject("500", count=5, message=f"failed to parse [{CPR}]")
    with pytest.raises(CvrError) as failure:
        client.lookup_many([ACTIVE, OTHER])
    assert failure.value.status == 500 and len(register.state.searches) == 5 and waits == [0.5, 1.0, 2.0, 4.0]
    assert CPR not in str(failure.value) and "[CPR]" in str(failure.value)


def test_no_number_appears_in_the_errors_of_many(client, register):
    seed(register, AMBIGUOUS)
    seed(register, AMBIGUOUS)
    found = client.lookup_many([MISSING, AMBIGUOUS])
    for cvr, error in found.items():
        assert isinstance(error, Exception) and cvr not in str(error)
    for given in ([ACTIVE, CPR], [ACTIVE, "1370370"], [ACTIVE, 13703701]):
        with pytest.raises(ValueError, match="8 digits") as refused:
            client.lookup_many(given)
        assert CPR not in str(refused.value) and not contains_cpr(str(refused.value))
    with pytest.raises(TypeError) as bare:
        client.lookup_many(ACTIVE)
    assert ACTIVE not in str(bare.value)
    assert register.state.searches == [(MISSING, AMBIGUOUS)], "invalid input is refused before any search"


def test_no_numbers_need_no_search(client, register):
    assert client.lookup_many([]) == {} and register.state.searches == []


def test_an_answer_with_fewer_hits_than_matches_is_refused(client, register, monkeypatch):
    monkeypatch.setattr("shared.connectors.cvr.MAX_RESULT_WINDOW", 1)
    seed(register, AMBIGUOUS)
    seed(register, AMBIGUOUS)
    with pytest.raises(CvrError, match="1 of 2 matching documents"):
        client.lookup_many([AMBIGUOUS])


def test_a_document_for_a_number_not_asked_for_is_refused(client, register):
    document = seed(register)
    document["Vrvirksomhed"]["cvrNummer"] = int(OTHER)
    seed(register, OTHER)
    with pytest.raises(CvrError, match="not asked for") as failure:
        client.lookup_many([ACTIVE])
    assert OTHER not in str(failure.value)


def test_a_malformed_document_among_many_is_a_technical_error(client, register):
    seed(register)
    document = seed(register, OTHER)
    del document["Vrvirksomhed"]["virksomhedMetadata"]["nyesteNavn"]
    with pytest.raises(CvrError, match="nyesteNavn"):
        client.lookup_many([ACTIVE, OTHER])


def test_the_simulator_answers_terms_queries(register):
    seed(register)
    seed(register, OTHER)
    seed(register, OTHER)
    both = search(
        register,
        {
            "query": {"terms": {"Vrvirksomhed.cvrNummer": [int(ACTIVE), OTHER, int(MISSING)], "boost": 1.0}},
            "_source": ["Vrvirksomhed.cvrNummer"],
            "size": 10,
        },
    )
    assert both.status_code == 200 and both.json()["hits"]["total"] == 3
    numbers = [hit["_source"]["Vrvirksomhed"]["cvrNummer"] for hit in both.json()["hits"]["hits"]]
    assert numbers == [int(ACTIVE), int(OTHER), int(OTHER)]
    assert register.state.searches == [(ACTIVE, OTHER, MISSING)]
    assert register.state.requests == {ACTIVE: 1, OTHER: 1, MISSING: 1}
    single = search(register, {"query": {"terms": {"Vrvirksomhed.cvrNummer": int(ACTIVE)}}})
    assert single.status_code == 400 and single.json()["error"]["type"] == "parsing_exception"
    elsewhere = search(register, {"query": {"terms": {"Vrvirksomhed.virksomhedMetadata.nyesteNavn.navn": ["X"]}}})
    assert elsewhere.status_code == 400
    text = search(register, {"query": {"terms": {"Vrvirksomhed.cvrNummer": ["Vesterbro"]}}})
    assert text.status_code == 400
    window = search(register, {"query": {"terms": {"Vrvirksomhed.cvrNummer": [int(ACTIVE)]}}, "size": 10_001})
    assert window.status_code == 400 and "Result window is too large" in window.json()["error"]["reason"]
    at_the_limit = search(register, {"query": {"terms": {"Vrvirksomhed.cvrNummer": [int(ACTIVE)]}}, "size": 10_000})
    assert at_the_limit.status_code == 200 and len(at_the_limit.json()["hits"]["hits"]) == 1
