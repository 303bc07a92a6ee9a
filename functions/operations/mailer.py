"""The mailer: sends a closed run's receipts and notices, one mail per recipient."""

import azure.functions as func

from shared.logs import redacted_errors
from shared.mail import MAIL_QUEUE, MailRequest, send_run_mails
from shared.settings import WORK_CONNECTION

bp = func.Blueprint()


@bp.function_name("mailer")
@bp.queue_trigger(arg_name="msg", queue_name=MAIL_QUEUE, connection=WORK_CONNECTION)
def mailer(msg: func.QueueMessage) -> None:
    """Queue mail (from the run closer): each recipient of the run gets their mail once."""
    with redacted_errors():
        # Each delivery claims on its own: a second delivery of the same message (its lease ran out while the
        # first still worked) must not take the first one's claim for its own.
        claimant = f"{msg.id}.{msg.dequeue_count}" if msg.id else ""
        send_run_mails(MailRequest.model_validate_json(msg.get_body()), claimant=claimant)
