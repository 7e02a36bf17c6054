"""Several partitions served by one Marketo job (extract.batch): how a tick's runs are grouped,
what a run's batch tag may say, and the engine creating the job once for all member steps,
recording which partitions its file holds."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from marketo_assets.extract import MAX_BATCH, Batch, ExportFailed, batch_for, open_members
from marketo_assets.extract import plan_batches as plan
from marketo_assets.extract.quota import History, member_rows
from marketo_assets_tests.support.extract_fakes import MB, Engine, lead_spec

PM = "marketo/leads"  # the fake engine's asset (its files are lead files)


def runs(n: int) -> list[tuple[str, str]]:
    return [(str(3000 + i), f"program:{3000 + i}@t") for i in range(n)]


def test_a_tick_is_cut_into_batches_of_at_most_ten_and_a_lone_rest_goes_alone():
    batches = plan(runs(23))
    sizes = sorted({b.key: len(b.members) for b in batches.values()}.values())
    assert sizes == [3, 10, 10]
    assert len({b.token for b in batches.values()}) == 3
    lone = plan(runs(21))
    assert "3020" not in lone and len(lone) == 20  # exported alone, with programId
    assert plan(runs(1)) == {}
    assert all(k in b.members for k, b in batches.items())


def test_the_batch_token_says_which_request_it_is():
    """The same programs requested by another tick (other run keys) are another batch."""
    first = plan(runs(3))["3000"]
    again = plan([(k, r + "2") for k, r in runs(3)])["3000"]
    assert first.members == again.members and first.token != again.token
    assert first.key != again.key
    assert Batch.parse(first.tag, "3001") == first


@pytest.mark.parametrize(
    ("tag", "problem"),
    [
        ("nocolon", "not `<token>"),
        ("t:1,1", "not `<token>"),
        ("t:" + ",".join(str(i) for i in range(MAX_BATCH + 1)), "at most 10"),
        ("t:1,2", "does not name this run's partition 7"),
    ],
)
def test_a_batch_tag_that_cannot_work_fails_before_any_call(tag, problem):
    with pytest.raises(ExportFailed, match=problem) as failed:
        Batch.parse(tag, "7")
    assert failed.value.retryable is False


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return Engine(tmp_path)


def batch_spec(batch: Batch, member: str, members: tuple[str, ...]):
    return replace(
        lead_spec(), partition_key=batch.key, generation=batch.tag, members=members, member=member
    )


def test_the_first_member_step_creates_the_job_and_the_others_reuse_its_file(engine: Engine):
    batch = plan(runs(3))["3000"]
    outcomes = [
        engine.export(batch_spec(batch, key, batch.members), run_id=f"run-{key}")
        for key in batch.members
    ]
    assert engine.marketo.methods().count("create") == 1
    assert len({o.export_id for o in outcomes}) == 1
    assert [o.reused for o in outcomes] == [False, True, True]
    ledger = engine.ledger
    (entry,) = ledger.entries(PM)
    assert entry.partition_key == batch.key  # one ledger row: the job
    members = ledger.members(PM, export_id=entry.export_id)
    assert [(m["partition_key"], m["status"]) for m in members] == [
        (k, "pending") for k in batch.members
    ]
    # Each member's step hands its own partition to its load; the batch slot is free.
    for key in batch.members:
        claim = ledger.current_claim(PM, key)
        assert claim is not None and claim.state == "handed_over"
    assert ledger.current_claim(PM, batch.key) is None


def test_a_rerun_of_a_loaded_member_exports_alone(engine: Engine):
    batch = plan(runs(2))["3000"]
    assert batch_for(engine.ledger, PM, "", "3000") is None
    assert batch_for(engine.ledger, PM, batch.tag, "3000") == batch
    outcome = engine.export(batch_spec(batch, "3000", batch.members), run_id="run-a")
    engine.ledger.member_loaded(outcome.export_id, "3000", 2)
    assert batch_for(engine.ledger, PM, batch.tag, "3000") is None
    assert batch_for(engine.ledger, PM, batch.tag, "3001") == batch
    assert open_members(engine.ledger, PM, batch) == ("3001",)


def test_a_quota_stop_of_a_batch_names_the_member_partition(engine: Engine):
    """The quota_resume sensor relaunches partitions: never the batch's ledger slot."""
    batch = plan(runs(2))["3000"]
    engine.marketo.used_today = 2 * MB
    with pytest.raises(ExportFailed, match="quota"):
        engine.export(batch_spec(batch, "3001", batch.members), run_id="run-b")
    assert [s["partition_key"] for s in engine.ledger.stops()] == ["3001"]
    assert engine.marketo.methods().count("create") == 0
    assert engine.ledger.current_claim(PM, "3001") is None
    assert engine.ledger.current_claim(PM, batch.key) is None


def test_a_batch_job_is_predicted_from_its_members_last_rows(engine: Engine):
    batch = plan(runs(2))["3000"]
    outcome = engine.export(batch_spec(batch, "3000", batch.members), run_id="run-a")
    ledger = engine.ledger
    assert member_rows(ledger, PM, batch.members) is None  # not loaded yet: unknown
    ledger.member_loaded(outcome.export_id, "3000", 100)
    ledger.member_loaded(outcome.export_id, "3001", 50)
    assert member_rows(ledger, PM, batch.members) == 150.0
    entries = ledger.entries()
    (entry,) = entries
    per_row = (entry.bytes or 0) / (entry.records or 1)
    later = History.of(entries).predict(PM, "batch-x:3000,3001", "other", [], member_rows=150.0)
    assert later.rows == 150.0 and later.bytes == pytest.approx(150 * per_row * 1.1, abs=1)


def test_a_member_step_waits_while_another_makes_the_batchs_job(engine: Engine):
    """Two member runs at once (two pool slots): the second waits for the batch's claim and
    then reuses the first one's file; the job is created once."""
    batch = plan(runs(2))["3000"]
    engine.limits = replace(engine.limits, budget_poll_seconds=0.02)
    engine.ledger.claim(PM, batch.key, "run-a")  # run-a's step is making the job
    second: list = []
    waiter = threading.Thread(
        target=lambda: second.append(
            engine.export(batch_spec(batch, "3001", batch.members), run_id="run-b")
        )
    )
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive() and engine.marketo.methods().count("create") == 0
    first = engine.export(batch_spec(batch, "3000", batch.members), run_id="run-a")
    waiter.join(timeout=30)
    assert second and second[0].export_id == first.export_id and second[0].reused
    assert engine.marketo.methods().count("create") == 1
