"""Automation 2, "Udbetaling af krav": the trigger handlers of its chain.

claims file (blob, claims-inbox) -> validate -> decide -> post (queues) -> Kvantum's response (blob,
kvantum-responses); a payment the bank returns -> returned (queue). The batch report is written as the run
closes. The work is in `intake`, `steps`, `responses` and `report`; the rules in `rules`.
"""

import azure.functions as func
from azurefunctions.extensions.bindings.blob import BlobClient

from functions.claim_payouts import intake, responses, steps
from functions.claim_payouts.chain import chain
from shared.logs import log_context, redacted_errors
from shared.settings import WORK_CONNECTION

bp = func.Blueprint()


@bp.function_name("claims_intake")
@bp.blob_trigger(
    arg_name="blob", path=f"{intake.INBOX}/{{name}}", connection=WORK_CONNECTION, source=func.BlobSource.EVENT_GRID
)
def claims_intake(blob: BlobClient) -> None:
    """Blob created in claims-inbox: checks the file, opens a run of its claims and hands them to validate."""
    with redacted_errors(), log_context(automation=steps.AUTOMATION, step="intake"):
        intake.open_claims_file(blob)


@bp.function_name("claims_validate")
@bp.queue_trigger(arg_name="msg", queue_name="claim-payouts-validate", connection=WORK_CONNECTION)
def claims_validate(msg: func.QueueMessage) -> None:
    """Queue claim-payouts-validate: claim checks, CVR, chart of accounts, payout index; hands on to decide."""
    chain.run_chunk_step("validate", msg, steps.validate, row_columns=())


@bp.function_name("claims_decide")
@bp.queue_trigger(arg_name="msg", queue_name="claim-payouts-decide", connection=WORK_CONNECTION)
def claims_decide(msg: func.QueueMessage) -> None:
    """Queue claim-payouts-decide: payment channel and offsetting against Opus Debitor; hands on to post."""
    chain.run_chunk_step("decide", msg, steps.decide, row_columns=())


@bp.function_name("claims_post")
@bp.queue_trigger(arg_name="msg", queue_name="claim-payouts-post", connection=WORK_CONNECTION)
def claims_post(msg: func.QueueMessage) -> None:
    """Queue claim-payouts-post: posting files in Kvantum's outbox; the items wait for the response."""
    chain.run_chunk_step("post", msg, steps.post, row_columns=("PostingFile",))


@bp.function_name("claims_returned")
@bp.queue_trigger(arg_name="msg", queue_name="claim-payouts-returned", connection=WORK_CONNECTION)
def claims_returned(msg: func.QueueMessage) -> None:
    """Queue claim-payouts-returned: a payment the bank returned goes to a person with the bank's reason."""
    chain.run_step("returned", msg, steps.returned)


@bp.function_name("claims_response")
@bp.blob_trigger(
    arg_name="blob",
    path=f"{responses.RESPONSES}/{{name}}",
    connection=WORK_CONNECTION,
    source=func.BlobSource.EVENT_GRID,
)
def claims_response(blob: BlobClient) -> None:
    """Blob created in kvantum-responses: ends each answered claim done or to a person; returns start a run."""
    with redacted_errors(), log_context(automation=steps.AUTOMATION, step="response"):
        responses.open_response(blob)
