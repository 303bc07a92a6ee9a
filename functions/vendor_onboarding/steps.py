"""The new-supplier chain's work: validate a request, create the vendor, close the request.

Each function takes one `WorkItem` (the request's variables and what earlier steps added) and either returns
the data the next step needs, or raises `BusinessException` (to a person, with the reason in Danish), or lets
a technical error escape (retried, finally `TEKNISK_FEJL`).
"""

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from functions.vendor_onboarding import rules
from functions.vendor_onboarding.request import RequestError, SupplierType, VendorRequest, parse_request
from shared import ledger, storage
from shared.connectors.cvr import Company, CompanyStatus, CvrAmbiguousError, CvrNotFoundError, cvr_client
from shared.connectors.kvantum import (
    KvantumRefusalError,
    NewVendor,
    VendorBank,
    VendorCompanyCode,
    VendorGeneral,
    kvantum_client,
)
from shared.connectors.servicenow import servicenow
from shared.limiter import limited
from shared.pipeline import BusinessException, WorkItem
from shared.settings import get_settings

COPENHAGEN = ZoneInfo("Europe/Copenhagen")
CREATED_TABLE = storage.required_table("vendorscreated")  # the daily control list's source
ledger.DATED_TABLES.add(CREATED_TABLE)
REQUEST_TABLE = "sc_req_item"
OPEN, WORK_IN_PROGRESS, CLOSED_COMPLETE = "1", "2", "3"


def _refuse(refusal: rules.Refusal, checks: list[rules.Check]) -> BusinessException:
    evidence = "\n".join(check.line() for check in checks)
    return BusinessException(refusal.code, f"{refusal.text}\n\nKontroller:\n{evidence}" if evidence else refusal.text)


def validate(item: WorkItem) -> dict[str, Any]:
    """Checks a request; an active vendor with the same CVR answers it, anything doubtful goes to a person."""
    client = servicenow()
    state = str(client.get(REQUEST_TABLE, item.data["sys_id"], ["state"]).get("state"))
    if state not in (OPEN, WORK_IN_PROGRESS):  # withdrawn or closed since the intake read it
        raise BusinessException(
            "ANMODNING_LUKKET", "Anmodningen er lukket eller sat i bero i Serviceportalen; der er ikke oprettet noget."
        )
    client.patch(REQUEST_TABLE, item.data["sys_id"], {"state": WORK_IN_PROGRESS}, ["number"])
    try:
        request = parse_request(item.data)
    except RequestError as error:
        raise BusinessException(
            "MANGLENDE_FELT", f"Anmodningen mangler eller har ugyldige felter: {', '.join(error.fields)}."
        ) from None
    missing = rules.missing_fields(request)
    if missing:
        raise BusinessException("MANGLENDE_FELT", f"Anmodningen mangler: {', '.join(missing)}.")
    checks = rules.format_checks(request, item.rules)
    refusal = rules.first_refusal(checks) or rules.type_refusal(request, item.rules)
    if refusal:
        raise _refuse(refusal, checks)
    company = _registered_company(request, checks)
    checks.append(rules.name_check(request.name, company.name, item.rules["company_form_suffixes"]))
    if not checks[-1].passed and item.rules["name_mismatch"] == "handoff":
        raise _refuse(rules.Refusal("NAVN_AFVIGER", "Navnet stemmer ikke med CVR-registret."), checks)
    existing = _existing_vendor(request, company, item.rules, checks)
    return {
        **item.data,
        "checks": [check.line() for check in checks],
        "company": company.model_dump(mode="json"),
        "existing_vendor": existing,
    }


def _registered_company(request: VendorRequest, checks: list[rules.Check]) -> Company:
    """The company in the CVR register: found once, and active."""
    if request.cvr is None:  # missing_fields refuses this first; kept so the type checker knows
        raise BusinessException("MANGLENDE_FELT", "Anmodningen mangler: CVR-nummer.")
    try:
        with limited("cvr", get_settings().cvr_concurrency):
            company = cvr_client().lookup(request.cvr)
    except CvrNotFoundError:
        raise _refuse(rules.Refusal("CVR_FINDES_IKKE", "CVR-nummeret findes ikke i CVR-registret."), checks) from None
    except CvrAmbiguousError as error:
        text = f"CVR-registret gav {error.count} virksomheder for CVR-nummeret; det skal afklares manuelt."
        raise _refuse(rules.Refusal("CVR_TVETYDIGT", text), checks) from None
    if company.status is not CompanyStatus.ACTIVE:
        text = f"Virksomheden er ikke aktiv i CVR-registret (status: {company.status_text})."
        raise _refuse(rules.Refusal("CVR_IKKE_AKTIV", text), checks)
    checks.append(rules.Check("CVR-register", True, f"aktiv ({company.status_text}), {company.name}"))
    return company


def _existing_vendor(
    request: VendorRequest, company: Company, rule: dict[str, Any] | Any, checks: list[rules.Check]
) -> str:
    """The number of an active vendor with the same CVR (and P number); blocked or name-only matches refuse."""
    client = kvantum_client()
    suffixes = rule["company_form_suffixes"]
    with limited("kvantum", get_settings().kvantum_concurrency):
        same_cvr = client.find_by_cvr(company.cvr, request.p_number)
        same_name = [] if same_cvr else client.find_by_name(rules.name_stem(company.name, suffixes), prefix=True)
    blocked = [v for v in same_cvr if v.blocked]
    active = [v for v in same_cvr if not v.blocked]
    if active:
        number = rules.display_vendor_number(active[0].vendor_number)
        checks.append(rules.Check("Kvantum", True, f"findes allerede som kreditor {number}"))
        return number
    if blocked:
        numbers = ", ".join(rules.display_vendor_number(v.vendor_number) for v in blocked)
        text = f"Leverandøren findes i Kvantum, men er spærret (kreditor {numbers}); en person skal tage stilling."
        raise _refuse(rules.Refusal("LEVERANDOER_SPAERRET", text), checks)
    wanted = rules.normalised_name(company.name, suffixes)
    others = [v for v in same_name if v.cvr != company.cvr and rules.normalised_name(v.name, suffixes) == wanted]
    if others:
        numbers = ", ".join(f"{rules.display_vendor_number(v.vendor_number)} (CVR {v.cvr or 'ukendt'})" for v in others)
        text = f"Mulig dublet: Kvantum har kreditor med samme navn under et andet CVR-nummer: {numbers}."
        raise _refuse(rules.Refusal("MULIG_DUBLET", text), checks)
    checks.append(rules.Check("Kvantum", True, "ingen eksisterende kreditor med samme CVR eller navn"))
    return ""


def create(item: WorkItem) -> dict[str, Any] | None:
    """Creates the vendor in Kvantum, keyed by the request number (a repeat gets the same vendor back)."""
    if item.data["existing_vendor"]:
        return None
    request = parse_request(item.data)
    company = Company.model_validate(item.data["company"])
    vendor = new_vendor(request, company, item.rules)
    try:
        with limited("kvantum", get_settings().kvantum_concurrency):
            created = kvantum_client().create(vendor)
    except KvantumRefusalError as refusal:
        text = f"Kvantum afviste oprettelsen ({refusal.code}): {refusal.message}"
        raise BusinessException("KVANTUM_AFVIST", text) from None
    now = datetime.now(UTC)
    # Listed under the Danish date its run started, not the moment of writing: a create repeated after midnight
    # must not put the vendor on two days' lists.
    day = ledger.run_started_at(item.run_id).astimezone(COPENHAGEN).date()
    storage.table(CREATED_TABLE).upsert_entity(
        {
            "PartitionKey": day.isoformat(),
            "RowKey": request.number,
            "VendorNumber": rules.display_vendor_number(created.vendor_number),
            "Name": company.name,
            "Cvr": company.cvr,
            "RunId": item.run_id,
            "CreatedAt": now,
            "Requester": request.requester_email,
        }
    )
    return {**item.data, "vendor_number": rules.display_vendor_number(created.vendor_number)}


def new_vendor(request: VendorRequest, company: Company, rule: dict[str, Any] | Any) -> NewVendor:
    """The vendor as Kvantum takes it (LFA1/LFB1/LFBK), from the register's data, which wins over the form."""
    terms = request.payment_terms_days if request.payment_terms_days is not None else rule["default_payment_terms_days"]
    return NewVendor(
        request_key=request.number,
        general=VendorGeneral(
            name=company.name,
            name2=company.co_name or request.co_name,
            street=company.street,
            postal_code=company.postal_code,
            city=company.city,
            country=company.country,
            cvr=company.cvr,
            vat_number=request.vat_number,
            account_group=rule["account_groups"][request.supplier_type.value],
            p_number=request.p_number,
            email=str(request.payment_advice_email or request.requester_email),
        ),
        company_codes=[
            VendorCompanyCode(
                company_code=rule["company_code"],
                reconciliation_account=rule["reconciliation_account"],
                payment_terms=f"D{int(terms):03d}",
                payment_methods=rule["payment_methods"],
            )
        ],
        banks=[VendorBank(bank_country=request.bank_country or request.country, iban=request.iban, swift=request.bic)]
        if request.supplier_type is SupplierType.FOREIGN and request.iban
        else [],
    )


def close(item: WorkItem) -> None:
    """Writes the vendor number and the checks to the request, closes it, and owes the requester a receipt."""
    number = item.data.get("vendor_number") or item.data["existing_vendor"]
    existed = not item.data.get("vendor_number")
    name = item.data["company"]["name"]
    outcome = (
        f"Leverandøren findes allerede i Kvantum som kreditor {number}; der er ikke oprettet en ny."
        if existed
        else f"Leverandøren {name} er oprettet i Kvantum som kreditor {number}."
    )
    requester = str(parse_request(item.data).requester_email)  # the receipt's address, checked before closing
    servicenow().patch(
        REQUEST_TABLE,
        item.data["sys_id"],
        {
            "state": CLOSED_COMPLETE,
            "close_code": "Løst",
            "close_notes": outcome,
            "work_notes": outcome + "\n\nKontroller:\n" + "\n".join(item.data["checks"]),
            "u_kreditornummer": number,
        },
        ["number"],
    )
    item.notify(requester, item.rules["receipt_subject"], f"{item.data['number']}: {outcome}")
