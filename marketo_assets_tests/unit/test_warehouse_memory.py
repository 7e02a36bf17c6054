"""A load lowers DuckDB's memory_limit for its own query only: the connection's setting is the
same afterwards, the default one as a value the user set."""

import duckdb
import pytest

from marketo_assets.warehouse import columns_for, load_partition


def _setting(conn: duckdb.DuckDBPyConnection) -> str:
    return conn.execute("SELECT current_setting('memory_limit')").fetchone()[0]


@pytest.mark.parametrize("limit", [None, "50.0 GiB", "3.0 GiB"])
def test_a_load_leaves_memory_limit_as_it_was(tmp_path, limit):
    conn = duckdb.connect(str(tmp_path / "wh.duckdb"))
    if limit:
        conn.execute(f"SET memory_limit = '{limit}'")
    before = _setting(conn)
    path = tmp_path / "p.csv"
    path.write_text("id\n1\n2\n")
    load_partition(conn, table="marketo.t", file_path=path, file_format="CSV",
                   columns=columns_for([("id", "integer")], {}), partition_key="p")  # fmt: skip
    assert _setting(conn) == before
