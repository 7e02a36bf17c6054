"""extract.deleted_leads: a day's deletions replace that day's rows in a real DuckDB file."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from marketo_assets.extract import ExportFailed
from marketo_assets.extract.deleted_leads import load_deleted_leads
from marketo_assets.marketo import DeletedLead, errors
from marketo_assets.warehouse import DuckDBWarehouse

DAY = datetime(2025, 3, 1, tzinfo=UTC)
TABLE = "marketo.deleted_leads"


class Client:
    def __init__(self, leads: list[DeletedLead] | Exception):
        self.leads = leads

    def iter_deleted_leads(self, start: datetime, end: datetime):
        if isinstance(self.leads, Exception):
            raise self.leads
        return iter(self.leads)


def gone(activity: int, lead: int, hours: float) -> DeletedLead:
    return DeletedLead(activity, lead, DAY + timedelta(hours=hours))


def load(tmp_path: Path, client: Client, key: str = "2025-03-01"):
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    return warehouse, load_deleted_leads(
        client,
        warehouse.session,
        tmp_path / "exports",
        table=TABLE,
        partition_key=key,
        start=DAY,
        end=DAY + timedelta(days=1),
    )


def rows(warehouse: DuckDBWarehouse) -> list[tuple]:
    with warehouse.session() as wh:
        sql = 'SELECT id, "leadId", "deletedAt", _partition_key FROM marketo.deleted_leads'
        return sorted(wh.conn.execute(sql + " ORDER BY id").fetchall())  # type: ignore[attr-defined]


def test_a_day_is_replaced_typed_and_checked(tmp_path: Path):
    load(tmp_path, Client([gone(1, 11, 0), gone(2, 12, 23.5)]))
    folder = tmp_path / "exports" / "marketo_assets" / "deleted_leads"
    assert folder.stat().st_mode & 0o777 == 0o700
    left = folder / ".deleted-leads-killed.csv"  # a killed run's file, two hours old
    left.write_text("id,leadId,deletedAt\n")
    os.utime(left, (time.time() - 7200, time.time() - 7200))
    warehouse, loaded = load(tmp_path, Client([gone(3, 13, 1), gone(4, 13, 2)]))
    assert [r[:2] for r in rows(warehouse)] == [(3, 13), (4, 13)]  # day 1's rows replaced
    assert rows(warehouse)[0][2] == DAY + timedelta(hours=1)
    assert (loaded.result.rows, loaded.fetched, loaded.duplicate_lead_ids) == (2, 2, 1)
    assert loaded.outside_window == 0
    with warehouse.session() as wh:
        types = dict(wh.table_schema(TABLE))
    assert (types["id"], types["leadId"], types["deletedAt"]) == (
        "BIGINT",
        "BIGINT",
        "TIMESTAMP WITH TIME ZONE",
    )
    assert {"_partition_key", "_export_id", "_loaded_at"} <= set(types)
    assert not left.exists() and list(folder.iterdir()) == []


@pytest.mark.parametrize(
    ("error", "retryable"),
    [(errors.TransientError("HTTP 503"), True), (errors.MarketoAPIError("601", "no"), False)],
)
def test_marketo_errors_keep_the_rows_and_say_whether_to_retry(tmp_path, error, retryable):
    load(tmp_path, Client([gone(1, 11, 0)]))
    with pytest.raises(ExportFailed) as failed:
        load(tmp_path, Client(error))
    assert failed.value.retryable is retryable
    assert [r[:2] for r in rows(DuckDBWarehouse(tmp_path / "w.duckdb"))] == [(1, 11)]
