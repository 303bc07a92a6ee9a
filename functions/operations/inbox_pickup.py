"""The pick-up function: opens an inbox blob whose Event Grid event was lost, as its blob trigger would have."""

import azure.functions as func

from shared import storage
from shared.events import Event, emit
from shared.inbox import PICKUP_QUEUE, Inbox, PickupMessage, bare_etag
from shared.logs import get_logger, log_context, redacted_errors
from shared.settings import WORK_CONNECTION

bp = func.Blueprint()
_log = get_logger("ks.operations.inbox_pickup")


@bp.function_name("inbox_pickup")
@bp.queue_trigger(arg_name="msg", queue_name=PICKUP_QUEUE, connection=WORK_CONNECTION)
def inbox_pickup(msg: func.QueueMessage) -> None:
    """Queue inbox-pickup (from the sweeper): opens the blob's run through its automation's inbox opener."""
    with redacted_errors():
        pickup = PickupMessage.model_validate_json(msg.get_body())
        with log_context(automation=pickup.automation):
            blob = storage.container(pickup.container).get_blob_client(pickup.name)
            if not blob.exists() or bare_etag(blob.get_blob_properties().etag) != bare_etag(pickup.etag):
                # Gone or replaced: a replacement is a new version with its own event (and its own pick-up).
                _log.info("inbox blob changed since the sweep; nothing to pick up")
                return
            Inbox.registry[pickup.container].open_blob(blob)
            emit(Event.INBOX_PICKUP, level=30, automation=pickup.automation, container=pickup.container)
