"""The project's SQLite instance storage (`marketo_assets.local.sqlite_storage`): engines kept per
database file, new run files copied from one Dagster made, and everything else as Dagster's own
storage does it (the same files, which Dagster's storage reads; the UI still follows a run
while another process runs it)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from unittest import mock

import dagster as dg
import pytest
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from marketo_assets.local import sqlite_engines, sqlite_storage
from marketo_assets.local.instance import instance_at
from marketo_assets.local.sqlite_engines import Engines
from marketo_assets.settings import PROJECT_ROOT


@dg.asset
def tiny(context) -> None:
    context.log.info("a line")


KEPT_DURING_RUN: list[dict[str, bool]] = []


@dg.asset
def peek(context) -> None:
    """Records which engines the storage keeps while this run runs."""
    context.log.info("a line")
    KEPT_DURING_RUN.append(dict(context.instance.event_log_storage.engines.urls()))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "dagster_home"
    folder.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.yaml", folder / "dagster.yaml")
    return folder


def _schema(path: Path) -> tuple[list, list, str]:
    with sqlite3.connect(path) as db:
        tables = db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")
        return (
            tables.fetchall(),
            db.execute("SELECT version_num FROM alembic_version").fetchall(),
            db.execute("PRAGMA journal_mode").fetchone()[0],
        )


def test_a_run_makes_one_engine_and_its_file_is_dagsters(home: Path, tmp_path: Path):
    with instance_at(home) as instance:
        dg.materialize([tiny], instance=instance)  # the index, runs.db and the first run file
        made = []
        real = sqlite_engines.create_engine
        with mock.patch.object(
            sqlite_engines,
            "create_engine",
            side_effect=lambda *a, **k: made.append(a) or real(*a, **k),
        ):
            KEPT_DURING_RUN.clear()
            run_id = dg.materialize([peek], instance=instance).run_id
        storage = instance.event_log_storage
        assert isinstance(storage, sqlite_storage.LocalSqliteEventLogStorage)
        run_file = home / "history" / "runs" / f"{run_id}.db"
        # Dagster's own storage builds an engine per connection: ~40 for this run.
        assert [url for (url,) in made] == [storage.conn_string_for_shard(run_id)]
        # While the run ran, its file and the index each kept a connection open ...
        assert KEPT_DURING_RUN[0][storage.conn_string_for_shard(run_id)] is True
        assert KEPT_DURING_RUN[0][storage.conn_string_for_shard("index")] is True
        # ... and once it ended, its file's was closed: its WAL file folded back in.
        assert dict(storage.engines.urls()) == {storage.conn_string_for_shard("index"): True}
        assert not Path(f"{run_file}-wal").exists()
        assert len(instance.run_storage.engines) == 1  # type: ignore[attr-defined]
        ours = [e.dagster_event_type for e in instance.all_logs(run_id)]

    # The run file is the one Dagster makes, and Dagster's own storage reads it.
    dagsters = SqliteEventLogStorage(str(tmp_path / "stock"))
    with dagsters.run_connection("some-run"):
        pass
    assert _schema(run_file) == _schema(tmp_path / "stock" / "some-run.db")
    assert _schema(run_file)[2] == "wal"
    stock = SqliteEventLogStorage(str(home / "history" / "runs"))
    assert [e.dagster_event_type for e in stock.get_logs_for_run(run_id)] == ours
    assert dg.DagsterEventType.RUN_SUCCESS in ours


def test_a_run_file_deleted_while_its_connection_is_kept_is_made_again(home: Path):
    """Wiping the instance deletes the run files; a kept connection to a deleted file is not
    reused: the events written afterwards are in the new file."""
    with instance_at(home) as instance:
        storage = instance.event_log_storage
        run_id = dg.materialize([tiny], instance=instance).run_id
        with storage.run_connection(run_id):  # keeps a connection to the run file
            pass
        instance.wipe()
        assert not (home / "history" / "runs" / f"{run_id}.db").exists()
        storage.store_event(
            dg.EventLogEntry(
                error_info=None,
                level="INFO",
                user_message="after the wipe",
                run_id=run_id,
                timestamp=time.time(),
            )
        )
    stock = SqliteEventLogStorage(str(home / "history" / "runs"))
    assert [e.user_message for e in stock.get_logs_for_run(run_id)] == ["after the wipe"]


def test_an_existing_file_is_left_as_it_is(tmp_path: Path):
    path = tmp_path / "run.db"
    path.write_bytes(b"someone else's")
    assert sqlite_storage._new_run_file(str(path), lambda: b"template") is False
    assert path.read_bytes() == b"someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.db"]  # no part file left


def test_processes_creating_one_run_file_together_both_succeed(home: Path):
    """Two processes open the same new run's file at one moment (the run process and the UI):
    one copies the template in place, the other finds it there; both then write."""
    run_id = str(uuid.uuid4())
    code = textwrap.dedent(
        f"""
        import sys, time
        from marketo_assets.local.instance import instance_at
        with instance_at({str(home)!r}) as instance:
            storage = instance.event_log_storage
            start = float(sys.stdin.readline())
            time.sleep(max(0.0, start - time.time()))
            with storage.run_connection({run_id!r}) as conn:
                conn.exec_driver_sql("SELECT count(*) FROM event_logs").fetchone()
            print("ok")
        """
    )
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    with instance_at(home):  # the index shard exists before they start
        pass
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    start = f"{time.time() + 8}\n"
    outs = [p.communicate(start, timeout=60)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0] and outs == ["ok\n", "ok\n"]
    assert _schema(home / "history" / "runs" / f"{run_id}.db")[1]  # stamped once, readable
    assert not list((home / "history" / "runs").glob("*.new"))


@dg.asset
def waits_after_a_line(context) -> None:
    """Logs a line, then waits for a line on stdin (the test's go-ahead)."""
    context.log.info("a line")
    print("logged", flush=True)
    input()


@pytest.mark.timeout(120)
def test_the_ui_follows_a_run_another_process_runs(home: Path):
    """The UI follows a run by watching its file change (Dagster's SQLite watcher): an event
    written by the run's process reaches a watcher in another process while the run is still
    running (its connection to the run file open), not only when the run ends."""
    run_id = str(uuid.uuid4())
    seen: list[str] = []
    logged, ended = threading.Event(), threading.Event()

    def on_event(entry, _cursor):
        seen.append(entry.dagster_event_type or entry.user_message)
        if entry.user_message == "a line":
            logged.set()
        if entry.dagster_event_type == dg.DagsterEventType.RUN_SUCCESS:
            ended.set()

    code = textwrap.dedent(
        f"""
        import dagster as dg
        from marketo_assets.local.instance import instance_at
        from marketo_assets_tests.dagster.test_sqlite_storage import waits_after_a_line
        job = dg.Definitions(assets=[waits_after_a_line]).get_implicit_global_asset_job_def()
        with instance_at({str(home)!r}) as instance:
            assert job.execute_in_process(instance=instance, run_id={run_id!r}).success
        """
    )
    with instance_at(home) as instance:
        instance.event_log_storage.watch(run_id, None, on_event)
        try:
            env = {**os.environ, "DAGSTER_HOME": str(home)}
            run = subprocess.Popen(
                [sys.executable, "-c", code],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
                cwd=PROJECT_ROOT,
            )
            try:
                assert run.stdout is not None and run.stdout.readline() == "logged\n"
                assert logged.wait(20), f"while the run ran, the watcher saw {seen}"
                assert not ended.is_set()
            finally:
                run.communicate("\n", timeout=60)
            assert run.returncode == 0
            assert ended.wait(20), f"the watcher saw {seen}"
        finally:
            instance.event_log_storage.end_watch(run_id, on_event)
    assert dg.DagsterEventType.RUN_START in seen


def test_a_forked_child_does_not_use_its_parents_connections(tmp_path: Path):
    engines = Engines()
    url = f"sqlite:///{tmp_path / 'x.db'}"
    parent = engines.get(url, pooled=True)
    with parent.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.commit()
    pid = os.fork()
    if pid == 0:  # the child: a new engine, its own connection
        code = 1
        try:
            child = engines.get(url, pooled=True)
            with child.connect() as conn:
                conn.exec_driver_sql("INSERT INTO t VALUES (1)")
                conn.commit()
            code = 0 if child is not parent else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert engines.get(url, pooled=True) is parent
    with parent.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1


def test_the_least_recently_used_engine_is_dropped(tmp_path: Path):
    engines = Engines(size=2)
    a, b, c = (f"sqlite:///{tmp_path / n}.db" for n in "abc")
    first = engines.get(a, pooled=False)
    engines.get(b, pooled=False)
    assert engines.get(a, pooled=False) is first  # used again: b is now the oldest
    engines.get(c, pooled=False)
    assert [url for url, _ in engines.urls()] == [a, c]


def test_a_new_instance_makes_the_template_before_its_first_run(
    home: Path, tmp_path: Path, monkeypatch
):
    """Setting up the storage of a new folder makes the template (as Dagster makes index.db
    then): the folder's first run copies it, Dagster's initialisation does not run in it."""
    monkeypatch.setattr(sqlite_storage, "_template", {})
    runs = home / "history" / "runs"

    def refused(*_args, **_kwargs):
        raise AssertionError("Dagster's initialisation ran in the folder's first run")

    with instance_at(home) as instance:
        assert len(list(runs.glob("run-file-template-dagster-*.sqlite"))) == 1
        with monkeypatch.context() as m:
            m.setattr(SqliteEventLogStorage, "_initdb", refused)
            run_id = dg.materialize([tiny], instance=instance).run_id
    stock = SqliteEventLogStorage(str(tmp_path / "stock"))
    with stock.run_connection("some-run"):
        pass
    assert _schema(runs / f"{run_id}.db") == _schema(tmp_path / "stock" / "some-run.db")


def test_the_next_process_copies_the_saved_template(home: Path, monkeypatch):
    """The template is made once per instance folder (and Dagster version): a new process
    (here: the process's copy forgotten) makes new run files without Dagster's initialisation;
    a damaged template is made again."""
    with instance_at(home) as instance:
        first = dg.materialize([tiny], instance=instance).run_id
    runs = home / "history" / "runs"
    (template,) = runs.glob("run-file-template-dagster-*.sqlite")
    assert _schema(template)[1] == _schema(runs / f"{first}.db")[1]

    monkeypatch.setattr(sqlite_storage, "_template", {})

    def refused(*_args, **_kwargs):
        raise AssertionError("Dagster's initialisation ran for a new run file")

    with monkeypatch.context() as m:
        m.setattr(SqliteEventLogStorage, "_initdb", refused)
        with instance_at(home) as instance:
            second = dg.materialize([tiny], instance=instance).run_id
    assert _schema(runs / f"{second}.db") == _schema(runs / f"{first}.db")

    template.write_bytes(b"not a database")
    monkeypatch.setattr(sqlite_storage, "_template", {})
    with instance_at(home) as instance:
        third = dg.materialize([tiny], instance=instance).run_id
    assert _schema(runs / f"{third}.db") == _schema(runs / f"{first}.db")
    assert _schema(template)[1] == _schema(runs / f"{first}.db")[1]  # made again
    assert not list(runs.glob("*.new"))


def test_an_instance_opens_its_files_without_reading_migration_scripts(
    home: Path, tmp_path: Path, monkeypatch
):
    """A new folder gets Dagster's own runs.db and schedules.db; opening them again (every run
    process does) skips Dagster's check against its migration scripts, which changes nothing
    in a stamped file."""
    from dagster._core.storage.runs.sqlite import sqlite_run_storage
    from dagster._core.storage.schedules.sqlite import sqlite_schedule_storage

    with instance_at(home) as instance:
        dg.materialize([tiny], instance=instance)
    sqlite_run_storage.SqliteRunStorage.from_local(str(tmp_path / "stock" / "history"))
    sqlite_schedule_storage.SqliteScheduleStorage.from_local(str(tmp_path / "stock" / "schedules"))
    for name in ("history/runs.db", "schedules/schedules.db"):
        assert _schema(home / name) == _schema(tmp_path / "stock" / name)

    def refused(*_args, **_kwargs):
        raise AssertionError("Dagster's migration scripts were read")

    for module in (sqlite_run_storage, sqlite_schedule_storage):
        monkeypatch.setattr(module, "check_alembic_revision", refused)
    with instance_at(home) as instance:
        assert len(instance.get_runs()) == 1
        assert dg.materialize([tiny], instance=instance).success
