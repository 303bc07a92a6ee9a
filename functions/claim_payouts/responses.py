"""Kvantum's response files: each document booked (the claim is done) or rejected (to a person), and payments
the bank returned after they were booked (a new item, linked to the original, never a reopened one).

A response names the request file it answers; the file's name names the run and ledger bucket of its items,
whose rows name the file (the post step's claim), so a response finds its items with one query. Handling a
response again ends nothing twice: items already ended are left alone, and a return run is keyed by the
response blob's name and ETag.
"""

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from azure.core import MatchConditions
from azure.storage.blob import BlobClient

from functions.claim_payouts import posting
from functions.claim_payouts.chain import chain
from functions.claim_payouts.steps import AUTOMATION, FILE_PREFIX
from shared import config, ledger, mail, storage
from shared.events import Event, emit
from shared.inbox import inbox, run_key
from shared.logs import get_logger
from shared.outcomes import REASON_CODE_PATTERN, ItemStatus
from shared.personal_data import redact
from shared.pipeline import Ending, NewItem

RESPONSES = storage.required_container("kvantum-responses")
REJECTED = storage.required_container("rejected")
_FILE = re.compile(rf"^{FILE_PREFIX}_(?P<run>.+)_b(?P<bucket>[0-9]{{3}})_(?P<first>[A-Za-z0-9]+)_[0-9a-f]{{8}}\.xml$")
#: Kvantum's answer to a file it could not read at all (nothing in it booked): `<file>.error.txt`.
ERROR_SUFFIX = ".error.txt"
#: What settling an answer reads of its items' rows (besides the chain's own columns).
_RESPONSE_COLUMNS = ("DocRef", "ClaimId", "Requester", "Receipt", "Payout", "Amount", "Reference")
_log = get_logger("ks.claim_payouts.responses")


@dataclass(frozen=True)
class Target:
    """Where a posting file's items are in the ledger."""

    run_id: str
    bucket: int


def target_of(file_name: str) -> Target | None:
    """The run and bucket a posting file of ours was written for, or None for a name that is not ours."""
    match = _FILE.match(file_name)
    return Target(match["run"], int(match["bucket"])) if match else None


def _file_items(file_name: str) -> tuple[Target | None, list[dict[str, Any]]]:
    """Where a posting file of ours was written for, and the rows of the items claimed for it (one query)."""
    target = target_of(file_name)
    if target is None:
        return None, []
    return target, ledger.items_where(target.run_id, target.bucket, "PostingFile", file_name, _RESPONSE_COLUMNS)


def _reason_code(code: str | None, fallback: str) -> str:
    """Kvantum's message code when it reads as one of ours (INGEN_NEMKONTO), else the fallback."""
    return code if code and re.fullmatch(REASON_CODE_PATTERN, code) else fallback


@inbox(AUTOMATION, RESPONSES)
def open_response(blob: BlobClient) -> int:
    """Settles the items a response file answers (trigger or pick-up); returns how many it ended or opened."""
    # Handled again, it ends nothing twice (items already ended are skipped; a return run is keyed by the
    # blob), so there is no look-up first: one download gives the bytes and the ETag.
    download = blob.download_blob()
    properties = download.properties
    key = run_key(blob.blob_name, properties.etag)
    data = download.readall()
    if blob.blob_name.endswith(ERROR_SUFFIX):
        return _file_refused(blob, properties, key, data)
    try:
        response = posting.parse_response_file(data)
    except (posting.PostingResponseError, ValueError) as error:
        return _unreadable(blob, properties, data, str(error))
    target, rows = _file_items(response.file_name)
    if target is None or not rows:
        why = "svaret nævner en posteringsfil, som automatikken ikke har skrevet"
        return _unreadable(blob, properties, data, why)
    members = {str(row["DocRef"]): row for row in rows}
    endings: list[Ending] = []
    notices: list[mail.Notice] = []
    returns: list[NewItem] = []
    unknown = 0
    subject = _subject(str(rows[0].get("ConfigVersion", "")))
    for result in response.results:
        row = members.get(posting.document_ref(result.reference))
        if row is None:
            unknown += 1
            continue
        ending, text = _ending(result, row)
        if ending is not None:
            endings.append(ending)
        elif result.status == "RETURNED":
            returns.append(_returned(result, row, target))
        if text and "@" in str(row.get("Requester", "")):
            notices.append(mail.Notice(recipient=row["Requester"], item_id=row["RowKey"], subject=subject, text=text))
    if unknown:
        emit(Event.OPERATOR_ALERT, level=40, automation=AUTOMATION, run_id=target.run_id, reason_code="UKENDT_BILAG")
        _log.error("%d results of a response name no document of the file", unknown)
    current = {str(row["RowKey"]): row for row in rows}
    ended = chain.end_parked(target.run_id, target.bucket, "response", endings, notices=notices, current=current)
    owner = target.run_id
    if returns and ledger.source_run_id(AUTOMATION, key):
        returns = []  # opened by an earlier delivery of this response
    elif returns:
        owner = chain.start_run(
            trigger="blob",
            source=f"{RESPONSES}/{blob.blob_name}",
            run_key=key,
            items=returns,
            first_step="returned",
        )
    if owner == target.run_id:
        ledger.claim_source(AUTOMATION, key, owner)  # handled: the sweeper's pick-up leaves it alone
    return ended + len(returns)


def _file_refused(blob: BlobClient, properties: Any, key: str, data: bytes) -> int:
    """Kvantum could not read a posting file at all and booked nothing in it (`<file>.error.txt` says why):
    each of its claims goes to a person with that reason, and the operators are alerted, since a file the
    automation wrote should always be readable."""
    target, rows = _file_items(blob.blob_name.removesuffix(ERROR_SUFFIX))
    if target is None or not rows:
        return _unreadable(
            blob, properties, data, "fejlfilen nævner en posteringsfil, som automatikken ikke har skrevet"
        )
    emit(
        Event.OPERATOR_ALERT, level=40, automation=AUTOMATION, run_id=target.run_id, reason_code="POSTERINGSFIL_AFVIST"
    )
    _log.error("Kvantum refused a whole posting file (%d claims); they go to a person", len(rows))
    why = " ".join(data.decode("utf-8", errors="replace").split())[:500] or "Kvantum afviste filen uden begrundelse."
    text = f"Kvantum afviste hele posteringsfilen, intet i den er bogført: {why}"
    endings = [Ending(row["RowKey"], ItemStatus.HANDED_OFF, "POSTERINGSFIL_AFVIST", text) for row in rows]
    subject = _subject(str(rows[0].get("ConfigVersion", "")))
    notices = [
        mail.Notice(
            recipient=row["Requester"],
            item_id=row["RowKey"],
            subject=subject,
            text=f"Krav {row.get('ClaimId', '')} blev ikke udbetalt: {text} Sagen er sendt til manuel behandling.",
        )
        for row in rows
        if "@" in str(row.get("Requester", ""))
    ]
    current = {str(row["RowKey"]): row for row in rows}
    ended = chain.end_parked(target.run_id, target.bucket, "response", endings, notices=notices, current=current)
    ledger.claim_source(AUTOMATION, key, target.run_id)  # handled: the sweeper's pick-up leaves it alone
    return ended


def _subject(config_version: str) -> str:
    return str(config.rules().version(config_version).rules(AUTOMATION)["receipt_subject"])


def shown_document_number(number: str | None) -> str:
    """A Kvantum document number as the ledger, receipts and reports show it: `1900-000123`.

    SAP's ten digits are CPR-shaped, and anything CPR-shaped is redacted from what the app writes; the dash
    after the number range's four digits keeps the number whole and readable.
    """
    text = str(number or "")
    return f"{text[:4]}-{text[4:]}" if len(text) >= 9 and text.isdigit() else text


def _ending(result: posting.DocumentResult, row: dict[str, Any]) -> tuple[Ending | None, str]:
    """How a booked or rejected document ends its item, and the requester's receipt line."""
    claim = row.get("ClaimId", "")
    if result.status == "BOOKED":
        number = shown_document_number(result.document_number)
        return Ending(
            row["RowKey"], ItemStatus.DONE, details={"DocNo": number}
        ), f"{row.get('Receipt', '')} Bilag {number}."
    if result.status == "REJECTED":
        reason = result.message or "Kvantum afviste posteringen uden begrundelse."
        code = _reason_code(result.code, "KVANTUM_AFVIST")
        text = f"Kvantum afviste udbetalingen: {reason}"
        note = f"Krav {claim} blev ikke udbetalt: {reason} Sagen er sendt til manuel behandling."
        return Ending(row["RowKey"], ItemStatus.HANDED_OFF, code, text), note
    return None, ""  # RETURNED: a new item, told about by its own step


def _returned(result: posting.DocumentResult, row: dict[str, Any], target: Target) -> NewItem:
    """A payment the bank returned, as a new item that points at the original."""
    reason = result.message or "Banken returnerede udbetalingen."
    payout = Decimal(str(row.get("Payout") or row.get("Amount") or "0"))
    number = shown_document_number(result.document_number)
    return NewItem(
        data={
            "krav_id": row.get("ClaimId", ""),
            "anmoder_email": row.get("Requester", ""),
            "code": _reason_code(result.code, "RETURNERET_AF_BANK"),
            "text": f"Banken returnerede udbetalingen (bilag {number}): {reason}",
        },
        amount=payout,
        reference=str(row.get("Reference", "")),
        details={
            "ClaimId": str(row.get("ClaimId", "")),
            "ReturnOf": f"{target.run_id}/{row['RowKey']}",
            "DocNo": number,
        },
    )


def _unreadable(blob: BlobClient, properties: Any, data: bytes, why: str) -> int:
    """A response that cannot be handled: kept in `rejected` for the operators, who are alerted."""
    name = f"{AUTOMATION}/responses/{blob.blob_name}"
    storage.container(REJECTED).upload_blob(name, data, overwrite=True)
    report = f"Svarfilen kan ikke behandles: {redact(why)}\n".encode()
    storage.container(REJECTED).upload_blob(f"{name}.fejl.txt", report, overwrite=True)
    emit(Event.OPERATOR_ALERT, level=40, automation=AUTOMATION, reason_code="SVARFIL_UGYLDIG")
    blob.delete_blob(etag=properties.etag, match_condition=MatchConditions.IfNotModified)
    return 0
