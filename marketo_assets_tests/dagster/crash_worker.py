"""A run process for the crash tests: materializes lead partitions one after the other with the
in-process executor against $DAGSTER_HOME. This process IS the run process, so killing it kills
the run wherever its cycle is (waiting on Marketo, downloading, inside the DuckDB transaction).

    python -m marketo_assets_tests.dagster.crash_worker PARTITION [...] [--pause-load KEY:MARKER]
    python -m marketo_assets_tests.dagster.crash_worker --fork-server

`--fork-server` imports everything once, then forks one fresh run process per JSON line read
from stdin (`{"partitions": [...], "pause_load": "KEY:MARKER", "log": PATH}`) and prints its
pid (`{"wait": PID}` reaps a killed child: answers once all its threads have exited, so its
file locks are gone). A re-launch then costs no import (~3 s of CPU on a busy 2-core
machine). The child opens its own Dagster instance and connections, writes its output to `log`
and its exit code to `log + ".rc"`; the server only imported modules before forking.

Connection settings come from the environment the tests build (`conftest.run_env`).
`--pause-load KEY:MARKER` makes the load of partition KEY stop just before its COMMIT, after
every row is inserted, and write MARKER: the test then kills the process mid-transaction
(the pause lasts $CRASH_WORKER_PAUSE_SECONDS, default 600).
Only imports the lead assets (not dbt), to keep each process start cheap.
"""

import argparse
import json
import os
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from marketo_assets.defs.resources import ExportOptions, MarketoResource
from marketo_assets_tests.support.assets import lead_export_files, leads


class _PausingConnection:
    """A DuckDB connection that stops before COMMIT (everything else passes through): for
    `seconds`, or with `hold_until_exported` = N until N partitions of lead_export_files are
    materialized, then 1 s more (at most `seconds`), so that a load holds the `duckdb` slot
    while other runs' loads ask for it, whatever Marketo's job times."""

    def __init__(self, conn, marker: str, seconds: float, hold_until_exported: int = 0):
        self._conn, self._marker, self._seconds = conn, marker, seconds
        self._hold = hold_until_exported

    def execute(self, sql, *args, **kwargs):
        if isinstance(sql, str) and sql.strip().upper() == "COMMIT":
            Path(self._marker).write_text(str(os.getpid()))
            if self._hold:
                _hold_until_exported(self._hold, time.monotonic() + self._seconds)
            else:
                time.sleep(self._seconds)
        return self._conn.execute(sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def _hold_until_exported(count: int, deadline: float) -> None:
    key = dg.AssetKey(["marketo", "lead_export_files"])
    with dg.DagsterInstance.get() as instance:
        while time.monotonic() < deadline:
            records = instance.fetch_materializations(key, limit=1000).records
            if len({r.partition_key for r in records}) >= count:
                break
            time.sleep(0.2)
    time.sleep(max(0.0, min(1.0, deadline - time.monotonic())))


class PausingDuckDB(DuckDBResource):
    pause_marker: str = ""
    pause_seconds: float = 600.0
    hold_until_exported: int = 0

    @contextmanager
    def get_connection(self):
        with super().get_connection() as conn:
            if self.pause_marker:
                yield _PausingConnection(
                    conn, self.pause_marker, self.pause_seconds, self.hold_until_exported
                )
            else:
                yield conn


def resources(pause_marker: str = "") -> dict:
    env = os.environ
    return {
        "marketo": MarketoResource(
            base_url=env["MARKETO_BASE_URL"],
            client_id=env["MARKETO_CLIENT_ID"],
            client_secret=env["MARKETO_CLIENT_SECRET"],
            poll_interval=float(env.get("MARKETO_POLL_INTERVAL", "0.2")),
            job_timeout=float(env.get("MARKETO_JOB_TIMEOUT", "300")),
            staging_dir=env["MARKETO_STAGING_DIR"],
            ledger_path=env["MARKETO_LEDGER_PATH"],
        ),
        "export_options": ExportOptions(),
        "warehouse": PausingDuckDB(
            database=env["DUCKDB_PATH"],
            pause_marker=pause_marker,
            pause_seconds=float(env.get("CRASH_WORKER_PAUSE_SECONDS", "600")),
            hold_until_exported=int(env.get("CRASH_WORKER_HOLD_UNTIL_EXPORTED", "0")),
        ),
    }


def run_partitions(partitions: list[str], pause_load: str = "") -> int:
    pause_key, _, marker = pause_load.partition(":")
    with dg.DagsterInstance.get() as instance:
        for key in partitions:
            result = dg.materialize(
                [lead_export_files, leads],
                partition_key=key,
                resources=resources(marker if key == pause_key else ""),
                instance=instance,
                raise_on_error=False,
            )
            print(f"{key}: {'success' if result.success else 'FAILURE'}", flush=True)
            for event in result.get_step_failure_events():
                error = event.step_failure_data.error
                print(f"{event.step_key} failed: {error.message if error else ''}", flush=True)
            if not result.success:
                return 1
    return 0


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def fork_server() -> int:
    for line in sys.stdin:
        command = json.loads(line)
        if "wait" in command:  # reap a killed child: every thread of it has exited
            try:
                _, status = os.waitpid(command["wait"], 0)
            except ChildProcessError:
                status = -1
            print(status, flush=True)
            continue
        _reap()
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:  # the run process
            code = 1
            try:
                fd = os.open(command["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                sys.stdin.close()
                code = run_partitions(command["partitions"], command.get("pause_load", ""))
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                rc = Path(command["log"] + ".rc")  # whole when it appears: the test polls it
                rc.with_suffix(".tmp").write_text(str(code))
                os.replace(rc.with_suffix(".tmp"), rc)
                os._exit(code)
        print(pid, flush=True)
    _reap()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("partitions", nargs="*")
    parser.add_argument("--pause-load", default="", help="KEY:MARKER")
    parser.add_argument("--fork-server", action="store_true")
    args = parser.parse_args(argv)
    if args.fork_server:
        return fork_server()
    return run_partitions(args.partitions, args.pause_load)


if __name__ == "__main__":
    sys.exit(main())
