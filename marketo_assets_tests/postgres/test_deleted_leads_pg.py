"""Deleted leads on PostgreSQL: the same typed columns and per-day replace as on DuckDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from marketo_assets.extract.deleted_leads import load_deleted_leads
from marketo_assets.marketo import DeletedLead
from marketo_assets.warehouse.postgres import PostgresWarehouse

DAY = datetime(2025, 3, 1, tzinfo=UTC)


class Client:
    def __init__(self, *leads: DeletedLead):
        self.leads = list(leads)

    def iter_deleted_leads(self, start, end):
        return iter(self.leads)


def test_a_day_of_deleted_leads_is_replaced_in_postgres(pg_server, pg_database, tmp_path):
    warehouse = PostgresWarehouse(pg_server.dsn(pg_database))

    def load(client: Client, key: str):
        start = datetime.fromisoformat(key).replace(tzinfo=UTC)
        return load_deleted_leads(
            client,
            warehouse.session,
            tmp_path,
            table="marketo.deleted_leads",
            partition_key=key,
            start=start,
            end=start + timedelta(days=1),
        )

    load(
        Client(DeletedLead(1, 11, DAY), DeletedLead(2, 12, DAY + timedelta(hours=3))), "2025-03-01"
    )
    load(Client(DeletedLead(5, 15, DAY + timedelta(days=1))), "2025-03-02")
    loaded = load(Client(DeletedLead(3, 13, DAY + timedelta(hours=23))), "2025-03-01")
    assert (loaded.result.rows, loaded.duplicate_lead_ids, loaded.outside_window) == (1, 0, 0)
    with warehouse.session() as wh:
        types = dict(wh.table_schema("marketo.deleted_leads"))
        with wh.conn.cursor() as cur:  # type: ignore[attr-defined]
            cur.execute('SELECT "leadId", "deletedAt", _partition_key FROM marketo.deleted_leads')
            rows = sorted(cur.fetchall())
    assert [tuple(r) for r in rows] == [
        (13, DAY + timedelta(hours=23), "2025-03-01"),
        (15, DAY + timedelta(days=1), "2025-03-02"),
    ]
    assert types["leadId"] == "bigint" and types["deletedAt"].startswith("timestamp")
