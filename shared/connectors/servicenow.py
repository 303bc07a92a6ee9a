"""ServiceNow ("Serviceportalen"): OAuth client credentials and the Table API.

- A token from `oauth_token.do` is cached until shortly before `expires_in`; a 401 refreshes it once.
- Reads page in a stable order (`ORDERBYsys_created_on`) and collect every page before the caller patches
  anything: patching while paging by offset moves records between pages and skips some.
- Catalog variables come back only when named: `fields=["number", "variables.cvr"]`.
- Transient failures (429 with Retry-After, 5xx, timeouts) are retried with bounded backoff; a create is
  retried only when the request cannot have taken effect (refused with 429/503, or never connected), as a
  second POST would create a second record. Other errors raise `ServiceNowError` with the response text,
  redacted.
"""

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from threading import Lock
from typing import Any

import requests
from urllib3.exceptions import NewConnectionError

from shared.logs import get_logger
from shared.personal_data import redact
from shared.settings import get_settings

_log = get_logger("ks.connectors.servicenow")
_REFUSED = {429}  # ServiceNow's rate limiter answers before processing; a 503 may come from a gateway after


class ServiceNowError(Exception):
    """ServiceNow answered with an error that retrying will not fix (or retries ran out)."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(redact(f"ServiceNow {status}: {message}"))
        self.status = status


class ServiceNowClient:
    """A Table API client for one instance, safe to share between threads."""

    def __init__(
        self,
        instance_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff_seconds: float = 0.5,
        max_wait_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.instance_url = instance_url.rstrip("/")
        self._credentials = {"client_id": client_id, "client_secret": client_secret}
        self.timeout, self.max_retries = timeout, max_retries
        self.backoff_seconds, self.max_wait_seconds = backoff_seconds, max_wait_seconds
        self._sleep = sleep
        self._session = requests.Session()
        self._token: tuple[str, datetime] | None = None
        self._token_lock = Lock()

    # --- the Table API --------------------------------------------------------------------------------------

    def get(self, table: str, sys_id: str, fields: Sequence[str] = ()) -> dict[str, Any]:
        """One record."""
        return self._call("GET", f"/api/now/table/{table}/{sys_id}", params=_fields(fields))["result"]

    def create(self, table: str, record: dict[str, Any], fields: Sequence[str] = ()) -> dict[str, Any]:
        """Creates a record and returns it as the instance stored it."""
        return self._call("POST", f"/api/now/table/{table}", params=_fields(fields), json=record)["result"]

    def patch(self, table: str, sys_id: str, changes: dict[str, Any], fields: Sequence[str] = ()) -> dict[str, Any]:
        """Updates some fields of a record."""
        path = f"/api/now/table/{table}/{sys_id}"
        return self._call("PATCH", path, params=_fields(fields), json=changes)["result"]

    def query(
        self, table: str, encoded_query: str, fields: Sequence[str] = (), page_size: int = 200
    ) -> list[dict[str, Any]]:
        """Every record matching an encoded query, all pages collected, in a stable order."""
        if "ORDERBY" not in encoded_query:
            encoded_query = f"{encoded_query}^ORDERBYsys_created_on" if encoded_query else "ORDERBYsys_created_on"
        if "ORDERBYsys_id" not in encoded_query:
            encoded_query += "^ORDERBYsys_id"  # sys_created_on is to the second: a tie-breaker keeps pages stable
        records: list[dict[str, Any]] = []
        while True:
            params = {"sysparm_query": encoded_query, "sysparm_limit": page_size, "sysparm_offset": len(records)}
            page = self._call("GET", f"/api/now/table/{table}", params={**params, **_fields(fields)})["result"]
            if not page:  # a short page is no end: access rules can leave pages short
                return records
            records += page

    # --- transport ------------------------------------------------------------------------------------------

    def _bearer(self, *, renew: bool = False) -> str:
        with self._token_lock:
            if renew or self._token is None or self._token[1] <= datetime.now(UTC):
                response = self._session.post(
                    f"{self.instance_url}/oauth_token.do",
                    data={"grant_type": "client_credentials", **self._credentials},
                    timeout=self.timeout,
                )
                if response.status_code != 200:
                    raise ServiceNowError(response.status_code, f"token refused: {response.text[:500]}")
                body = response.json()
                # Renew a minute early, so a token never expires between being read and being used.
                lifetime = max(0, int(body.get("expires_in", 1800)) - 60)
                self._token = (body["access_token"], datetime.now(UTC) + timedelta(seconds=lifetime))
            return self._token[0]

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        renewed = False
        attempt = 0
        while True:
            last = attempt >= self.max_retries
            try:
                response = self._session.request(
                    method,
                    f"{self.instance_url}{path}",
                    headers={"Authorization": f"Bearer {self._bearer()}", "Accept": "application/json"},
                    timeout=self.timeout,
                    **kwargs,
                )
            except (requests.ConnectionError, requests.Timeout) as error:
                # A POST that may have reached the instance is not repeated: it could create a second record.
                sent = not _never_connected(error)
                if last or (method == "POST" and sent):
                    raise ServiceNowError(None, f"{method} {path}: {type(error).__name__}") from None
                self._wait(attempt, None)
                attempt += 1
                continue
            if response.status_code == 401 and not renewed:
                renewed = True  # a renewal does not use up an attempt
                self._bearer(renew=True)
                continue
            if response.status_code < 400:
                return response.json()
            transient = response.status_code in _REFUSED or (response.status_code >= 500 and method != "POST")
            retry_after = response.headers.get("Retry-After", "")
            too_long = retry_after.isdigit() and float(retry_after) > self.max_wait_seconds
            if not transient or last or too_long:  # never retry earlier than the instance allows
                raise ServiceNowError(response.status_code, _message(response))
            self._wait(attempt, retry_after)
            attempt += 1

    def _wait(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff_seconds * 2**attempt
        if retry_after and retry_after.isdigit():
            delay = float(retry_after)
        delay = min(delay, self.max_wait_seconds)
        _log.info("ServiceNow busy or unreachable; retrying in %.1f s", delay)
        self._sleep(delay)


def _fields(fields: Sequence[str]) -> dict[str, str]:
    return {"sysparm_fields": ",".join(fields)} if fields else {}


def _never_connected(error: Exception) -> bool:
    """Whether the request cannot have reached the instance (no connection was ever made)."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(reason, NewConnectionError)


def _message(response: requests.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:500]


@cache
def servicenow() -> ServiceNowClient:
    """The app's ServiceNow client, built on first use from settings."""
    settings = get_settings()
    if not (settings.servicenow_instance_url and settings.servicenow_client_id and settings.servicenow_client_secret):
        raise RuntimeError("ServiceNow-indstillingerne mangler (SERVICENOW_INSTANCE_URL, _CLIENT_ID, _CLIENT_SECRET).")
    return ServiceNowClient(
        settings.servicenow_instance_url,
        settings.servicenow_client_id,
        settings.servicenow_client_secret.get_secret_value(),
        timeout=settings.servicenow_timeout_seconds,
    )
