"""The hand-off function: turns items handed off by any automation into ServiceNow tasks."""

import azure.functions as func

from shared.handoff import HANDOFF_QUEUE, HandoffMessage, hand_off
from shared.logs import redacted_errors
from shared.settings import WORK_CONNECTION

bp = func.Blueprint()


@bp.function_name("handoff")
@bp.queue_trigger(arg_name="msg", queue_name=HANDOFF_QUEUE, connection=WORK_CONNECTION)
def handoff(msg: func.QueueMessage) -> None:
    """Queue handoff: creates a task per item handed to a person (once) and records its number on the item."""
    with redacted_errors():
        hand_off(HandoffMessage.model_validate_json(msg.get_body()), claimant=msg.id or "")  # an empty id is refused
