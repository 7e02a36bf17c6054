"""The warehouse interface: the DuckDB and the PostgreSQL backends load the same export files
into the same typed tables with the same per-partition replace semantics, and answer the
checks' queries the same way. Every behaviour test runs against both."""

from __future__ import annotations

import datetime as dt
import threading
from contextlib import ExitStack

import pytest

from marketo_assets.warehouse import (
    CastError,
    Column,
    DuckDBWarehouse,
    HeaderMismatchError,
    LoadError,
    SchemaConflictError,
    WarehouseConfigError,
    columns_for,
    count_where,
    warehouse_from_config,
)
from marketo_assets.warehouse.postgres import PostgresWarehouse
from marketo_assets_tests.support.lead_table import load_and_check

UTC = dt.UTC
TABLE = "marketo.leads"
ALL_TYPES = [
    ("id", "integer"),
    ("leadScore", "score"),
    ("ratio", "float"),
    ("revenue", "currency"),
    ("unsubscribed", "boolean"),
    ("birthDate", "date"),
    ("createdAt", "datetime"),
    ("email", "email"),
    ("notes", "textarea"),
]
TYPED_FILE = (
    "id,leadScore,ratio,revenue,unsubscribed,birthDate,createdAt,email,notes\n"
    '7,42,0.5,1234.56789,true,1980-02-29,2020-01-08T18:10:26Z,a@b.c,"multi\nline, ""quoted"""\n'
    "8,2.0,1e3,0,false,2000-01-01,2020-01-08T18:10:26+02:00,x@y.z,caf\u00e9 \u2603\n"
    "9,null,null,null,null,null,null,null,\n"
)


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request, tmp_path):
    if request.param == "duckdb":
        return DuckDBWarehouse(tmp_path / "marketo.duckdb")
    server = request.getfixturevalue("pg_server")
    db = request.getfixturevalue("pg_database")
    return PostgresWarehouse(server.dsn(db))


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def load(session, path, columns, partition="2025-01-01", table=TABLE, fmt="CSV", **lineage):
    return session.load_partition(
        table=table,
        file_path=path,
        file_format=fmt,
        columns=columns,
        partition_key=partition,
        lineage={"export_id": "exp-1", **lineage},
    )


def select(session, sql):
    """Rows of a query on either backend. In `marketo.duckdb` DuckDB needs the catalog too
    (`marketo.marketo.leads`); PostgreSQL takes `marketo.leads`."""
    if session.kind == "duckdb":
        sql = sql.replace("marketo.", "marketo.marketo.")
        return session.conn.execute(sql).fetchall()
    with session.conn.cursor() as cur:
        cur.execute(sql)
        rows = cur.fetchall()
    session.conn.rollback()
    return rows


def simple(names):
    return [Column(name=n, field=n, type="BIGINT" if n == "id" else "VARCHAR") for n in names]


def ids(session, table=TABLE):
    return select(session, f"SELECT _partition_key, id FROM {table} ORDER BY 1, 2")


def test_both_backends_load_the_same_typed_values(tmp_path, pg_server, pg_database):
    path = write(tmp_path, "typed.csv", TYPED_FILE)
    columns = columns_for(ALL_TYPES, {})
    loaded_at = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    values, types = {}, {}
    for wh in (
        DuckDBWarehouse(tmp_path / "marketo.duckdb"),
        PostgresWarehouse(pg_server.dsn(pg_database)),
    ):
        with wh.session() as s:
            result = load(s, path, columns, loaded_at=loaded_at)
            assert result.rows == 3
            values[wh.kind] = select(
                s,
                'SELECT id, "leadScore", ratio, revenue, unsubscribed, "birthDate", '
                '"createdAt", email, notes, _partition_key, _export_id, _loaded_at '
                "FROM marketo.leads ORDER BY id",
            )
            types[wh.kind] = dict(result.columns)
    assert values["postgres"] == values["duckdb"]
    assert values["postgres"][0][8] == 'multi\nline, "quoted"'
    assert values["postgres"][1][1] == 2  # '2.0' in an integer column is 2
    assert values["postgres"][2][1:9] == (None,) * 8  # Marketo's null and '' are NULL
    assert types["postgres"] == {
        "id": "bigint",
        "leadScore": "bigint",
        "ratio": "numeric(38,18)",
        "revenue": "numeric(38,18)",
        "unsubscribed": "boolean",
        "birthDate": "date",
        "createdAt": "timestamp with time zone",
        "email": "text",
        "notes": "text",
        "_partition_key": "text",
        "_export_id": "text",
        "_loaded_at": "timestamp with time zone",
    }


def test_reloading_a_partition_replaces_only_its_rows(tmp_path, warehouse):
    cols = simple(["id", "email"])
    with warehouse.session() as s:
        load(s, write(tmp_path, "a.csv", "id,email\n1,a\n2,b\n"), cols, "2025-01-01")
        load(s, write(tmp_path, "b.csv", "id,email\n3,c\n"), cols, "2025-02-01")
        load(s, write(tmp_path, "c.csv", "id,email\n1,a2\n4,d\n"), cols, "2025-01-01")
        assert ids(s) == [("2025-01-01", 1), ("2025-01-01", 4), ("2025-02-01", 3)]
        assert s.partition_stats(TABLE, "2025-01-01", timestamp_column=None) == {
            "rows": 2,
            "distinct_ids": 2,
            "duplicate_ids": 0,
            "null_ids": 0,
        }
        assert s.ids_in_other_partitions(TABLE, "2025-01-01").ids == 0


def test_a_shared_file_loads_only_the_partitions_rows(tmp_path, warehouse):
    """A program member export of several programs: each partition loads its program's rows
    (`rows_where`), replacing only its own, and the file's count of them agrees."""
    cols = [Column("programId", "programId", "INTEGER"), *simple(["id"])]
    shared = write(tmp_path, "shared.csv", "programId,id\n10,1\n20,2\n10,3\n30,4\n20,5\n")
    with warehouse.session() as s:
        for key in ("10", "20", "30"):
            result = s.load_partition(
                table=TABLE,
                file_path=shared,
                file_format="CSV",
                columns=cols,
                partition_key=key,
                lineage={"export_id": "exp-1"},
                rows_where=("programId", key),
            )
            assert result.rows == count_where(shared, "CSV", ["programId", "id"], "programId", key)
        assert ids(s) == [("10", 1), ("10", 3), ("20", 2), ("20", 5), ("30", 4)]
        assert s.rows_outside_window(TABLE, "20", "programId", 20, 20) == 0


def test_several_files_load_as_one_partition_in_one_transaction(tmp_path, warehouse):
    """A window exported as several Marketo jobs: all files replace the partition together,
    each row with its own export id; a bad second file leaves the previous rows untouched."""
    cols = simple(["id", "email"])
    first = write(tmp_path, "p0.csv", "id,email\n1,a\n2,b\n")
    second = write(tmp_path, "p1.csv", "id,email\n3,c\n")

    def load_parts(session, *paths):
        return session.load_partition(
            table=TABLE,
            files=[(p, {"_export_id": f"exp-{i}"}) for i, p in enumerate(paths)],
            file_format="CSV",
            columns=cols,
            partition_key="2025-10-01",
        )

    with warehouse.session() as s:
        load(s, write(tmp_path, "other.csv", "id,email\n9,z\n"), cols, "2025-11-01")
        assert load_parts(s, first, second).rows == 3
        both = "SELECT _partition_key, id, _export_id FROM marketo.leads ORDER BY 1, 2"
        before = select(s, both)
        assert before == [
            ("2025-10-01", 1, "exp-0"),
            ("2025-10-01", 2, "exp-0"),
            ("2025-10-01", 3, "exp-1"),
            ("2025-11-01", 9, "exp-1"),
        ]
        bad = write(tmp_path, "p1-bad.csv", "id,email\n4,d\nfive,e\n")
        with pytest.raises(CastError, match=r"p1-bad\.csv.*'id'.*five"):
            load_parts(s, write(tmp_path, "p0-new.csv", "id,email\n5,n\n"), bad)
        assert select(s, both) == before
        with pytest.raises(HeaderMismatchError):
            load_parts(s, first, write(tmp_path, "p1-hdr.csv", "id,mail\n4,d\n"))
        assert select(s, both) == before


def test_failed_load_names_column_and_value_and_keeps_previous_rows(tmp_path, warehouse):
    cols = simple(["id", "email"])
    with warehouse.session() as s:
        load(s, write(tmp_path, "ok.csv", "id,email\n1,a\n2,b\n"), cols)
        bad = write(tmp_path, "bad.csv", "id,email\n5,e\nseven,f\n")
        with pytest.raises(CastError, match=r"bad\.csv.*'id'.*seven"):
            load(s, bad, cols)
        frac = write(tmp_path, "frac.csv", "id,email\n1.5,e\n")
        with pytest.raises(CastError, match=r"'id'.*1\.5"):
            load(s, frac, cols)
        extra = write(tmp_path, "extra.csv", "id,email\n5,e,surplus\n")
        with pytest.raises(LoadError):
            load(s, extra, cols)
        with pytest.raises(HeaderMismatchError, match="unexpected headers: \\['mail'\\]"):
            load(s, write(tmp_path, "hdr.csv", "id,mail\n1,a\n"), cols)
        assert ids(s) == [("2025-01-01", 1), ("2025-01-01", 2)]


def test_new_fields_add_columns_and_type_conflicts_are_refused(tmp_path, warehouse):
    with warehouse.session() as s:
        load(s, write(tmp_path, "a.csv", "id,email\n1,a\n"), simple(["id", "email"]))
        load(
            s,
            write(tmp_path, "b.csv", "id,email,city\n2,b,X\n"),
            simple(["id", "email", "city"]),
            "p2",
        )
        assert [n for n, _ in s.table_schema(TABLE)][:3] == ["id", "email", "_partition_key"]
        assert "city" in dict(s.table_schema(TABLE))
        as_int = [Column("id", "id", "BIGINT"), Column("email", "email", "BIGINT")]
        with pytest.raises(SchemaConflictError, match=r"'email'.*Fix"):
            load(s, write(tmp_path, "c.csv", "id,email\n3,4\n"), as_int, "p3")
        assert len(ids(s)) == 2


def test_nul_bytes_are_removed_and_tsv_loads(tmp_path, warehouse):
    with warehouse.session() as s:
        path = write(tmp_path, "n.tsv", b"id\temail\n1\ta\x00b\n")
        load(s, path, simple(["id", "email"]), fmt="TSV")
        assert select(s, "SELECT email FROM marketo.leads") == [("ab",)]
        assert not list(tmp_path.glob("*.nonul"))


def test_list_catalog_is_replaced_and_members_of_deleted_lists_pruned(tmp_path, warehouse):
    members = "marketo.static_list_members"
    now = dt.datetime(2025, 3, 1, tzinfo=UTC)
    with warehouse.session() as s:
        for list_id in (1, 2):
            path = write(tmp_path, f"m{list_id}.csv", f"id\n{list_id}0\n{list_id}1\n")
            load(s, path, simple(["id"]), f"static-{list_id}", table=members, _list_id=list_id)
        row = {"list_type": "static", "name": "L", "created_at": now, "updated_at": now}
        rows = [{**row, "list_id": i, "partition_key": f"static-{i}"} for i in (1, 2)]
        s.replace_list_catalog(table="marketo.lists", rows=rows, loaded_at=now)
        result = s.replace_list_catalog(
            table="marketo.lists",
            rows=rows[:1],
            loaded_at=now,
            prune={members: ("static", [1]), "marketo.smart_list_members": ("smart", [])},
        )
        assert result.rows == 1
        assert result.pruned_member_rows == {members: 2}  # absent smart table skipped
        assert select(s, "SELECT list_id, partition_key FROM marketo.lists") == [(1, "static-1")]
        assert select(s, f"SELECT _list_id, id FROM {members} ORDER BY 2") == [(1, 10), (1, 11)]


def test_a_summary_table_is_replaced_whole(warehouse):
    """`replace_table`, as the load steps refresh marketo.quota_usage."""
    columns = (("day", "DATE NOT NULL"), ("asset", "VARCHAR NOT NULL"), ("bytes", "BIGINT"))
    day, now = dt.date(2025, 8, 4), dt.datetime(2025, 8, 4, 12, tzinfo=dt.UTC)
    with warehouse.session() as s:
        first = [{"day": day, "asset": "a", "bytes": 1}]
        s.replace_table(table="marketo.quota_usage", columns=columns, rows=first, loaded_at=now)
        rows = [{"day": day, "asset": "b", "bytes": 2}, {"day": day, "asset": "c", "bytes": None}]
        result = s.replace_table(
            table="marketo.quota_usage", columns=columns, rows=rows, loaded_at=now
        )
        assert result.rows == 2
        found = select(s, "SELECT asset, bytes FROM marketo.quota_usage ORDER BY 1")
        assert found == [("b", 2), ("c", None)]


def test_checks_queries_agree(tmp_path, warehouse):
    cols = columns_for([("id", "integer"), ("createdAt", "datetime")], {})
    path = write(
        tmp_path, "w.csv", "id,createdAt\n1,2025-01-01T00:00:00Z\n1,2025-01-31T23:59:59Z\n,null\n"
    )
    start = dt.datetime(2025, 1, 1, tzinfo=UTC)
    end = dt.datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC)
    with warehouse.session() as s:
        load(s, path, cols)
        stats = s.partition_stats(TABLE, "2025-01-01", timestamp_column="createdAt")
        assert (stats["rows"], stats["duplicate_ids"], stats["null_ids"]) == (3, 1, 1)
        assert (stats["min_createdAt"], stats["max_createdAt"]) == (start, end)
        assert s.ids_in_other_partitions(TABLE, "2025-01-01").ids == 0  # the partition's own
        assert s.rows_outside_window(TABLE, "2025-01-01", "createdAt", start, end) == 1


def test_ids_in_other_partitions_probes_for_this_partitions_ids_only(tmp_path, warehouse):
    """The lead table check's query: this partition's ids that other partitions hold (not
    the duplicates among other partitions), with the partitions holding most rows first."""
    cols = simple(["id", "email"])
    with warehouse.session() as s:
        load(s, write(tmp_path, "a.csv", "id,email\n1,a\n2,b\n"), cols, "2025-01-01")
        load(s, write(tmp_path, "b.csv", "id,email\n2,b\n2,b\n3,c\n,x\n"), cols, "2025-02-01")
        load(s, write(tmp_path, "c.csv", "id,email\n3,c\n4,d\n,y\n"), cols, "2025-03-01")
        load(s, write(tmp_path, "d.csv", "id,email\n9,z\n"), cols, "2025-04-01")
        shared = s.ids_in_other_partitions(TABLE, "2025-02-01")
        assert (shared.ids, shared.partitions) == (2, 2)
        assert shared.examples == [("2025-01-01", 1), ("2025-03-01", 1)]
        assert s.ids_in_other_partitions(TABLE, "2025-02-01", limit=1).examples == [
            ("2025-01-01", 1)
        ]
        shared = s.ids_in_other_partitions(TABLE, "2025-01-01")
        assert (shared.ids, shared.partitions, shared.examples) == (1, 1, [("2025-02-01", 2)])
        # 2025-02-01 and 2025-03-01 overlap; 2025-04-01 shares nothing (NULL ids match nothing).
        none = s.ids_in_other_partitions(TABLE, "2025-04-01")
        assert (none.ids, none.partitions, none.examples) == (0, 0, [])
        assert s.ids_in_other_partitions(TABLE, "2099-01-01").ids == 0


def test_the_lead_table_check_on_postgres(tmp_path, pg_server, pg_database):
    wh = PostgresWarehouse(pg_server.dsn(pg_database))
    assert load_and_check(wh, tmp_path, "2025-01-01", [1, 2, 3]).passed
    later = load_and_check(wh, tmp_path, "2025-02-01", [3, 4])
    assert not later.passed and later.metadata["other_partitions"] == ["2025-01-01"]
    assert load_and_check(wh, tmp_path, "2025-03-01", [5]).passed


def test_postgres_takes_parallel_loads_of_different_partitions(tmp_path, pg_server, pg_database):
    """What DuckDB cannot do (one writing process per file): several writers at once."""
    wh = PostgresWarehouse(pg_server.dsn(pg_database))
    cols = simple(["id", "email"])
    with wh.session() as s:  # the table exists first; then eight loads race on it
        load(s, write(tmp_path, "seed.csv", "id,email\n0,z\n"), cols, "seed")
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        body = "id,email\n" + "".join(f"{i * 1000 + n},e{n}\n" for n in range(200))
        path = write(tmp_path, f"p{i}.csv", body)
        try:
            with wh.session() as s:
                barrier.wait(30)
                load(s, path, cols, f"p{i}")
                load(s, path, cols, f"p{i}")  # and again: still 200 rows
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    with wh.session() as s:
        counts = select(s, "SELECT _partition_key, count(*) FROM marketo.leads GROUP BY 1")
    assert dict(counts) == {"seed": 1, **{f"p{i}": 200 for i in range(8)}}


def test_postgres_connection_errors_name_the_fix_without_the_password(pg_server):
    dsn = f"host=127.0.0.1 port={pg_server.port} user=nobody password=hunter2-secret dbname=x"
    wh = warehouse_from_config("postgres", postgres_dsn=dsn)
    assert "hunter2" not in repr(wh)
    with pytest.raises(LoadError) as info, ExitStack() as stack:
        stack.enter_context(wh.session())
    assert "PGHOST" in str(info.value) and "hunter2" not in str(info.value)


def test_unknown_warehouse_kind_is_refused():
    with pytest.raises(WarehouseConfigError, match=r"MARKETO_WAREHOUSE.*duckdb.*postgres"):
        warehouse_from_config("snowflake")


def test_header_names_never_change_the_table_columns(tmp_path, warehouse):
    """One column per Marketo field: a partition exported with other headers lands in the same
    columns (REST names); a field exported later is NULL in the older partitions."""
    plain = columns_for([("id", "integer"), ("email", "email")], {})
    renamed = columns_for(
        [("id", "integer"), ("email", "email"), ("company", "string")],
        {"id": "Lead ID", "email": "E-mail", "company": "Firm"},
    )
    with warehouse.session() as s:
        load(s, write(tmp_path, "a.csv", "id,email\n1,a@x\n"), plain, "a")
        load(s, write(tmp_path, "b.csv", "Lead ID,E-mail,Firm\n2,b@x,Acme\n"), renamed, "b")
        assert [n for n, _ in s.table_schema(TABLE) if not n.startswith("_")] == [
            "id",
            "email",
            "company",
        ]
        rows = select(s, "SELECT _partition_key, id, email, company FROM marketo.leads ORDER BY 1")
        assert rows == [("a", 1, "a@x", None), ("b", 2, "b@x", "Acme")]
        assert s.partition_keys(TABLE) == {"a", "b"}
        assert s.partition_keys("marketo.nothing_here") == set()
        with pytest.raises(HeaderMismatchError, match="Lead ID"):  # headers still checked
            load(s, write(tmp_path, "c.csv", "id,email\n3,c@x\n"), renamed[:2], "c")


def test_rename_columns_gives_fields_their_names_back_or_refuses_a_split(tmp_path, warehouse):
    header_named = [Column("id", "id", "BIGINT"), Column("E-mail", "E-mail", "VARCHAR")]
    with warehouse.session() as s:
        load(s, write(tmp_path, "a.csv", "id,E-mail\n1,a@x\n"), header_named, "a")
        assert s.rename_columns(TABLE, {"E-mail": "email", "Gone": "company"}) == [
            ("E-mail", "email")
        ]
        assert select(s, "SELECT id, email FROM marketo.leads") == [(1, "a@x")]
        assert s.rename_columns(TABLE, {"E-mail": "email"}) == []  # nothing left to rename
        load(s, write(tmp_path, "b.csv", "id,E-mail\n2,b@x\n"), header_named, "b")  # split
        with pytest.raises(SchemaConflictError, match=r"'E-mail'.*'email'.*merge them"):
            s.rename_columns(TABLE, {"E-mail": "email"})
        assert s.rename_columns("marketo.nothing_here", {"E-mail": "email"}) == []


def test_json_columns_load_and_replace_on_both_backends(tmp_path, warehouse):
    """`attributes` of an activity export is JSON (DuckDB) / jsonb (PostgreSQL), its members
    queryable; the activity type catalog keeps its JSON columns; bad JSON fails the load."""
    from marketo_assets.extract.activities import ACTIVITY_FIELDS, ACTIVITY_TYPE_COLUMNS

    header = ",".join(name for name, _ in ACTIVITY_FIELDS)
    good = write(
        tmp_path,
        "a.csv",
        f'{header}\ng-1,7,2025-01-01T10:00:00Z,11,null,5,Mail,"{{""Link"":""https://x/?a,b""}}"\n',
    )
    columns = columns_for(list(ACTIVITY_FIELDS), {})
    table = "marketo.activities"
    member = {"duckdb": "attributes->>'$.Link'", "postgres": "attributes->>'Link'"}
    with warehouse.session() as s:
        assert load(s, good, columns, table=table).rows == 1
        sql = f"SELECT activityTypeId, {member[s.kind]} FROM {table}"
        assert select(s, sql.replace("activityTypeId", '"activityTypeId"')) == [
            (11, "https://x/?a,b")
        ]
        bad = write(tmp_path, "b.csv", f'{header}\ng-2,7,2025-01-01T10:00:00Z,11,null,5,M,"{{x"\n')
        with pytest.raises(CastError, match="attributes"):
            load(s, bad, columns, table=table)
        now = dt.datetime(2025, 3, 1, tzinfo=UTC)
        catalog = [{"id": 1, "name": "Visit", "attributes": [{"name": "a", "dataType": "string"}]}]
        result = s.replace_table(
            table="marketo.activity_types",
            columns=ACTIVITY_TYPE_COLUMNS,
            rows=catalog,
            loaded_at=now,
        )
        assert result.rows == 1
        first = {"duckdb": "attributes->>'$[0].name'", "postgres": "attributes->0->>'name'"}
        assert select(s, f"SELECT id, {first[s.kind]} FROM marketo.activity_types") == [(1, "a")]
