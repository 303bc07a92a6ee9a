"""The work of the claim payout chain's queue steps, a chunk at a time: validate, decide, post, returned.

Each step looks up what it needs for the whole chunk at once (the CVR register, Kvantum's chart of accounts,
Opus Debitor, the payout index), then decides claim by claim with the pure rules. A look-up that fails fails
the claims that needed it (retried one by one with backoff); a rule that says no sends the claim to a person
with the reason, and tells the requester.
"""

import contextlib
import itertools
import time as clock
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from azure.core.exceptions import ResourceExistsError

from functions.claim_payouts import payout_index, posting
from functions.claim_payouts.calendar import COPENHAGEN, payment_date
from functions.claim_payouts.rules import (
    Claim,
    ClaimRefusalError,
    PayeeType,
    check_claim,
    payment_channel,
)
from shared import ledger, limiter, storage
from shared.connectors.cvr import CvrAmbiguousError, CvrNotFoundError, cvr_client
from shared.connectors.kvantum import ChartOfAccounts, kvantum_client
from shared.connectors.opus_debitor import OpusDebitorRefusalError, opus_debitor_client
from shared.events import Event, emit
from shared.limiter import limited
from shared.logs import get_logger
from shared.personal_data import redact
from shared.pipeline import WORK_CONTAINER, BusinessException, ItemResult, WorkItem
from shared.settings import get_settings
from shared.spreadsheet import danish_amount

AUTOMATION = "claim_payouts"
OUTBOX = storage.required_container("kvantum-outbox")
#: Documents per posting file: a chunk's claims go out as one file (the chunk size is at most 2,000).
DOCUMENTS_PER_FILE = 2000
#: How long a delivery holds a posting file's staged copy while it claims the items and writes the file.
STAGING_LEASE_SECONDS = 15
FILE_PREFIX = "KSKRAV"
_log = get_logger("ks.claim_payouts")


def _refused(item: WorkItem, code: str, text: str) -> BusinessException:
    """A claim for a person: the requester is told why (when the row names a usable address)."""
    claim_id = item.data.get("krav_id", "")
    requester = item.data.get("anmoder_email", "")
    if "@" in requester:
        item.notify(
            requester,
            str(item.rules["handoff_subject"]),
            f"Krav {claim_id} er sendt til manuel behandling: {text}",
        )
    return BusinessException(code, text)


def _today(run_id: str) -> date:
    """The Danish date of the run: the day the payee's daily total counts on."""
    return ledger.run_started_at(run_id).astimezone(COPENHAGEN).date()


def claim_of(item: WorkItem) -> Claim:
    """The claim validate left in the item's data."""
    return Claim.model_validate(item.data["claim"])


# --- validate -----------------------------------------------------------------------------------------------


def validate(items: Sequence[WorkItem]) -> dict[str, ItemResult]:
    """Queue step validate: the claim checks, the CVR register, the chart of accounts, then the payout index."""
    results: dict[str, ItemResult] = {}
    checked: list[tuple[WorkItem, Claim]] = []
    for item in items:
        try:
            checked.append((item, check_claim(item.data, item.rules, _today(item.run_id))))
        except ClaimRefusalError as refusal:
            results[item.item_id] = _refused(item, refusal.code, refusal.text)
    registered = _lookup(checked, _companies, lambda claim: claim.payee_type is PayeeType.CVR, results)
    chart = _lookup(checked, lambda _: chart_of_accounts(), lambda claim: True, results)
    passed: list[tuple[WorkItem, Claim]] = []
    for item, claim in checked:
        if item.item_id in results:
            continue
        refusal = _register_refusal(registered.get(claim.payee_id)) if claim.payee_type is PayeeType.CVR else None
        refusal = refusal or chart.refusal(claim.gl_account, claim.cost_center or None, claim.wbs_element or None)
        if refusal:
            results[item.item_id] = _refused(item, *refusal)
        else:
            passed.append((item, claim))
    _reserve(passed, results)
    return results


def _lookup(
    checked: Sequence[tuple[WorkItem, Claim]],
    fetch: Callable[[Sequence[Claim]], Any],
    needs: Callable[[Claim], bool],
    results: dict[str, ItemResult],
) -> Any:
    """One batched look-up for the claims that need it; when it fails, those claims fail with it (retried)."""
    wanting = [(item, claim) for item, claim in checked if item.item_id not in results and needs(claim)]
    if not wanting:
        return {}
    try:
        return fetch([claim for _, claim in wanting])
    except Exception as error:
        _log.warning("a look-up for %d claims failed: %s", len(wanting), error, exc_info=True)
        for item, _ in wanting:
            results[item.item_id] = error
        return {}


def _companies(claims: Sequence[Claim]) -> Mapping[str, Any]:
    """The CVR register's answer for every company payee of the chunk (one search)."""
    with limited("cvr", get_settings().cvr_concurrency):
        return cvr_client().lookup_many({claim.payee_id for claim in claims})


def _register_refusal(found: Any) -> tuple[str, str] | None:
    """Why the register says a company may not be paid automatically, or None."""
    if isinstance(found, CvrNotFoundError) or found is None:
        return "VIRKSOMHED_UKENDT", "CVR-nummeret findes ikke i CVR-registret."
    if isinstance(found, CvrAmbiguousError):
        return "VIRKSOMHED_TVETYDIG", "CVR-registret har flere virksomheder med dette CVR-nummer."
    if not found.active:
        return "VIRKSOMHED_IKKE_AKTIV", f"Virksomheden er ikke aktiv i CVR (status: {found.status})."
    return None


_chart: tuple[float, ChartOfAccounts] | None = None


def chart_of_accounts() -> ChartOfAccounts:
    """Kvantum's open GL accounts, cost centres and WBS elements, read again after the cache time."""
    global _chart  # noqa: PLW0603 - one copy per instance, like a client's connection pool
    ttl = get_settings().chart_of_accounts_cache_seconds
    if _chart is None or clock.monotonic() - _chart[0] > ttl:
        with limited("kvantum", get_settings().kvantum_concurrency):
            _chart = (clock.monotonic(), kvantum_client().chart_of_accounts())
    return _chart[1]


def _reserve(passed: Sequence[tuple[WorkItem, Claim]], results: dict[str, ItemResult]) -> None:
    """Decides the claims against the payout index, shard by shard (one shard per chunk from the intake)."""
    by_shard: dict[int, list[tuple[WorkItem, Claim, payout_index.Entry]]] = {}
    for item, claim in passed:
        entry = payout_index.Entry(
            key=f"{item.run_id}/{item.item_id}",
            payee=item.data["payee"],
            day=_today(item.run_id),
            amount=claim.amount,
            reference=payout_index.fingerprint(claim.reference),
            claim=payout_index.fingerprint(claim.claim_id),
        )
        by_shard.setdefault(payout_index.shard_of(entry.payee), []).append((item, claim, entry))
    for shard, members in by_shard.items():
        rules = members[0][0].rules
        try:
            refusals = payout_index.reserve(
                shard,
                [entry for _, _, entry in members],
                Decimal(rules["auto_payout_limit"]),
                int(rules["duplicate_window_days"]),
            )
        except Exception as error:
            for item, _, _ in members:
                results[item.item_id] = error
            continue
        for item, claim, entry in members:
            refusal = refusals.get(entry.key)
            if refusal:
                results[item.item_id] = _refused(item, refusal.code, refusal.text)
            else:
                results[item.item_id] = {**item.data, "claim": claim.model_dump(mode="json")}


# --- decide -------------------------------------------------------------------------------------------------


def decide(items: Sequence[WorkItem]) -> dict[str, ItemResult]:
    """Queue step decide: payment channel, then the payee's open, due debt in Opus Debitor: offset or a person."""
    results: dict[str, ItemResult] = {}
    payable: list[tuple[WorkItem, Claim]] = []
    for item in items:
        claim = claim_of(item)
        try:
            payment_channel(claim)
        except ClaimRefusalError as refusal:
            results[item.item_id] = _refused(item, refusal.code, refusal.text)
            continue
        payable.append((item, claim))
    if not payable:
        return results
    debts = _lookup(payable, _debts, lambda claim: True, results)
    for item, claim in payable:
        if item.item_id in results:  # the look-up failed: retried
            continue
        try:
            results[item.item_id] = _offset(item, claim, debts[_payee_key(claim)])
        except BusinessException as refusal:
            results[item.item_id] = refusal
        except Exception as error:
            _log.warning("offsetting failed: %s", error, exc_info=True)
            results[item.item_id] = error
    return results


def _debts(claims: Sequence[Claim]) -> Mapping[tuple[str, str], Any]:
    """Opus Debitor's open, due items of every payee of the chunk (a few batched reads)."""
    today = datetime.now(UTC).astimezone(COPENHAGEN).date()
    with limited("opus_debitor", get_settings().opus_debitor_concurrency):
        return opus_debitor_client().debts({_payee_key(claim) for claim in claims}, today)


def _payee_key(claim: Claim) -> tuple[str, str]:
    return claim.payee_type.value, claim.payee_id


def _offset(item: WorkItem, claim: Claim, debt: Any) -> dict[str, Any]:
    """The claim's payout after offsetting the payee's open, due debt, or the reason a person must decide."""
    data = {**item.data, "offset": "0.00", "payout": str(claim.amount), "clearing": ""}
    if debt.with_collection_agency:
        raise _refused(
            item, "GAELD_HOS_INDDRIVELSE", "Modtageren har gæld under inddrivelse; modregning afgøres manuelt."
        )
    owed = debt.open_due_total
    if owed <= 0:
        return data
    claim_type = item.rules["claim_types"].get(claim.gl_account, "")
    if claim_type not in item.rules["offset_automatically"]:
        raise _refused(
            item,
            "GAELD_TIL_MODREGNING",
            f"Modtageren har forfalden gæld til kommunen ({danish_amount(owed)} kr.); "
            "kravtypen modregnes ikke automatisk.",
        )
    offset = min(owed, claim.amount)
    by_due = sorted(debt.items, key=lambda open_item: (open_item.due_date, open_item.document_number))
    try:
        with limited("opus_debitor", get_settings().opus_debitor_concurrency):  # the reads' limit holds for writes
            clearing = opus_debitor_client().clear(
                claim.claim_id, str(debt.partner), offset, [open_item.document_number for open_item in by_due]
            )
    except OpusDebitorRefusalError as refusal:
        raise _refused(item, "MODREGNING_AFVIST", f"Opus Debitor afviste modregningen: {refusal}") from None
    return {**data, "offset": str(offset), "payout": str(claim.amount - offset), "clearing": clearing.clearing_document}


# --- post ---------------------------------------------------------------------------------------------------


class PostingBusyError(RuntimeError):
    """Another delivery is writing a posting file these items are claimed for: try again later."""


def post(items: Sequence[WorkItem]) -> dict[str, ItemResult]:
    """Queue step post: the chunk's documents in a posting file, its items claimed in the ledger before it is
    written and written only if absent; the items then wait for Kvantum's response."""
    results: dict[str, ItemResult] = {}
    posted_files = {str(item.row["PostingFile"]) for item in items if item.row.get("PostingFile")}
    for name in sorted(posted_files):  # claimed by an earlier delivery: make sure the file went out whole
        _ensure_published(items[0].run_id, items[0].bucket, name, {item.item_id for item in items})
    fresh: list[tuple[WorkItem, posting.PostingDocument, dict[str, str]]] = []
    references: set[str] = set()
    now = datetime.now(UTC)
    for item in items:
        if item.row.get("PostingFile"):
            results[item.item_id] = None
            continue
        claim = claim_of(item)
        if claim.claim_id in references:
            results[item.item_id] = _refused(
                item, "DUBLET_KRAV_ID", "Samme krav_id står flere gange i filen; kun det første udbetales."
            )
            continue
        try:
            document, columns = _document(item, claim, now)
        except ValueError as error:  # a claim the posting model refuses (it checks what Kvantum would)
            results[item.item_id] = _refused(item, "POSTERING_UGYLDIG", f"Posteringen kan ikke dannes: {error}")
            continue
        references.add(claim.claim_id)
        fresh.append((item, document, columns))
    for start in range(0, len(fresh), DOCUMENTS_PER_FILE):
        group = fresh[start : start + DOCUMENTS_PER_FILE]
        _post_file(group, now)
        results |= dict.fromkeys((item.item_id for item, _, _ in group))
    return results


def _document(item: WorkItem, claim: Claim, now: datetime) -> tuple[posting.PostingDocument, dict[str, str]]:
    """The claim's posting document (expense debit; payout and offset credits) and the item's ledger columns."""
    rules = item.rules
    offset, payout = Decimal(item.data["offset"]), Decimal(item.data["payout"])
    posted_on = now.astimezone(COPENHAGEN).date()
    hour, minute = (int(part) for part in str(rules["payment_cutoff_local"]).split(":"))
    paid_on = payment_date(now, time(hour, minute), int(rules["payment_lead_banking_days"]))
    text = claim.posting_text or f"Krav {claim.claim_id}"
    lines = [
        posting.PostingLine(
            debit_credit="D",
            amount=claim.amount,
            value_date=posted_on,
            item_text=text,
            gl_account=claim.gl_account,
            cost_center=claim.cost_center or None,
            wbs_element=claim.wbs_element or None,
        )
    ]
    if payout > 0:
        payout_text = f"Udbetalt efter modregning af {danish_amount(offset)} kr." if offset else text
        lines.append(
            posting.PostingLine(
                debit_credit="K",
                amount=payout,
                value_date=paid_on,
                item_text=payout_text[: posting.ITEM_TEXT_LENGTH],
                gl_account=str(rules["payout_account"]),
                payee_code=claim.payee_type.value,
                payee_no=claim.payee_id,
            )
        )
    if offset > 0:
        lines.append(
            posting.PostingLine(
                debit_credit="K",
                amount=offset,
                value_date=posted_on,
                item_text=f"Modregning i gæld, krav {claim.claim_id}"[: posting.ITEM_TEXT_LENGTH],
                gl_account=str(rules["offset_account"]),
            )
        )
    document = posting.PostingDocument(
        reference=claim.claim_id,
        company_code=str(rules["company_code"]),
        doc_type=str(rules["document_type"]),
        doc_date=posted_on,
        posting_date=posted_on,
        header_text=(claim.header_text or claim.claim_id)[: posting.HEADER_TEXT_LENGTH],
        lines=lines,
    )
    receipt = f"Krav {claim.claim_id}: {danish_amount(claim.amount)} kr. bogført"
    if offset:
        receipt += f"; heraf modregnet {danish_amount(offset)} kr. i gæld til kommunen"
    receipt += f"; {danish_amount(payout)} kr. udbetales til NemKonto den {paid_on:%d.%m.%Y}." if payout else "."
    # A claim id is the case system's, and may hold a CPR-shaped digit run: the ledger shows it redacted and
    # finds the document by a hash of it (the response names the document by the claim id itself).
    columns = {
        "ClaimId": redact(claim.claim_id),
        "DocRef": posting.document_ref(claim.claim_id),
        "Payout": str(payout),
        "Offset": str(offset),
        "PaymentDate": paid_on.isoformat(),
        "Requester": claim.requester_email,
        "Receipt": redact(receipt),
    }
    return document, columns


def file_name(run_id: str, bucket: int, first_item: str) -> str:
    """A new posting file's name: the run and bucket its items are in, and a tag of its own."""
    return f"{FILE_PREFIX}_{run_id}_b{bucket:03d}_{first_item}_{uuid.uuid4().hex[:8]}.xml"


def _staged(run_id: str, name: str) -> str:
    return f"{AUTOMATION}/{run_id}/postings/{name}.json"


def _post_file(group: Sequence[tuple[WorkItem, posting.PostingDocument, dict[str, str]]], now: datetime) -> None:
    """Stages the file, claims its items for it, then writes it to the outbox only if absent.

    The staged copy (the work container; Kvantum never reads it) is leased while the items are claimed in
    100-item transactions and the file is written, so no other delivery publishes it half-claimed. A delivery
    that dies in between leaves items claimed for a file that is not out: the next delivery finds them, and
    writes the file with exactly the claimed documents once the lease has run out.
    """
    first = group[0][0]
    name = file_name(first.run_id, first.bucket, first.item_id)
    rules = first.rules
    document = posting.PostingFile(
        sender_id=str(rules["posting_sender_id"]),
        receiver=str(rules["posting_receiver"]),
        file_name=name,
        sent_at=now,
        documents=[document for _, document, _ in group],
    )
    staged = storage.container(WORK_CONTAINER).get_blob_client(_staged(first.run_id, name))
    staged.upload_blob(document.model_dump_json(), overwrite=True)
    lease = staged.acquire_lease(lease_duration=STAGING_LEASE_SECONDS)
    with limiter.held(lease, "a staged posting file", every=STAGING_LEASE_SECONDS / 3):
        marks = [(_row(item), {**columns, "PostingFile": name, "Step": "post"}) for item, _, columns in group]
        for part in itertools.batched(marks, ledger.BATCH_LIMIT):
            ledger.mark_items(first.run_id, first.bucket, part)
        _write_out(name, posting.render(document))


def _row(item: WorkItem) -> Any:
    """The item's row as read, for a conditional write (it carries the ETag)."""
    if not item.row:
        raise RuntimeError(f"item {item.item_id} has no ledger row")
    return item.row


def _write_out(name: str, body: bytes) -> None:
    """Writes a posting file to Kvantum's outbox unless it is there (a repeat leaves the first one)."""
    with contextlib.suppress(ResourceExistsError):
        storage.container(OUTBOX).upload_blob(name, body, overwrite=False)


def _ensure_published(run_id: str, bucket: int, name: str, in_chunk: set[str]) -> None:
    """Makes sure a posting file whose items are claimed is out, holding exactly its claimed documents.

    Reached only when an earlier delivery claimed items (it may have died or still be at work). Items
    claimed for the file but missing from it (the claimer's lease ran out mid-way and the file went out
    without them) are released for a new file if they are in this chunk, else reported to the operators.
    """
    staged = storage.container(WORK_CONTAINER).get_blob_client(_staged(run_id, name))
    lease = limiter.try_lease(staged, STAGING_LEASE_SECONDS)
    if lease is None:
        raise PostingBusyError("another delivery is writing this chunk's posting file")
    with limiter.held(lease, "a staged posting file", every=STAGING_LEASE_SECONDS / 3):
        claimed = ledger.items_where(run_id, bucket, "PostingFile", name, ("DocRef",))
        outbox = storage.container(OUTBOX).get_blob_client(name)
        if outbox.exists():
            published = posting.request_references(outbox.download_blob().readall())
        else:
            staged_file = posting.PostingFile.model_validate_json(staged.download_blob(lease=lease).readall())
            refs = {row["DocRef"] for row in claimed}
            documents = [d for d in staged_file.documents if posting.document_ref(d.reference) in refs]
            if documents:
                _write_out(name, posting.render(staged_file.model_copy(update={"documents": documents})))
            published = {d.reference for d in documents}
        published_refs = {posting.document_ref(reference) for reference in published}
        _release_missing(run_id, bucket, name, claimed, published=published_refs, in_chunk=in_chunk)


def _release_missing(
    run_id: str, bucket: int, name: str, claimed: list[Any], *, published: set[str], in_chunk: set[str]
) -> None:
    """Frees items claimed for a file that went out without them, so they are posted in a file of their own."""
    missing = [row for row in claimed if row["DocRef"] not in published]
    if not missing:
        return
    mine = [(row, {"PostingFile": "", "Step": "decide"}) for row in missing if row["RowKey"] in in_chunk]
    for part in itertools.batched(mine, ledger.BATCH_LIMIT):
        ledger.mark_items(run_id, bucket, part)
    if len(mine) < len(missing):
        emit(Event.OPERATOR_ALERT, level=40, automation=AUTOMATION, run_id=run_id, reason_code="POSTERING_MANGLER")
    _log.error("%d items claimed for %s were not in it; %d released for a new file", len(missing), name, len(mine))
    raise ledger.ItemEndedElsewhereError("posting claims changed: read the chunk again")


# --- returned -----------------------------------------------------------------------------------------------


def returned(item: WorkItem) -> None:
    """Queue step returned: a payment the bank returned after it was booked goes to a person, with the reason."""
    raise _refused(item, item.data["code"], item.data["text"])
