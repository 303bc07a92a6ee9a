"""The mailer: sends a closed run's receipts and notices, one mail per recipient."""

import azure.functions as func

from shared import storage
from shared.logs import get_logger, redacted_errors
from shared.mail import MAIL_QUEUE, MailNotReadyError, MailRequest, send_run_mails
from shared.settings import WORK_CONNECTION

bp = func.Blueprint()
_log = get_logger("ks.operations.mailer")


@bp.function_name("mailer")
@bp.queue_trigger(arg_name="msg", queue_name=MAIL_QUEUE, connection=WORK_CONNECTION)
def mailer(msg: func.QueueMessage) -> None:
    """Queue mail (from the run closer): each recipient of the run gets their mail once."""
    with redacted_errors():
        # Each delivery claims on its own: a second delivery of the same message (its lease ran out while the
        # first still worked) must not take the first one's claim for its own.
        claimant = f"{msg.id}.{msg.dequeue_count}" if msg.id else ""
        request = MailRequest.model_validate_json(msg.get_body())
        try:
            send_run_mails(request, claimant=claimant)
        except MailNotReadyError as wait:
            # Asked again once the claims it met can be taken over - longer than the host's own retries last,
            # so the request does not end in poison while a claim is merely waiting to go stale.
            delay = int(wait.retry_after.total_seconds()) + 30
            storage.queue(MAIL_QUEUE).send_message(request.model_dump_json(), visibility_timeout=delay)
            _log.info("some mails of the run wait; asked again in %d s", delay)
