"""Receipts through the Graph simulator: one mail per recipient per run, sent once however often asked."""

from datetime import UTC, datetime, timedelta

import pytest

from devhost.sample.data import sample_file
from functions.operations.run_closer import close_run
from shared import mail, storage
from shared.personal_data import contains_cpr
from tests.integration.conftest import make_host

pytestmark = pytest.mark.integration
SUBJECT = "Kvittering for udbetalinger"


def _drain(env, host) -> None:
    """Mail asked for by runs that other tests closed goes first, and the outbox starts empty."""
    host.run_until_idle()
    env.graph.state.reset()


def _settle(env, host, name: str, rows: int, seed: int, *, drain: bool = True, mail_until_idle: bool = True):
    if drain:
        _drain(env, host)
    sample = sample_file(rows=rows, seed=seed, with_problems=False)
    env.drop(name, sample.text)
    host.run_until_idle()
    run = env.run_for(name)
    assert close_run(run.run_id).status.value == "complete"  # the closer asks for the run's mail
    if mail_until_idle:
        host.run_until_idle()
    else:  # one pass: a mail request the mailer puts back for later must not be waited for
        host.run_once()
    return run, sample


def test_a_closed_run_sends_each_recipient_one_mail_with_every_receipt(sample_env, host):
    run, _ = _settle(sample_env, host, "mail-once.csv", rows=12, seed=51)
    (sent,) = sample_env.mails(SUBJECT)
    assert sent["to"] == ["bogholderi@devhost.example"] and sent["sender"] == "robot@devhost.example"
    done = [row for row in sample_env.items(run).values() if row["Status"] == "done"]
    assert len(done) == 12 and sent["body"].count("er bogført") == 12
    assert not contains_cpr(sent["body"])

    mail.request("sample", run.run_id)  # asked again (the closer died before saving, a redelivery)
    mail.request("sample", run.run_id)
    close_run(run.run_id)
    host.run_until_idle()
    assert len(sample_env.mails(SUBJECT)) == 1, "a repeat must not send the mail again"


def test_two_deliveries_at_once_still_send_one_mail(sample_env):
    twice = make_host(sample_env, concurrent_duplicates=True)
    try:
        _settle(sample_env, twice, "mail-concurrent.csv", rows=5, seed=52)
    finally:
        twice.close()
    assert len(sample_env.mails(SUBJECT)) == 1


def test_graph_unavailable_leaves_the_claim_and_the_mail_goes_once_it_is_stale(sample_env, host, monkeypatch):
    _drain(sample_env, host)
    sample_env.graph.state.inject("503", count=1, message="Service unavailable")
    run, _ = _settle(sample_env, host, "mail-503.csv", rows=3, seed=53, drain=False, mail_until_idle=False)
    # Graph's 503 may come after it took the mail: no second send now; the request waits until the claim is stale
    assert sample_env.graph.state.count("POST", "/sendMail") == 1 and sample_env.mails(SUBJECT) == []
    waiting = storage.queue(mail.MAIL_QUEUE).get_queue_properties().approximate_message_count
    assert waiting == 1, "the mailer asked again for later"
    storage.queue(mail.MAIL_QUEUE).clear_messages()  # the delayed request, delivered by hand below
    later = datetime.now(UTC) + mail.CLAIM_STALE_AFTER + timedelta(seconds=1)
    monkeypatch.setattr(mail, "_now", lambda: later)
    assert mail.send_run_mails(mail.MailRequest(automation="sample", run_id=run.run_id), claimant="later.1") == 1
    assert len(sample_env.mails(SUBJECT)) == 1
    assert mail.send_run_mails(mail.MailRequest(automation="sample", run_id=run.run_id), claimant="again.1") == 0


def test_a_recipient_graph_refuses_is_marked_failed_with_an_alert_and_not_retried(sample_env, host, caplog):
    caplog.set_level("INFO", logger="ks.events")
    _drain(sample_env, host)
    sample_env.graph.state.inject("400", count=1, message="ErrorInvalidRecipients")
    run, _ = _settle(sample_env, host, "mail-400.csv", rows=2, seed=54, drain=False, mail_until_idle=False)
    alerts = [r for r in caplog.records if getattr(r, "reason_code", "") == "MAIL_AFVIST"]
    assert len(alerts) == 1 and alerts[0].run_id == run.run_id
    assert mail.send_run_mails(mail.MailRequest(automation="sample", run_id=run.run_id), claimant="again.1") == 0
    assert sample_env.graph.state.count("POST", "/sendMail") == 1
