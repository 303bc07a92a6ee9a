"""The Kvantum connector against the Kvantum simulator, over real HTTP: reads, paging, creates, CSRF, faults."""

from collections.abc import Iterator
from datetime import date

import pytest
import requests

from devhost.simulators import kvantum as simulator
from devhost.simulators.kvantum import KvantumServer, KvantumState
from shared.connectors.kvantum import (
    KvantumClient,
    KvantumError,
    KvantumRefusalError,
    NewVendor,
    VendorBank,
    VendorCompanyCode,
    VendorGeneral,
    kvantum_client,
)
from shared.personal_data import contains_cpr
from shared.settings import get_settings

CVR = "12345674"  # modulus 11 holds for every CVR here
OTHER_CVR = "29403473"
NEW_CVR = "31415926"
P_NUMBER = "1003388211"
KVANTUM_SETTINGS = ("KVANTUM_BASE_URL", "KVANTUM_USERNAME", "KVANTUM_PASSWORD")


@pytest.fixture(scope="module")
def server() -> Iterator[KvantumServer]:
    """One simulator for the module: a server's shutdown waits out its half-second poll."""
    server = KvantumServer().start()
    yield server
    server.stop()


@pytest.fixture
def kvantum(server) -> KvantumServer:
    """The module's simulator with a fresh state: a late answer from the test before stays in the old one."""
    server.state = KvantumState()
    return server


@pytest.fixture
def waits() -> list[float]:
    """The waits the client asked for, instead of sleeping them."""
    return []


@pytest.fixture
def client(kvantum, waits) -> KvantumClient:
    """A client that records its waits."""
    return KvantumClient(kvantum.url, "devhost", "devhost-secret", timeout=2, sleep=waits.append)


@pytest.fixture
def impatient(kvantum, waits) -> KvantumClient:
    """A client that gives up after one second, for the simulator's two-second late answers."""
    return KvantumClient(kvantum.url, "devhost", "devhost-secret", timeout=1, sleep=waits.append)


def new_vendor(key: str = "RITM0010001", *, banks: list[VendorBank] | None = None, **general: str) -> NewVendor:
    """A Danish company as the automation would create it, with LFA1 fields changed by keyword."""
    fields = {
        "name": "Tømrer Hansen ApS",
        "street": "Vestergade 1",
        "postal_code": "1456",
        "city": "København K",
        "cvr": NEW_CVR,
        "vat_number": f"DK{NEW_CVR}",
        "account_group": "LEVD",
        "email": "bogholderi@hansen.example",
        **general,
    }
    company_code = {"company_code": "1000", "reconciliation_account": "29100000", "payment_terms": "NT30"}
    return NewVendor(
        request_key=key,
        general=VendorGeneral(**fields),
        company_codes=[VendorCompanyCode(**company_code, payment_methods="N")],
        banks=banks or [],
    )


def posts(kvantum: KvantumServer) -> list[int]:
    """The statuses the simulator answered POST /Vendors with, in order."""
    return [status for method, path, status in kvantum.state.answers if (method, path) == ("POST", "/Vendors")]


# --- reads ------------------------------------------------------------------------------------------------------


def test_find_by_cvr_returns_active_and_blocked_vendors(client, kvantum):
    active = kvantum.state.add_vendor(NAME1="Tømrer Hansen ApS", STCD1=CVR, PSTLZ="1456", ORT01="København K")
    blocked = kvantum.state.add_vendor(NAME1="Tømrer Hansen ApS", STCD1=CVR, SPERR="X", ZZPNR=P_NUMBER)
    kvantum.state.add_vendor(NAME1="Et andet firma A/S", STCD1=OTHER_CVR)
    found = {vendor.vendor_number: vendor for vendor in client.find_by_cvr(CVR)}
    assert set(found) == {active["LIFNR"], blocked["LIFNR"]}
    first, second = found[active["LIFNR"]], found[blocked["LIFNR"]]
    assert (first.blocked, second.blocked) == (False, True)
    assert (first.name, first.cvr, first.postal_code, first.city, first.country) == (
        "Tømrer Hansen ApS",
        CVR,
        "1456",
        "København K",
        "DK",
    )
    assert (first.account_group, first.p_number, first.vat_number) == ("LEVD", None, None)
    assert second.p_number == P_NUMBER
    assert first.vendor_number == "0000100001", "seeded vendors are numbered like SAP's, zero-padded to 10"
    assert client.find_by_cvr(NEW_CVR) == []


def test_find_by_cvr_and_p_number_narrows_to_the_production_unit(client, kvantum):
    kvantum.state.add_vendor(NAME1="Kæden A/S", STCD1=CVR, ZZPNR="1003388203")
    unit = kvantum.state.add_vendor(NAME1="Kæden A/S, Valby", STCD1=CVR, ZZPNR=P_NUMBER)
    found = client.find_by_cvr(CVR, p_number=P_NUMBER)
    assert [vendor.vendor_number for vendor in found] == [unit["LIFNR"]]
    assert len(client.find_by_cvr(CVR)) == 2


def test_find_by_name_matches_sap_search_term_after_normalising(client, kvantum):
    hansen = kvantum.state.add_vendor(NAME1="Tømrer  Hansen ApS", STCD1=CVR)
    kvantum.state.add_vendor(NAME1="Tømrer Hansen og Søn ApS", STCD1=OTHER_CVR)
    long = kvantum.state.add_vendor(NAME1="Københavns Tømrer- og Snedkerværksted A/S", STCD1=NEW_CVR)
    assert [v.vendor_number for v in client.find_by_name("  tømrer hansen   aps ")] == [hansen["LIFNR"]]
    # MCOD1 holds 25 characters: a name is matched on its first 25, as in SAP.
    assert [v.vendor_number for v in client.find_by_name("Københavns tømrer- og snedker")] == [long["LIFNR"]]
    assert client.find_by_name("Tømrer Jensen ApS") == []
    # The service compares the search term as given: only the client's normalising finds the vendor.
    raw = requests.get(
        f"{kvantum.service_url}/Vendors",
        params={"name": "tømrer hansen aps"},
        auth=("devhost", "devhost-secret"),
        timeout=5,
    )
    assert raw.status_code == 200 and raw.json()["d"]["results"] == []


def test_a_prefix_search_finds_the_name_under_any_company_form(client, kvantum):
    aps = kvantum.state.add_vendor(NAME1="Blomsterhuset ApS", STCD1=CVR)
    a_s = kvantum.state.add_vendor(NAME1="Blomsterhuset  A/S", STCD1=OTHER_CVR)
    kvantum.state.add_vendor(NAME1="Det Lille Blomsterhuset ApS", STCD1=NEW_CVR)
    found = client.find_by_name("blomsterhuset", prefix=True)
    assert [vendor.vendor_number for vendor in found] == [aps["LIFNR"], a_s["LIFNR"]]
    assert client.find_by_name("blomsterhuset") == [], "without prefix the whole search term must match"
    assert client.find_by_name("Blomster*huset aps") == [], "a name's own * is no wildcard"


def test_paging_follows_next_links_until_every_vendor_is_read(client, kvantum):
    seeded = [kvantum.state.add_vendor(NAME1="Kopi Leverandør ApS", STCD1=CVR)["LIFNR"] for _ in range(120)]
    kvantum.state.add_vendor(NAME1="Noget andet ApS", STCD1=CVR)
    found = client.find_by_name("kopi leverandør aps")
    assert [vendor.vendor_number for vendor in found] == seeded
    assert kvantum.state.count("GET", "/Vendors") == 3, "pages of 50, 50 and 20"
    assert len(client.find_by_cvr(CVR)) == 121


# --- create -----------------------------------------------------------------------------------------------------


def test_create_answers_201_and_the_vendor_is_then_found_by_cvr(client, kvantum):
    bank = VendorBank(bank_country="DK", bank_key="0040", account_number="0440116243", iban="DK5000400440116243")
    created = client.create(new_vendor(p_number=P_NUMBER, banks=[bank]))
    assert created.vendor_number == "0000200001"
    assert (created.name, created.cvr, created.p_number, created.blocked) == (
        "Tømrer Hansen ApS",
        NEW_CVR,
        P_NUMBER,
        False,
    )
    assert posts(kvantum) == [201]
    [stored] = kvantum.state.created()
    assert (stored["NAME1"], stored["STCD1"], stored["STCEG"], stored["ZZPNR"], stored["KTOKK"], stored["LAND1"]) == (
        "Tømrer Hansen ApS",
        NEW_CVR,
        f"DK{NEW_CVR}",
        P_NUMBER,
        "LEVD",
        "DK",
    )
    assert stored["SMTP_ADDR"] == "bogholderi@hansen.example" and stored["NAME2"] == ""
    assert stored["LFB1"] == [{"BUKRS": "1000", "AKONT": "29100000", "ZTERM": "NT30", "ZWELS": "N"}]
    assert stored["LFBK"] == [
        {"BANKS": "DK", "BANKL": "0040", "BANKN": "0440116243", "IBAN": "DK5000400440116243", "SWIFT": ""}
    ]
    assert [vendor.vendor_number for vendor in client.find_by_cvr(NEW_CVR)] == [created.vendor_number]


def test_the_csrf_token_is_fetched_on_the_first_create_and_reused(client, kvantum):
    client.find_by_cvr(CVR)
    assert kvantum.state.count("GET", "/") == 0, "reads need no token"
    client.create(new_vendor("RITM0010001"))
    client.create(new_vendor("RITM0010002", cvr=OTHER_CVR, vat_number=f"DK{OTHER_CVR}"))
    assert kvantum.state.count("GET", "/") == 1
    assert posts(kvantum) == [201, 201]


def test_the_simulator_refuses_a_post_without_csrf_token_and_session(kvantum):
    answer = requests.post(
        f"{kvantum.service_url}/Vendors",
        json=new_vendor().to_sap(),
        auth=("devhost", "devhost-secret"),
        headers={"X-CSRF-Token": "guessed"},
        timeout=5,
    )
    assert answer.status_code == 403 and answer.headers["X-CSRF-Token"] == "Required"
    assert answer.json() == {
        "error": {"code": "CSRF", "message": {"lang": "da", "value": "CSRF token validation failed"}}
    }
    assert kvantum.state.created() == []


def test_the_same_request_key_twice_gives_the_same_vendor_and_creates_one(client, kvantum):
    first = client.create(new_vendor("RITM0010001"))
    again = client.create(new_vendor("RITM0010001", name="Et andet navn ApS"))
    assert again.vendor_number == first.vendor_number and again.name == "Tømrer Hansen ApS"
    assert len(kvantum.state.created()) == 1
    assert posts(kvantum) == [201, 200]


REFUSALS = [
    pytest.param(({"name": ""}, "F2/014", "Navn 1 skal udfyldes"), id="name-empty"),
    pytest.param(({"name": "A" * 36}, "F2/014", "højst have 35 tegn"), id="name-too-long"),
    pytest.param(({"postal_code": "123"}, "AD/204", "Postnummer 123 er ugyldigt for land DK"), id="postal-code"),
    pytest.param(({"account_group": "KRED"}, "F2/027", "Kontogruppe KRED er ikke defineret"), id="account-group"),
    pytest.param(({"vat_number": "DK25052943"}, "F2/173", "Momsnummer DK25052943 findes allerede"), id="vat-taken"),
    pytest.param(({"company_code": ""}, "00/055", "Udfyld alle obligatoriske felter (LFB1-BUKRS)"), id="no-bukrs"),
    pytest.param(
        ({"reconciliation_account": ""}, "00/055", "Udfyld alle obligatoriske felter (LFB1-AKONT)"), id="no-akont"
    ),
    pytest.param(({"iban": "DK5000400440116244"}, "AR/191", "IBAN DK5000400440116244 er ugyldig"), id="iban-mod97"),
    pytest.param(({"iban": "DK50004004401162"}, "AR/191", "er ugyldig"), id="iban-length"),
]


@pytest.mark.parametrize("refusal", REFUSALS)
def test_kvantum_refusals_carry_the_sap_code_and_danish_text(client, kvantum, waits, refusal):
    change, code, text = refusal
    taken = kvantum.state.add_vendor(NAME1="Momsdublet ApS", STCD1="25052943", STCEG="DK25052943")
    general = {k: v for k, v in change.items() if k in VendorGeneral.model_fields}
    company_code = {"company_code": "1000", "reconciliation_account": "29100000"}
    company_code |= {k: v for k, v in change.items() if k in VendorCompanyCode.model_fields}
    banks = [VendorBank(bank_country="DK", iban=change["iban"])] if "iban" in change else []
    vendor = new_vendor(banks=banks, **general).model_copy(
        update={"company_codes": [VendorCompanyCode(**company_code)]}
    )
    with pytest.raises(KvantumRefusalError) as refused:
        client.create(vendor)
    assert refused.value.code == code
    assert text in refused.value.message
    assert kvantum.state.created() == [] and posts(kvantum) == [400] and waits == []
    assert not contains_cpr(str(refused.value))
    if code == "F2/173":  # SAP names the vendor in its padded ten-digit form; the message shows it unpadded
        shown = taken["LIFNR"].lstrip("0")
        assert taken["LIFNR"] not in refused.value.message and f"på kreditor {shown}" in refused.value.message


def test_refuse_next_refuses_one_create_with_the_given_message(client, kvantum):
    kvantum.state.refuse_next("Kreditoren er spærret for oprettelse i perioden", code="ZKV/012")
    with pytest.raises(KvantumRefusalError) as refused:
        client.create(new_vendor("RITM0010001"))
    assert (refused.value.code, refused.value.message) == ("ZKV/012", "Kreditoren er spærret for oprettelse i perioden")
    assert client.create(new_vendor("RITM0010001")).vendor_number == "0000200001", "only the next one is refused"


def test_a_malformed_request_is_a_technical_error_not_a_refusal(client, kvantum):
    # A field the service does not know: the Gateway framework refuses it, which is a fault of this program.
    answer = requests.Session()
    fetch = answer.get(
        f"{kvantum.service_url}/", auth=("devhost", "devhost-secret"), headers={"X-CSRF-Token": "Fetch"}, timeout=5
    )
    body = {**new_vendor().to_sap(), "LFA1": {**new_vendor().to_sap()["LFA1"], "NAME3": "x"}}
    refused = answer.post(
        f"{kvantum.service_url}/Vendors",
        json=body,
        auth=("devhost", "devhost-secret"),
        headers={"X-CSRF-Token": fetch.headers["X-CSRF-Token"]},
        timeout=5,
    )
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "/IWBEP/CM_MGW_RT/020"
    kvantum.state.refuse_next("Malformed payload", code="/IWBEP/CM_MGW_RT/004")
    with pytest.raises(KvantumError) as failed:
        client.create(new_vendor())
    assert failed.value.status == 400 and "/IWBEP/CM_MGW_RT/004" in str(failed.value)


# --- CSRF and faults --------------------------------------------------------------------------------------------


def test_an_expired_csrf_token_is_fetched_again_once_and_the_create_repeated(client, kvantum, waits):
    client.create(new_vendor("RITM0010001"))
    kvantum.state.expire_csrf()
    second = client.create(new_vendor("RITM0010002", cvr=OTHER_CVR, vat_number=f"DK{OTHER_CVR}"))
    assert second.vendor_number == "0000200002"
    assert kvantum.state.count("GET", "/") == 2, "one fetch at first, one after the session expired"
    assert posts(kvantum) == [201, 403, 201]
    assert len(kvantum.state.created()) == 2 and waits == []


def test_a_csrf_token_refused_also_after_a_fresh_fetch_is_reported(client, kvantum, monkeypatch, waits):
    monkeypatch.setattr(simulator._Handler, "_csrf_valid", lambda handler: False)  # every token is refused
    with pytest.raises(KvantumError) as failed:
        client.create(new_vendor())
    assert failed.value.status == 403 and "CSRF" in str(failed.value)
    assert kvantum.state.count("GET", "/") == 2 and posts(kvantum) == [403, 403], "one fetch and one repeat, no more"
    assert kvantum.state.created() == [] and waits == []


def test_503_on_a_read_is_retried_with_backoff(client, kvantum, waits):
    kvantum.state.add_vendor(NAME1="Tømrer Hansen ApS", STCD1=CVR)
    kvantum.state.inject("503", count=2)
    assert len(client.find_by_cvr(CVR)) == 1
    assert waits == [0.5, 1.0]
    assert kvantum.state.count("GET", "/Vendors") == 3


def test_a_read_that_times_out_is_retried(impatient, kvantum, waits):
    kvantum.state.add_vendor(NAME1="Tømrer Hansen ApS", STCD1=CVR)
    kvantum.state.inject("timeout", value=2)
    assert len(impatient.find_by_cvr(CVR)) == 1
    assert waits == [0.5] and kvantum.state.count("GET", "/Vendors") == 2


def test_503_on_a_create_is_reported_and_not_repeated(client, kvantum, waits):
    kvantum.state.inject("503", endpoint="create")
    with pytest.raises(KvantumError) as failed:
        client.create(new_vendor())
    assert failed.value.status == 503
    assert kvantum.state.count("POST", "/Vendors") == 1 and waits == []
    assert kvantum.state.created() == []


def test_a_create_whose_answer_is_lost_is_safe_to_repeat_with_the_same_key(impatient, kvantum, waits):
    kvantum.state.inject("timeout", value=2, endpoint="create")  # created, then answered after the client gave up
    with pytest.raises(KvantumError) as failed:
        impatient.create(new_vendor("RITM0010001"))
    assert failed.value.status is None and "ReadTimeout" in str(failed.value)
    assert kvantum.state.count("POST", "/Vendors") == 1 and waits == [], "a POST that may have landed is not repeated"
    [created] = kvantum.state.created()
    assert created["RequestKey"] == "RITM0010001"
    again = impatient.create(new_vendor("RITM0010001"))
    assert again.vendor_number == created["LIFNR"]
    assert len(kvantum.state.created()) == 1
    assert ("POST", "/Vendors", 200) in kvantum.state.answers


def test_429_on_a_create_waits_for_retry_after_and_succeeds(client, kvantum, waits):
    kvantum.state.inject("429", value=3, endpoint="create")
    created = client.create(new_vendor())
    assert created.vendor_number == "0000200001"
    assert waits == [3.0]
    assert posts(kvantum) == [429, 201] and len(kvantum.state.created()) == 1


def test_a_retry_after_longer_than_allowed_is_reported_at_once(client, kvantum, waits):
    kvantum.state.inject("429", value=120, endpoint="create")
    with pytest.raises(KvantumError) as failed:
        client.create(new_vendor())
    assert failed.value.status == 429 and waits == []
    assert kvantum.state.created() == []


def test_a_wrong_password_is_reported_after_one_attempt(kvantum, waits):
    wrong = KvantumClient(kvantum.url, "devhost", "wrong", sleep=waits.append)
    with pytest.raises(KvantumError) as failed:
        wrong.find_by_cvr(CVR)
    assert failed.value.status == 401
    assert kvantum.state.count("GET", "/Vendors") == 1, "no second failed logon towards SAP's user lock"
    with pytest.raises(KvantumError) as failed:
        wrong.create(new_vendor())
    assert failed.value.status == 401 and kvantum.state.count("POST", "/Vendors") == 0
    assert waits == []


# --- construction -----------------------------------------------------------------------------------------------


def test_an_empty_cvr_or_name_is_not_searched_for(client, kvantum):
    kvantum.state.add_vendor(NAME1="Foreign Supplier GmbH", LAND1="DE")  # no CVR: an empty STCD1
    with pytest.raises(ValueError, match="CVR"):
        client.find_by_cvr(" ")
    with pytest.raises(ValueError, match="name"):
        client.find_by_name("  ")
    assert kvantum.state.requests == []


def test_the_base_url_may_name_the_service_root_or_only_the_host(kvantum, waits):
    kvantum.state.add_vendor(NAME1="Tømrer Hansen ApS", STCD1=CVR)
    for base_url in (kvantum.url, f"{kvantum.url}/", kvantum.service_url):
        client = KvantumClient(base_url, "devhost", "devhost-secret", sleep=waits.append)
        assert client.base_url == kvantum.service_url
        assert len(client.find_by_cvr(CVR)) == 1


def test_the_factory_reads_settings(kvantum, monkeypatch):
    for name, value in kvantum.settings().items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    kvantum_client.cache_clear()
    try:
        client = kvantum_client()
        assert kvantum_client() is client, "one client per process"
        assert client.base_url == kvantum.service_url and kvantum.state.requests == []
        assert client.create(new_vendor()).vendor_number == "0000200001"
    finally:
        get_settings.cache_clear()
        kvantum_client.cache_clear()


def test_the_factory_names_missing_settings(monkeypatch):
    for name in KVANTUM_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    kvantum_client.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="KVANTUM_BASE_URL"):
            kvantum_client()
    finally:
        get_settings.cache_clear()
        kvantum_client.cache_clear()


# --- chart of accounts ------------------------------------------------------------------------------------------


def test_the_chart_of_accounts_holds_the_open_numbers_only(client, kvantum):
    kvantum.state.add_gl_account("22110000")
    kvantum.state.add_gl_account("22120000", open=False)
    kvantum.state.add_cost_center("1011020000")
    kvantum.state.add_cost_center("1011030000", open=False)
    kvantum.state.add_cost_center("1011040000", valid_to="20251231")  # expired
    kvantum.state.add_wbs_element("xk-0001.01")
    kvantum.state.add_wbs_element("XK-0002.01", open=False)
    chart = client.chart_of_accounts(today=date(2026, 3, 2))
    assert chart.gl_accounts == {"22110000"}
    assert chart.cost_centers == {"1011020000"}
    assert chart.wbs_elements == {"XK-0001.01"}
    assert client.chart_of_accounts(today=date(2025, 12, 31)).cost_centers == {"1011020000", "1011040000"}


def test_the_service_holds_keys_in_sap_internal_form_and_the_client_compares_without_zeros(client, kvantum):
    kvantum.state.add_gl_account("4711")
    answer = requests.get(f"{kvantum.service_url}/GLAccounts", auth=("devhost", "devhost-secret"), timeout=5)
    [record] = answer.json()["d"]["results"]
    assert (record["SAKNR"], record["XSPEB"]) == ("0000004711", "")
    assert record["__metadata"]["uri"].endswith("/GLAccounts('0000004711')")
    chart = client.chart_of_accounts()
    assert chart.gl_accounts == {"4711"}
    assert chart.refusal("0000004711") is None and chart.refusal(" 4711 ") is None


def test_refusal_names_the_first_closed_account_assignment(client, kvantum):
    kvantum.state.add_gl_account("22110000")
    kvantum.state.add_gl_account("22120000", open=False)
    kvantum.state.add_cost_center("1011020000")
    kvantum.state.add_cost_center("1011030000", open=False)
    kvantum.state.add_wbs_element("XK-0001.01")
    kvantum.state.add_wbs_element("XK-0002.01", open=False)
    chart = client.chart_of_accounts()
    assert chart.refusal("22110000", "1011020000", None) is None
    assert chart.refusal("22110000", "", "xk-0001.01") is None, "an empty cost centre is not checked"
    closed = [
        chart.refusal("22120000", "1011020000", None),
        chart.refusal("99999999", "1011020000", None),
        chart.refusal("22110000", "1011030000", None),
        chart.refusal("22110000", "1011099999", None),
        chart.refusal("22110000", None, "XK-0002.01"),
        chart.refusal("22110000", None, "XK-9999"),
    ]
    assert [code for code, _ in closed] == [
        "ARTSKONTO_LUKKET",
        "ARTSKONTO_LUKKET",
        "OMKOSTNINGSSTED_LUKKET",
        "OMKOSTNINGSSTED_LUKKET",
        "PSP_ELEMENT_LUKKET",
        "PSP_ELEMENT_LUKKET",
    ]
    assert closed[0][1] == "Artskontoen findes ikke eller er spærret for bogføring i Kvantum."
    assert all(not contains_cpr(text) for _, text in closed), "no ten-digit cost centre in the text"


def test_the_chart_of_accounts_is_read_across_every_page(client, kvantum):
    for number in range(120):
        kvantum.state.add_gl_account(str(40000000 + number), open=number % 10 != 0)
    for number in range(60):
        kvantum.state.add_cost_center(str(5000 + number))
    kvantum.state.add_wbs_element("XK-0001")
    chart = client.chart_of_accounts()
    assert len(chart.gl_accounts) == 108 and "40000001" in chart.gl_accounts and "40000010" not in chart.gl_accounts
    assert len(chart.cost_centers) == 60 and chart.wbs_elements == {"XK-0001"}
    assert kvantum.state.count("GET", "/GLAccounts") == 3, "pages of 50, 50 and 20"
    assert kvantum.state.count("GET", "/CostCenters") == 2 and kvantum.state.count("GET", "/WBSElements") == 1


def test_an_empty_chart_refuses_everything(client, kvantum):
    chart = client.chart_of_accounts()
    assert (chart.gl_accounts, chart.cost_centers, chart.wbs_elements) == (frozenset(), frozenset(), frozenset())
    assert chart.refusal("22110000", "1011020000") == (
        "ARTSKONTO_LUKKET",
        "Artskontoen findes ikke eller er spærret for bogføring i Kvantum.",
    )


def test_the_chart_of_accounts_needs_the_password_and_is_read_once_on_401(kvantum, waits):
    kvantum.state.add_gl_account("22110000")
    wrong = KvantumClient(kvantum.url, "devhost", "wrong", sleep=waits.append)
    with pytest.raises(KvantumError) as failed:
        wrong.chart_of_accounts()
    assert failed.value.status == 401 and kvantum.state.count("GET", "/GLAccounts") == 1 and waits == []
    answer = requests.get(f"{kvantum.service_url}/CostCenters", timeout=5)
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert answer.json()["error"]["code"] == "/IWFND/CM_CONSUMER/401"


def test_a_503_on_the_chart_is_retried_and_a_post_to_it_is_refused(client, kvantum, waits):
    kvantum.state.add_wbs_element("XK-0001")
    kvantum.state.inject("503")
    assert client.chart_of_accounts().wbs_elements == {"XK-0001"}
    assert waits == [0.5]
    answer = requests.post(f"{kvantum.service_url}/WBSElements", json={}, auth=("devhost", "devhost-secret"), timeout=5)
    assert answer.status_code == 405 and answer.json()["error"]["code"] == "/IWBEP/CM_MGW_RT/021"


def test_the_chart_is_seeded_through_control_endpoints_and_reset_forgets_it(kvantum, client):
    for path, body in [
        ("gl_accounts", {"number": "22110000"}),
        ("cost_centers", {"number": "1011020000", "open": False}),
        ("wbs_elements", {"code": "XK-0001"}),
    ]:
        assert requests.post(f"{kvantum.url}/_control/{path}", json=body, timeout=5).status_code == 201
    assert requests.post(f"{kvantum.url}/_control/wbs_elements", json={}, timeout=5).status_code == 400
    chart = client.chart_of_accounts()
    assert (chart.gl_accounts, chart.cost_centers, chart.wbs_elements) == ({"22110000"}, frozenset(), {"XK-0001"})
    kvantum.state.reset()
    assert client.chart_of_accounts().gl_accounts == frozenset()
