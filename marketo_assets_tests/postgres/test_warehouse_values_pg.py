"""PostgreSQL keeps numbers and separators like the DuckDB loader (unit/test_warehouse_values.py):
numeric(38,18), exact; a value it would round fails naming the column; SSV with either
separator; `""` and `"null"` are NULL on both backends."""

from __future__ import annotations

from decimal import Decimal

import pytest

from marketo_assets.warehouse import CastError, DuckDBWarehouse, columns_for
from marketo_assets.warehouse.postgres import PostgresWarehouse

NUMERIC = [("id", "integer"), ("revenue", "currency"), ("ratio", "float"), ("pct", "percent")]


def load(session, tmp_path, text, fields=NUMERIC, fmt="CSV", name="n.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return session.load_partition(
        table="marketo.leads",
        file_path=path,
        file_format=fmt,
        columns=columns_for(fields, {}),
        partition_key="2025-01-01",
    )


def select(session, sql):
    with session.conn.cursor() as cur:
        cur.execute(sql)
        rows = cur.fetchall()
    session.conn.rollback()
    return rows


@pytest.fixture
def pg(pg_server, pg_database):
    with PostgresWarehouse(pg_server.dsn(pg_database)).session() as s:
        yield s


def test_numeric_keeps_every_digit(tmp_path, pg):
    exact = ["12345678901234.5678", "-99999999999999999999.999999999999999999", "1.5E+10"]
    body = "".join(f"{i},{v},{v},{v}\n" for i, v in enumerate(exact))
    result = load(pg, tmp_path, "id,revenue,ratio,pct\n" + body)
    types = dict(result.columns)
    assert [types[c] for c in ("revenue", "ratio", "pct")] == ["numeric(38,18)"] * 3
    got = select(pg, "SELECT revenue, ratio, pct FROM marketo.leads ORDER BY id")
    assert got == [(Decimal(v),) * 3 for v in exact]
    # a second load of the same types finds the columns equal (no false type conflict)
    load(pg, tmp_path, "id,revenue,ratio,pct\n" + body)


@pytest.mark.parametrize("value", ["1.0000000000000000001", "1e-19", "1E25", "NaN", "Infinity"])
def test_numeric_refuses_rounding(tmp_path, pg, value):
    load(pg, tmp_path, "id,revenue,ratio,pct\n1,5,5,5\n", name="first.csv")
    with pytest.raises(CastError) as err:
        load(pg, tmp_path, f"id,revenue,ratio,pct\n1,5,{value},5\n")
    assert "'ratio'" in str(err.value)
    assert select(pg, "SELECT revenue, ratio, pct FROM marketo.leads") == [(Decimal(5),) * 3]


@pytest.mark.parametrize("sep", [";", " "], ids=["semicolon", "space"])
def test_pg_ssv_separator(tmp_path, pg, sep):
    fields = [("id", "integer"), ("first name", "string"), ("note;s", "string")]
    text = f'id{sep}"first name"{sep}"note;s"\n1{sep}"Ann Lee"{sep}"a;b"\n2{sep}Bo{sep}" x "\n'
    load(pg, tmp_path, text, fields, fmt="SSV", name="s.ssv")
    got = select(pg, 'SELECT id, "first name", "note;s" FROM marketo.leads ORDER BY id')
    assert got == [(1, "Ann Lee", "a;b"), (2, "Bo", " x ")]


def test_empty_and_null_texts_are_null_on_both_backends(tmp_path, pg):
    """Marketo writes an empty value as bare `null`; `""`, `"null"` and bare empty are read
    the same way (docs/DATA-TYPES.md)."""
    fields = [("id", "integer"), ("a", "string"), ("b", "string")]
    text = 'id,a,b\n1,"",null\n2,"null",\n3," ","NULL"\n'
    load(pg, tmp_path, text, fields)
    want = [(1, None, None), (2, None, None), (3, " ", "NULL")]
    assert select(pg, "SELECT id, a, b FROM marketo.leads ORDER BY id") == want
    with DuckDBWarehouse(tmp_path / "marketo.duckdb").session() as duck:
        load(duck, tmp_path, text, fields)
        got = duck.conn.execute("SELECT id, a, b FROM marketo.marketo.leads ORDER BY id")
        assert got.fetchall() == want
