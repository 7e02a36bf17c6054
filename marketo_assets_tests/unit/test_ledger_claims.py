"""The export ledger and its claims, the same tests against both stores: SQLite (the local
default) and PostgreSQL (several machines; marked `postgres`, a throwaway cluster). One run per
partition at a time, claims of dead runs are taken over, and the export records a re-launched
run reattaches to."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from marketo_assets.extract import ExportFailed, Ledger, claim_partition
from marketo_assets.extract.ledger import ExportIdConflictError, ExportLedger
from marketo_assets.extract.ledger_postgres import PostgresLedger

A, P = "marketo/leads", "2025-01-01"


@dataclass(frozen=True)
class Store:
    """How to open one test's ledger, here and in another process."""

    kind: str
    path: Path  # sqlite: the file
    schema: str  # postgres: the schema
    env: dict[str, str]  # postgres: the libpq variables

    def open(self) -> Ledger:
        if self.kind == "sqlite":
            return ExportLedger(self.path)
        return PostgresLedger(schema=self.schema)

    def opener(self) -> str:
        """Python that opens the same ledger as `ledger` (in a subprocess)."""
        if self.kind == "sqlite":
            path = str(self.path)
            return (
                f"from marketo_assets.extract import ExportLedger; ledger = ExportLedger({path!r})"
            )
        return (
            "from marketo_assets.extract import PostgresLedger; "
            f"ledger = PostgresLedger(schema={self.schema!r})"
        )

    def python(self, code: str, *args: str, **popen) -> subprocess.Popen:
        env = {**os.environ, **self.env}
        return subprocess.Popen(
            [sys.executable, "-c", f"{self.opener()}\n{code}", *args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen,
        )  # fmt: skip


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path, monkeypatch) -> Store:
    if request.param == "sqlite":
        return Store("sqlite", tmp_path / "ledger.sqlite", "", {})
    server = request.getfixturevalue("pg_server")
    env = server.libpq_env("postgres")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    schema = "t_" + re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:40]
    schema = f"{schema}_{os.getpid()}"
    return Store("postgres", tmp_path / "unused.sqlite", schema, env)


def _claim_in_a_process_that_exits(store: Store, run_id: str) -> int:
    code = f"import os; ledger.claim({A!r}, {P!r}, {run_id!r}); print(os.getpid())"
    out, err = store.python(code).communicate(timeout=60)
    assert not err.strip() or "Traceback" not in err, err
    return int(out)


def test_a_live_claim_of_another_run_is_returned_and_left_alone(store):
    ledger = store.open()
    assert ledger.claim(A, P, "run-a") is None
    assert ledger.claim(A, P, "run-a") is None  # re-entrant: the load step of the same run
    other = ledger.claim(A, P, "run-b")
    assert other is not None and other.run_id == "run-a"
    assert "run run-a" in other.describe()
    assert ledger.current_claim(A, P).run_id == "run-a"
    assert ledger.claim(A, "2025-02-01", "run-b") is None  # other partitions are free
    assert store.open().current_claim(A, P).run_id == "run-a"  # another connection sees it


def test_the_claim_of_a_killed_process_is_taken_over(store):
    dead_pid = _claim_in_a_process_that_exits(store, "run-a")
    ledger = store.open()
    assert ledger.current_claim(A, P).pid == dead_pid
    assert ledger.claim(A, P, "run-b") is None
    assert ledger.current_claim(A, P).run_id == "run-b"


def test_a_claim_handed_over_between_steps_lasts_while_its_run_is_active(store):
    dead_pid = _claim_in_a_process_that_exits(store, "run-a")  # the export step's process
    ledger = store.open()
    ledger.hand_over(A, P, "run-a")
    assert ledger.current_claim(A, P).pid == dead_pid
    # The run still waits for its load step (e.g. for the duckdb pool): keep it, until the lease.
    assert ledger.claim(A, P, "run-b", run_status=lambda r: "active").run_id == "run-a"
    time.sleep(0.3)
    assert ledger.claim(A, P, "run-b", run_status=lambda r: "active", lease_seconds=0.2) is None


def test_a_handed_over_claim_of_a_run_unknown_here_from_a_dead_process_is_stale(store):
    _claim_in_a_process_that_exits(store, "run-a")
    ledger = store.open()
    ledger.hand_over(A, P, "run-a")
    assert ledger.claim(A, P, "run-b", run_status=lambda r: None) is None


def test_a_claim_of_a_finished_run_is_taken_over(store):
    ledger = store.open()
    ledger.claim(A, P, "run-a")
    assert ledger.claim(A, P, "run-b", run_status=lambda r: "active") is not None
    assert ledger.claim(A, P, "run-b", run_status=lambda r: "finished") is None


def test_release_only_drops_the_own_claim(store):
    ledger = store.open()
    ledger.claim(A, P, "run-a")
    ledger.release(A, P, "run-b")
    assert ledger.current_claim(A, P).run_id == "run-a"
    ledger.release(A, P, "run-a")
    assert ledger.current_claim(A, P) is None


def test_concurrent_claims_from_two_processes_one_wins_the_other_names_it(store):
    """Machines A and B claim one partition at the same instant: exactly one gets it, the
    other's step fails naming the run (and process) that holds it."""
    start = time.time() + 2.0
    code = (
        "import sys, time\n"
        "from marketo_assets.extract import ExportFailed, claim_partition\n"
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
        "try:\n"
        f"    claim_partition(ledger, {A!r}, {P!r}, sys.argv[1], lease_seconds=3600)\n"
        "    print('won', flush=True)\n"
        "    time.sleep(1)\n"  # the winner's step is still working while the other asks
        "except ExportFailed as exc:\n"
        "    print('lost', exc.message, flush=True)\n"
    )
    procs = {run: store.python(code, run, str(start)) for run in ("run-on-a", "run-on-b")}
    results = {run: p.communicate(timeout=60) for run, p in procs.items()}
    outcomes = {run: out.strip() for run, (out, _err) in results.items()}
    assert all(outcomes.values()), results
    winners = [run for run, out in outcomes.items() if out == "won"]
    assert len(winners) == 1, outcomes
    (loser,) = set(outcomes) - set(winners)
    message = outcomes[loser]
    assert message.startswith("lost") and f"run {winners[0]} (process" in message
    assert "already being exported or loaded" in message
    assert store.open().current_claim(A, P).run_id == winners[0]


def test_claim_partition_fails_naming_the_holder(store):
    ledger = store.open()
    claim_partition(ledger, A, P, "run-a", lease_seconds=3600)
    with pytest.raises(ExportFailed) as info:
        claim_partition(ledger, A, P, "run-b", lease_seconds=3600)
    assert "run run-a" in info.value.message and not info.value.retryable
    assert info.value.metadata == {"other_run_id": "run-a"}


def test_exports_are_found_again_newest_first_and_superseded(store):
    """What a re-launched run reattaches to, and what the load step loads."""
    ledger = store.open()
    for n, status in enumerate(["failed", "downloaded", "processing"]):
        ledger.record_created(
            export_id=f"e-{n}", asset=A, partition_key=P, request_hash="h",
            request={"parts": [], "n": n}, run_id="run-a", status=status,
        )  # fmt: skip
    ledger.update("e-1", downloaded_at="2025-01-02T00:00:00+00:00", records=7, bytes=123)
    assert [e.export_id for e in ledger.entries(A)] == ["e-0", "e-1", "e-2"]
    assert ledger.active(A, P, "h").export_id == "e-2"  # the newest active one
    downloaded = ledger.latest_downloaded(A, P)
    assert (downloaded.export_id, downloaded.records, downloaded.bytes) == ("e-1", 7, 123)
    assert downloaded.request == {"parts": [], "n": 1}
    ledger.supersede_others(A, P, keep="e-2")
    assert [e.status for e in store.open().entries(A, P)] == ["failed", "superseded", "processing"]
    assert ledger.latest_downloaded(A, P) is None
    assert ledger.entries("marketo/other") == [] and ledger.get("nope") is None
    with pytest.raises(ValueError, match="unknown ledger columns"):
        ledger.update("e-1", asset="x")


def test_file_states_say_what_the_staging_cleaner_needs(store):
    """Status and staged file of every export (lower-case ids), on either ledger store."""
    ledger = store.open()
    for export_id, status in [("E-A", "loaded"), ("e-b", "created")]:
        ledger.record_created(export_id=export_id, asset=A, partition_key=P, request_hash="h",
                              request={"fields": ["id"]}, status=status)  # fmt: skip
    ledger.update("E-A", staged_file="/x/E-A.csv")
    assert ledger.file_states() == {"e-a": ("loaded", "/x/E-A.csv"), "e-b": ("created", None)}


def test_a_known_export_id_for_another_request_is_a_clear_error(store):
    """A ledger written against another Marketo (or a simulator that repeated ids) must not
    fail with a raw IntegrityError inside the export step."""
    ledger = store.open()
    kw = {"request_hash": "h1", "request": {"fields": ["id"]}}
    ledger.record_created(export_id="e-1", asset=A, partition_key=P, **kw)
    with pytest.raises(ExportIdConflictError) as info:
        ledger.record_created(
            export_id="e-1", asset=A, partition_key="2025-02-01", request_hash="h2", request={}
        )
    message = str(info.value)
    assert "e-1" in message and f"{A} {P}" in message
    if store.kind == "sqlite":
        assert "MARKETO_LEDGER_PATH" in message and str(store.path) in message
    else:
        assert "MARKETO_LEDGER_SCHEMA" in message and store.schema in message
        assert store.env["PGPASSWORD"] not in message
    entry = ledger.get("e-1")
    assert (entry.partition_key, entry.request_hash) == (P, "h1")  # the old row is untouched


@pytest.mark.postgres
def test_postgres_ledger_names_the_fix_without_the_password(pg_server, monkeypatch):
    for name, value in pg_server.libpq_env("postgres").items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ExportFailed, match="MARKETO_LEDGER_SCHEMA"):
        PostgresLedger(schema="Bad-Name")
    monkeypatch.setenv("PGPORT", "1")  # nothing listens there
    with pytest.raises(ExportFailed) as info:
        PostgresLedger(connect_timeout=5)
    message = info.value.message
    assert "PGHOST, PGPORT" in message and pg_server.password not in message
    assert info.value.retryable


@pytest.mark.postgres
def test_postgres_ledger_created_once_then_used_by_a_role_without_create(pg_server, monkeypatch):
    """A DBA creates the schema once (or the first run does); run processes may log in as a
    role that can only read and write its tables."""
    import psycopg2

    for name, value in pg_server.libpq_env("postgres").items():
        monkeypatch.setenv(name, value)
    PostgresLedger(schema="ledger_dba")
    conn = psycopg2.connect(pg_server.dsn())
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE ROLE ledger_runs LOGIN PASSWORD 'runs-secret'")
        cur.execute("GRANT USAGE ON SCHEMA ledger_dba TO ledger_runs")
        cur.execute(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ledger_dba TO ledger_runs"
        )
    conn.close()
    monkeypatch.setenv("PGUSER", "ledger_runs")
    monkeypatch.setenv("PGPASSWORD", "runs-secret")
    ledger = PostgresLedger(schema="ledger_dba")
    assert ledger.claim(A, P, "run-a") is None
    ledger.record_created(export_id="e-1", asset=A, partition_key=P, request_hash="h", request={})
    assert ledger.get("e-1").status == "created"


# ---------------------------------------------------------------- exports shared by partitions
PM = "marketo/program_members"


def _created(ledger: Ledger, export_id: str, slot: str) -> None:
    ledger.record_created(
        export_id=export_id, asset=PM, partition_key=slot, request_hash="h", request={}
    )
    ledger.update(export_id, status="downloaded", staged_file=f"/tmp/{export_id}.csv")


def test_a_shared_export_is_loaded_once_every_member_partition_is(store):
    """One job for three programs: each partition finds it, and the export counts as loaded
    (its file may go) only after the last partition's load."""
    ledger = store.open()
    _created(ledger, "job-1", "batch-t:1,2,3")
    ledger.add_members("job-1", PM, ["1", "2", "3"])
    for key in ("1", "2", "3"):
        found = ledger.pending_export(PM, key)
        assert found is not None and found.export_id == "job-1"
    assert ledger.member_loaded("job-1", "1", 5) is False
    assert ledger.member_loaded("job-1", "3", 7) is False
    assert ledger.get("job-1").status == "downloaded"
    assert ledger.pending_export(PM, "1") is None
    assert ledger.member_loaded("job-1", "2", 0) is True
    entry = ledger.get("job-1")
    assert entry.status == "loaded" and entry.loaded_at
    members = ledger.members(PM, export_id="job-1")
    assert [(m["partition_key"], m["status"], m["row_count"], m["slot"]) for m in members] == [
        ("1", "loaded", 5, "batch-t:1,2,3"),
        ("2", "loaded", 0, "batch-t:1,2,3"),
        ("3", "loaded", 7, "batch-t:1,2,3"),
    ]


def test_a_newer_export_of_a_member_supersedes_its_share_of_the_old_one(store):
    ledger = store.open()
    _created(ledger, "job-1", "batch-t:1,2")
    ledger.add_members("job-1", PM, ["1", "2"])
    ledger.member_loaded("job-1", "1", 4)
    # Program 2 is exported alone before its share of job-1 was loaded.
    _created(ledger, "job-2", "2")
    ledger.add_members("job-2", PM, ["2"])
    assert ledger.pending_export(PM, "2").export_id == "job-2"
    assert ledger.get("job-1").status == "loaded"  # nothing pending: its file may go
    # An export none of whose members was loaded from it is superseded.
    _created(ledger, "job-3", "batch-u:2,3")
    ledger.add_members("job-3", PM, ["2", "3"])
    _created(ledger, "job-4", "batch-v:2,3")
    ledger.add_members("job-4", PM, ["2", "3"])
    assert ledger.get("job-3").status == "superseded"
    assert ledger.get("job-2").status == "superseded"
    # Adding the same members again (another member's step reusing the file) changes nothing.
    ledger.add_members("job-4", PM, ["2", "3"])
    assert [m["status"] for m in ledger.members(PM, export_id="job-4")] == ["pending"] * 2


def test_a_batch_slot_claim_is_waited_for(store):
    """The step of another member waits while the batch's job is being made, then gets it."""
    ledger = store.open()
    ledger.claim(A, "batch-t:1,2", "run-a")
    started = time.monotonic()
    with pytest.raises(ExportFailed, match="run-a"):
        claim_partition(
            ledger, A, "batch-t:1,2", "run-b", lease_seconds=60, wait_seconds=0.3,
            poll_seconds=0.05,
        )  # fmt: skip
    assert time.monotonic() - started >= 0.3
    ledger.release(A, "batch-t:1,2", "run-a")
    claim_partition(ledger, A, "batch-t:1,2", "run-b", lease_seconds=60, wait_seconds=5)
    assert ledger.current_claim(A, "batch-t:1,2").run_id == "run-b"


def test_an_export_recorded_by_a_process_killed_right_after_is_found(store):
    """The ledger's promise (docs/RELIABILITY.md): a run killed right after Marketo created its
    export finds the export id again when it is re-launched. SQLite commits with
    synchronous=NORMAL (no fsync per commit): that survives any process crash."""
    code = (
        "import os, signal\n"
        f"ledger.record_created(export_id='e-k', asset={A!r}, partition_key={P!r}, "
        "request_hash='h', request={}, run_id='run-k')\n"
        f"ledger.claim({A!r}, {P!r}, 'run-k')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = store.python(code)
    proc.communicate(timeout=60)
    assert proc.returncode == -9
    ledger = store.open()
    assert ledger.active(A, P, "h").export_id == "e-k"
    assert ledger.current_claim(A, P).run_id == "run-k"


def test_sqlite_ledger_commits_without_a_checkpoint_each(tmp_path):
    """Issue 17: each write used to open a connection whose close checkpointed and deleted
    the WAL (fsyncs and two new files per write). With the ledger open, its WAL stays."""
    ledger = ExportLedger(tmp_path / "ledger.sqlite")
    wal = tmp_path / "ledger.sqlite-wal"
    ledger.record_created(export_id="e-1", asset=A, partition_key=P, request_hash="h", request={})
    inode = wal.stat().st_ino
    for n in range(5):
        ledger.update("e-1", records=n)
    assert wal.stat().st_ino == inode  # not deleted and created again by every write
    assert ExportLedger(tmp_path / "ledger.sqlite").get("e-1").records == 4
