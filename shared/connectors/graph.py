"""Microsoft Graph mail: plain-text mails from the app's shared mailbox (`users/{sender}/sendMail`).

- Tokens come from Entra ID by client credentials through MSAL, for `https://graph.microsoft.com/.default`.
  MSAL's `ConfidentialClientApplication` is built on the first token request, never at import or
  construction: building it fetches the authority's OpenID configuration over the network. MSAL caches the
  token in memory until five minutes before it expires; a 401 from Graph removes it and fetches one fresh
  token for one more try (MSAL has no force_refresh for client tokens).
- Retries follow `shared.connectors.http`: a 429 is retried after its Retry-After; 503/504 and timeouts are
  not, because sendMail is a POST that Graph may already have accepted, and Graph has no idempotency key, so
  a second POST would send the mail twice. A caller that gets `GraphError` with no status (a timeout) cannot
  know whether the mail went out.
- TLS: both MSAL's requests session and this client's honour `REQUESTS_CA_BUNDLE`, which devhost and the
  tests point at a bundle that trusts the Graph simulator: MSAL reads it per request, this client's session
  when it is built (`http_environment`).
- Errors raise `GraphError` with Graph's error code and message (or MSAL's error and description), redacted.
"""

import re
import time
from collections.abc import Callable
from functools import cache
from threading import Lock
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import requests
from pydantic import Field, StringConstraints

from shared.connectors.http import RetryPolicy, pooled_session, send
from shared.logs import get_logger
from shared.models import BoundaryModel
from shared.personal_data import redact
from shared.settings import get_settings

if TYPE_CHECKING:  # msal itself is imported on the first send, so importing this module stays cheap
    import msal

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
_log = get_logger("ks.connectors.graph")

#: An address as Graph takes it: something@domain, no spaces. Graph checks deliverability itself.
Address = Annotated[str, StringConstraints(strip_whitespace=True, pattern=re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$"))]


class GraphError(Exception):
    """Graph or Entra ID answered with an error that retrying will not fix (or retries ran out)."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(redact(f"Graph {status}: {message}"))
        self.status = status


class MailMessage(BoundaryModel):
    """A plain-text mail to one or more recipients."""

    to: list[Address] = Field(min_length=1)
    subject: str = Field(min_length=1)
    body: str
    reply_to: Address | None = None

    def graph_body(self) -> dict[str, Any]:
        """The sendMail request body for this mail (saved to the sender's Sent Items)."""
        message: dict[str, Any] = {
            "subject": self.subject,
            "body": {"contentType": "Text", "content": self.body},
            "toRecipients": [{"emailAddress": {"address": address}} for address in self.to],
        }
        if self.reply_to:
            message["replyTo"] = [{"emailAddress": {"address": self.reply_to}}]
        return {"message": message, "saveToSentItems": True}


class GraphMailClient:
    """Sends mail as one mailbox through Graph, safe to share between threads."""

    def __init__(
        self,
        authority: str,
        client_id: str,
        client_secret: str,
        base_url: str,
        sender: str,
        *,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff_seconds: float = 0.5,
        max_wait_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not authority.startswith("https://"):  # MSAL refuses it too, but only on the first send
            raise ValueError("The Graph authority must be an https URL (https://login.microsoftonline.com/<tenant>).")
        self.authority = authority.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self.base_url = base_url.rstrip("/")
        self.sender = sender
        self.timeout = timeout
        self._policy = RetryPolicy("Graph", max_retries, backoff_seconds, max_wait_seconds, sleep=sleep)
        self._session = pooled_session()
        self._app: msal.ConfidentialClientApplication | None = None
        self._app_lock = Lock()

    def send_mail(self, message: MailMessage) -> None:
        """Sends a mail from the sender's mailbox; returns once Graph has accepted it (202)."""
        response = send(
            self._session,
            "POST",
            self.base_url,
            f"/users/{quote(self.sender, safe='@')}/sendMail",
            token=self._token,
            error=GraphError,
            message=_message,
            policy=self._policy,
            timeout=self.timeout,
            json=message.graph_body(),
        )
        if response.status_code != 202:  # sendMail answers 202; anything else below 400 still means accepted
            _log.warning("Graph answered sendMail with %d instead of 202", response.status_code)
        _log.info("Graph accepted a mail for %d recipient(s)", len(message.to))

    # --- tokens ---------------------------------------------------------------------------------------------

    def _msal(self) -> "msal.ConfidentialClientApplication":
        """MSAL's application, built on first use (construction fetches the authority's OpenID configuration)."""
        with self._app_lock:
            if self._app is None:
                import msal  # here, not at import: a cold start that sends no mail does not pay for it

                try:
                    self._app = msal.ConfidentialClientApplication(
                        self.client_id,
                        client_credential=self._client_secret,
                        authority=self.authority,
                        # No call to login.microsoftonline.com to validate the authority: it is configured, not
                        # typed by a user, and devhost's authority is the simulator.
                        instance_discovery=False,
                        timeout=self.timeout,
                    )
                except (msal.exceptions.MsalError, ValueError) as error:  # network errors go to the retry loop
                    raise GraphError(None, f"authority {self.authority} unusable: {error}") from None
            return self._app

    def _token(self, rejected: str | None) -> str:
        """An access token for Graph from MSAL's cache, or a fresh one when Graph has rejected the cached one."""
        import msal

        app = self._msal()
        try:
            result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
            # Only drop the token Graph rejected: another thread may have renewed it already.
            if rejected is not None and result.get("access_token") == rejected:
                app.remove_tokens_for_client()
                result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
        except (msal.exceptions.MsalError, ValueError) as error:  # a 5xx or a non-JSON token answer
            raise GraphError(None, f"token request failed: {error}") from None
        if "access_token" not in result:
            raise GraphError(None, f"token refused: {result.get('error')}: {result.get('error_description')}")
        return str(result["access_token"])


def _message(response: requests.Response) -> str:
    """Graph's error code and message from an error answer, else the start of its text."""
    try:
        error = response.json()["error"]
        return f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return response.text[:500]


@cache
def graph_mail() -> GraphMailClient:
    """The app's Graph mail client, built on first use from settings."""
    settings = get_settings()
    if not (
        settings.graph_authority and settings.graph_client_id and settings.graph_client_secret and settings.mail_sender
    ):
        raise RuntimeError(
            "Graph-indstillingerne mangler (GRAPH_AUTHORITY, GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET, MAIL_SENDER)."
        )
    return GraphMailClient(
        settings.graph_authority,
        settings.graph_client_id,
        settings.graph_client_secret.get_secret_value(),
        settings.graph_base_url,
        settings.mail_sender,
        timeout=settings.graph_timeout_seconds,
    )
