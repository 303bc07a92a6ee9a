"""The one place that knows how to build storage clients: lazily, cached per process."""

from functools import cache

from azure.data.tables import TableClient, TableServiceClient
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.queue import (
    BinaryBase64DecodePolicy,
    QueueClient,
    QueueServiceClient,
    TextBase64EncodePolicy,
)

from shared.settings import get_settings


def _connection_string() -> str:
    work_storage = get_settings().work_storage
    if work_storage is None:
        raise RuntimeError("Indstillingen WorkStorage mangler: appen kan ikke nå sit lager.")
    return work_storage.get_secret_value()


@cache
def blob_service() -> BlobServiceClient:
    """Blob service client of the work storage."""
    return BlobServiceClient.from_connection_string(_connection_string())


@cache
def queue_service() -> QueueServiceClient:
    """Queue service client of the work storage."""
    return QueueServiceClient.from_connection_string(_connection_string())


@cache
def table_service() -> TableServiceClient:
    """Table service client of the work storage."""
    return TableServiceClient.from_connection_string(_connection_string())


@cache
def container(name: str) -> ContainerClient:
    """A blob container client, cached."""
    return blob_service().get_container_client(name)


@cache
def queue(name: str) -> QueueClient:
    """A queue client that sends base64, as the Functions host expects, and reads bytes."""
    return QueueClient.from_connection_string(
        _connection_string(),
        name,
        message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=BinaryBase64DecodePolicy(),
    )


@cache
def table(name: str) -> TableClient:
    """A table client, cached."""
    return table_service().get_table_client(name)


def reset_clients() -> None:
    """Forget cached clients (tests that switch storage accounts)."""
    for factory in (blob_service, queue_service, table_service, container, queue, table):
        factory.cache_clear()
