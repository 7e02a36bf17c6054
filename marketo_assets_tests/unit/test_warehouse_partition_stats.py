"""partition_stats counts distinct ids exactly, whether it counts them with a bitmap (integer
ids in a narrow range) or by hashing them (wide ranges, text ids)."""

import random

import duckdb
import pytest

from marketo_assets.warehouse import partition_stats
from marketo_assets.warehouse.queries import BITMAP_MAX_IDS

TABLE = "marketo.t"


def _table(ids: list, sql_type: str) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA marketo")
    conn.execute(f"CREATE TABLE {TABLE} (id {sql_type}, _partition_key text)")
    others = [*ids[:3], 10**9]  # another partition's ids do not count
    rows = [(i, "p") for i in ids] + [(i, "other") for i in others]
    conn.executemany(f"INSERT INTO {TABLE} VALUES (?, ?)", rows)
    return conn


@pytest.mark.parametrize(
    ("ids", "sql_type"),
    [
        ([5, 6, 6, None, 9, 5, 5, None], "INTEGER"),  # bitmap, NULLs and duplicates
        ([7], "BIGINT"),  # one id: least = greatest
        ([1, BITMAP_MAX_IDS + 1, 1, None], "BIGINT"),  # too wide for the bitmap
        (["a", "b", "a", None], "VARCHAR"),  # not integers
        ([None, None], "INTEGER"),  # no ids at all
    ],
)
def test_distinct_ids_are_exact(ids: list, sql_type: str) -> None:
    stats = partition_stats(_table(ids, sql_type), TABLE, "p", timestamp_column=None)
    distinct = len({i for i in ids if i is not None})
    nulls = ids.count(None)
    assert stats == {
        "rows": len(ids),
        "distinct_ids": distinct,
        "duplicate_ids": len(ids) - nulls - distinct,
        "null_ids": nulls,
    }


def test_distinct_ids_of_many_random_ids() -> None:
    rng = random.Random(17)
    ids = [rng.randrange(3_000_000_000, 3_000_050_000) for _ in range(20_000)]
    stats = partition_stats(_table(ids, "BIGINT"), TABLE, "p", timestamp_column=None)
    assert stats["distinct_ids"] == len(set(ids))
    assert stats["duplicate_ids"] == len(ids) - len(set(ids))
