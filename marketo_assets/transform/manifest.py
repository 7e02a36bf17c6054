"""The dbt project and its manifest, prepared once and never raced.

`@dbt_assets` reads `dbt_project/target/manifest.json` when the code location is imported, and
every Dagster process imports it: the code server, the daemon, each run worker. dagster-dbt's
`prepare_if_dev()` would run `dbt parse` in each of them under `dagster dev`, and parallel runs
then race on the same target folder (dagster-io/dagster#33993). Instead:

- `make manifest` (which `make demo`, `make dev` and `make test` run first) parses once:
  `python -m marketo_assets.transform.manifest`.
- Any process that finds the manifest missing or stale (a dbt file edited since, or a DuckDB
  file with another name, since the catalog name is baked into the manifest) re-parses it, under
  an exclusive file lock. Every other process waits for the lock, sees a fresh manifest and
  parses nothing. `dbt parse` writes into a private folder and the manifest is moved into place
  atomically, so no process ever reads a half-written file.

`dbt parse` does not open the DuckDB file, so preparing never contends with a running load.
"""

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from marketo_assets.settings import PROJECT_ROOT, load_settings

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
TARGET = "dev"
# What `dbt parse` reads: a change to any of these makes the manifest stale.
_SOURCE_FILES = ("dbt_project.yml", "profiles.yml", "packages.yml", "dependencies.yml")
_SOURCE_DIRS = ("models", "macros", "tests", "seeds", "snapshots", "analyses")
LOCK_TIMEOUT = 300.0


class ManifestError(RuntimeError):
    """The dbt manifest could not be prepared."""


def dbt_executable() -> str:
    """The `dbt` of this virtualenv (next to the interpreter), else whatever is on PATH."""
    local = Path(sys.executable).with_name("dbt")
    return str(local) if local.exists() else (shutil.which("dbt") or "dbt")


def expected_catalog() -> str:
    """DuckDB names the catalog after the database file: `marketo.duckdb` -> `marketo`."""
    return load_settings().duckdb_path.stem


def manifest_path(project_dir: Path = DBT_PROJECT_DIR) -> Path:
    return project_dir / "target" / "manifest.json"


def stale_reason(project_dir: Path = DBT_PROJECT_DIR, catalog: str | None = None) -> str | None:
    """Why the manifest must be (re)built, or None when it is current."""
    manifest = manifest_path(project_dir)
    if not manifest.exists():
        return "no manifest yet"
    built = manifest.stat().st_mtime
    for path in _project_files(project_dir):
        if path.stat().st_mtime > built:
            return f"{path.relative_to(project_dir)} changed"
    catalog = catalog or expected_catalog()
    try:
        databases = {n.get("database") for n in json.loads(manifest.read_text())["nodes"].values()}
    except (OSError, ValueError, KeyError):
        return "unreadable manifest"
    if databases - {catalog}:
        return f"manifest was parsed for catalog {sorted(databases - {catalog})}, not {catalog!r}"
    return None


def ensure_manifest(
    project_dir: Path = DBT_PROJECT_DIR, log=None, database: Path | None = None
) -> Path:
    """The manifest's path, after parsing the project if the manifest is missing or stale.
    `database`: the DuckDB file the runs use (default: DUCKDB_PATH)."""
    database = database or load_settings().duckdb_path
    if stale_reason(project_dir, database.stem) is None:  # the common case: no lock, no parse
        return manifest_path(project_dir)
    with _exclusive(project_dir / "target" / ".manifest.lock"):
        reason = stale_reason(project_dir, database.stem)  # another process may have parsed it
        if reason is not None:
            if log:
                log(f"Parsing the dbt project ({reason})")
            parse(project_dir, database)
    return manifest_path(project_dir)


def parse(project_dir: Path = DBT_PROJECT_DIR, database: Path | None = None) -> Path:
    """`dbt parse` into a private folder, then move the manifest into place atomically.
    Callers hold the lock (`ensure_manifest`)."""
    work = project_dir / "target" / "parse"  # keeps partial_parse.msgpack: re-parses are quick
    work.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        # The path runs hand dbt (dbt.py): then runs can reuse this parse (partial parsing
        # starts over when the profile differs).
        "DUCKDB_PATH": str((database or load_settings().duckdb_path).resolve()),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_LOG_PATH": str(work),
        "DBT_TARGET_PATH": str(work),
    }
    cmd = [
        dbt_executable(),
        "parse",
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(project_dir),
        "--target",
        TARGET,
    ]
    done = subprocess.run(
        cmd, cwd=project_dir, env=env, capture_output=True, text=True, timeout=LOCK_TIMEOUT
    )
    built = work / "manifest.json"
    if done.returncode != 0 or not built.exists():
        output = (done.stdout + done.stderr).strip()[-4000:]
        raise ManifestError(
            f"`dbt parse` failed (exit {done.returncode}) in {project_dir}; fix the project, "
            f"then run `make manifest`.\n{output}"
        )
    target = project_dir / "target"
    partial = work / "partial_parse.msgpack"
    if partial.exists():  # dagster-dbt copies target/partial_parse.msgpack into each run
        shutil.copyfile(partial, target / "partial_parse.msgpack.tmp")
        os.replace(target / "partial_parse.msgpack.tmp", target / "partial_parse.msgpack")
    os.replace(built, manifest_path(project_dir))
    return manifest_path(project_dir)


def _project_files(project_dir: Path) -> Iterator[Path]:
    for name in _SOURCE_FILES:
        if (project_dir / name).exists():
            yield project_dir / name
    for name in _SOURCE_DIRS:
        folder = project_dir / name
        if folder.is_dir():
            yield from (p for p in folder.rglob("*") if p.is_file())


@contextmanager
def _exclusive(lock_path: Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ManifestError(
                        f"waited {timeout:.0f} s for another process preparing the dbt "
                        f"manifest ({lock_path})"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def main() -> int:
    started = time.monotonic()
    reason = stale_reason()
    path = ensure_manifest(log=lambda text: print(text, flush=True))  # noqa: T201
    state = f"rebuilt ({reason})" if reason else "up to date"
    print(f"dbt manifest {state}: {path} ({time.monotonic() - started:.1f} s)")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
