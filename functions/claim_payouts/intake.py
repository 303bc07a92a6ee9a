"""The claims file's way in: from a blob in the inbox to a run whose items are the file's rows.

The file is read twice at the ETag it was delivered at, streamed, never held whole. Pass one hashes the
bytes and counts the rows and their amounts (the run's control totals) and proves the file readable; pass two
yields the rows as items, a chunk at a time, grouped by payout-index shard.

- The same blob delivered again (same name and ETag: an Event Grid redelivery, the sweeper's pick-up) finds
  its run and does nothing.
- The same content under another name, or uploaded again, is refused as a duplicate (its content hash is a
  source in the ledger, claimed by the first run that took it).
- A file that cannot be read is moved, byte for byte, to the `rejected` container with a Danish error report
  beside it; its run holds one rejected item (the file), and the uploader is told.
"""

import contextlib
import hashlib
import io
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobClient

from functions.claim_payouts import payout_index
from functions.claim_payouts.amounts import AmountError, parse_amount
from functions.claim_payouts.calendar import COPENHAGEN
from functions.claim_payouts.chain import chain
from functions.claim_payouts.identifiers import IdentifierError, normalise_cpr
from functions.claim_payouts.reader import ClaimsFileError, RawClaim, iter_rows
from functions.claim_payouts.steps import AUTOMATION
from shared import ledger, mail, pseudonyms, storage
from shared.inbox import inbox, run_key
from shared.logs import get_logger
from shared.personal_data import redact
from shared.pipeline import NewItem
from shared.settings import get_settings

INBOX = storage.required_container("claims-inbox")
REJECTED = storage.required_container("rejected")
#: Blob metadata the case system sets on a claims file: the address of the clerk who submitted it.
UPLOADER_METADATA = "indsendt_af"
_log = get_logger("ks.claim_payouts.intake")


class _Hashing(io.RawIOBase):
    """A read-only stream over a blob download that hashes every byte it hands on."""

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._read = read
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        """Always: it is a reader."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fills the buffer from the download and hashes what it gave."""
        data = self._read(len(buffer))
        self.sha256.update(data)
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        """Reads (and hashes) what the reader left, so the hash covers the whole file."""
        while self.readinto(bytearray(1 << 20)):
            pass


def _open(blob: BlobClient, etag: str) -> _Hashing:
    download = blob.download_blob(etag=etag, match_condition=MatchConditions.IfNotModified)
    return _Hashing(download.read)


def payee_reference(row: RawClaim) -> str:
    """The payee as a pseudonym (keyed hash of type and id, a CPR padded first): never the id itself."""
    payee_type, payee_id = row.modtager_type.strip().upper(), row.modtager_id.strip()
    if payee_type == "CPR":
        with contextlib.suppress(IdentifierError):  # a malformed CPR is refused by validate, not here
            payee_id = normalise_cpr(payee_id)
    return pseudonyms.reference(f"{payee_type}:{payee_id}")


def _amount(row: RawClaim) -> Decimal | None:
    try:
        return parse_amount(row.beloeb)
    except AmountError:
        return None


def _item(row: RawClaim) -> NewItem:
    payee = payee_reference(row)
    data = {**row.model_dump(exclude={"error"}), "payee": payee}
    details = {"ClaimId": redact(row.krav_id)[:40], "Line": str(row.line)}
    rejected = ("UGYLDIG_RAEKKE", f"Række {row.line}: {row.error}") if row.error else None
    return NewItem(data=data, amount=_amount(row), reference=payee, rejected=rejected, details=details)


def _first_pass(stream: _Hashing) -> tuple[int, Decimal]:
    count, total = 0, Decimal(0)
    for row in iter_rows(stream):
        count += 1
        total += _amount(row) or Decimal(0)
    stream.drain()
    return count, total


def _items(blob: BlobClient, etag: str) -> Iterator[NewItem]:
    for row in iter_rows(_open(blob, etag)):
        yield _item(row)


@inbox(AUTOMATION, INBOX)
def open_claims_file(blob: BlobClient) -> str | None:
    """Opens the run of a claims file at the version just delivered (trigger or pick-up); returns its id."""
    # Our own client for the reads: it streams in 4 MiB pieces whatever client the trigger handed us.
    blob = storage.container(INBOX).get_blob_client(blob.blob_name)
    try:
        properties = blob.get_blob_properties()
    except ResourceNotFoundError:
        _log.info("claims file is gone (moved after an earlier delivery); nothing to do")
        return None
    key = run_key(blob.blob_name, properties.etag)
    known = ledger.source_run_id(AUTOMATION, key)
    run = ledger.get_run(known) if known else None
    if run is not None and run.status is not ledger.RunStatus.INTAKE:
        _log.info("claims file already has run %s; redelivery ignored", run.run_id)
        return run.run_id
    now = datetime.now(UTC)
    run_id = ledger.claim_source(AUTOMATION, key, ledger.new_run_id(AUTOMATION, now, key))
    uploader = (properties.metadata or {}).get(UPLOADER_METADATA, "").strip()
    try:
        first = _open(blob, properties.etag)
        count, total = _first_pass(first)
    except ResourceModifiedError:
        _log.warning("claims file was replaced while being read; the new version has its own event")
        return None
    except ClaimsFileError as error:
        return reject_file(blob, properties, run_id, key, uploader=uploader, error=error)
    content_owner = ledger.claim_source(AUTOMATION, f"content:{first.sha256.hexdigest()}", run_id)
    if content_owner != run_id:
        duplicate = ClaimsFileError(
            "DUBLET_FIL", f"Filen har samme indhold som en fil der allerede er modtaget (kørsel {content_owner})."
        )
        return reject_file(blob, properties, run_id, key, uploader=uploader, error=duplicate)
    return chain.start_streamed_run(
        trigger="blob",
        source=f"{INBOX}/{blob.blob_name}",
        run_key=key,
        items=lambda: _items(blob, properties.etag),
        expected_items=count,
        expected_amount=total,
        started_at=ledger.run_started_at(run_id),
        group_by=lambda item: str(payout_index.shard_of(item.reference)),
        submitted_by=uploader,
    )


def _safe_name(name: str) -> str:
    """A blob name part with nothing personal and nothing a path or a URL would trip on."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", redact(name))[:120]


def error_report(name: str, error: ClaimsFileError, received: datetime) -> str:
    """The Danish error report written beside a rejected file."""
    lines = [
        f"Filen {redact(name)} er afvist og ikke behandlet. Ingen krav i filen er udbetalt.",
        "",
        f"Fejl: {error.message}",
    ]
    if error.line is not None:
        lines.append(f"Linje: {error.line}")
    if error.column:
        lines.append(f"Kolonne: {error.column}")
    lines += [
        f"Fejlkode: {error.code}",
        f"Modtaget: {received.astimezone(COPENHAGEN):%d.%m.%Y %H:%M}",
        "",
        "Ret filen og indsend den igen. Filen ligger uændret ved siden af denne rapport.",
    ]
    return "\n".join(lines) + "\n"


def reject_file(
    blob: BlobClient, properties: Any, run_id: str, key: str, *, uploader: str, error: ClaimsFileError
) -> str:
    """Moves an unreadable or duplicate file, untouched, to `rejected` with a report; its run tells the uploader."""
    folder = f"{AUTOMATION}/{run_id}"
    name = _safe_name(blob.blob_name)
    rejected = storage.container(REJECTED)
    body = _open(blob, properties.etag)
    rejected.upload_blob(
        f"{folder}/{name}",
        io.BufferedReader(body),
        overwrite=True,
        metadata=dict(properties.metadata or {}),
        content_settings=properties.content_settings,
    )
    report = error_report(blob.blob_name, error, properties.last_modified or datetime.now(UTC))
    rejected.upload_blob(f"{folder}/{name}.fejl.txt", report.encode("utf-8"), overwrite=True)
    item_id = next(ledger.item_ids(1))
    recipient = uploader if "@" in uploader else get_settings().claims_fallback_recipient
    text = f"Filen {redact(blob.blob_name)} er afvist: {error.message} Se fejlrapporten i {REJECTED}/{folder}/."
    # Noted before the run exists, so the run closer never closes it without the uploader's mail.
    mail.note(run_id, [mail.Notice(recipient=recipient, item_id=item_id, subject="Kravfil afvist", text=text)])
    chain.start_run(
        trigger="blob",
        source=f"{INBOX}/{blob.blob_name}",
        run_key=key,
        items=[
            NewItem(
                data={"fil": name},
                reference=f"fil:{name}"[:100],
                rejected=(error.code, f"Filen er afvist: {error.message}"),
                details={"FileError": error.code},
            )
        ],
        started_at=ledger.run_started_at(run_id),
        submitted_by=uploader,
    )
    # Gone: moved by an earlier delivery; modified: replaced, and the new version is a file of its own.
    with contextlib.suppress(ResourceNotFoundError, ResourceModifiedError):
        blob.delete_blob(etag=properties.etag, match_condition=MatchConditions.IfNotModified)
    _log.warning("claims file rejected (%s); moved to %s", error.code, REJECTED)
    return run_id
