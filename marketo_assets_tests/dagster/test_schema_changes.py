"""Header and field changes never split a raw table; NULL keys fail the checks; partitions Dagster
shows as materialized but the table lost (a deleted or replaced DuckDB file) fail a check.

Real Dagster runs against the simulator over loopback HTTP, real DuckDB files."""

from __future__ import annotations

import gc

import dagster as dg
import duckdb
import pytest

from marketo_assets.defs.family import CHECK_PARTITIONS
from marketo_assets.defs.leads import CHECK_UNIQUE, CHECK_WINDOW, LEDGER_ASSET
from marketo_assets.defs.resources import ExportOptions
from marketo_assets.extract.ledger import ExportLedger
from marketo_assets.simulator.process import run_simulator
from marketo_assets_tests.support.assets import lead_export_files, leads
from marketo_assets_tests.support.dagster import (
    SIM_ARGS,
    created_at_window,
    failure_text,
    resources_for,
)

A, B, C = "2025-01-01", "2025-02-01", "2025-03-01"
EMPTY = "2025-07-01"  # no lead created in July: materialized with 0 rows, never "missing"


@pytest.fixture(scope="module")
def sim():
    with run_simulator(**SIM_ARGS) as handle:
        yield handle


def _run(sim, root, key, options=None, instance=None, assets=(lead_export_files, leads)):
    resources = resources_for(sim, root)
    resources["export_options"] = options or ExportOptions()
    return dg.materialize(
        list(assets),
        partition_key=key,
        resources=resources,
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def _checks(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _columns(root) -> list[str]:
    with duckdb.connect(str(root / "marketo.duckdb"), read_only=True) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = 'leads' "
                "ORDER BY column_index"
            ).fetchall()
        ]


def _ids(root, key) -> list:
    with duckdb.connect(str(root / "marketo.duckdb"), read_only=True) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT id FROM marketo.marketo.leads WHERE _partition_key = ? ORDER BY id", [key]
            ).fetchall()
        ]


def test_header_and_field_changes_keep_one_column_per_field(sim, tmp_path):
    """A: default headers, fields id/email/createdAt. B: other headers (id too) and one more
    field. Then A again with yet other headers. One column per field; every id where dbt reads
    it; the field added later is NULL in A only."""
    fields = ["id", "email", "createdAt"]
    first = _run(sim, tmp_path, A, ExportOptions(fields=fields))
    assert first.success
    renamed = {"id": "Lead ID", "email": "E-mail", "createdAt": "Created", "company": "Firm"}
    second = _run(
        sim, tmp_path, B, ExportOptions(fields=[*fields, "company"], column_header_names=renamed)
    )
    assert second.success
    assert all(e.passed for e in _checks(second).values()), _checks(second)
    again = _run(
        sim, tmp_path, A, ExportOptions(fields=fields, column_header_names={"email": "Mail"})
    )
    assert again.success

    columns = _columns(tmp_path)
    assert [c for c in columns if not c.startswith("_")] == ["id", "email", "createdAt", "company"]
    for key in (A, B):
        assert _ids(tmp_path, key) == sorted(sim.truth(created_at_window(key), ids=True)["ids"])
    with duckdb.connect(str(tmp_path / "marketo.duckdb"), read_only=True) as conn:
        per_key = dict(
            conn.execute(
                "SELECT _partition_key, count(*) FILTER (WHERE id IS NULL OR createdAt IS NULL) "
                "+ 1000000 * count(company) FROM marketo.marketo.leads GROUP BY 1"
            ).fetchall()
        )
        sample = {
            key: conn.execute(
                "SELECT id, email, company FROM marketo.marketo.leads WHERE id = ?",
                [_ids(tmp_path, key)[0]],
            ).fetchone()
            for key in (A, B)
        }
    assert per_key[A] == 0  # no NULL id or createdAt; company NULL (the field came later)
    assert per_key[B] % 1000000 == 0  # no NULL id or createdAt in B either
    assert per_key[B] > 1000000 * len(_ids(tmp_path, B)) // 2  # B has companies
    for key, (lead_id, email, company) in sample.items():
        lead = sim.lead(lead_id)
        assert email == lead["email"]
        assert company == (lead["company"] if key == B else None)


def _edit_staged(root, key, edit) -> None:
    """Change the staged export of `key` (after its export step, before its load step) and
    record its new size, as a corrupt but checksum-verified file would look to the load."""
    ledger = ExportLedger(root / "ledger.sqlite")
    entry = ledger.latest_downloaded(LEDGER_ASSET, key)
    path = root / "exports" / entry.staged_file.split("/exports/", 1)[1]
    lines = path.read_text(encoding="utf-8").split("\n")
    lines = edit(lines)
    path.write_text("\n".join(lines), encoding="utf-8")
    ledger.update(entry.export_id, bytes=path.stat().st_size)


@pytest.mark.parametrize("blank", ["id", "createdAt"])
def test_a_null_id_or_created_at_fails_the_checks(sim, tmp_path, blank):
    options = ExportOptions(fields=["id", "email", "createdAt"])
    assert _run(sim, tmp_path, B, options, assets=[lead_export_files]).success
    position = ["id", "email", "createdAt"].index(blank)

    def edit(lines):
        cells = lines[1].split(",")
        cells[position] = "null"  # Marketo's null: SQL NULL
        lines[1] = ",".join(cells)
        return lines

    _edit_staged(tmp_path, B, edit)
    result = _run(sim, tmp_path, B, options, assets=[leads])
    checks = _checks(result)
    failed = CHECK_UNIQUE if blank == "id" else CHECK_WINDOW
    assert not checks[failed].passed, checks[failed]
    metadata_key = "null_ids" if blank == "id" else "null_created_at"
    assert checks[failed].metadata[metadata_key].value == 1


def test_partitions_lost_from_the_table_fail_a_check(sim, tmp_path):
    with dg.instance_for_test() as instance:
        for key in (A, B, EMPTY):
            result = _run(sim, tmp_path, key, instance=instance)
            assert result.success and _checks(result)[CHECK_PARTITIONS].passed
        (tmp_path / "marketo.duckdb").unlink()  # deleted (or replaced by an old copy)
        third = _run(sim, tmp_path, C, instance=instance)
        assert third.success  # the new partition still loads...
        check = _checks(third)[CHECK_PARTITIONS]
        assert not check.passed  # ...and the check names what the table lost, and the fix
        assert check.metadata["missing_partitions"].value == [A, B]
        text = check.description or ""
        assert f"{A}, {B}" in text and "backfill" in text, text
        assert _ids(tmp_path, C) == sorted(sim.truth(created_at_window(C), ids=True)["ids"])
        # The backfill of the two partitions restores the table: the check passes again.
        for key in (A, B):
            assert _run(sim, tmp_path, key, instance=instance).success
        rerun = _run(sim, tmp_path, C, instance=instance)
        assert _checks(rerun)[CHECK_PARTITIONS].passed


def test_columns_named_after_headers_by_earlier_loads_get_their_field_names_back(sim, tmp_path):
    """Before, a header named the column: a table loaded so has `E-mail` where the field is
    `email`. The next load renames it (all partitions keep their values) instead of adding an
    `email` column beside it; a field already split over both columns fails, naming them."""
    assert _run(sim, tmp_path, A, ExportOptions(column_header_names={"email": "E-mail"})).success
    db = str(tmp_path / "marketo.duckdb")
    with duckdb.connect(db) as conn:  # the layout the earlier version made
        conn.execute('ALTER TABLE marketo.marketo.leads RENAME email TO "E-mail"')
    assert _run(sim, tmp_path, B).success
    columns = _columns(tmp_path)
    assert "email" in columns and "E-mail" not in columns
    lead_id = _ids(tmp_path, A)[0]
    with duckdb.connect(db) as conn:
        email = conn.execute(
            "SELECT email FROM marketo.marketo.leads WHERE id = ?", [lead_id]
        ).fetchone()[0]
        conn.execute('ALTER TABLE marketo.marketo.leads ADD COLUMN "E-mail" VARCHAR')  # split
    assert email == sim.lead(lead_id)["email"]

    failed = _run(sim, tmp_path, C)
    assert not failed.success
    text = failure_text(failed)
    assert "'E-mail'" in text and "'email'" in text and "merge them" in text, text
    gc.collect()  # DuckDBResource leaves a failed step's connection to the garbage collector
    with duckdb.connect(db, read_only=True) as conn:
        keys = conn.execute("SELECT DISTINCT _partition_key FROM marketo.marketo.leads").fetchall()
    assert sorted(keys) == [(A,), (B,)]  # C not loaded
