"""A Microsoft Graph simulator: the Entra ID endpoints MSAL calls, and sendMail, over HTTPS.

For an authority `https://127.0.0.1:PORT/{tenant}` and `instance_discovery=False`, msal 1.39 asks for
`GET /{tenant}/v2.0/.well-known/openid-configuration` when the application is built (unknown tenant: 400
`invalid_tenant`, AADSTS90002), then `POST /{tenant}/oauth2/v2.0/token` (form: grant_type=client_credentials,
client_id, client_secret, scope; a Basic header is accepted too). A wrong secret answers 401 `invalid_client`
(AADSTS7000215), an unknown client 400 `unauthorized_client` (AADSTS700016), as Entra does.

Graph: `POST /v1.0/users/{sender}/sendMail` checks the bearer token (401 `InvalidAuthenticationToken`), the
mailbox (404 `ErrorInvalidUser`) and the JSON (400 `ErrorInvalidRecipients` without valid recipients,
`BadRequest` for a body that is not a message), then answers 202 with no body and puts the mail in
`state.outbox`. Errors are `{"error": {"code", "message"}}`.

For devhost users and tests: `GET /_outbox` (the mails, JSON), `POST /_control/reset`,
`/_control/expire_tokens`, `/_control/revoke_secret`, `/_control/slow` `{"seconds"}` and `/_control/fault`
`{"kind", "count", "value", "message", "endpoint"}`. Fault kinds: "429" (Retry-After `value`), "timeout"
(answer only after `value` seconds, and then as normal: the mail is sent although the client gave up, as when
a gateway is slow), "401" (the token is refused) or any other HTTP status (answered without sending). Faults
hit sendMail unless `endpoint` is "token".

MSAL and the client check the certificate through requests: point `REQUESTS_CA_BUNDLE` at
`server.certificate.bundle` (certifi's roots plus the simulator's CA).
"""

import base64
import json
import secrets
import shutil
import ssl
import string
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, unquote_plus, urlparse

from devhost import certs
from devhost.certs import LoopbackCertificate
from devhost.simulators.base import JsonHandler, LoopbackServer, fault_arguments

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
_ERROR_CODES = {
    400: "BadRequest",
    401: "InvalidAuthenticationToken",
    403: "ErrorAccessDenied",
    404: "ErrorInvalidUser",
    429: "ApplicationThrottled",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


def _letters(length: int = 48) -> str:
    """A random token of letters only: no digit runs that a log scan could take for a CPR number."""
    return "".join(secrets.choice(string.ascii_letters) for _ in range(length))


def _guid() -> str:
    """A GUID-shaped id (request, trace, correlation) spelt with the hex letters only, for the same reason."""
    return "-".join("".join(secrets.choice("abcdef") for _ in range(n)) for n in (8, 4, 4, 4, 12))


class GraphState:
    """The simulated tenant and mailboxes: credentials, issued tokens, sent mail, requests seen, pending faults."""

    def __init__(
        self,
        client_id: str = "devhost",
        client_secret: str = "devhost-secret",  # noqa: S107 - the simulator's documented local secret
        tenant: str = "devhost-tenant",
        mailboxes: tuple[str, ...] = ("robot@devhost.example",),
    ) -> None:
        self.lock = threading.RLock()
        self.client_id, self.client_secret, self.tenant = client_id, client_secret, tenant
        self._configured_secret = client_secret
        self.mailboxes = {mailbox.lower() for mailbox in mailboxes}
        # Above MSAL's five-minute margin, so MSAL's cache keeps the token (Entra issues 60-90 minutes).
        self.token_lifetime = 3599
        self.reset()

    def reset(self) -> None:
        """Empties the outbox and forgets tokens, requests, faults and slowness; restores the client secret."""
        with self.lock:
            self.client_secret = self._configured_secret
            self.tokens: dict[str, datetime] = {}
            self.token_requests = 0
            self.requests: list[tuple[str, str]] = []  # (method, path) of every protocol request
            self.outbox: list[dict[str, Any]] = []
            self.faults: list[tuple[str, str, float, str]] = []  # (endpoint, kind, value, message)
            self.slow_seconds = 0.0

    def expire_tokens(self) -> None:
        """Every issued token stops working (as after expires_in, or a revoked grant)."""
        with self.lock:
            self.tokens.clear()

    def revoke_secret(self) -> None:
        """The app's client secret stops working (as when it expires or is rotated in Entra)."""
        with self.lock:
            self.client_secret = _letters(24)

    def inject(self, kind: str, count: int = 1, value: float = 0, message: str = "", endpoint: str = "graph") -> None:
        """The next `count` requests to sendMail (or to the token endpoint) fail this way."""
        if endpoint not in ("graph", "token"):
            raise ValueError(f"unknown endpoint {endpoint!r}: 'graph' or 'token'")
        with self.lock:
            self.faults += [(endpoint, kind, value, message)] * count

    def count(self, method: str, suffix: str) -> int:
        """How many requests with this method had a path ending so (e.g. "POST", "/sendMail")."""
        with self.lock:
            return sum(1 for m, path in self.requests if m == method and path.endswith(suffix))

    def take_fault(self, endpoint: str) -> tuple[str, float, str] | None:
        """Removes and returns the next fault for this endpoint (kind, value, message), if any."""
        with self.lock:
            for index, fault in enumerate(self.faults):
                if fault[0] == endpoint:
                    del self.faults[index]
                    return fault[1:]
        return None


class _Handler(JsonHandler):
    server: "GraphServer"
    protocol_version = "HTTP/1.1"

    # --- plumbing -------------------------------------------------------------------------------------------

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _graph_error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        inner = {"date": stamp, "request-id": _guid(), "client-request-id": _guid()}
        self.reply(status, {"error": {"code": code, "message": message, "innerError": inner}}, headers)

    def _entra_error(self, status: int, error: str, description: str, code: int) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        trace, correlation = _guid(), _guid()
        text = f"{description} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {stamp}"
        body = {
            "error": error,
            "error_description": text,
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
        }
        self.reply(status, body)

    def _accepted(self) -> None:
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _fault(self, endpoint: str) -> bool:
        """Applies slowness and the next fault for this endpoint; True when the fault has answered."""
        state = self.server.state
        if state.slow_seconds:
            time.sleep(state.slow_seconds)
        fault = state.take_fault(endpoint)
        if fault is None:
            return False
        kind, value, message = fault
        if kind == "timeout":
            time.sleep(value)
            return False  # then answered as normal, too late for a client that has given up
        if kind == "429":
            retry = {"Retry-After": str(int(value))}
            if endpoint == "token":
                self.reply(
                    429, {"error": "temporarily_unavailable", "error_description": message or "Throttled"}, retry
                )
            else:
                self._graph_error(
                    429, "ApplicationThrottled", message or "Application is over its MailboxConcurrency limit.", retry
                )
            return True
        status = int(kind)
        if endpoint == "token":
            self.reply(status, {"error": "temporarily_unavailable", "error_description": message or "Unavailable"})
        else:
            self._graph_error(status, _ERROR_CODES.get(status, "UnknownError"), message or f"Simulated {status}.")
        return True

    # --- routes ---------------------------------------------------------------------------------------------

    def _route(self, method: str) -> None:
        state = self.server.state
        url = urlparse(self.path)
        body = self._body()
        parts = [unquote(part) for part in url.path.strip("/").split("/")]
        if url.path == "/_outbox" and method == "GET":
            with state.lock:
                outbox = list(state.outbox)
            self.reply(200, outbox)
            return
        if url.path.startswith("/_control/") and method == "POST":
            self._control(url.path, json.loads(body or b"{}"))
            return
        with state.lock:
            state.requests.append((method, url.path))
        tenant_path = len(parts) >= 2 and parts[0] == state.tenant
        if method == "GET" and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            self._discovery(parts[0])
        elif method == "POST" and tenant_path and parts[1:] == ["oauth2", "v2.0", "token"]:
            self._token(body)
        elif method == "POST" and len(parts) == 4 and parts[:2] == ["v1.0", "users"] and parts[3].lower() == "sendmail":
            self._send_mail(parts[2], body)  # Graph's path segments are case-insensitive
        else:
            self._graph_error(400, "BadRequest", f"Resource not found for the segment '{parts[-1] if parts else ''}'.")

    def _discovery(self, tenant: str) -> None:
        state = self.server.state
        if tenant != state.tenant:
            self._entra_error(400, "invalid_tenant", f"AADSTS90002: Tenant '{tenant}' not found.", 90002)
            return
        base = f"{self.server.url}/{tenant}"
        self.reply(
            200,
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{base}/v2.0",
                "request_uri_parameter_supported": False,
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
                "msgraph_host": "graph.microsoft.com",
            },
        )

    def _token(self, body: bytes) -> None:
        state = self.server.state
        with state.lock:
            state.token_requests += 1
        if self._fault("token"):
            return
        form = {key: values[-1] for key, values in parse_qs(body.decode()).items()}
        basic = self.headers.get("Authorization", "")
        if basic.startswith("Basic "):  # client_secret_basic: both parts form-encoded, then base64
            user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
            form.setdefault("client_id", unquote_plus(user))
            form.setdefault("client_secret", unquote_plus(password))
        if form.get("grant_type") != "client_credentials":
            self._entra_error(
                400, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.", 70003
            )
        elif form.get("client_id") != state.client_id:
            self._entra_error(
                400,
                "unauthorized_client",
                f"AADSTS700016: Application with identifier '{form.get('client_id')}' was not found in the directory.",
                700016,
            )
        elif form.get("client_secret") != state.client_secret:
            self._entra_error(
                401,
                "invalid_client",
                "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the "
                f"client secret value, not the client secret ID, for a secret added to app '{state.client_id}'.",
                7000215,
            )
        elif GRAPH_SCOPE not in form.get("scope", "").split():
            self._entra_error(
                400, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid.", 1002012
            )
        else:
            token = _letters()
            with state.lock:
                state.tokens[token] = datetime.now(UTC) + timedelta(seconds=state.token_lifetime)
            self.reply(
                200,
                {
                    "token_type": "Bearer",
                    "expires_in": state.token_lifetime,
                    "ext_expires_in": state.token_lifetime,
                    "access_token": token,
                },
            )

    def _authorised(self) -> str | None:
        """Why the bearer token is refused, or None when it is good."""
        state = self.server.state
        header = self.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or not header[7:].strip():
            return "Access token is empty."
        with state.lock:
            expiry = state.tokens.get(header[7:].strip())
        if expiry is None or expiry <= datetime.now(UTC):
            return "Lifetime validation failed, the token is expired."
        return None

    def _send_mail(self, sender: str, body: bytes) -> None:
        state = self.server.state
        if self._fault("graph"):
            return
        refused = self._authorised()
        if refused:
            challenge = {"WWW-Authenticate": 'Bearer realm="", authorization_uri="", client_id=""'}
            self._graph_error(401, "InvalidAuthenticationToken", refused, challenge)
            return
        if sender.lower() not in state.mailboxes:
            self._graph_error(404, "ErrorInvalidUser", f"The requested user '{sender}' is invalid.")
            return
        mail = _read_mail(body)
        if isinstance(mail, tuple):
            self._graph_error(400, *mail)
            return
        with state.lock:
            state.outbox.append({"sender": sender, **mail, "sent": datetime.now(UTC).isoformat()})
        self._accepted()

    def _control(self, path: str, body: dict[str, Any]) -> None:
        state = self.server.state
        if path == "/_control/reset":
            state.reset()
        elif path == "/_control/expire_tokens":
            state.expire_tokens()
        elif path == "/_control/revoke_secret":
            state.revoke_secret()
        elif path == "/_control/slow":
            state.slow_seconds = float(body.get("seconds", 0))
        elif path == "/_control/fault":
            state.inject(*fault_arguments(body, "graph"))
        else:
            self._graph_error(404, "NotFound", "unknown control")
            return
        self.reply(200, {})


def _read_mail(body: bytes) -> dict[str, Any] | tuple[str, str]:
    """The mail of a sendMail request as the outbox records it, or Graph's (code, message) for a bad one."""
    try:
        request = json.loads(body)
        message = request["message"]
        if not isinstance(message, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return "BadRequest", (
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of "
            "valid JSON format."
        )
    recipients = _addresses(message.get("toRecipients"))
    if not recipients:
        return "ErrorInvalidRecipients", (
            "At least one recipient isn't valid., A message can't be sent because it contains no recipients."
        )
    content = message.get("body") or {}
    if not isinstance(content, dict) or str(content.get("contentType", "Text")).lower() not in ("text", "html"):
        return "RequestBodyRead", "Requested value for body.contentType was not found."
    reply_to = _addresses(message.get("replyTo") or [])
    if reply_to is None:
        return "ErrorInvalidRecipients", "At least one recipient isn't valid."
    return {
        "to": recipients,
        "reply_to": reply_to,
        "subject": str(message.get("subject", "")),
        "body": str(content.get("content", "")),
        "content_type": str(content.get("contentType", "Text")),
        "save_to_sent_items": bool(request.get("saveToSentItems", True)),
    }


def _addresses(recipients: Any) -> list[str] | None:
    """The addresses of a Graph recipient list, or None when one is malformed."""
    if not isinstance(recipients, list):
        return None
    found = []
    for recipient in recipients:
        address = recipient.get("emailAddress", {}).get("address") if isinstance(recipient, dict) else None
        if not isinstance(address, str) or "@" not in address.strip(" @"):
            return None
        found.append(address)
    return found


class GraphServer(LoopbackServer):
    """The simulator on a loopback port, over HTTPS with a certificate from `devhost.certs`."""

    def __init__(
        self, port: int = 0, state: GraphState | None = None, certificate: LoopbackCertificate | None = None
    ) -> None:
        self._own_folder: Path | None = None
        if certificate is None:  # a throwaway CA of its own, removed on stop
            self._own_folder = Path(tempfile.mkdtemp(prefix="graph-simulator-"))
            certificate = certs.make(self._own_folder)
        self.certificate = certificate
        super().__init__(port, _Handler, tls=(certificate.cert, certificate.key))
        self.state = state or GraphState()

    @property
    def authority(self) -> str:
        """The Entra ID authority to give MSAL: this server and the tenant."""
        return f"{self.url}/{self.state.tenant}"

    @property
    def base_url(self) -> str:
        """Graph's base URL on this server."""
        return f"{self.url}/v1.0"

    def settings(self) -> dict[str, str]:
        """App settings that send the app's mail here (the bundle that trusts this server is set apart)."""
        return {
            "GRAPH_AUTHORITY": self.authority,
            "GRAPH_BASE_URL": self.base_url,
            "GRAPH_CLIENT_ID": self.state.client_id,
            "GRAPH_CLIENT_SECRET": self.state.client_secret,
            "MAIL_SENDER": sorted(self.state.mailboxes)[0],
        }

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet about a client that went away (one that timed out closes its end before the late answer)."""
        if isinstance(sys.exc_info()[1], ConnectionError | ssl.SSLEOFError | ssl.SSLZeroReturnError):
            return
        super().handle_error(request, client_address)

    def stop(self) -> None:
        """Stops serving and removes a certificate it made itself."""
        super().stop()
        if self._own_folder is not None:
            shutil.rmtree(self._own_folder, ignore_errors=True)
