"""A load whose COMMIT fails reports why, and leaves the table as it was.

The failure is real, not mocked: DuckDB writes the write-ahead log `<file>.wal` at COMMIT, and a
folder in its place makes that write fail ("Is a directory"), as a full disk would.
"""

from __future__ import annotations

import duckdb
import pytest

from marketo_assets.warehouse import (
    Column,
    LoadError,
    load_partition,
    replace_list_catalog,
)

TABLE = "marketo.leads"
COLUMNS = [Column(name="id", field="id", type="BIGINT"), Column("email", "email", "VARCHAR")]


def _load(conn, path, partition):
    return load_partition(
        conn,
        table=TABLE,
        file_path=path,
        file_format="CSV",
        columns=COLUMNS,
        partition_key=partition,
        lineage={"export_id": f"exp-{partition}"},
    )


@pytest.fixture
def blocked_wal(tmp_path):
    """A connection whose next COMMIT fails (the .wal path is a folder), with one partition
    already loaded and checkpointed."""
    database = tmp_path / "wh.duckdb"
    first = tmp_path / "first.csv"
    first.write_text("id,email\n1,a@example.com\n2,b@example.com\n")
    conn = duckdb.connect(str(database))
    _load(conn, first, "2025-01")
    conn.execute("CHECKPOINT")  # the data is in the file; no .wal left
    wal = tmp_path / "wh.duckdb.wal"
    assert not wal.exists()
    wal.mkdir()
    yield conn, tmp_path
    conn.close()
    wal.rmdir()


def test_failed_commit_of_a_load_names_its_real_cause(blocked_wal):
    conn, tmp_path = blocked_wal
    before = conn.execute(f"SELECT * FROM {TABLE} ORDER BY id").fetchall()
    second = tmp_path / "second.csv"
    second.write_text("id,email\n1,changed@example.com\n3,c@example.com\n")

    with pytest.raises(LoadError) as caught:
        _load(conn, second, "2025-01")

    message = str(caught.value)
    assert "no transaction is active" not in message
    assert "commit" in message.lower() and "Is a directory" in message, message
    assert "second.csv" in message and TABLE in message
    assert isinstance(caught.value.__cause__, duckdb.Error)
    assert conn.execute(f"SELECT * FROM {TABLE} ORDER BY id").fetchall() == before


def test_failed_commit_of_the_list_catalog_names_its_real_cause(blocked_wal):
    conn, _ = blocked_wal
    loaded_at = duckdb.execute("SELECT now()").fetchone()[0]
    with pytest.raises(duckdb.Error) as caught:
        replace_list_catalog(
            conn,
            table="marketo.lists",
            rows=[{"list_type": "static", "list_id": 1, "partition_key": "static-1", "name": "A"}],
            loaded_at=loaded_at,
        )
    message = str(caught.value)
    assert "no transaction is active" not in message
    assert "Is a directory" in message, message
    assert conn.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'lists'"
    ).fetchone() == (0,)
