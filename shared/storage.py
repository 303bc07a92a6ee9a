"""The one place that knows how to build storage clients: lazily, cached per process.

Locally the connection `WorkStorage` is Azurite's connection string. In Azure it is identity-based, as the
Functions host reads it too: `WorkStorage__blobServiceUri`, `__queueServiceUri`, `__tableServiceUri`,
`__credential=managedidentity` and `__clientId` (the user-assigned identity; never a guess by
DefaultAzureCredential, never the `__serviceUri` alias).
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import requests
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.queue import (
    BinaryBase64DecodePolicy,
    QueueClient,
    QueueServiceClient,
    TextBase64EncodePolicy,
)

from shared.connectors.http import CONNECTIONS_PER_HOST, http_environment
from shared.settings import WORK_CONNECTION, get_settings

if TYPE_CHECKING:  # imported on first use: azure-identity (and MSAL) cost tens of ms at cold start
    from azure.identity import ManagedIdentityCredential

MANAGED_IDENTITY = "managedidentity"


class _PooledTransport(RequestsTransport):
    """The SDK's requests transport with a connection pool as large as the worker's concurrency."""

    def _init_session(self, session: requests.Session) -> None:
        super()._init_session(session)
        for adapter in session.adapters.values():
            adapter.init_poolmanager(CONNECTIONS_PER_HOST, CONNECTIONS_PER_HOST)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class _Identity:
    """The identity-based form of the connection."""

    blob_uri: str
    queue_uri: str
    table_uri: str
    client_id: str


def _connection() -> str | _Identity:
    """The connection string if set, else complete identity settings; a Danish error names what is missing."""
    settings = get_settings()
    if settings.work_storage is not None and settings.work_storage.get_secret_value():
        return settings.work_storage.get_secret_value()
    values = {
        "blobServiceUri": settings.work_storage_blob_uri,
        "queueServiceUri": settings.work_storage_queue_uri,
        "tableServiceUri": settings.work_storage_table_uri,
        "clientId": settings.work_storage_client_id,
    }
    missing = [f"{WORK_CONNECTION}__{name}" for name, value in values.items() if not value]
    credential = (settings.work_storage_credential or "").lower()
    if credential != MANAGED_IDENTITY:
        missing.append(f"{WORK_CONNECTION}__credential={MANAGED_IDENTITY}")
    if missing:
        raise RuntimeError(
            f"Appen kan ikke nå sit lager: indstillingen {WORK_CONNECTION} (forbindelsesstreng) mangler, "
            f"og til den identitetsbaserede forbindelse mangler {', '.join(missing)}."
        )
    return _Identity(
        blob_uri=str(settings.work_storage_blob_uri),
        queue_uri=str(settings.work_storage_queue_uri),
        table_uri=str(settings.work_storage_table_uri),
        client_id=str(settings.work_storage_client_id),
    )


@cache
def _credential(client_id: str) -> "ManagedIdentityCredential":
    """The user-assigned managed identity, one credential object per process (it caches its tokens)."""
    from azure.identity import ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=client_id)


_GET_SIZE = 4 * 1024 * 1024
_BLOCK_SIZE = 1024 * 1024


def _client[C](kind: type[C], service: Callable[[_Identity], str], *args: Any, **options: Any) -> C:
    """A client of one storage service, from the connection string or with the managed identity, over a pooled
    transport of its own."""
    connection = _connection()
    environment = http_environment()
    options["transport"] = _PooledTransport(
        use_env_settings=environment.trust_env, connection_verify=environment.verify
    )
    if isinstance(connection, str):
        return kind.from_connection_string(connection, *args, **options)  # type: ignore[attr-defined, no-any-return]
    # A path in the endpoint (Azurite's /devstoreaccount1) is kept; a token credential needs https.
    return kind(service(connection), *args, credential=_credential(connection.client_id), **options)


@cache
def blob_service() -> BlobServiceClient:
    """Blob service client of the work storage."""
    # Downloads come in pieces of at most 4 MiB (the SDK's first GET would take 32 MiB): a large inbox file is
    # streamed through a fixed amount of memory.
    # A stream of unknown length (a report written row by row) goes up in blocks of 1 MiB rather than the SDK's
    # 4 MiB, which it holds about three times over while it gathers one.
    return _client(
        BlobServiceClient,
        lambda c: c.blob_uri,
        max_single_get_size=_GET_SIZE,
        max_chunk_get_size=_GET_SIZE,
        max_block_size=_BLOCK_SIZE,
    )


@cache
def queue_service() -> QueueServiceClient:
    """Queue service client of the work storage."""
    return _client(QueueServiceClient, lambda c: c.queue_uri)


@cache
def table_service() -> TableServiceClient:
    """Table service client of the work storage."""
    return _client(TableServiceClient, lambda c: c.table_uri)


@cache
def container(name: str) -> ContainerClient:
    """A blob container client, cached."""
    return blob_service().get_container_client(name)


@cache
def queue(name: str) -> QueueClient:
    """A queue client that sends base64, as the Functions host expects, and reads bytes."""
    return _client(
        QueueClient,
        lambda c: c.queue_uri,
        name,
        message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=BinaryBase64DecodePolicy(),
    )


@cache
def table(name: str) -> TableClient:
    """A table client, cached."""
    return table_service().get_table_client(name)


def reset_clients() -> None:
    """Forget cached clients and the credential (tests that switch storage accounts or identities)."""
    for factory in (blob_service, queue_service, table_service, container, queue, table, _credential):
        factory.cache_clear()


#: Containers and tables the code uses beyond the ledger's and its triggers': `devhost manifest` lists them, so
#: the infrastructure provisions them (and devhost creates them).
REQUIRED_CONTAINERS: set[str] = set()
REQUIRED_TABLES: set[str] = set()


def required_container(name: str) -> str:
    """Declares a container the code writes to; returns its name."""
    REQUIRED_CONTAINERS.add(name)
    return name


def required_table(name: str) -> str:
    """Declares a table the code writes to; returns its name."""
    REQUIRED_TABLES.add(name)
    return name
