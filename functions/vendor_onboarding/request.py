"""The new-supplier request as ServiceNow gives it: a `sc_req_item` with the form's answers as variables."""

from enum import StrEnum
from typing import Any

from pydantic import EmailStr, Field, ValidationError, field_validator

from shared.models import BoundaryModel

#: The form's variables (the catalog item "new supplier"), asked for explicitly: ServiceNow omits the rest.
VARIABLES = (
    "leverandoer_type",
    "cvr",
    "se_nr",
    "p_nr",
    "navn",
    "co_navn",
    "adresse",
    "postnr",
    "by",
    "land",
    "email_betalingsadvis",
    "kontaktperson",
    "telefon",
    "ean",
    "iban",
    "bic",
    "bank_land",
    "momsnr",
    "betalingsbetingelse_dage",
    "bestiller_enhed",
    "begrundelse",
)
REQUEST_FIELDS = ("sys_id", "number", "state", "sys_created_on", "requested_for.email", "short_description")

#: Danish names of the fields a clerk sees when one is missing or malformed.
FIELD_NAMES_DA = {
    "leverandoer_type": "leverandørtype",
    "cvr": "CVR-nummer",
    "se_nr": "SE-nummer",
    "p_nr": "P-nummer",
    "navn": "navn",
    "adresse": "adresse",
    "postnr": "postnummer",
    "by": "by",
    "land": "land",
    "email_betalingsadvis": "e-mail til betalingsadvis",
    "kontaktperson": "kontaktperson",
    "iban": "IBAN",
    "bic": "BIC",
    "bank_land": "bankens land",
    "momsnr": "momsnummer",
    "betalingsbetingelse_dage": "betalingsbetingelse (dage)",
    "bestiller_enhed": "bestillende enhed",
    "requester_email": "bestillerens e-mail",
}


class SupplierType(StrEnum):
    """`leverandoer_type`: what kind of supplier is asked for."""

    DK_COMPANY = "DK_VIRKSOMHED"
    DK_PERSON = "DK_PERSON"
    FOREIGN = "UDENLANDSK"
    PUBLIC_AUTHORITY = "OFFENTLIG_MYNDIGHED"


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


class VendorRequest(BoundaryModel):
    """One request's answers, typed; which fields are mandatory depends on the supplier type (see rules)."""

    number: str = Field(pattern=r"^RITM\d{7}$")
    sys_id: str = Field(min_length=1)
    requester_email: EmailStr
    supplier_type: SupplierType
    cvr: str | None = None
    se_number: str | None = None
    p_number: str | None = None
    name: str = Field(min_length=1, max_length=200)
    co_name: str | None = None
    street: str | None = None
    postal_code: str | None = None
    city: str | None = None
    country: str = Field(default="DK", pattern=r"^[A-Z]{2}$")
    payment_advice_email: EmailStr | None = None
    contact: str | None = None
    phone: str | None = None
    ean: str | None = None
    iban: str | None = None
    bic: str | None = None
    bank_country: str | None = None
    vat_number: str | None = None
    payment_terms_days: int | None = Field(default=None, ge=0, le=365)
    requesting_unit: str = Field(min_length=1)
    justification: str | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _blanks(cls, value: Any) -> Any:
        """ServiceNow answers an unanswered variable with an empty string."""
        return _blank_is_none(value)


#: variable name -> model field
_VARIABLE_FIELDS = {
    "leverandoer_type": "supplier_type",
    "cvr": "cvr",
    "se_nr": "se_number",
    "p_nr": "p_number",
    "navn": "name",
    "co_navn": "co_name",
    "adresse": "street",
    "postnr": "postal_code",
    "by": "city",
    "land": "country",
    "email_betalingsadvis": "payment_advice_email",
    "kontaktperson": "contact",
    "telefon": "phone",
    "ean": "ean",
    "iban": "iban",
    "bic": "bic",
    "bank_land": "bank_country",
    "momsnr": "vat_number",
    "betalingsbetingelse_dage": "payment_terms_days",
    "bestiller_enhed": "requesting_unit",
    "begrundelse": "justification",
}
_FIELD_VARIABLES = {field: variable for variable, field in _VARIABLE_FIELDS.items()} | {
    "requester_email": "requester_email"
}


def item_data(record: dict[str, Any]) -> dict[str, Any]:
    """What the intake keeps of a ServiceNow record: its keys, the requester's e-mail and every variable."""
    return {
        "sys_id": record.get("sys_id", ""),
        "number": record.get("number", ""),
        "requester_email": record.get("requested_for.email", ""),
        **{variable: str(record.get(f"variables.{variable}", "") or "").strip() for variable in VARIABLES},
    }


class RequestError(ValueError):
    """The request cannot be read as a vendor request; `fields` names the variables at fault, in Danish."""

    def __init__(self, fields: list[str]) -> None:
        super().__init__(", ".join(fields))
        self.fields = fields


def parse_request(data: dict[str, Any]) -> VendorRequest:
    """The item's data as a typed request; a missing or malformed field raises RequestError naming it."""
    values = {
        "number": data.get("number"),
        "sys_id": data.get("sys_id"),
        "requester_email": data.get("requester_email"),
    }
    values |= {field: data.get(variable) for variable, field in _VARIABLE_FIELDS.items()}
    if isinstance(values.get("country"), str):
        values["country"] = values["country"].strip().upper() or None
    try:
        return VendorRequest.model_validate({k: v for k, v in values.items() if _blank_is_none(v) is not None})
    except ValidationError as error:
        fields = []
        for problem in error.errors():
            field = str(problem["loc"][0]) if problem["loc"] else "?"
            variable = _FIELD_VARIABLES.get(field, field)
            fields.append(FIELD_NAMES_DA.get(variable, variable))
        raise RequestError(sorted(set(fields))) from None
