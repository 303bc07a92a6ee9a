"""What the clients of KS's SAP Gateway services (Kvantum, Opus Debitor) share: SAP Gateway's JSON plumbing.

- HTTP basic authentication on every request; a 401 is reported at once rather than repeated, because every
  failed logon counts towards SAP locking the integration user.
- Reads answer `{"d": {"results": [...], "__next": "<link>"}}`; the client follows `__next` (its path and query
  only, on the configured host, so credentials never go elsewhere) until there is none.
- SAP's CSRF protection: a POST carries the token from a `GET` with `X-CSRF-Token: Fetch` (with the
  `SAP_SESSIONID_...` cookie the requests session keeps). The token is cached; a `403` with
  `X-CSRF-Token: Required` (the session expired) fetches a fresh one and repeats the POST once, which is safe
  because SAP refuses before processing anything.
- Errors are SAP Gateway's: `{"error": {"code": "<message class>/<number>", "message": {"lang", "value"}}}`.
  A `400` to a POST with an application message is the system refusing the record (the service's refusal
  error, for a person to act on); the Gateway framework's own `/IWBEP/...` codes and everything else are
  technical (the service's error).

A service's client subclasses `SapGatewayClient` and names its service root, its exceptions and the name its
retries are logged under.
"""

import base64
import re
import time
from collections.abc import Callable
from threading import Lock
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urljoin, urlsplit

import requests

from shared.connectors.http import RetryPolicy, pooled_session, send

#: An SAP application message: message class and number, e.g. F2/173 or ZOPUS/010 (not /IWBEP/CM_MGW_RT/020).
APPLICATION_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_]{0,19}/[0-9]{3}$")
# SAP's rate limiter answers 429 before processing; a 503 may come from the web dispatcher after it.
REFUSED = frozenset({429})


class CsrfRequiredError(Exception):
    """The service refused a POST's CSRF token (403, `X-CSRF-Token: Required`): fetch a new one and repeat."""


class SapGatewayClient:
    """A client of one SAP Gateway service, safe to share between threads; subclasses name the service."""

    #: The service root under the base URL (added unless the URL already ends with it).
    service_path: ClassVar[str]
    #: What the service is called in messages about `__next`, e.g. "the vendor service".
    service_noun: ClassVar[str]
    #: The name retries are logged under (`ks.connectors.<name lower-cased>`).
    retry_name: ClassVar[str]
    #: The technical error, built from (status, message).
    error: ClassVar[type[Exception]]
    #: The application's refusal of a POST, built from (code, message).
    refusal: ClassVar[type[Exception]]

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff_seconds: float = 0.5,
        max_wait_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/").removesuffix(self.service_path) + self.service_path
        self.timeout = timeout
        # user:password in UTF-8, base64: the same header on every request (SAP keeps no state the client needs).
        self._basic = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._policy = RetryPolicy(
            self.retry_name, max_retries, backoff_seconds, max_wait_seconds, sleep=sleep, refused=REFUSED
        )
        self._session = pooled_session()  # keeps the SAP session cookie the CSRF token belongs to
        self._csrf_token: str | None = None
        self._csrf_lock = Lock()

    # --- reads ----------------------------------------------------------------------------------------------

    def _results(self, path: str, query: list[tuple[str, str]]) -> list[Any]:
        """The `d.results` of a query, every page collected by following `__next`."""
        records: list[Any] = []
        seen: set[str] = set()
        while True:
            body = self._json(self._send("GET", path, params=query))
            page = body.get("d")
            if not isinstance(page, dict) or not isinstance(page.get("results"), list):
                raise self.error(200, f"GET {path}: the answer has no d.results")
            records += page["results"]
            next_link = page.get("__next")
            if not next_link:
                return records
            if str(next_link) in seen:  # a service that keeps sending the same page would never end
                raise self.error(200, f"GET {path}: __next does not advance")
            seen.add(str(next_link))
            path, query = self._relative(str(next_link), path)

    def _relative(self, link: str, path: str) -> tuple[str, list[tuple[str, str]]]:
        """A `__next` link as a path under the service root and its query, to be sent to the configured host."""
        parts = urlsplit(urljoin(f"{self.base_url}{path}", link))
        root = urlsplit(self.base_url).path
        if not parts.path.startswith(f"{root}/"):
            raise self.error(200, f"__next points outside {self.service_noun}")
        return parts.path.removeprefix(root), parse_qsl(parts.query, keep_blank_values=True)

    # --- writes ---------------------------------------------------------------------------------------------

    def _post(self, path: str, body: dict[str, Any]) -> requests.Response:
        """A POST with the session's CSRF token; a token the service no longer accepts is replaced once."""
        token = self._csrf(None)
        try:
            return self._send("POST", path, headers={"X-CSRF-Token": token}, json=body)
        except CsrfRequiredError:
            pass  # the SAP session expired; SAP refused before processing, so repeating is safe
        token = self._csrf(token)
        try:
            return self._send("POST", path, headers={"X-CSRF-Token": token}, json=body)
        except CsrfRequiredError:
            raise self.error(403, "CSRF token validation failed, also with a fresh token") from None

    def _csrf(self, rejected: str | None) -> str:
        """The session's CSRF token, fetched when there is none or when the service rejected the one given."""
        with self._csrf_lock:
            # Fetch only while the token is missing or still the rejected one: another thread may have renewed it.
            if self._csrf_token is None or self._csrf_token == rejected:
                response = self._send("GET", "/", headers={"X-CSRF-Token": "Fetch"})
                token = response.headers.get("X-CSRF-Token", "")
                if not token or token.lower() == "required":
                    raise self.error(response.status_code, "no CSRF token in the answer to the fetch")
                self._csrf_token = token
            return self._csrf_token

    # --- transport ------------------------------------------------------------------------------------------

    def _credential(self, rejected: str | None) -> str:
        """The basic credential; a rejected one is reported, not repeated (SAP locks users after failed logons)."""
        if rejected is not None:
            raise self.error(401, "the user or password was refused")
        return self._basic

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request to the service under the retry policy; the first answer below 400."""
        answer = ErrorAnswer(method, path, self.error, self.refusal)
        return send(
            self._session,
            method,
            self.base_url,
            path,
            token=self._credential,
            error=answer.error,
            message=answer.message,
            policy=self._policy,
            timeout=self.timeout,
            auth_scheme="Basic",
            **kwargs,
        )

    def _json(self, response: requests.Response) -> dict[str, Any]:
        """The JSON object of an answer below 400, or a technical error when it is not one."""
        try:
            body = response.json()
        except ValueError:
            raise self.error(response.status_code, "the answer is not JSON") from None
        if not isinstance(body, dict):
            raise self.error(response.status_code, "the answer is not a JSON object")
        return body


class ErrorAnswer:
    """Reads an error answer for `send`, which hands the error factory only a status and a text.

    `message` sees the response and notes what `error` needs to choose the exception: the SAP message code
    and whether the answer asks for a CSRF token.
    """

    def __init__(self, method: str, path: str, error: type[Exception], refusal: type[Exception]) -> None:
        self.method, self.path = method, path
        self._error, self._refusal = error, refusal
        self.code = ""
        self.csrf_required = False

    def message(self, response: requests.Response) -> str:
        """SAP's message text from an error answer (noting its code), else the start of the text."""
        self.csrf_required = (
            response.status_code == 403 and response.headers.get("X-CSRF-Token", "").lower() == "required"
        )
        self.code, text = sap_error(response)
        return text

    def error(self, status: int | None, text: str) -> Exception:
        """The exception for a failed request: a CSRF refusal, the application refusing a POST, or technical."""
        if status == 403 and self.csrf_required:
            return CsrfRequiredError()
        # Only an application message refuses a record; the Gateway framework's own codes (/IWBEP/..., /IWCOR/...)
        # mean the request was malformed, which is this program's fault, not the requester's.
        if status == 400 and self.method == "POST" and APPLICATION_CODE.match(self.code):
            return self._refusal(self.code, text)
        detail = f"{self.code}: {text}" if self.code else text
        return self._error(status, f"{self.method} {self.path}: {detail}" if status is not None else text)


def sap_error(response: requests.Response) -> tuple[str, str]:
    """SAP Gateway's (code, message text) from an error answer; without its body, no code and the text's start."""
    try:
        error = response.json()["error"]
        code = str(error.get("code") or "")
        message = error.get("message")
        return code, str(message.get("value", "") if isinstance(message, dict) else message or "")
    except (ValueError, KeyError, TypeError, AttributeError):
        return "", response.text[:500]
