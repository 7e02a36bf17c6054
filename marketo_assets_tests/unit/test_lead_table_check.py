"""`lead_ids_unique_in_table`: a lead partition's load vouches that none of ITS ids is in
another partition of `marketo.leads` (every lead lands in exactly one window). It reads this
partition's ids and probes the other partitions for them, so a backfill does not aggregate the
whole table after each partition; duplicates among other partitions only are theirs to report.
A real DuckDB file, loaded as the load step does."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketo_assets.warehouse import DuckDBWarehouse
from marketo_assets_tests.support.lead_table import load_and_check


@pytest.fixture
def warehouse(tmp_path: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(tmp_path / "marketo.duckdb")


def test_an_id_in_two_partitions_fails_the_later_load_naming_the_other(warehouse, tmp_path):
    first = load_and_check(warehouse, tmp_path, "2025-01-01", [1, 2, 3])
    assert first.passed and first.metadata["ids_in_other_partitions"] == 0
    assert first.description is None

    later = load_and_check(warehouse, tmp_path, "2025-02-01", [3, 4, 5])
    assert not later.passed
    assert later.metadata["ids_in_other_partitions"] == 1
    assert later.metadata["other_partitions"] == ["2025-01-01"]
    assert "2025-01-01" in later.description and "Re-materialize" in later.description

    # Re-loading the first partition fails too: the id is still in both.
    again = load_and_check(warehouse, tmp_path, "2025-01-01", [1, 2, 3])
    assert not again.passed and again.metadata["other_partitions"] == ["2025-02-01"]

    # Once the later partition no longer holds the id, both pass.
    fixed = load_and_check(warehouse, tmp_path, "2025-02-01", [4, 5])
    assert fixed.passed and fixed.metadata["ids_in_other_partitions"] == 0


def test_duplicates_among_other_partitions_only_do_not_fail_this_partition(warehouse, tmp_path):
    """The behaviour change: the check no longer reads the whole table. A duplicate between
    two OTHER partitions was reported when they were loaded, not by every later load."""
    load_and_check(warehouse, tmp_path, "2025-01-01", [1, 2])
    assert not load_and_check(warehouse, tmp_path, "2025-02-01", [2, 3]).passed
    third = load_and_check(warehouse, tmp_path, "2025-03-01", [7, 8])
    assert third.passed
    assert third.metadata == {
        "ids_in_other_partitions": 0,
        "other_partition_count": 0,
        "other_partitions": [],
    }


def test_the_overlap_counts_ids_and_names_the_partitions_holding_most(warehouse, tmp_path):
    """An id twice in this partition is the partition check's (`lead_ids_unique_in_partition`);
    here it counts once. Up to five other partitions are named, those holding most first."""
    for month in range(1, 8):
        load_and_check(warehouse, tmp_path, f"2025-0{month}-01", [100 + month, 100 + month + 1])
    check = load_and_check(warehouse, tmp_path, "2025-09-01", [*range(101, 109), 101])
    assert not check.passed
    assert check.metadata["ids_in_other_partitions"] == 8
    assert check.metadata["other_partition_count"] == 7
    assert check.metadata["other_partitions"] == [f"2025-0{m}-01" for m in range(1, 6)]
    assert "7 other partitions" in check.description
