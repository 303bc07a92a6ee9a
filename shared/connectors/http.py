"""Bounded retries for the connectors' HTTP calls, so every external system gets the same policy.

- A 401 gets one fresh token and one more try; the renewal does not use up an attempt.
- A 429 is retried after its Retry-After (or a growing backoff without one); a Retry-After longer than the
  connector allows raises rather than retrying early.
- 5xx answers and timeouts are retried for reads. A POST is retried only when it cannot have taken effect:
  refused with 429 (rate limiters answer before any processing) or never connected. A 503/504 can come from a
  gateway after the system accepted the request, and a read timeout can follow a completed request, so a
  second POST could create a second record or send a second mail.
- A failure while fetching the token is retried for any method: the API itself was not called yet.
"""

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from shared.logs import get_logger

#: Connections a client keeps per host: at least as many as the worker runs functions at once (the host's batch
#: of 16 queue messages and its blob triggers); urllib3 keeps 10 and reconnects for the rest.
CONNECTIONS_PER_HOST = 32


#: Environment variables that name a proxy: only then does a session read the environment per request.
_PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy", "no_proxy"})


@dataclass(frozen=True)
class HttpEnvironment:
    """What requests would read from the environment, read once: whether to trust it per request, and the CA
    bundle to verify TLS with (True: the default bundle)."""

    trust_env: bool
    verify: str | bool


def http_environment() -> HttpEnvironment:
    """The environment's HTTP settings for a new session or transport.

    A session that trusts the environment looks for a ~/.netrc file and scans the proxy variables on every
    request, which cost a tenth of the worker's CPU in the claims benchmark. So a session trusts it only when a
    proxy is configured; the CA bundle (REQUESTS_CA_BUNDLE, else CURL_CA_BUNDLE, as requests reads them) is
    taken here instead. The services authenticate with their own tokens, never with a .netrc.
    """
    proxied = any(name.lower() in _PROXY_VARIABLES for name in os.environ)
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    return HttpEnvironment(trust_env=proxied, verify=bundle or True)


def pooled_session() -> requests.Session:
    """A requests session keeping CONNECTIONS_PER_HOST connections per host, with the environment read once."""
    session = requests.Session()
    environment = http_environment()
    session.trust_env = environment.trust_env
    session.verify = environment.verify
    for prefix in ("http://", "https://"):
        session.mount(prefix, HTTPAdapter(pool_connections=CONNECTIONS_PER_HOST, pool_maxsize=CONNECTIONS_PER_HOST))
    return session


#: Token source: called with None for the current token, or with a token the API rejected (401) for a fresh one.
TokenSource = Callable[[str | None], str]
#: Builds the connector's own exception from an HTTP status (None: no answer) and a message.
ErrorFactory = Callable[[int | None, str], Exception]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long a connector retries, and which statuses mean "refused before processing"."""

    service: str
    max_retries: int = 4
    backoff_seconds: float = 0.5
    max_wait_seconds: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    refused: frozenset[int] = field(default_factory=lambda: frozenset({429}))

    def wait(self, attempt: int, retry_after: str | None) -> None:
        """Sleeps before the next attempt: Retry-After when given in seconds, else a doubling backoff, capped."""
        delay = self.backoff_seconds * 2**attempt
        if retry_after and retry_after.isdigit():
            delay = float(retry_after)
        delay = min(delay, self.max_wait_seconds)
        # Logged under the connector's own name (ks.connectors.servicenow, ...), as before the code was shared.
        log = get_logger(f"ks.connectors.{self.service.lower()}")
        log.info("%s busy or unreachable; retrying in %.1f s", self.service, delay)
        self.sleep(delay)


def send(
    session: requests.Session,
    method: str,
    base_url: str,
    path: str,
    *,
    token: TokenSource,
    error: ErrorFactory,
    message: Callable[[requests.Response], str],
    policy: RetryPolicy,
    timeout: float,
    auth_scheme: str = "Bearer",
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> requests.Response:
    """Sends one API request with its credential under the retry policy; returns the first answer below 400.

    `token` gives the credential of the `Authorization` header after `auth_scheme`: a bearer token, or for
    basic authentication the base64 of user:password (a 401 then repeats once with the same, and fails).
    """
    renewed = False
    rejected: str | None = None
    attempt = 0
    while True:
        last = attempt >= policy.max_retries
        try:
            bearer = token(rejected)
        except (requests.ConnectionError, requests.Timeout) as failure:
            if last:  # nothing reached the API, but the token endpoint stays unreachable
                raise error(None, f"token request: {type(failure).__name__}") from None
            policy.wait(attempt, None)
            attempt += 1
            continue
        rejected = None  # only once a fresh token is in hand: a failed renewal must renew again
        try:
            response = session.request(
                method,
                f"{base_url}{path}",
                headers={"Authorization": f"{auth_scheme} {bearer}", "Accept": "application/json", **(headers or {})},
                timeout=timeout,
                **kwargs,
            )
        except (requests.ConnectionError, requests.Timeout) as failure:
            # A POST that may have reached the system is not repeated: it could take effect twice.
            sent = not never_connected(failure)
            if last or (method == "POST" and sent):
                raise error(None, f"{method} {path}: {type(failure).__name__}") from None
            policy.wait(attempt, None)
            attempt += 1
            continue
        if response.status_code == 401 and not renewed:
            renewed, rejected = True, bearer  # a renewal does not use up an attempt
            continue
        if response.status_code < 400:
            return response
        transient = response.status_code in policy.refused or (response.status_code >= 500 and method != "POST")
        retry_after = response.headers.get("Retry-After", "")
        too_long = retry_after.isdigit() and float(retry_after) > policy.max_wait_seconds
        if not transient or last or too_long:  # never retry earlier than the system allows
            raise error(response.status_code, message(response))
        policy.wait(attempt, retry_after)
        attempt += 1


def never_connected(error: Exception) -> bool:
    """Whether the request cannot have reached the server (no connection was ever made)."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(reason, NewConnectionError)
