"""The CVR register (the central business register): companies by CVR number, over its Elasticsearch API.

- `POST {base}/cvr-permanent/virksomhed/_search` with basic authentication and a `term` query on
  `Vrvirksomhed.cvrNummer`; `hits.total` (a number, or `{"value", "relation"}` from Elasticsearch 7 on) says
  how many companies have the number: none is `CvrNotFoundError`, several `CvrAmbiguousError`.
- `lookup_many` asks for many numbers at once (a claims chunk cannot afford one request per claim): a `terms`
  query on the same field with at most `TERMS_PER_SEARCH` numbers per search and `size` at Elasticsearch's
  default result window (`MAX_RESULT_WINDOW`), so every matching document comes back in the one answer. The
  hits are grouped by `cvrNummer`: a number with no document is a `CvrNotFoundError`, one with several a
  `CvrAmbiguousError`, both returned in the result rather than raised, so one bad number does not sink the
  others. An answer with more matches than hits (the window was too small) is a `CvrError`, never read as
  "not found"; so is a document for a number that was not asked for.
- `sammensatStatus` `NORMAL` or `Aktiv` is active; everything else, known or not, is not: a status this code
  has never seen must send the case to a person, never let a vendor be created.
- The search is a POST but only reads, so unlike a create it is safe to repeat after a 5xx or a timeout.
  `shared.connectors.http.send` never repeats a POST that may have reached the system, so this client tells it
  otherwise in two ways: 5xx answers count as `refused` in its policy (a repeat cannot take effect twice),
  and a timeout, which `send` raises at once for a POST, is retried here with the same policy and the same
  budget (`max_retries` in all, with the backoff carrying on where `send` left it). A 429 is retried after
  its Retry-After, and one longer than `max_wait_seconds` raises rather than retrying early.
- An answer with `timed_out` or failed shards may have missed the company: it is retried like a 5xx rather
  than read as "not found".
- A 401 is final: basic credentials cannot be renewed, and repeating a refused login only brings the account
  nearer to a lock-out. Other errors raise `CvrError` with the register's error type and reason, redacted.
"""

import base64
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cache
from typing import Annotated, Any

import requests
from pydantic import StringConstraints, ValidationError

from shared.connectors.http import RetryPolicy, pooled_session, send
from shared.models import BoundaryModel
from shared.personal_data import redact
from shared.settings import get_settings

SEARCH_PATH = "/cvr-permanent/virksomhed/_search"
#: Numbers per `terms` search in `lookup_many`: small enough for a short request and answer, large enough that
#: a chunk of 500 claims takes five searches.
TERMS_PER_SEARCH = 100
#: Elasticsearch's default `index.max_result_window`: `from + size` above it is refused with a 400.
MAX_RESULT_WINDOW = 10_000
CVR_FIELD = "Vrvirksomhed.cvrNummer"
_METADATA = "Vrvirksomhed.virksomhedMetadata"
#: Only what `Company` is built from: a full CVR document runs to many kilobytes of history.
_SOURCE = [
    CVR_FIELD,
    f"{_METADATA}.nyesteNavn",
    f"{_METADATA}.nyesteBeliggenhedsadresse",
    f"{_METADATA}.sammensatStatus",
    f"{_METADATA}.nyesteVirksomhedsform",
]
# ASCII digits only: str.isdigit() also accepts other scripts' digits, which int() would then read.
_CVR = re.compile(r"[0-9]{8}")
_ACTIVE = frozenset({"NORMAL", "AKTIV"})
# The search changes nothing, so a repeat after any of these cannot do harm (see the module docstring).
_REPEATABLE = frozenset({429, 500, 502, 503, 504})


class CompanyStatus(StrEnum):
    """Whether the register says the company is active (may get a vendor record) or not."""

    ACTIVE = "active"
    NOT_ACTIVE = "not_active"


class Company(BoundaryModel):
    """A company as the CVR register describes it now (its newest name, address, status and form)."""

    cvr: Annotated[str, StringConstraints(pattern=r"^[0-9]{8}$")]
    name: Annotated[str, StringConstraints(min_length=1)]
    street: str
    postal_code: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")]
    city: str
    country: str = "DK"
    co_name: str | None = None
    status: CompanyStatus
    status_text: str
    company_form: str | None = None

    @property
    def active(self) -> bool:
        """Whether the register's status is one that counts as active."""
        return self.status is CompanyStatus.ACTIVE


class CvrError(Exception):
    """The register could not be asked (outage, refused credentials, retries ran out) or answered nonsense."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(redact(f"CVR {status}: {message}"))
        self.status = status


class CvrNotFoundError(Exception):
    """No company in the register has this CVR number."""

    def __init__(self, cvr: str) -> None:
        super().__init__("The CVR register has no company with this CVR number.")
        self.cvr = cvr


class CvrAmbiguousError(Exception):
    """More than one document in the register has this CVR number, so none can be trusted."""

    def __init__(self, cvr: str, count: int) -> None:
        super().__init__(f"The CVR register has {count} documents for this CVR number.")
        self.cvr, self.count = cvr, count


@dataclass(frozen=True)
class _ResumedPolicy(RetryPolicy):
    """The client's retry policy, resumed after `done` retries made outside `send` (budget and backoff go on)."""

    done: int = 0

    def wait(self, attempt: int, retry_after: str | None) -> None:
        """Waits as the policy would before retry number `done + attempt` of this search."""
        super().wait(self.done + attempt, retry_after)


class CvrClient:
    """Looks up companies in the CVR register; safe to share between threads."""

    #: Numbers per search in `lookup_many`; an instance may lower it (tests, a register with a short URL limit).
    terms_per_search: int = TERMS_PER_SEARCH

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout: float = 20.0,
        max_retries: int = 4,
        backoff_seconds: float = 0.5,
        max_wait_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        # http.send puts it after "Basic "; user and password are joined as RFC 7617 says, then base64.
        self._credential = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self.timeout, self.max_retries = timeout, max_retries
        self._policy = _ResumedPolicy(
            "CVR", max_retries, backoff_seconds, max_wait_seconds, sleep=sleep, refused=_REPEATABLE
        )
        self._session = pooled_session()

    def lookup(self, cvr: str) -> Company:
        """The company with this CVR number (8 digits; the caller checks modulus 11 itself)."""
        # The value is never echoed: a CPR number typed into a CVR field must not reach a log or a message.
        if not isinstance(cvr, str) or not _CVR.fullmatch(cvr):
            raise ValueError("A CVR number is 8 digits.")
        query = {"query": {"term": {CVR_FIELD: int(cvr)}}, "_source": _SOURCE, "size": 2}
        # Two hits are enough to tell one company from several; how many there are comes from hits.total.
        status, body = self._search(query)
        return _company(cvr, status, body)

    def lookup_many(self, cvrs: Iterable[str]) -> dict[str, Company | CvrNotFoundError | CvrAmbiguousError]:
        """Each distinct CVR number's company, or its not-found or ambiguous error, in searches of many numbers.

        Every number is checked before any request (ValueError, never echoing the value); a technical failure
        of any search raises `CvrError` for the whole call, as `lookup` does.
        """
        if isinstance(cvrs, str):  # one number given bare would be read as eight one-digit "numbers"
            raise TypeError("lookup_many takes an iterable of CVR numbers, not one string.")
        wanted: dict[str, None] = {}  # distinct numbers in the order given
        for cvr in cvrs:
            if not isinstance(cvr, str) or not _CVR.fullmatch(cvr):
                raise ValueError("A CVR number is 8 digits.")
            wanted[cvr] = None
        numbers = list(wanted)
        size = max(1, self.terms_per_search)
        found: dict[str, Company | CvrNotFoundError | CvrAmbiguousError] = {}
        for start in range(0, len(numbers), size):
            found |= self._search_many(numbers[start : start + size])
        return found

    def _search_many(self, cvrs: list[str]) -> dict[str, Company | CvrNotFoundError | CvrAmbiguousError]:
        """One `terms` search for these numbers, its hits grouped by number and read as `lookup` reads one."""
        query = {
            "query": {"terms": {CVR_FIELD: [int(cvr) for cvr in cvrs]}},
            "_source": _SOURCE,
            "size": MAX_RESULT_WINDOW,
        }
        status, body = self._search(query)
        count = _count(_at(body, status, "hits", "total"), status)
        hits = _at(body, status, "hits", "hits")
        if not isinstance(hits, list):
            raise CvrError(status, "malformed answer: hits.hits is not a list")
        if count != len(hits):
            # Fewer hits than matches: a number's second document may be missing, so none can be trusted.
            raise CvrError(status, f"the answer holds {len(hits)} of {count} matching documents")
        grouped: dict[str, list[Any]] = {cvr: [] for cvr in cvrs}
        for hit in hits:
            document = _at(hit, status, "_source", "Vrvirksomhed")
            number = str(_at(document, status, "cvrNummer")).zfill(8)
            if number not in grouped:  # another number's data attached to a claim would pay the wrong company
                raise CvrError(status, "malformed answer: a document is for a CVR number not asked for")
            grouped[number].append(document)
        result: dict[str, Company | CvrNotFoundError | CvrAmbiguousError] = {}
        for cvr, documents in grouped.items():
            if not documents:
                result[cvr] = CvrNotFoundError(cvr)
            elif len(documents) > 1:
                result[cvr] = CvrAmbiguousError(cvr, len(documents))
            else:
                result[cvr] = _from_document(cvr, status, documents[0])
        return result

    def _search(self, query: dict[str, Any]) -> tuple[int, Any]:
        """Runs one search, retrying timeouts and partial answers here and the rest in `send`; status and JSON."""
        sent = 0  # requests made for this search: the credential is asked for once before each

        def credential(rejected: str | None) -> str:
            nonlocal sent
            if rejected is not None:  # send would repeat the refused login once; there is nothing to renew
                raise CvrError(401, "the register refused the user name or password")
            sent += 1
            return self._credential

        while True:
            done = sent  # the next request is retry number `sent` (none on the first pass), wherever it is made
            policy = replace(self._policy, max_retries=self.max_retries - done, done=done)
            try:
                response = send(
                    self._session,
                    "POST",
                    self.base_url,
                    SEARCH_PATH,
                    token=credential,
                    error=CvrError,
                    message=_message,
                    policy=policy,
                    timeout=self.timeout,
                    auth_scheme="Basic",
                    json=query,
                )
                body = _json(response)
                if not _partial(body):
                    return response.status_code, body
                failure = CvrError(response.status_code, "partial answer (timed out or shards failed)")
            except CvrError as error:
                if error.status is not None:  # an error answer, already retried by send as far as it may be
                    raise
                failure = error  # a timeout or a dropped connection: send gives up on a POST it may have sent
            if sent - 1 >= self.max_retries:
                raise failure
            self._policy.wait(sent - 1, None)


def _json(response: requests.Response) -> Any:
    """The answer's JSON; CvrError when it is not JSON (a proxy's error page, a truncated answer)."""
    try:
        return response.json()
    except ValueError:
        raise CvrError(response.status_code, "the answer is not JSON") from None


def _partial(body: Any) -> bool:
    """Whether Elasticsearch says it may have missed documents (a search timeout or failed shards)."""
    if not isinstance(body, dict):
        return False  # malformed: reported as such when read
    shards = body.get("_shards")
    failed = shards.get("failed", 0) if isinstance(shards, dict) else 0
    return body.get("timed_out") is True or (isinstance(failed, int) and failed > 0)


def _at(value: Any, status: int, *path: str | int) -> Any:
    """The part of an answer at `path`; CvrError naming the path (never the values) when it is missing."""
    for step in path:
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError):
            raise CvrError(status, f"malformed answer: no {'.'.join(map(str, path))}") from None
    return value


def _count(total: Any, status: int) -> int:
    """How many documents matched: hits.total is a number before Elasticsearch 7, {"value", "relation"} after."""
    value = total.get("value") if isinstance(total, dict) else total
    # bool is an int to Python, never to Elasticsearch.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise CvrError(status, "malformed answer: hits.total is not a count")
    return value


def _company(cvr: str, status: int, body: Any) -> Company:
    """The one company in a search answer; CvrNotFoundError, CvrAmbiguousError or CvrError otherwise."""
    count = _count(_at(body, status, "hits", "total"), status)
    if count == 0:
        raise CvrNotFoundError(cvr)
    if count > 1:
        raise CvrAmbiguousError(cvr, count)
    hits = _at(body, status, "hits", "hits")
    if not isinstance(hits, list) or len(hits) != 1:
        raise CvrError(status, "malformed answer: hits.total is 1 but hits.hits does not hold one document")
    document = _at(hits[0], status, "_source", "Vrvirksomhed")
    number = _at(document, status, "cvrNummer")
    # A register answer for another number would attach the wrong company's data to the request.
    if str(number).zfill(8) != cvr:
        raise CvrError(status, "malformed answer: the document is for another CVR number")
    return _from_document(cvr, status, document)


def _from_document(cvr: str, status: int, document: Any) -> Company:
    """The company a register document (`_source.Vrvirksomhed`) for this CVR number describes; CvrError if unusable."""
    metadata = _at(document, status, "virksomhedMetadata")
    address = _at(metadata, status, "nyesteBeliggenhedsadresse")
    status_text = _at(metadata, status, "sammensatStatus") or ""
    form = _at(metadata, status, "nyesteVirksomhedsform") or {}
    try:
        return Company(
            cvr=cvr,
            name=_at(metadata, status, "nyesteNavn", "navn"),
            street=_street(address, status),
            postal_code=str(_at(address, status, "postnummer")).zfill(4),
            city=_at(address, status, "postdistrikt"),
            country=address.get("landekode") or "DK",
            co_name=address.get("conavn") or None,
            status=CompanyStatus.ACTIVE if str(status_text).strip().upper() in _ACTIVE else CompanyStatus.NOT_ACTIVE,
            status_text=status_text,
            company_form=form.get("kortBeskrivelse") if isinstance(form, dict) else None,
        )
    except ValidationError as error:  # BoundaryModel's errors name the fields, never their values
        fields = ", ".join(sorted({".".join(map(str, e["loc"])) for e in error.errors()}))
        raise CvrError(status, f"malformed answer: unusable {fields}") from None
    except AttributeError:  # the address is not an object
        raise CvrError(status, "malformed answer: nyesteBeliggenhedsadresse is not an address") from None


def _street(address: Any, status: int) -> str:
    """Street name, house number and letter as one line: "Vesterbrogade 10A"."""
    number = f"{address.get('husnummerFra') or ''}{address.get('bogstavFra') or ''}"
    street = _at(address, status, "vejnavn")
    if not isinstance(street, str) or not street.strip():
        raise CvrError(status, "malformed answer: the address has no street name")
    return f"{street.strip()} {number}" if number else street.strip()


def _message(response: requests.Response) -> str:
    """Elasticsearch's error type and reason from an error answer, else the start of its text."""
    try:
        error = response.json()["error"]
        if isinstance(error, str):  # some errors (a wrong method) are a bare string
            return error
        return f"{error['type']}: {error['reason']}"
    except (ValueError, KeyError, TypeError):
        return response.text[:500]


@cache
def cvr_client() -> CvrClient:
    """The app's CVR client, built on first use from settings."""
    settings = get_settings()
    base_url, username, password = settings.cvr_base_url, settings.cvr_username, settings.cvr_password
    if not (base_url and username and password):
        missing = [
            name
            for name, value in (("CVR_BASE_URL", base_url), ("CVR_USERNAME", username), ("CVR_PASSWORD", password))
            if not value
        ]
        raise RuntimeError(f"CVR-indstillingerne mangler ({', '.join(missing)}).")
    return CvrClient(base_url, username, password.get_secret_value(), timeout=settings.cvr_timeout_seconds)
