"""The claim payout chain: validate -> decide -> post, where items wait for Kvantum's response; returned
payments enter at their own step. The batch report is written as a run closes."""

from functions.claim_payouts import report
from functions.claim_payouts.steps import AUTOMATION
from shared import ledger
from shared.pipeline import Chain


def _close(run: ledger.Run) -> None:
    """Called by the run closer before it saves a run complete: the batch report."""
    report.write(run)


chain = Chain(AUTOMATION, ["validate", "decide", "post", "returned"], parked_after="post", on_complete=_close)
