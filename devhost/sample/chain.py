"""The sample chain: intake of a payee file, then validate, enrich, book."""

import csv
import io
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

import azure.functions as func
import requests
from azure.core import MatchConditions
from azurefunctions.extensions.bindings.blob import BlobClient
from pydantic import Field
from pydantic_settings import BaseSettings
from stdnum.dk import cpr

from shared import pseudonyms
from shared.inbox import inbox, run_key
from shared.pipeline import BusinessException, Chain, NewItem, WorkItem
from shared.settings import WORK_CONNECTION

AUTOMATION = "sample"
INBOX = "sample-inbox"
COLUMNS = ("id", "cpr", "navn", "beloeb")
chain = Chain(AUTOMATION, ["validate", "enrich", "book"])
bp = func.Blueprint()


class SampleSettings(BaseSettings):
    """Where the sample's simulated external system is (its business limit is in config/rules.json)."""

    sample_service_url: str = Field(description="Base URL of devhost's sample service simulator.")
    sample_receipt_to: str = Field(
        default="bogholderi@devhost.example", description="Who gets the receipt for a sample file's bookings."
    )


@cache
def _settings() -> SampleSettings:
    return SampleSettings()  # type: ignore[call-arg]


@cache
def _http() -> requests.Session:
    return requests.Session()


def parse_rows(text: str) -> list[NewItem]:
    """Rows of a sample file as items; a row whose amount cannot be read is kept as rejected input."""
    items = []
    for number, row in enumerate(csv.DictReader(io.StringIO(text), delimiter=";"), start=2):
        record = {column: (row.get(column) or "").strip() for column in COLUMNS}
        reference = pseudonyms.reference(record["cpr"])
        try:
            amount = Decimal(record["beloeb"].replace(".", "").replace(",", "."))
        except InvalidOperation:
            items.append(
                NewItem(
                    data=record,
                    reference=reference,
                    rejected=("UGYLDIGT_BELOEB", f"Række {number}: beløbet kan ikke læses som et tal i kroner."),
                )
            )
            continue
        items.append(NewItem(data={**record, "beloeb": str(amount)}, amount=amount, reference=reference))
    return items


@bp.function_name("sample_intake")
@bp.blob_trigger(
    arg_name="blob", path=f"{INBOX}/{{name}}", connection=WORK_CONNECTION, source=func.BlobSource.EVENT_GRID
)
def sample_intake(blob: BlobClient) -> None:
    """Blob created in sample-inbox: opens a run for the file and hands its rows to validate."""
    open_sample_file(blob)


@inbox(AUTOMATION, INBOX)
def open_sample_file(blob: BlobClient) -> None:
    """Opens a run for a sample file at the version just read (from its trigger or the sweeper's pick-up)."""
    properties = blob.get_blob_properties()
    text = (
        blob.download_blob(etag=properties.etag, match_condition=MatchConditions.IfNotModified)
        .readall()
        .decode("utf-8-sig")
    )
    chain.start_run(
        trigger="blob",
        source=f"{INBOX}/{blob.blob_name}",
        run_key=run_key(blob.blob_name, properties.etag),
        items=parse_rows(text),
    )


def validate(item: WorkItem) -> None:
    """The sample's business rules: a CPR that is a real date, an amount within the limit."""
    if not cpr.is_valid(item.data["cpr"]):
        raise BusinessException("UGYLDIGT_CPR", "Personnummeret er ikke gyldigt: fødselsdatoen findes ikke.")
    limit = Decimal(item.rules["amount_limit"])
    if Decimal(item.data["beloeb"]) > limit:
        raise BusinessException(
            "BELOEB_OVER_GRAENSE", f"Beløbet er over grænsen for automatisk behandling ({limit} kr.)."
        )


def enrich(item: WorkItem) -> dict[str, Any]:
    """Looks the payee up in the external register; no NemKonto is a business exception."""
    response = _http().post(f"{_settings().sample_service_url}/lookup", json={"cpr": item.data["cpr"]}, timeout=10)
    if response.status_code != 200:
        raise RuntimeError(f"look-up answered {response.status_code}: {response.text}")
    if not response.json()["nemkonto"]:
        raise BusinessException("INGEN_NEMKONTO", "Modtageren har ingen NemKonto; udbetalingen kræver en person.")
    return {**item.data, "nemkonto": True}


def book(item: WorkItem) -> None:
    """Books the payment in the external system, keyed by the item so that a repeat books nothing new."""
    response = _http().post(
        f"{_settings().sample_service_url}/bookings",
        json={"amount": item.data["beloeb"], "reference": item.data["id"]},
        headers={"Idempotency-Key": item.key},
        timeout=30,
    )
    if response.status_code not in (200, 201):
        raise RuntimeError(f"booking answered {response.status_code}: {response.text}")
    item.notify(
        _settings().sample_receipt_to,
        "Kvittering for udbetalinger",
        f"Udbetaling {item.data['id']} på {item.data['beloeb']} kr. er bogført.",
    )


@bp.function_name("sample_validate")
@bp.queue_trigger(arg_name="msg", queue_name="sample-validate", connection=WORK_CONNECTION)
def sample_validate(msg: func.QueueMessage) -> None:
    """Queue sample-validate: checks each item's rules; valid items go on to enrich."""
    chain.run_step("validate", msg, validate)


@bp.function_name("sample_enrich")
@bp.queue_trigger(arg_name="msg", queue_name="sample-enrich", connection=WORK_CONNECTION)
def sample_enrich(msg: func.QueueMessage) -> None:
    """Queue sample-enrich: looks each payee up; found payees go on to book."""
    chain.run_step("enrich", msg, enrich)


@bp.function_name("sample_book")
@bp.queue_trigger(arg_name="msg", queue_name="sample-book", connection=WORK_CONNECTION)
def sample_book(msg: func.QueueMessage) -> None:
    """Queue sample-book: books each payment; booked items end DONE."""
    chain.run_step("book", msg, book)
