"""A fake of the App Service / Functions managed-identity endpoint, for the real `ManagedIdentityCredential`.

With `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` set (and no `IDENTITY_SERVER_THUMBPRINT`), azure-identity 1.27
picks its App Service credential, which delegates to MSAL's `ManagedIdentityClient`
(`msal.managed_identity._obtain_token_on_app_service`): `GET <IDENTITY_ENDPOINT>?api-version=2019-08-01
&resource=<resource>&client_id=<id>` with the header `X-IDENTITY-HEADER: <IDENTITY_HEADER>` (and `Metadata:
true`). The answer is `{"access_token", "expires_on" (epoch seconds, a string), "resource", "token_type",
"client_id"}`; an error is `{"statusCode", "message", "correlationId"}`, which MSAL turns into
`invalid_scope` and azure-identity into a `ClientAuthenticationError`. Plain HTTP, as the real endpoint is
(`http://localhost:8081/msi/token` inside the platform).

The access tokens are JWTs shaped like Entra ID's v1 app tokens but unsigned (`alg: none`): Azurite's
`--oauth basic` never checks a signature. What it does check (node_modules/azurite/dist/src/
{blob,queue,table}/authentication/*TokenAuthenticator.js, `authenticateBasic`): HTTPS only; the token decodes
as a JWT; `iat`, `nbf` and `exp` are present and now is within [nbf, exp]; `iss` starts with
`https://sts.windows.net/` (or another sovereign-cloud STS, `common/utils/constants.js` VALID_ISSUE_PREFIXES);
`aud` is `https://storage.azure.com[/]`, the storage app id `e406a681-...` or `https://<account>.<service>
.core.windows.net` for that account (`<service>/utils/constants.js` VALID_*_AUDIENCES). Scope and roles are
not checked.
"""

import base64
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

from devhost.simulators.base import JsonHandler, LoopbackServer

API_VERSION = "2019-08-01"  # the App Service protocol version MSAL sends
PATH = "/msi/token"
STORAGE_RESOURCE = "https://storage.azure.com"
#: Entra ID backdates iat/nbf by five minutes for clock skew; managed-identity tokens live about a day.
BACKDATE_SECONDS = 300
LIFETIME_SECONDS = 24 * 3600
# Fixed ids with letters in every group: azure-identity logs the client id, and a random GUID can hold a
# CPR-shaped digit run that the tests' log scan would (rightly) flag.
CLIENT_ID = "c1d2e3f4-a5b6-4c7d-8e9f-a0b1c2d3e4f5"
TENANT_ID = "7e4a5b6c-d1e2-4f3a-9b4c-d5e6f7a8b9c0"


def _segment(data: dict[str, Any]) -> str:
    """A JWT segment: compact JSON, base64url without padding."""
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()


def mint(
    resource: str,
    client_id: str,
    *,
    tenant_id: str = TENANT_ID,
    issuer: str | None = None,
    audience: str | None = None,
    lifetime: int = LIFETIME_SECONDS,
    now: int | None = None,
) -> tuple[str, int]:
    """An unsigned JWT for `resource` as Entra ID would issue it to `client_id`, and its expiry (epoch s)."""
    issued = int(time.time()) if now is None else now
    expires = issued + lifetime
    claims = {
        "aud": audience or resource,
        "iss": issuer or f"https://sts.windows.net/{tenant_id}/",
        "iat": issued - BACKDATE_SECONDS,
        "nbf": issued - BACKDATE_SECONDS,
        "exp": expires,
        "appid": client_id,
        "appidacr": "2",
        "idtyp": "app",
        "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"identity:{client_id}")),
        "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"identity:{client_id}")),
        "tid": tenant_id,
        "uti": secrets.token_urlsafe(16),
        "ver": "1.0",
    }
    return f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(claims)}.", expires


@dataclass(frozen=True)
class TokenRequest:
    """One request the endpoint answered."""

    client_id: str | None
    resource: str | None
    api_version: str | None
    status: int


@dataclass
class IdentityState:
    """The identities the endpoint knows, its secret header, and every request it saw."""

    client_ids: set[str] = field(default_factory=lambda: {CLIENT_ID})
    header: str = field(default_factory=lambda: secrets.token_hex(16))
    tenant_id: str = TENANT_ID
    requests: list[TokenRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def client_id(self) -> str:
        """The (first) user-assigned identity's client id."""
        return sorted(self.client_ids)[0]

    def granted(self) -> list[TokenRequest]:
        """Requests answered with a token."""
        with self.lock:
            return [r for r in self.requests if r.status == 200]

    def reset(self) -> None:
        """Forgets the requests seen so far."""
        with self.lock:
            self.requests.clear()


class _Handler(JsonHandler):
    """GET /msi/token, as App Service answers it."""

    def _refuse(self, state: IdentityState, request: TokenRequest, message: str) -> None:
        """Records a refused request and answers with App Service's error body."""
        with state.lock:
            state.requests.append(request)
        body = {"statusCode": request.status, "message": message, "correlationId": str(uuid.uuid4())}
        self.reply(request.status, body)

    def do_GET(self) -> None:
        """Answers a token request as App Service does."""
        state: IdentityState = self.server.state  # type: ignore[attr-defined]
        url = urlparse(self.path)
        query = {name: values[0] for name, values in parse_qs(url.query).items()}
        client_id, resource, version = query.get("client_id"), query.get("resource"), query.get("api-version")
        if url.path != PATH:
            self.reply(404, {"statusCode": 404, "message": "Not found"})
            return
        if not secrets.compare_digest(self.headers.get("X-IDENTITY-HEADER", ""), state.header):
            self._refuse(state, TokenRequest(client_id, resource, version, 401), "Unauthorized: X-IDENTITY-HEADER")
            return
        if version != API_VERSION:
            self._refuse(state, TokenRequest(client_id, resource, version, 400), f"Unsupported api-version {version}")
            return
        if not resource:
            self._refuse(state, TokenRequest(client_id, resource, version, 400), "The resource parameter is missing")
            return
        if client_id not in state.client_ids:  # no system-assigned identity here, and no other user-assigned one
            self._refuse(
                state, TokenRequest(client_id, resource, version, 400), "Unable to load the proper Managed Identity."
            )
            return
        token, expires = mint(resource, client_id, tenant_id=state.tenant_id)
        with state.lock:
            state.requests.append(TokenRequest(client_id, resource, version, 200))
        self.reply(
            200,
            {
                "access_token": token,
                "expires_on": str(expires),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": client_id,
            },
        )


class ManagedIdentityServer(LoopbackServer):
    """The fake endpoint on a loopback port; `env` is what the platform would set for the app."""

    def __init__(self, port: int = 0, state: IdentityState | None = None) -> None:
        super().__init__(port, _Handler)
        self.state = state or IdentityState()

    @property
    def env(self) -> dict[str, str]:
        """IDENTITY_ENDPOINT and IDENTITY_HEADER, as App Service and Functions set them."""
        return {"IDENTITY_ENDPOINT": f"{self.url}{PATH}", "IDENTITY_HEADER": self.state.header}
