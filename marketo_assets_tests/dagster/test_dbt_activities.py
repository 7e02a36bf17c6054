"""dbt models of activities, program members, merges and deletions, on hand-written raw rows.

The raw tables are created in a real DuckDB file with the columns of the raw table contract
(REST names, `attributes` as JSON, lineage columns), then `dbt build` runs as a user runs it.
First with only `marketo.leads` (a user who has exported no activities yet): every model builds
and every test passes. Then with rows covering the edge cases: a merge chain (2 -> 3 -> 1), a
merged-away lead that is also in the deletions, deleted leads with and without an exported
version, each common activity type, attributes with missing keys or values that do not convert,
an activity type missing from the catalog (the rows: `support/dbt_rows.py`).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from marketo_assets_tests.support.dbt import dbt_build
from marketo_assets_tests.support.dbt_rows import (
    ACTIVITY_TABLES,
    check_models,
    create_raw_tables,
    only_warning_is_the_unknown_activity_type,
)


def _rows(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def test_activity_merge_and_deletion_models(tmp_path):
    db = tmp_path / "marketo.duckdb"
    with duckdb.connect(str(db)) as conn:
        conn.execute("CREATE SCHEMA marketo")
        create_raw_tables(conn, ["leads"], "marketo.marketo")

    # No activity, program member or deletion exported yet: everything builds, empty.
    results = dbt_build(tmp_path, {"DUCKDB_PATH": str(db)})
    assert {status for status, _ in results.values()} == {"success", "pass"}, results
    for model in ("fct_activities", "fct_program_membership", "map_lead_merges"):
        assert _rows(db, f"SELECT count(*) FROM marts.{model}") == [(0,)]
    assert _rows(db, "SELECT lead_id, is_deleted FROM marts.dim_leads ORDER BY 1") == [
        (i, False) for i in range(1, 7)
    ]

    with duckdb.connect(str(db)) as conn:
        create_raw_tables(conn, ACTIVITY_TABLES, "marketo.marketo")
    only_warning_is_the_unknown_activity_type(dbt_build(tmp_path, {"DUCKDB_PATH": str(db)}))
    check_models(lambda sql: _rows(db, sql))
