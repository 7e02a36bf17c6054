"""Numbers and separators that must load exactly or fail loudly (docs/DATA-TYPES.md)."""

from decimal import Decimal

import duckdb
import pytest

from marketo_assets.warehouse import (
    CastError,
    HeaderMismatchError,
    columns_for,
    load_partition,
    table_schema,
)

TABLE = "marketo.leads"
NUMERIC = [("id", "integer"), ("revenue", "currency"), ("ratio", "float"), ("pct", "percent")]


@pytest.fixture
def conn(tmp_path):
    c = duckdb.connect(str(tmp_path / "marketo.duckdb"))
    yield c
    c.close()


def load(conn, tmp_path, text, fields=NUMERIC, fmt="CSV", name="n.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_partition(
        conn,
        table=TABLE,
        file_path=path,
        file_format=fmt,
        columns=columns_for(fields, {}),
        partition_key="2025-01-01",
    )


def values(conn, cols="revenue, ratio, pct"):
    return conn.execute(f"SELECT {cols} FROM marketo.marketo.leads ORDER BY id").fetchall()


EXACT = [
    "12345678901234.5678",  # the example: 18 significant digits
    "123456789012345678",  # 18 integer digits
    "0.123456789012345678",  # 18 decimal places
    "-99999999999999999999.999999999999999999",  # the largest DECIMAL(38,18)
    "1.5E+10",
    "2.5e-3",
    "1.230000000000000000000000",  # trailing zeros beyond the scale lose nothing
    "0",
]


def test_currency_float_and_percent_keep_every_digit(tmp_path, conn):
    body = "".join(f"{i},{v},{v},{v}\n" for i, v in enumerate(EXACT))
    load(conn, tmp_path, "id,revenue,ratio,pct\n" + body)
    types = dict(table_schema(conn, TABLE))
    assert [types[c] for c in ("revenue", "ratio", "pct")] == ["DECIMAL(38,18)"] * 3
    assert values(conn) == [(Decimal(v),) * 3 for v in EXACT]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("1.0000000000000000001", "decimal places"),  # 19 decimal places would round
        ("1e-19", "decimal places"),  # the same, written with an exponent
        ("123456789012345678901", "integer digits"),  # 21 integer digits overflow
        ("1E25", "integer digits"),
    ],
)
def test_value_a_decimal_cannot_hold_fails_naming_the_column(tmp_path, conn, value, why):
    load(conn, tmp_path, "id,revenue,ratio,pct\n1,5,5,5\n", name="first.csv")
    with pytest.raises(CastError) as err:
        load(conn, tmp_path, f"id,revenue,ratio,pct\n1,5,{value},5\n")
    msg = str(err.value)
    assert "'ratio'" in msg and value in msg and why in msg
    assert values(conn) == [(Decimal(5),) * 3]  # the partition keeps its previous rows


@pytest.mark.parametrize("sep", [";", " "], ids=["semicolon", "space"])
def test_ssv_is_read_with_the_separator_of_its_header(tmp_path, conn, sep):
    fields = [("id", "integer"), ("first name", "string"), ("note;s", "string")]
    text = f'id{sep}"first name"{sep}"note;s"\n1{sep}"Ann Lee"{sep}"a;b"\n2{sep}Bo{sep}" x "\n'
    load(conn, tmp_path, text, fields, fmt="SSV", name="s.ssv")
    got = conn.execute('SELECT id, "first name", "note;s" FROM marketo.marketo.leads ORDER BY id')
    assert got.fetchall() == [(1, "Ann Lee", "a;b"), (2, "Bo", " x ")]


def test_ssv_header_matching_neither_separator_names_both(tmp_path, conn):
    with pytest.raises(HeaderMismatchError) as err:
        load(conn, tmp_path, "id,revenue\n1,2\n", NUMERIC[:2], fmt="SSV", name="s.ssv")
    assert "';'" in str(err.value) and "' '" in str(err.value)
