import datetime as dt

import duckdb
import pytest

from marketo_assets.warehouse import (
    columns_for,
    ids_in_other_partitions,
    load_partition,
    partition_stats,
    table_schema,
)

TABLE = "marketo.leads"
COLS = columns_for([("id", "integer"), ("createdAt", "datetime")], {})


@pytest.fixture
def conn(tmp_path):
    c = duckdb.connect(str(tmp_path / "wh.duckdb"))
    for part, body in [
        ("2025-01", "1,2025-01-05T00:00:00Z\n2,2025-01-20T10:00:00Z\n2,2025-01-21T00:00:00Z\n"),
        ("2025-02", "2,2025-02-01T00:00:00Z\n3,null\n"),
    ]:
        path = tmp_path / f"{part}.csv"
        path.write_text("id,createdAt\n" + body)
        load_partition(c, table=TABLE, file_path=path, file_format="CSV", columns=COLS,
                       partition_key=part, lineage={"export_id": part})  # fmt: skip
    yield c
    c.close()


def test_partition_stats_counts_rows_ids_and_timestamp_range(conn):
    stats = partition_stats(conn, TABLE, "2025-01", timestamp_column="createdAt")
    assert stats["rows"] == 3
    assert stats["distinct_ids"] == 2
    assert stats["duplicate_ids"] == 1
    assert stats["min_createdAt"] == dt.datetime(2025, 1, 5, tzinfo=dt.UTC)
    assert stats["max_createdAt"] == dt.datetime(2025, 1, 21, tzinfo=dt.UTC)


def test_partition_stats_of_unknown_partition_is_empty(conn):
    stats = partition_stats(conn, TABLE, "1999-01")
    assert stats["rows"] == 0 and stats["duplicate_ids"] == 0
    assert stats["min_createdAt"] is None


def test_ids_in_other_partitions_are_this_partitions_ids_found_elsewhere(conn):
    shared = ids_in_other_partitions(conn, TABLE, "2025-02")  # id 2: twice in 2025-01
    assert (shared.ids, shared.partitions, shared.examples) == (1, 1, [("2025-01", 2)])
    shared = ids_in_other_partitions(conn, TABLE, "2025-01")
    assert (shared.ids, shared.partitions, shared.examples) == (1, 1, [("2025-02", 1)])


def test_table_schema_lists_columns_in_order(conn):
    assert table_schema(conn, TABLE) == [
        ("id", "BIGINT"),
        ("createdAt", "TIMESTAMP WITH TIME ZONE"),
        ("_partition_key", "VARCHAR"),
        ("_export_id", "VARCHAR"),
        ("_loaded_at", "TIMESTAMP WITH TIME ZONE"),
    ]
    assert table_schema(conn, "marketo.nothing") == []
