"""The Opus Debitor connector against its simulator, over real HTTP: partners, open items, clearings, faults."""

from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest

from devhost.simulators.opus_debitor import OpusDebitorServer, OpusDebitorState
from shared.connectors.opus_debitor import (
    OpusDebitorClient,
    OpusDebitorError,
    OpusDebitorRefusalError,
    PayeeDebt,
    mask,
    opus_debitor_client,
)
from shared.personal_data import contains_cpr
from shared.settings import get_settings

# Synthetic CPR numbers of people born 1858-1870 (7th digit 5-8 with a year above 57): no living person has them.
CPR = "0101585123"
OTHER_CPR = "1502637012"
CVR = "12345674"
KEY_DATE = date(2026, 3, 1)
SETTINGS = ("OPUS_DEBITOR_BASE_URL", "OPUS_DEBITOR_USERNAME", "OPUS_DEBITOR_PASSWORD", "OPUS_DEBITOR_TIMEOUT_SECONDS")


@pytest.fixture(scope="module")
def server() -> Iterator[OpusDebitorServer]:
    """One simulator for the module: a server's shutdown waits out its half-second poll."""
    server = OpusDebitorServer().start()
    yield server
    server.stop()


@pytest.fixture
def opus(server) -> OpusDebitorServer:
    """The module's simulator with a fresh state: a late answer from the test before stays in the old one."""
    server.state = OpusDebitorState()
    return server


@pytest.fixture
def waits() -> list[float]:
    """The waits the client asked for, instead of sleeping them."""
    return []


@pytest.fixture
def client(opus, waits) -> OpusDebitorClient:
    """A client that records its waits."""
    return OpusDebitorClient(opus.url, "devhost", "devhost-secret", timeout=2, sleep=waits.append)


@pytest.fixture
def impatient(opus, waits) -> OpusDebitorClient:
    """A client that gives up after one second, for the simulator's two-second late answers."""
    return OpusDebitorClient(opus.url, "devhost", "devhost-secret", timeout=1, sleep=waits.append)


@pytest.fixture
def debtor(opus) -> tuple[str, list[str]]:
    """A citizen with two due items (100.00 and 250.50) and one not yet due."""
    gpart = opus.state.add_partner(CPR, "CPR")
    first = opus.state.add_item(gpart, "100.00", date(2026, 1, 15))
    second = opus.state.add_item(gpart, "250.50", date(2026, 2, 1))
    opus.state.add_item(gpart, "999.00", date(2026, 6, 1))
    return gpart, [first, second]


def posts(opus: OpusDebitorServer) -> list[int]:
    """The statuses the simulator answered POST /Clearings with, in order."""
    return [status for method, path, status in opus.state.answers if (method, path) == ("POST", "/Clearings")]


# --- reads ------------------------------------------------------------------------------------------------------


def test_a_partner_is_found_by_its_identification_and_type(client, opus):
    gpart = opus.state.add_partner(CPR, "CPR")
    company = opus.state.add_partner(CVR, "CVR")
    assert client.partner(CPR, "CPR") == gpart
    assert client.partner(f" {CVR} ", "cvr") == company
    assert client.partner(OTHER_CPR, "CPR") is None
    assert client.partner(CVR, "SE") is None, "the same digits under another id type are another identification"
    with pytest.raises(ValueError) as refused:
        client.partner(CPR, "UDENLANDSK")
    assert not contains_cpr(str(refused.value))


def test_open_due_items_stop_at_the_key_date_and_follow_next_over_pages(client, opus):
    opus.state.page_size = 2
    gpart = opus.state.add_partner(CPR, "CPR")
    due = [opus.state.add_item(gpart, f"{10 * n}.25", date(2026, 2, n)) for n in range(1, 6)]
    on_the_day = opus.state.add_item(gpart, "7.00", KEY_DATE)
    opus.state.add_item(gpart, "8.00", date(2026, 3, 2))  # due the day after the key date
    other = opus.state.add_partner(OTHER_CPR, "CPR")
    opus.state.add_item(other, "9.00", date(2026, 1, 1))
    items = client.open_due_items(gpart, KEY_DATE)
    assert [item.document_number for item in items] == [*due, on_the_day], "due on or before the key date"
    assert opus.state.count("GET", "/OpenItems") == 3, "pages of 2, 2 and 2"
    first = items[0]
    assert (first.amount, first.currency, first.due_date, first.partner) == (
        Decimal("10.25"),
        "DKK",
        date(2026, 2, 1),
        gpart,
    )
    assert (first.main_transaction, first.sub_transaction, first.with_collection_agency) == ("0100", "0020", False)
    assert len(first.document_number) == 12
    assert first.document_number not in repr(first) and gpart not in repr(first), "numbers stay out of logs"
    assert client.open_due_items(gpart, date(2025, 12, 31)) == []


def test_the_collection_flag_marks_items_with_the_collection_agency(client, opus):
    gpart = opus.state.add_partner(CPR, "CPR")
    plain = opus.state.add_item(gpart, "100.00", date(2026, 1, 1))
    collected = opus.state.add_item(gpart, "2500.00", date(2025, 6, 1), collection=True)
    flags = {item.document_number: item.with_collection_agency for item in client.open_due_items(gpart, KEY_DATE)}
    assert flags == {plain: False, collected: True}


# --- debts of many payees in batched reads ------------------------------------------------------------------------

THIRD_CPR = "2906705234"


def synthetic_cprs(count: int) -> list[str]:
    """Distinct CPR-shaped numbers of people born 1858-1899 (7th digit 5, no living person), for bulk tests."""
    return [f"{day:02d}{month:02d}{year:02d}5{serial:03d}" for day, month, year, serial in _days(count)]


def _days(count: int) -> list[tuple[int, int, int, int]]:
    """`count` (day, month, year, serial) combinations of valid dates in 1858-1899."""
    return [(1 + n % 28, 1 + (n // 28) % 12, 58 + (n // 336) % 42, n % 1000) for n in range(count)]


def test_debts_of_several_payees_come_from_two_requests(client, opus, waits):
    debtor = opus.state.add_partner(CPR, "CPR")
    first = opus.state.add_item(debtor, "100.00", date(2026, 1, 15))
    second = opus.state.add_item(debtor, "250.50", date(2026, 2, 1))
    opus.state.add_item(debtor, "999.00", date(2026, 6, 1))  # not yet due
    collected = opus.state.add_partner(OTHER_CPR, "CPR")
    opus.state.add_item(collected, "40.00", date(2025, 1, 1), collection=True)
    plain = opus.state.add_item(collected, "10.00", date(2026, 3, 1))  # due on the key date
    company = opus.state.add_partner(CVR, "CVR")
    opus.state.add_item(company, "5.00", date(2026, 4, 1))  # a partner with nothing due
    payees = [("CPR", CPR), ("cpr", OTHER_CPR), ("CVR", CVR), ("CPR", THIRD_CPR), ("SE", CVR), ("CPR", CPR)]
    debts = client.debts(payees, KEY_DATE)
    assert list(debts) == payees[:5], "keyed as given, each payee once"
    own = debts[("CPR", CPR)]
    assert own.partner == debtor and [item.document_number for item in own.items] == [first, second]
    assert own.open_due_total == Decimal("350.50") and not own.with_collection_agency
    other = debts[("cpr", OTHER_CPR)]
    assert other.partner == collected and other.open_due_total == Decimal("50.00") and other.with_collection_agency
    assert plain in {item.document_number for item in other.items}
    nothing_due = debts[("CVR", CVR)]
    assert nothing_due.partner == company and nothing_due.items == [] and nothing_due.open_due_total == 0
    for not_a_partner in (("CPR", THIRD_CPR), ("SE", CVR)):
        assert debts[not_a_partner] == PayeeDebt(partner=None, items=[])
        assert debts[not_a_partner].open_due_total == 0 and not debts[not_a_partner].with_collection_agency
    assert opus.state.count("GET", "/BusinessPartners") == 1 and opus.state.count("GET", "/OpenItems") == 1
    assert waits == []
    [(_, partners), (_, items)] = opus.state.filters
    assert partners.count("IDNUMBER eq") == 5 and items.count("GPART eq") == 3 and "FAEDN le '20260301'" in items


def test_debts_follow_next_over_pages_of_partners_and_items(client, opus):
    opus.state.page_size = 2
    people = [CPR, OTHER_CPR, THIRD_CPR]
    partners = [opus.state.add_partner(person, "CPR") for person in people]
    for n, partner in enumerate(partners, start=1):
        for day in range(1, 4):
            opus.state.add_item(partner, f"{n}.{day:02d}", date(2026, 1, day))
    debts = client.debts([("CPR", person) for person in people], KEY_DATE)
    assert [len(debts[("CPR", person)].items) for person in people] == [3, 3, 3]
    assert debts[("CPR", OTHER_CPR)].open_due_total == Decimal("6.06")
    assert opus.state.count("GET", "/BusinessPartners") == 2, "3 partners in pages of 2"
    assert opus.state.count("GET", "/OpenItems") == 5, "9 items in pages of 2"


def test_more_than_fifty_payees_take_several_batches(client, opus):
    people = synthetic_cprs(120)
    assert len(set(people)) == 120
    for person in people[::10]:
        opus.state.add_item(opus.state.add_partner(person, "CPR"), "12.00", date(2026, 1, 1))
    debts = client.debts([("CPR", person) for person in people], KEY_DATE)
    assert opus.state.count("GET", "/BusinessPartners") == 3 and opus.state.count("GET", "/OpenItems") == 3
    assert [text.count("IDNUMBER eq") for path, text in opus.state.filters if path == "/BusinessPartners"] == [
        50,
        50,
        20,
    ]
    owing = {person for (_, person), debt in debts.items() if debt.open_due_total == Decimal("12.00")}
    assert owing == set(people[::10])
    assert all(debts[("CPR", person)].partner is None for person in set(people) - owing)


def test_a_batch_without_partners_reads_no_items(client, opus):
    debts = client.debts([("CPR", CPR), ("P", "1234567890")], KEY_DATE)
    assert all(debt.partner is None for debt in debts.values())
    assert opus.state.count("GET", "/BusinessPartners") == 1 and opus.state.count("GET", "/OpenItems") == 0
    assert client.debts([], KEY_DATE) == {} and opus.state.count("GET", "/BusinessPartners") == 1


def test_503_on_a_batched_read_is_retried(client, opus, debtor, waits):
    gpart, _ = debtor
    opus.state.inject("503", count=2)
    debts = client.debts([("CPR", CPR)], KEY_DATE)
    assert debts[("CPR", CPR)].partner == gpart and debts[("CPR", CPR)].open_due_total == Decimal("350.50")
    assert waits == [0.5, 1.0] and opus.state.count("GET", "/BusinessPartners") == 3


def test_a_lasting_fault_fails_the_call_without_personal_data(client, opus, debtor, waits):
    opus.state.inject("503", count=5, message=f"Fejl for {CPR}")
    with pytest.raises(OpusDebitorError) as failed:
        client.debts([("CPR", CPR), ("CPR", OTHER_CPR)], KEY_DATE)
    assert failed.value.status == 503 and len(waits) == 4
    assert CPR not in str(failed.value) and not contains_cpr(str(failed.value))


def test_payees_are_checked_before_any_request_and_never_echoed(client, opus):
    for payees in (
        [("CPR", CPR), ("UDENLANDSK", OTHER_CPR)],
        [("CPR", CPR), ("CPR", f"{OTHER_CPR[:6]}-{OTHER_CPR[6:]}")],
        [("CPR", CPR), ("CPR", "12' or '1' eq '1")],
        [("CPR", CPR), (OTHER_CPR,)],
    ):
        with pytest.raises(ValueError) as refused:
            client.debts(payees, KEY_DATE)
        assert not contains_cpr(str(refused.value)) and OTHER_CPR[:6] not in str(refused.value)
    assert opus.state.requests == []


def test_an_answer_that_ignores_the_filter_is_refused(client, opus, debtor, monkeypatch):
    gpart, _ = debtor
    stranger = opus.state.add_partner(OTHER_CPR, "CPR")
    opus.state.add_item(stranger, "10.00", date(2026, 1, 1))
    everything = opus.state.open_items_matching
    monkeypatch.setattr(opus.state, "open_items_matching", lambda matches: everything(lambda entity: True))
    with pytest.raises(OpusDebitorError, match="does not match the filter") as failed:
        client.debts([("CPR", CPR)], KEY_DATE)
    assert not contains_cpr(str(failed.value)) and gpart not in str(failed.value)
    everyone = opus.state.identifications
    monkeypatch.setattr(opus.state, "identifications", lambda matches: everyone(lambda entity: True))
    with pytest.raises(OpusDebitorError, match="not one of the identifications"):
        client.debts([("CPR", CPR)], KEY_DATE)


def test_the_simulator_reads_odata_filters(client, opus, debtor):
    gpart, (first, second) = debtor
    filtered = client._results("/OpenItems", [("$filter", f"GPART eq '{gpart}' and (FAEDN lt '20260201')")])
    assert [record["OPBEL"] for record in filtered] == [first]
    ne = client._results("/OpenItems", [("$filter", f"GPART eq '{gpart}' and FAEDN ge '20260201' and INKGS ne 'X'")])
    assert len(ne) == 2 and second in {record["OPBEL"] for record in ne}
    quoted = client._results("/BusinessPartners", [("$filter", "IDNUMBER eq 'O''Brien' or TYPE eq 'CPR'")])
    assert [(record["GPART"], record["TYPE"], record["IDNUMBER"]) for record in quoted] == [(gpart, "CPR", CPR)]
    for bad in ("BETRH gt '1'", "GPART eq", "GPART like 'x'", "(GPART eq 'x'", "GPART eq 'x' xor", "GPART eq 5"):
        with pytest.raises(OpusDebitorError) as refused:
            client._results("/OpenItems", [("$filter", bad)])
        assert refused.value.status == 400 and "/IWBEP/CM_MGW_RT/022" in str(refused.value)


def test_a_payee_debt_needs_a_partner_for_items(client, opus, debtor):
    [item, *_] = client.open_due_items(debtor[0], KEY_DATE)
    with pytest.raises(ValueError, match="items without a business partner"):
        PayeeDebt(partner=None, items=[item])
    assert debtor[0] not in repr(PayeeDebt(partner=debtor[0], items=[item]))


# --- clearing ---------------------------------------------------------------------------------------------------


def test_a_clearing_reduces_the_items_in_the_order_given(client, opus, debtor):
    gpart, (first, second) = debtor
    clearing = client.clear("KRAV-0001", gpart, Decimal("150.00"), [first, second])
    assert (clearing.claim_key, clearing.partner, clearing.amount, clearing.repeated) == (
        "KRAV-0001",
        gpart,
        Decimal("150.00"),
        False,
    )
    assert len(clearing.clearing_document) == 12
    assert [(i.document_number, i.amount, i.remaining) for i in clearing.items] == [
        (first, Decimal("100.00"), Decimal("0.00")),
        (second, Decimal("50.00"), Decimal("200.50")),
    ]
    assert opus.state.open_amount(first) == 0 and opus.state.open_amount(second) == Decimal("200.50")
    remaining = client.open_due_items(gpart, KEY_DATE)
    assert [(item.document_number, item.amount) for item in remaining] == [(second, Decimal("200.50"))]
    assert posts(opus) == [201]


def test_the_same_claim_key_twice_books_one_clearing(client, opus, debtor):
    gpart, (first, second) = debtor
    booked = client.clear("KRAV-0001", gpart, Decimal("100.00"), [first])
    again = client.clear("KRAV-0001", gpart, Decimal("250.50"), [second])
    assert again.repeated and again.clearing_document == booked.clearing_document
    assert again.amount == Decimal("100.00") and again.items == booked.items, "the first clearing, unchanged"
    assert len(opus.state.clearings()) == 1 and opus.state.open_amount(second) == Decimal("250.50")
    assert posts(opus) == [201, 200]


@pytest.mark.parametrize(
    "refusal",
    [
        pytest.param(
            ("350.51", "both", "ZOPUS/006", "Beløbet 350,51 overstiger posternes åbne beløb 350,50"), id="high"
        ),
        pytest.param(("10.00", "collection", "ZOPUS/005", "Post nr. 2 er overdraget til inddrivelse"), id="collection"),
        pytest.param(("10.00", "cleared", "ZOPUS/004", "Post nr. 1 er allerede udlignet"), id="cleared"),
        pytest.param(("10.00", "foreign", "ZOPUS/003", "Post nr. 1 findes ikke"), id="not-the-partners"),
    ],
)
def test_refusals_carry_the_sap_code_and_name_no_numbers(client, opus, debtor, waits, refusal):
    amount, which, code, text = refusal
    gpart, (first, second) = debtor
    collected = opus.state.add_item(gpart, "40.00", date(2025, 1, 1), collection=True)
    other = opus.state.add_partner(OTHER_CPR, "CPR")
    foreign = opus.state.add_item(other, "10.00", date(2026, 1, 1))
    if which == "cleared":
        client.clear("KRAV-0000", gpart, Decimal("100.00"), [first])
    items = {"both": [first, second], "collection": [first, collected], "cleared": [first], "foreign": [foreign]}
    before = opus.state.clearings()
    with pytest.raises(OpusDebitorRefusalError) as refused:
        client.clear("KRAV-0001", gpart, Decimal(amount), items[which])
    assert refused.value.code == code and text in refused.value.message
    assert opus.state.clearings() == before and opus.state.open_amount(second) == Decimal("250.50")
    assert waits == [] and posts(opus)[-1] == 400
    for number in (first, second, collected, foreign, gpart, CPR):
        assert number not in str(refused.value)
    assert not contains_cpr(str(refused.value))


def test_the_claim_is_checked_before_it_is_sent(client, opus, debtor):
    gpart, (first, _) = debtor
    for amount in (Decimal("0.00"), Decimal("-5.00"), Decimal("1.005")):
        with pytest.raises(ValueError, match="amount"):
            client.clear("KRAV-0001", gpart, amount, [first])
    with pytest.raises(ValueError, match="item"):
        client.clear("KRAV-0001", gpart, Decimal("1.00"), [])
    assert opus.state.requests == []


# --- CSRF, faults and credentials -------------------------------------------------------------------------------


def test_an_expired_csrf_token_is_fetched_again_once(client, opus, debtor, waits):
    gpart, (first, second) = debtor
    client.clear("KRAV-0001", gpart, Decimal("10.00"), [first])
    opus.state.expire_csrf()
    client.clear("KRAV-0002", gpart, Decimal("10.00"), [second])
    assert opus.state.count("GET", "/") == 2, "one fetch at first, one after the session expired"
    assert posts(opus) == [201, 403, 201] and len(opus.state.clearings()) == 2 and waits == []


def test_503_on_a_read_is_retried_with_backoff(client, opus, debtor, waits):
    gpart, _ = debtor
    opus.state.inject("503", count=2)
    assert client.partner(CPR, "CPR") == gpart
    assert waits == [0.5, 1.0] and opus.state.count("GET", "/BusinessPartners") == 3


def test_503_on_a_clearing_is_reported_and_not_repeated(client, opus, debtor, waits):
    gpart, (first, _) = debtor
    opus.state.inject("503", endpoint="clearing")
    with pytest.raises(OpusDebitorError) as failed:
        client.clear("KRAV-0001", gpart, Decimal("10.00"), [first])
    assert failed.value.status == 503 and posts(opus) == [503] and waits == []
    assert opus.state.clearings() == []


def test_a_clearing_whose_answer_is_lost_is_safe_to_repeat_with_the_same_claim_key(impatient, opus, debtor, waits):
    gpart, (first, _) = debtor
    opus.state.inject("timeout", value=2, endpoint="clearing")  # booked, then answered after the client gave up
    with pytest.raises(OpusDebitorError) as failed:
        impatient.clear("KRAV-0001", gpart, Decimal("60.00"), [first])
    assert failed.value.status is None and "ReadTimeout" in str(failed.value)
    assert opus.state.count("POST", "/Clearings") == 1 and waits == [], "a POST that may have landed is not repeated"
    [booked] = opus.state.clearings()
    assert booked["ClaimKey"] == "KRAV-0001" and opus.state.open_amount(first) == Decimal("40.00")
    again = impatient.clear("KRAV-0001", gpart, Decimal("60.00"), [first])
    assert again.repeated and again.clearing_document == booked["AUGBL"]
    assert len(opus.state.clearings()) == 1 and opus.state.open_amount(first) == Decimal("40.00")


def test_a_wrong_password_is_reported_after_one_attempt(opus, debtor, waits):
    gpart, (first, _) = debtor
    wrong = OpusDebitorClient(opus.url, "devhost", "wrong", sleep=waits.append)
    with pytest.raises(OpusDebitorError) as failed:
        wrong.partner(CPR, "CPR")
    assert failed.value.status == 401 and opus.state.count("GET", "/BusinessPartners") == 1
    with pytest.raises(OpusDebitorError) as failed:
        wrong.clear("KRAV-0001", gpart, Decimal("10.00"), [first])
    assert failed.value.status == 401 and opus.state.count("POST", "/Clearings") == 0
    assert waits == [] and opus.state.clearings() == []


# --- construction -----------------------------------------------------------------------------------------------


def test_masking_hides_cpr_numbers_and_document_numbers():
    assert mask(f"bilag 410000000001 for {CPR}, beløb 123.45") == "bilag [BILAG] for [CPR], beløb 123.45"


def test_the_base_url_may_name_the_service_root_or_only_the_host(opus, debtor, waits):
    for base_url in (opus.url, f"{opus.url}/", opus.service_url):
        client = OpusDebitorClient(base_url, "devhost", "devhost-secret", sleep=waits.append)
        assert client.base_url == opus.service_url
        assert client.partner(CPR, "CPR") == debtor[0]


def test_the_factory_reads_the_environment(opus, debtor, monkeypatch):
    assert set(opus.settings()) == set(SETTINGS)
    for name, value in opus.settings().items():
        monkeypatch.setenv(name, value)
    _forget_settings()
    try:
        client = opus_debitor_client()
        assert opus_debitor_client() is client, "one client per process"
        assert client.base_url == opus.service_url and client.timeout == 30.0
        assert client.partner(CPR, "CPR") == debtor[0]
    finally:
        monkeypatch.undo()
        _forget_settings()


def test_the_factory_names_missing_settings(monkeypatch):
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    _forget_settings()
    try:
        with pytest.raises(RuntimeError, match="OPUS_DEBITOR_BASE_URL"):
            opus_debitor_client()
    finally:
        monkeypatch.undo()
        _forget_settings()


def _forget_settings() -> None:
    """The client and the settings it was built from are cached per process: read the environment again."""
    get_settings.cache_clear()
    opus_debitor_client.cache_clear()
