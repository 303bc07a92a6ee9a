"""ServiceNow ("Serviceportalen"): OAuth client credentials and the Table API.

- A token from `oauth_token.do` is cached until shortly before `expires_in`; a 401 refreshes it once.
- Reads page in a stable order (`ORDERBYsys_created_on`) and collect every page before the caller patches
  anything: patching while paging by offset moves records between pages and skips some.
- Catalog variables come back only when named: `fields=["number", "variables.cvr"]`.
- Transient failures (429 with Retry-After, 5xx, timeouts) are retried with bounded backoff
  (`shared.connectors.http`); a create is retried only when the request cannot have taken effect (refused
  with 429, or never connected), as a second POST would create a second record. Other errors raise
  `ServiceNowError` with the response text, redacted.
"""

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from threading import Lock
from typing import Any

import requests

from shared.connectors.http import RetryPolicy, pooled_session, send
from shared.personal_data import redact
from shared.settings import get_settings

# ServiceNow's rate limiter answers 429 before processing; a 503 may come from a gateway after it.
_REFUSED = frozenset({429})


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
        self._policy = RetryPolicy(
            "ServiceNow", max_retries, backoff_seconds, max_wait_seconds, sleep=sleep, refused=_REFUSED
        )
        self._session = pooled_session()
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

    def _token_for(self, rejected: str | None) -> str:
        """The bearer token, renewed when the instance has rejected it."""
        return self._bearer(renew=rejected is not None)

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One Table API request under the retry policy; its JSON answer."""
        response = send(
            self._session,
            method,
            self.instance_url,
            path,
            token=self._token_for,
            error=ServiceNowError,
            message=_message,
            policy=self._policy,
            timeout=self.timeout,
            **kwargs,
        )
        return response.json()


def _fields(fields: Sequence[str]) -> dict[str, str]:
    return {"sysparm_fields": ",".join(fields)} if fields else {}


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
