"""A throwaway PostgreSQL cluster for tests: initdb into a temp dir, loopback TCP only.

PostgreSQL's `initdb` and `postgres` refuse to run as root. When the tests run as root (CI
containers do) the cluster is created and run as the `postgres` system user (created by the
Debian `postgresql` package; `.ci/setup-postgres` installs it) through `runuser`; otherwise as
the current user. Its directory lives under /tmp (not pytest's 0700 tmp_path, which the
`postgres` user cannot enter) and is deleted afterwards.

The server listens on 127.0.0.1 only, on a free port, with its socket in the cluster
directory; clients authenticate with a password (scram-sha-256), like a real deployment.
Durability is switched off (fsync, synchronous_commit): the data is thrown away.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "marketo_test"
RUN_AS_WHEN_ROOT = "postgres"


def find_bindir() -> Path | None:
    """Directory holding initdb/pg_ctl: $MARKETO_PG_BINDIR, else the newest
    /usr/lib/postgresql/<version>/bin, else initdb on PATH."""
    explicit = os.environ.get("MARKETO_PG_BINDIR")
    candidates = [Path(explicit)] if explicit else []
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True
    )
    candidates += [Path(p) for p in versions]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    return None


def unavailable_reason() -> str | None:
    """Why a cluster cannot be started here, or None."""
    if find_bindir() is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl) not found: run `.ci/setup-postgres` "
            "(apt-get install postgresql) or set MARKETO_PG_BINDIR"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(RUN_AS_WHEN_ROOT)
        except KeyError:
            return (
                "running as root and there is no `postgres` user to run the server as "
                "(PostgreSQL refuses to run as root): run `.ci/setup-postgres`"
            )
        if shutil.which("runuser") is None:
            return "running as root and `runuser` (util-linux) is missing"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    user: str
    password: str
    directory: Path

    def dsn(self, dbname: str = "postgres") -> str:
        """libpq key/value connection string (the password included: tests only)."""
        return (
            f"host={self.host} port={self.port} user={self.user} "
            f"password={self.password} dbname={dbname}"
        )

    def libpq_env(self, dbname: str) -> dict[str, str]:
        """The standard libpq variables (psql, psycopg2 with an empty DSN, dbt's profile)."""
        return {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
            "PGDATABASE": dbname,
        }

    def create_database(self, name: str) -> str:
        import psycopg2

        conn = psycopg2.connect(self.dsn())
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return name


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", RUN_AS_WHEN_ROOT, "--", *cmd]
    return cmd


@contextmanager
def throwaway_cluster(timeout: float = 120) -> Iterator[PgServer]:
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError(unavailable_reason())
    directory = Path(tempfile.mkdtemp(prefix="marketo-pg-"))
    data = directory / "data"
    password = secrets.token_urlsafe(16)
    pwfile = directory / "pwfile"
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        user = pwd.getpwnam(RUN_AS_WHEN_ROOT)
        for path in (directory, pwfile):
            os.chown(path, user.pw_uid, user.pw_gid)
    directory.chmod(0o700)
    port = free_port()
    log = directory / "server.log"
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    subprocess.run(
        _as_server_user(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "--encoding=UTF8",
                "--no-sync",
            ]
        ),
        check=True,
        capture_output=True,
        env=env,
        timeout=timeout,
    )
    options = (
        f"-k {directory} -h 127.0.0.1 -p {port} -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=200"
    )
    started = subprocess.run(
        _as_server_user(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-o",
                options,
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            ]
        ),
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout + 10,
    )
    try:
        if started.returncode != 0:
            server_log = log.read_text() if log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {started.stderr}\n{server_log[-2000:]}")
        server = PgServer("127.0.0.1", port, SUPERUSER, password, directory)
        _wait_ready(server, timeout)
        yield server
    finally:
        subprocess.run(
            _as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            env=env,
            timeout=60,
        )
        shutil.rmtree(directory, ignore_errors=True)


def _wait_ready(server: PgServer, timeout: float) -> None:
    import psycopg2

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg2.connect(server.dsn(), connect_timeout=5).close()
            return
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
