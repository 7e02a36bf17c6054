import datetime as dt
from decimal import Decimal

import duckdb
import pytest

from marketo_assets.warehouse import (
    CastError,
    Column,
    HeaderMismatchError,
    LoadError,
    SchemaConflictError,
    columns_for,
    load_partition,
    table_schema,
)

UTC = dt.UTC
TABLE = "marketo.leads"


@pytest.fixture
def conn(tmp_path):
    c = duckdb.connect(str(tmp_path / "wh.duckdb"))
    yield c
    c.close()


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def load(conn, path, columns, partition="2025-01", fmt="CSV", table=TABLE, **lineage):
    return load_partition(
        conn,
        table=table,
        file_path=path,
        file_format=fmt,
        columns=columns,
        partition_key=partition,
        lineage={"export_id": "exp-1", **lineage},
    )


def rows(conn, sql=f"SELECT * EXCLUDE (_partition_key, _export_id, _loaded_at) FROM {TABLE}"):
    return conn.execute(sql).fetchall()


def simple(names):
    return [Column(name=n, field=n, type="BIGINT" if n == "id" else "VARCHAR") for n in names]


ALL_TYPES = [
    ("id", "integer"),
    ("leadScore", "score"),
    ("ratio", "float"),
    ("revenue", "currency"),
    ("pct", "percent"),
    ("unsubscribed", "boolean"),
    ("birthDate", "date"),
    ("createdAt", "datetime"),
    ("email", "email"),
    ("notes", "textarea"),
]


def test_every_type_is_typed_and_null_literal_is_null(tmp_path, conn):
    path = write(
        tmp_path,
        "typed.csv",
        "id,leadScore,ratio,revenue,pct,unsubscribed,birthDate,createdAt,email,notes\n"
        "7,42,0.5,1234.56789,12.5,true,1980-02-29,2020-01-08T18:10:26Z,a@b.c,hi\n"
        "8,-3,1e3,0,100,false,2000-01-01,2020-01-08T18:10:26+02:00,x@y.z,there\n"
        "9,null,null,null,null,null,null,null,null,null\n",
    )
    result = load(conn, path, columns_for(ALL_TYPES, {}))
    assert result.rows == 3
    assert result.table == TABLE
    types = dict(table_schema(conn, TABLE))
    assert types == dict(result.columns)
    assert [types[n] for n, _ in ALL_TYPES] == [
        "BIGINT", "BIGINT", "DECIMAL(38,18)", "DECIMAL(38,18)", "DECIMAL(38,18)", "BOOLEAN", "DATE",
        "TIMESTAMP WITH TIME ZONE", "VARCHAR", "VARCHAR",
    ]  # fmt: skip
    got = rows(conn, f"SELECT * EXCLUDE (_partition_key, _export_id, _loaded_at) FROM {TABLE} "
               "ORDER BY id")  # fmt: skip
    assert got[0] == (
        7, 42, Decimal("0.5"), Decimal("1234.56789"), Decimal("12.5"), True, dt.date(1980, 2, 29),
        dt.datetime(2020, 1, 8, 18, 10, 26, tzinfo=UTC), "a@b.c", "hi",
    )  # fmt: skip
    assert got[1][2] == Decimal(1000)
    assert got[1][5] is False
    assert got[1][7] == dt.datetime(2020, 1, 8, 16, 10, 26, tzinfo=UTC)
    assert got[2] == (9,) + (None,) * 9


def test_booleans_accept_one_and_zero(tmp_path, conn):
    path = write(tmp_path, "b.csv", "id,flag\n1,1\n2,0\n3,TRUE\n")
    load(conn, path, columns_for([("id", "integer"), ("flag", "boolean")], {}))
    assert rows(conn, f"SELECT flag FROM {TABLE} ORDER BY id") == [(True,), (False,), (True,)]


def test_lineage_columns_are_written(tmp_path, conn):
    path = write(tmp_path, "l.csv", "id\n1\n2\n")
    at = dt.datetime(2025, 2, 1, 12, 0, tzinfo=UTC)
    load(conn, path, simple(["id"]), partition="2025-01", loaded_at=at, attempt=3)
    got = conn.execute(
        f"SELECT DISTINCT _partition_key, _export_id, _loaded_at, _attempt FROM {TABLE}"
    ).fetchall()
    assert got == [("2025-01", "exp-1", at, 3)]
    types = dict(table_schema(conn, TABLE))
    assert types["_attempt"] == "BIGINT"
    assert types["_loaded_at"] == "TIMESTAMP WITH TIME ZONE"
    nullable = conn.execute(
        "SELECT is_nullable FROM duckdb_columns() WHERE column_name = '_partition_key'"
    ).fetchone()[0]
    assert nullable is False


WEIRD = ["first name", 'say "hi"', "Prénom 名前", "select", "from", "a.b", "x,y", "Order"]


def test_headers_are_quoted_identifiers(tmp_path, conn):
    header = ",".join(['"' + h.replace('"', '""') + '"' for h in WEIRD])
    path = write(tmp_path, "weird.csv", f"id,{header}\n1,a,b,c,d,e,f,g,h\n")
    cols = simple(["id", *WEIRD])
    load(conn, path, cols)
    assert [n for n, _ in table_schema(conn, TABLE)][: len(cols)] == ["id", *WEIRD]
    assert rows(conn) == [(1, "a", "b", "c", "d", "e", "f", "g", "h")]


def test_table_and_schema_names_are_quoted(tmp_path, conn):
    path = write(tmp_path, "t.csv", "id\n1\n")
    load(conn, path, simple(["id"]), table='my "schema".lead table')
    assert conn.execute('SELECT id FROM "my ""schema"""."lead table"').fetchall() == [(1,)]


def test_awkward_values_survive(tmp_path, conn):
    content = (
        b"id,text\r\n"
        b'1,"comma, inside"\r\n'
        b'2,"say ""quoted"""\r\n'
        b'3,"line1\nline2"\r\n'
        b'4,"crlf\r\nin value"\r\n'
        b'5,"bare\rcr"\r\n'
        b"6,nul\x00unquoted\r\n"
        b'7,"nul\x00 quoted, too"\r\n' + "8,Привет 你好 😀\r\n".encode() + b'9,"null"\r\n'
    )
    path = write(tmp_path, "awkward.csv", content)
    result = load(conn, path, simple(["id", "text"]))
    assert result.rows == 9
    assert rows(conn, f"SELECT id, text FROM {TABLE} ORDER BY id") == [
        (1, "comma, inside"),
        (2, 'say "quoted"'),
        (3, "line1\nline2"),
        (4, "crlf\r\nin value"),
        (5, "bare\rcr"),
        (6, "nulunquoted"),
        (7, "nul quoted, too"),
        (8, "Привет 你好 😀"),
        (9, None),
    ]
    # the NUL-free copy made for loading does not stay behind
    assert sorted(p.name for p in tmp_path.iterdir() if "awkward" in p.name) == ["awkward.csv"]


def test_nul_in_header_is_dropped_like_in_values(tmp_path, conn):
    path = write(tmp_path, "h.csv", b"id,na\x00me\n1,x\x00\n")
    load(conn, path, simple(["id", "name"]))
    assert rows(conn) == [(1, "x")]


@pytest.mark.parametrize(("fmt", "delim"), [("TSV", "\t"), ("SSV", ";")])
def test_tsv_and_ssv(tmp_path, conn, fmt, delim):
    content = delim.join(["id", "name", "createdAt"]) + "\n"
    content += delim.join(["1", '"has , and ; and \t inside"', "2025-01-01T00:00:00Z"]) + "\n"
    content += delim.join(["2", "plain, text", "null"]) + "\n"
    path = write(tmp_path, f"f.{fmt.lower()}", content)
    cols = columns_for([("id", "integer"), ("name", "string"), ("createdAt", "datetime")], {})
    assert load(conn, path, cols, fmt=fmt).rows == 2
    assert rows(conn, f"SELECT id, name, createdAt FROM {TABLE} ORDER BY id") == [
        (1, "has , and ; and \t inside", dt.datetime(2025, 1, 1, tzinfo=UTC)),
        (2, "plain, text", None),
    ]


def test_reloading_a_partition_replaces_its_rows(tmp_path, conn):
    cols = simple(["id", "name"])
    first = write(tmp_path, "a.csv", "id,name\n1,a\n2,b\n")
    load(conn, first, cols, partition="2025-01")
    load(conn, first, cols, partition="2025-01")
    assert rows(conn, f"SELECT count(*) FROM {TABLE}") == [(2,)]
    second = write(tmp_path, "b.csv", "id,name\n2,b2\n3,c\n")
    load(conn, second, cols, partition="2025-01", export_id="exp-2")
    assert rows(conn, f"SELECT id, name, _export_id FROM {TABLE} ORDER BY id") == [
        (2, "b2", "exp-2"),
        (3, "c", "exp-2"),
    ]


def test_loading_another_partition_keeps_the_first(tmp_path, conn):
    cols = simple(["id", "name"])
    load(conn, write(tmp_path, "a.csv", "id,name\n1,a\n2,b\n"), cols, partition="2025-01")
    load(conn, write(tmp_path, "b.csv", "id,name\n3,c\n"), cols, partition="2025-02")
    load(conn, write(tmp_path, "c.csv", "id,name\n3,c\n"), cols, partition="2025-02")
    assert rows(conn, f"SELECT _partition_key, count(*) FROM {TABLE} GROUP BY 1 ORDER BY 1") == [
        ("2025-01", 2),
        ("2025-02", 1),
    ]


def test_header_only_file_empties_the_partition(tmp_path, conn):
    cols = simple(["id", "name"])
    load(conn, write(tmp_path, "a.csv", "id,name\n1,a\n"), cols)
    assert load(conn, write(tmp_path, "e.csv", "id,name\n"), cols).rows == 0
    assert rows(conn) == []


def snapshot(conn):
    return rows(conn, f"SELECT * FROM {TABLE} ORDER BY ALL")


@pytest.fixture
def loaded(tmp_path, conn):
    cols = columns_for([("id", "integer"), ("createdAt", "datetime"), ("name", "string")], {})
    path = write(tmp_path, "ok.csv", "id,createdAt,name\n1,2025-01-01T00:00:00Z,a\n2,null,b\n")
    load(conn, path, cols)
    return cols, snapshot(conn)


def test_bad_value_fails_naming_column_and_value_and_keeps_rows(tmp_path, conn, loaded):
    cols, before = loaded
    bad = write(
        tmp_path, "bad.csv", "id,createdAt,name\n3,2025-01-01T00:00:00Z,c\n4,not-a-date,d\n"
    )
    with pytest.raises(CastError) as err:
        load(conn, bad, cols)
    assert "createdAt" in str(err.value)
    assert "not-a-date" in str(err.value)
    assert snapshot(conn) == before


def test_integer_with_fraction_fails_instead_of_rounding(tmp_path, conn, loaded):
    cols, before = loaded
    bad = write(tmp_path, "frac.csv", "id,createdAt,name\n1.5,null,c\n")
    with pytest.raises(CastError, match=r"'id'.*1\.5"):
        load(conn, bad, cols)
    assert snapshot(conn) == before
    # an integral value written with a decimal point is still fine
    load(conn, write(tmp_path, "int.csv", "id,createdAt,name\n3.0,null,c\n"), cols, partition="p2")
    assert rows(conn, f"SELECT id FROM {TABLE} WHERE _partition_key = 'p2'") == [(3,)]


def test_header_mismatch_lists_missing_and_unexpected(tmp_path, conn, loaded):
    cols, before = loaded
    bad = write(tmp_path, "hdr.csv", "id,created,name,extra\n3,null,c,x\n")
    with pytest.raises(HeaderMismatchError) as err:
        load(conn, bad, cols)
    msg = str(err.value)
    assert "missing headers: ['createdAt']" in msg
    assert "unexpected headers: ['created', 'extra']" in msg
    assert snapshot(conn) == before


def test_header_in_another_order_is_rejected(tmp_path, conn, loaded):
    cols, before = loaded
    bad = write(tmp_path, "order.csv", "name,createdAt,id\nc,null,3\n")
    with pytest.raises(HeaderMismatchError, match="another order"):
        load(conn, bad, cols)
    assert snapshot(conn) == before


def test_row_with_extra_field_fails_instead_of_being_cut(tmp_path, conn, loaded):
    cols, before = loaded
    bad = write(tmp_path, "ragged.csv", "id,createdAt,name\n3,null,c,surplus\n")
    with pytest.raises(LoadError):
        load(conn, bad, cols)
    assert snapshot(conn) == before


def test_schema_evolution_adds_new_columns(tmp_path, conn, loaded):
    cols, _ = loaded
    wider = cols + columns_for([("score", "score")], {})
    path = write(tmp_path, "wide.csv", "id,createdAt,name,score\n5,null,e,77\n")
    result = load(conn, path, wider, partition="2025-02")
    assert ("score", "BIGINT") in result.columns
    assert rows(conn, f"SELECT id, score FROM {TABLE} ORDER BY id") == [
        (1, None),
        (2, None),
        (5, 77),
    ]


def test_type_conflict_names_column_types_and_fix(tmp_path, conn, loaded):
    _cols, before = loaded
    changed = [Column("id", "id", "BIGINT"), Column("createdAt", "createdAt", "VARCHAR"),
               Column("name", "name", "VARCHAR")]  # fmt: skip
    path = write(tmp_path, "x.csv", "id,createdAt,name\n3,yesterday,c\n")
    with pytest.raises(SchemaConflictError) as err:
        load(conn, path, changed)
    msg = str(err.value)
    assert "'createdAt'" in msg
    assert "TIMESTAMP WITH TIME ZONE" in msg and "VARCHAR" in msg
    assert "Fix:" in msg
    assert snapshot(conn) == before


def test_column_names_colliding_case_insensitively_are_rejected(tmp_path, conn):
    path = write(tmp_path, "c.csv", "Email,email\na,b\n")
    with pytest.raises(ValueError, match="case-insensitive"):
        load(conn, path, simple(["Email", "email"]))


def test_extra_lineage_types_follow_python_values(tmp_path, conn):
    path = write(tmp_path, "l.csv", "id\n1\n")
    load(conn, path, simple(["id"]), ok=True, ratio=0.5, day=dt.date(2025, 1, 2),
         amount=Decimal("1.5"), note="n")  # fmt: skip
    types = dict(table_schema(conn, TABLE))
    assert [types[c] for c in ("_ok", "_ratio", "_day", "_amount", "_note")] == [
        "BOOLEAN", "DOUBLE", "DATE", "DOUBLE", "VARCHAR",
    ]  # fmt: skip


def test_cast_error_in_file_with_nul_bytes_names_the_export_file(tmp_path, conn, loaded):
    cols, before = loaded
    bad = write(tmp_path, "nul.csv", b"id,createdAt,name\n3,null,c\x00\n4x,null,d\n")
    with pytest.raises(CastError) as err:
        load(conn, bad, cols)
    assert "nul.csv" in str(err.value) and "'id'" in str(err.value) and "4x" in str(err.value)
    assert snapshot(conn) == before
    assert sorted(p.name for p in tmp_path.iterdir() if "nul" in p.name) == ["nul.csv"]


def test_bad_boolean_fails_the_load(tmp_path, conn):
    path = write(tmp_path, "b.csv", "id,flag\n1,maybe\n")
    with pytest.raises(CastError, match=r"'flag'.*maybe"):
        load(conn, path, columns_for([("id", "integer"), ("flag", "boolean")], {}))


def test_unparseable_header_is_a_header_error(tmp_path, conn):
    path = write(tmp_path, "h.csv", 'id,"name\n1,x\n')
    with pytest.raises(HeaderMismatchError):
        load(conn, path, simple(["id", "name"]))


def test_tsv_header_is_checked_with_its_delimiter(tmp_path, conn):
    path = write(tmp_path, "h.tsv", "id,name\n1,x\n")  # comma-separated but declared TSV
    with pytest.raises(HeaderMismatchError, match="missing headers"):
        load(conn, path, simple(["id", "name"]), fmt="TSV")


def test_schema_named_like_the_database_file_loads(tmp_path):
    """`marketo.duckdb` + schema `marketo`: DuckDB calls `marketo.leads` ambiguous."""
    import duckdb

    from marketo_assets.warehouse import columns_for, load_partition

    csv = tmp_path / "x.csv"
    csv.write_text("id,email\n1,a@example.com\n2,null\n")
    with duckdb.connect(str(tmp_path / "marketo.duckdb")) as conn:
        result = load_partition(
            conn,
            table="marketo.leads",
            file_path=csv,
            file_format="CSV",
            columns=columns_for([("id", "integer"), ("email", "email")], {}),
            partition_key="p1",
        )
        assert result.rows == 2
        assert conn.execute("SELECT count(*) FROM marketo.marketo.leads").fetchone()[0] == 2
