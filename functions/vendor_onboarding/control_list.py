"""The daily control list: the vendors created on a Danish calendar day, as CSV for a second person.

Segregation of duties for payee master data [rule]: the robot creates, a person reviews what it created.
The list is written to the reports container under the day's date; writing it again gives the same file.
"""

from datetime import date, datetime

from shared import storage
from shared.spreadsheet import csv_bytes

REPORTS_CONTAINER = storage.required_container("reports")
COLUMNS = ("dato", "anmodning", "kreditornummer", "navn", "cvr", "oprettet", "bestiller", "koersel")


def blob_name(day: date) -> str:
    """Where a day's list goes."""
    return f"vendor_onboarding/kontrolliste-{day.isoformat()}.csv"


def render(day: date, rows: list[dict], zone: object) -> bytes:
    """The list as a semicolon CSV with a BOM (Excel opens it as UTF-8), times in Danish local time."""
    return csv_bytes(
        COLUMNS,
        (
            [
                day.strftime("%d.%m.%Y"),
                row["RowKey"],
                row["VendorNumber"],
                row["Name"],
                row["Cvr"],
                row["CreatedAt"].astimezone(zone).strftime("%d.%m.%Y %H:%M"),
                row.get("Requester", ""),
                row["RunId"],
            ]
            for row in sorted(rows, key=lambda r: r["RowKey"])
        ),
    )


def last_written() -> datetime | None:
    """When a control list was last written (the sweeper's evidence that the daily timer ran)."""
    container = storage.container(REPORTS_CONTAINER)
    if not container.exists():
        return None
    times = [b.last_modified for b in container.list_blobs(name_starts_with="vendor_onboarding/kontrolliste-")]
    return max(times, default=None)


def write(day: date, table: str, zone: object) -> tuple[str, int]:
    """Writes a day's list; returns the blob name and how many vendors it holds."""
    rows = list(storage.table(table).query_entities("PartitionKey eq @pk", parameters={"pk": day.isoformat()}))
    name = blob_name(day)
    storage.container(REPORTS_CONTAINER).upload_blob(name, render(day, rows, zone), overwrite=True)
    return name, len(rows)
