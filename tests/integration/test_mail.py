"""Receipts through the Graph simulator: one mail per recipient per run, sent once however often asked."""

import pytest

from devhost.sample.data import sample_file
from functions.operations.run_closer import close_run
from shared import mail
from shared.personal_data import contains_cpr
from tests.integration.conftest import make_host

pytestmark = pytest.mark.integration
SUBJECT = "Kvittering for udbetalinger"


def _drain(env, host) -> None:
    """Mail asked for by runs that other tests closed goes first, and the outbox starts empty."""
    host.run_until_idle()
    env.graph.state.reset()


def _settle(env, host, name: str, rows: int, seed: int, *, drain: bool = True):
    if drain:
        _drain(env, host)
    sample = sample_file(rows=rows, seed=seed, with_problems=False)
    env.drop(name, sample.text)
    host.run_until_idle()
    run = env.run_for(name)
    assert close_run(run.run_id).status.value == "complete"  # the closer asks for the run's mail
    host.run_until_idle()
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
    assert sample_env.graph.state.count("POST", "/sendMail") == 1


def test_two_deliveries_at_once_still_send_one_mail(sample_env):
    twice = make_host(sample_env, concurrent_duplicates=True)
    try:
        _settle(sample_env, twice, "mail-concurrent.csv", rows=5, seed=52)
    finally:
        twice.close()
    assert len(sample_env.mails(SUBJECT)) == 1


def test_graph_unavailable_is_retried_and_the_mail_goes_once(sample_env, host):
    _drain(sample_env, host)
    sample_env.graph.state.inject("503", count=1, message="Service unavailable")
    _settle(sample_env, host, "mail-503.csv", rows=3, seed=53, drain=False)
    assert host.stats.failures.get("mailer") == 1, "the first attempt failed on Graph's 503"
    assert len(sample_env.mails(SUBJECT)) == 1
