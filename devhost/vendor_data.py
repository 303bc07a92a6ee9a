"""Seed data for the new-supplier automation: ServiceNow requests, CVR companies and Kvantum vendors that
reach every branch of the rules, and what each request should end as.

All numbers are synthetic: CVR numbers are made to pass modulus 11 from a fixed range, the one CPR-based
supplier's number is of someone born in 1858-1870, and the names are invented.
"""

from dataclasses import dataclass, field
from typing import Any

from stdnum.dk import cvr as dk_cvr

REQUESTER = "indkoeb.teknik@devhost.example"


def synthetic_cvrs(count: int, start: int = 39_000_000) -> list[str]:
    """The first `count` numbers from `start` that pass CVR's modulus 11."""
    found: list[str] = []
    number = start
    while len(found) < count:
        if dk_cvr.is_valid(str(number)):
            found.append(str(number))
        number += 1
    return found


@dataclass
class Scenario:
    """One request, what the register and the ERP hold for it, and the ending it must reach."""

    key: str
    variables: dict[str, str]
    expected: tuple[str, str]  # (status, reason code)
    companies: list[dict[str, Any]] = field(default_factory=list)
    vendors: list[dict[str, Any]] = field(default_factory=list)
    number: str = ""  # the RITM number, once seeded


def _company(cvr: str, name: str, status: str = "NORMAL", **extra: Any) -> dict[str, Any]:
    return {
        "cvr": cvr,
        "name": name,
        "street_name": extra.get("street_name", "Vesterbrogade"),
        "house_number": extra.get("house_number", 10),
        "postal_code": extra.get("postal_code", 1620),
        "city": extra.get("city", "København V"),
        "status": status,
        "form": extra.get("form", "APS"),
    }


def _variables(kind: str, cvr: str, name: str, **extra: str) -> dict[str, str]:
    return {
        "leverandoer_type": kind,
        "cvr": cvr,
        "navn": name,
        "adresse": "Vesterbrogade 10",
        "postnr": "1620",
        "by": "København V",
        "land": "DK",
        "email_betalingsadvis": "faktura@leverandoer.example",
        "kontaktperson": "Kim Kontakt",
        "betalingsbetingelse_dage": "30",
        "bestiller_enhed": "Teknik- og Miljøforvaltningen",
        "begrundelse": "Ny aftale efter udbud",
        **extra,
    }


def scenarios() -> list[Scenario]:
    """Every branch once, plus a few plain ones."""
    cvr = synthetic_cvrs(24)
    done, person = "done", "handed_off"
    plain = [
        Scenario(
            f"aktiv-{n}",
            _variables("DK_VIRKSOMHED", cvr[10 + n], f"Nordisk Kontorforsyning {n} ApS"),
            (done, ""),
            companies=[_company(cvr[10 + n], f"Nordisk Kontorforsyning {n} ApS")],
        )
        for n in range(5)
    ]
    return [
        *plain,
        Scenario(
            "konkurs",
            _variables("DK_VIRKSOMHED", cvr[0], "Byg og Beton A/S"),
            (person, "CVR_IKKE_AKTIV"),
            companies=[_company(cvr[0], "Byg og Beton A/S", "UNDER KONKURS", form="A/S")],
        ),
        Scenario(
            "ophoert",
            _variables("DK_VIRKSOMHED", cvr[1], "Gammel Handel I/S"),
            (person, "CVR_IKKE_AKTIV"),
            companies=[_company(cvr[1], "Gammel Handel I/S", "OPHØRT", form="I/S")],
        ),
        Scenario("ukendt", _variables("DK_VIRKSOMHED", cvr[2], "Ukendt Firma ApS"), (person, "CVR_FINDES_IKKE")),
        Scenario(
            "tvetydig",
            _variables("DK_VIRKSOMHED", cvr[3], "Dobbelt ApS"),
            (person, "CVR_TVETYDIGT"),
            companies=[_company(cvr[3], "Dobbelt ApS"), _company(cvr[3], "Dobbelt Holding ApS")],
        ),
        Scenario(
            "navneafvigelse",
            _variables("DK_VIRKSOMHED", cvr[4], "Groen Rengoering"),
            (done, ""),
            companies=[_company(cvr[4], "Grøn Rengøring ApS")],
        ),
        Scenario(
            "eksisterende",
            _variables("DK_VIRKSOMHED", cvr[5], "Kaffe & Kage ApS"),
            (done, ""),
            companies=[_company(cvr[5], "Kaffe & Kage ApS")],
            vendors=[{"LIFNR": "0000100123", "NAME1": "Kaffe & Kage ApS", "STCD1": cvr[5], "KTOKK": "LEVD"}],
        ),
        Scenario(
            "spaerret",
            _variables("DK_VIRKSOMHED", cvr[6], "Spærret Service ApS"),
            (person, "LEVERANDOER_SPAERRET"),
            companies=[_company(cvr[6], "Spærret Service ApS")],
            vendors=[
                {"LIFNR": "0000100124", "NAME1": "Spærret Service ApS", "STCD1": cvr[6], "KTOKK": "LEVD", "SPERR": "X"}
            ],
        ),
        Scenario(
            "navnedublet",
            _variables("DK_VIRKSOMHED", cvr[7], "Blomsterhuset ApS"),
            (person, "MULIG_DUBLET"),
            companies=[_company(cvr[7], "Blomsterhuset ApS")],
            vendors=[{"LIFNR": "0000100125", "NAME1": "Blomsterhuset ApS", "STCD1": cvr[8], "KTOKK": "LEVD"}],
        ),
        Scenario(
            "erp_afvist",
            _variables("DK_VIRKSOMHED", cvr[9], "Tryk og Skilte ApS", momsnr=f"DK{cvr[16]}"),
            (person, "KVANTUM_AFVIST"),
            companies=[_company(cvr[9], "Tryk og Skilte ApS")],
            vendors=[
                {
                    "LIFNR": "0000100126",
                    "NAME1": "Skilte Engros A/S",
                    "STCD1": cvr[16],
                    "STCEG": f"DK{cvr[16]}",
                    "KTOKK": "LEVD",
                }
            ],
        ),
        Scenario(
            "udenlandsk",
            _variables(
                "UDENLANDSK",
                "",
                "Holz Lieferant GmbH",
                land="DE",
                iban="DE89370400440532013000",
                bic="COBADEFFXXX",
                bank_land="DE",
                postnr="10115",
                by="Berlin",
                adresse="Invalidenstraße 1",
            ),
            (person, "UDENLANDSK_LEVERANDOER"),
        ),
        Scenario(
            "udenlandsk_forkert_iban",
            _variables(
                "UDENLANDSK",
                "",
                "Bois Fournisseur SARL",
                land="FR",
                iban="FR7630006000011234567890188",
                bic="AGRIFRPP",
                bank_land="FR",
                postnr="75001",
                by="Paris",
                adresse="Rue de Rivoli 1",
            ),
            (person, "UGYLDIGE_OPLYSNINGER"),
        ),
        Scenario(
            "person",
            _variables("DK_PERSON", "1503625234", "Anna Andersen"),
            (person, "PERSONLEVERANDOER"),
        ),
        Scenario(
            "mangler",
            _variables("DK_VIRKSOMHED", cvr[17], "Mangelfuld ApS", postnr="", by=""),
            (person, "MANGLENDE_FELT"),
            companies=[_company(cvr[17], "Mangelfuld ApS")],
        ),
        Scenario(
            "ugyldigt_cvr",
            _variables("DK_VIRKSOMHED", "12345678", "Forkert Nummer ApS"),
            (person, "UGYLDIGE_OPLYSNINGER"),
        ),
    ]


def seed(servicenow: Any, cvr: Any, kvantum: Any, catalog_item: str = "nyleverandoer") -> list[Scenario]:
    """Puts every scenario into the three simulators' states; returns them with their request numbers."""
    user = servicenow.insert("sys_user", {"user_name": "indkoeb.teknik", "email": REQUESTER, "name": "Indkøb Teknik"})
    seeded = scenarios()
    for scenario in seeded:
        for company in scenario.companies:
            cvr.add_company(**company)
        for vendor in scenario.vendors:
            kvantum.add_vendor(**vendor)
        record = servicenow.insert(
            "sc_req_item",
            {
                "cat_item": catalog_item,
                "short_description": "Ny leverandør",
                "requested_for": user["sys_id"],
                "variables": scenario.variables,
            },
        )
        scenario.number = record["number"]
    return seeded
