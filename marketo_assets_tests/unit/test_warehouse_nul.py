"""NUL bytes in export files: removed from the values inside the load query, no copy of the
file, unless they sit outside values or in a typed value (docs/DATA-TYPES.md). Every load here
is compared with the load of the same file without its NUL bytes, which is what the loader
loaded before (a NUL-free copy)."""

import datetime as dt
import random
from decimal import Decimal

import duckdb
import pytest

from marketo_assets.warehouse import LoadError, columns_for, load_partition
from marketo_assets.warehouse import loader as loader_module
from marketo_assets.warehouse import nul as nul_module
from marketo_assets.warehouse.files import DELIMITERS, SSV_DELIMITERS
from marketo_assets.warehouse.nul import VALUE_ENDS, NulBytes, nul_scan

UTC = dt.UTC
FIELDS = [
    ("id", "integer"),
    ("name", "string"),
    ("attributes", "json"),
    ("revenue", "currency"),
    ("createdAt", "datetime"),
    ("flag", "boolean"),
    ("birthDate", "date"),
]
COLUMNS = columns_for(FIELDS, {})


@pytest.fixture
def conn(tmp_path):
    c = duckdb.connect(str(tmp_path / "marketo.duckdb"))
    yield c
    c.close()


@pytest.fixture
def no_copy(monkeypatch):
    """Fail the test if the loader writes a NUL-free copy of the file."""

    def refuse(path):
        raise AssertionError(f"a NUL-free copy of {path} was written")

    monkeypatch.setattr(loader_module, "strip_nul", refuse)


def load(conn, path, table, columns=COLUMNS, fmt="CSV", rows_where=None):
    return load_partition(
        conn,
        table=table,
        file_path=path,
        file_format=fmt,
        columns=columns,
        partition_key="2025-01",
        rows_where=rows_where,
    )


def table_rows(conn, table):
    return conn.execute(
        f"SELECT * EXCLUDE (_partition_key, _export_id, _loaded_at) FROM {table} ORDER BY ALL"
    ).fetchall()


def load_both(conn, tmp_path, content, columns=COLUMNS, fmt="CSV", rows_where=None):
    """(rows loaded from `content`, rows loaded from `content` without its NUL bytes)."""
    raw = tmp_path / f"raw.{fmt.lower()}"
    clean = tmp_path / f"clean.{fmt.lower()}"
    raw.write_bytes(content)
    clean.write_bytes(content.replace(b"\x00", b""))
    for path, table in ((raw, "m.raw"), (clean, "m.clean")):
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        load(conn, path, table, columns, fmt, rows_where)
    return table_rows(conn, "m.raw"), table_rows(conn, "m.clean")


def test_nul_bytes_in_text_values_are_removed_without_a_copy(tmp_path, conn, no_copy):
    content = (
        b"id,name,attributes,revenue,createdAt,flag,birth\x00Date\r\n"  # in the header too
        b'1,nul\x00unquoted,"{""a"": ""x\x00y""}",12.5,2025-01-02T03:04:05Z,true,2000-01-01\r\n'
        b'2,"nul\x00 quoted, with a comma",null,12,null,false,null\r\n'
        b"3,\x00,\x00,null,null,null,null\r\n"  # a value of NUL bytes only: NULL, as '' is
        b"4,\x00\x00,null,null,null,null,null\r\n"
        b"5,nu\x00ll,null,null,null,null,null\r\n"  # `null` once the NUL is gone: NULL
        b"6,NU\x00LL,null,7,null,null,null\r\n"  # only lower-case `null` is NULL
        b"7,last\x00,null,8,null,null,null"  # the file's last byte after a NUL, no line end
    )
    assert nul_scan(_written(tmp_path, "f.csv", content)).kind is NulBytes.IN_VALUES
    got, before = load_both(conn, tmp_path, content)
    at = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert got == before
    assert got == [
        (1, "nulunquoted", '{"a": "xy"}', Decimal("12.5"), at, True, dt.date(2000, 1, 1)),
        (2, "nul quoted, with a comma", None, Decimal(12), None, False, None),
        (3, None, None, None, None, None, None),
        (4, None, None, None, None, None, None),
        (5, None, None, None, None, None, None),
        (6, "NULL", None, Decimal(7), None, None, None),
        (7, "last", None, Decimal(8), None, None, None),
    ]
    assert sorted(p.name for p in tmp_path.iterdir() if "raw" in p.name) == ["raw.csv"]


def test_nul_bytes_in_typed_values_load_through_a_copy(tmp_path, conn, monkeypatch):
    """A typed value with a NUL byte fails its cast in the query (which frees text columns
    only, to spare the check on every typed value): the file is loaded again from a copy."""
    content = (
        b"id,name,attributes,revenue,createdAt,flag,birthDate\n"
        b"1,a\x00b,null,1\x002.5,2025-01-0\x002T03:04:05Z,tr\x00ue,2000-01-0\x001\n"
        b"2,c,null,\x0012,\x002025-01-02T03:04:05Z,\x00false,null\n"
        b"3,d,null,\x00,\x00,\x00,\x00\n"
        b"4,e,null,nu\x00ll,2025-01-02T03:04:05Z\x00,nul\x00l,2000-01-01\x00\n"
        b"5\x00,f,null,null,null,null,null\n"
    )
    copies = []
    monkeypatch.setattr(
        loader_module, "strip_nul", lambda path: copies.append(path) or nul_module.strip_nul(path)
    )
    got, before = load_both(conn, tmp_path, content)
    at = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert got == before
    assert got == [
        (1, "ab", None, Decimal("12.5"), at, True, dt.date(2000, 1, 1)),
        (2, "c", None, Decimal(12), at, False, None),
        (3, "d", None, None, None, None, None),
        (4, "e", None, None, at, None, dt.date(2000, 1, 1)),
        (5, "f", None, None, None, None, None),
    ]
    assert [p.name for p in copies] == ["raw.csv"]
    assert sorted(p.name for p in tmp_path.iterdir() if "raw" in p.name) == ["raw.csv"]


@pytest.mark.parametrize(("fmt", "sep"), [("TSV", "\t"), ("SSV", ";"), ("SSV", " ")])
def test_tsv_and_ssv_values_lose_their_nul_bytes_in_the_query(tmp_path, conn, no_copy, fmt, sep):
    lines = [["id", "name"], ["1", "a\x00b"], ["2", '"x\x00' + sep + 'y"'], ["3", "\x00"]]
    content = "".join(sep.join(line) + "\n" for line in lines).encode()
    got, before = load_both(conn, tmp_path, content, columns_for(FIELDS[:2], {}), fmt)
    assert got == before == [(1, "ab"), (2, f"x{sep}y"), (3, None)]


def test_rows_where_compares_the_value_without_nul_bytes(tmp_path, conn, no_copy):
    content = b"id,name\n1,a\x00b\n2,ab\n3,abc\n4,\x00ab\x00\n"
    got, before = load_both(
        conn, tmp_path, content, columns_for(FIELDS[:2], {}), "CSV", ("name", "ab")
    )
    assert got == before == [(1, "ab"), (2, "ab"), (4, "ab")]


def test_cast_error_names_the_value_without_nul_bytes(tmp_path, conn):
    path = _written(tmp_path, "bad.csv", b"id,name\n1,a\x00b\n2\x00x,c\n")
    with pytest.raises(LoadError, match=r"bad\.csv.*'id'.*'2x'"):
        load(conn, path, "m.bad", columns_for(FIELDS[:2], {}))
    assert [p.name for p in tmp_path.iterdir() if "bad" in p.name] == ["bad.csv"]


# NUL bytes that change how the file parses once they are gone: next to a quote, between CR
# and LF, splitting a UTF-8 character, making up a whole line. These still load through a
# NUL-free copy (a quote's meaning depends on what came before; the query sees the values only).
OUTSIDE_VALUES = [
    b'id,name\n1,\x00"x,y"\n',  # before an opening quote
    b'id,name\n1,"x,y"\x00\n',  # after a closing quote
    b'id,name\n1,"x"\x00"y"\n',  # inside an escaped quote
    b'id,name\n1,"\x00\x00"\n2,"\x00a, b"\n',  # also inside quotes, but the scan cannot tell
    b"id,name\r\n1,x\r\x00\n2,y\r\n",  # between CR and LF
    b"id,name\n1,\xc3\x00\xa9\n",  # inside a UTF-8 character
    b"id,name\n1,x\n\x00\x00\n2,y\n",  # a line of NUL bytes only
    b"id,name\n1,x\n\x00",  # NUL bytes after the last line end
]


@pytest.mark.parametrize("content", OUTSIDE_VALUES)
def test_nul_bytes_outside_values_still_load_through_a_copy(tmp_path, conn, content):
    assert nul_scan(_written(tmp_path, "f.csv", content)).kind is NulBytes.OUTSIDE_VALUES
    got, before = load_both(conn, tmp_path, content, columns_for(FIELDS[:2], {}))
    assert got == before
    assert sorted(p.name for p in tmp_path.iterdir() if "raw" in p.name) == ["raw.csv"]


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"id\n1\n", NulBytes.NONE),
        (b"", NulBytes.NONE),
        (b"\x00", NulBytes.OUTSIDE_VALUES),
        (b"a\x00b", NulBytes.IN_VALUES),
        (b"a\x00\x00\x00b,\x00\n", NulBytes.IN_VALUES),
        (b'a"\x00b', NulBytes.OUTSIDE_VALUES),
        (b'a\x00\x00"', NulBytes.OUTSIDE_VALUES),
        (b'"a\x00', NulBytes.IN_VALUES),
        (b"a\x00\x00\x00\x00\x00\xbf", NulBytes.OUTSIDE_VALUES),
        (b"a\x00\x00\x00\x00\x00\xc3\xa9", NulBytes.IN_VALUES),
        (b"a\n\x00\x00\x00\x00\x00b", NulBytes.IN_VALUES),
        (b"a\n\x00\x00\x00\x00\x00\r", NulBytes.OUTSIDE_VALUES),
        (b"a\n\x00\x00\x00\x00\x00", NulBytes.OUTSIDE_VALUES),
    ],
)
@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 1 << 20])
def test_nul_scan_is_the_same_whatever_the_chunk_size(tmp_path, monkeypatch, content, kind, chunk):
    monkeypatch.setattr(nul_module, "CHUNK", chunk)
    assert nul_scan(_written(tmp_path, "f.csv", content)).kind is kind


def test_a_chunk_with_many_nul_runs_gets_the_same_answer(tmp_path, monkeypatch):
    """Past a few thousand NUL runs in a chunk, a regular expression checks the rest: the same
    answer, except that a run at a chunk's end after a line end counts as outside values."""
    monkeypatch.setattr(nul_module, "RUNS_IN_PYTHON", 2)
    row = b'1,a\x00b,"c\x00d"\r\n'
    assert (
        nul_scan(_written(tmp_path, "a.csv", b"id,x,y\r\n" + row * 50)).kind is NulBytes.IN_VALUES
    )
    for bad in (b'1,"\x00"x,y\n', b"1,x\r\x00\n", b"\n\x00\n", b"1,\x00\xa9\n"):
        content = b"id,x,y\r\n" + row * 5 + bad + row * 5
        assert nul_scan(_written(tmp_path, "b.csv", content)).kind is NulBytes.OUTSIDE_VALUES, bad


# Can a value read as NULL once its NUL bytes are gone? The scan says no only when it is sure;
# a yes may be wrong (the load then keeps the NULL tests: same rows, a little more CPU).
MAY_LEAVE_NULL = [
    (b"id,name\n1,nul\x00byte\n", False),  # the simulator's NUL bytes
    (b"id,name\n1,x\x00\n2,\x00y\n", False),
    (b"id,name\n1,null\x00x\n", False),
    (b"id,name\n1,nulll\x00\n", False),  # five letters: never `null`
    (b"id,name\n1,NU\x00LL\n", False),  # only lower-case `null` is NULL
    (b"id,name\n1,nu\x00ll\n", True),
    (b"id,name\n1,\x00\n", True),  # NUL bytes only: ''
    (b"id,name\n1,\x00\x00\x00,x\n", True),
    (b"id,name\n1,n\x00u\x00l\x00l\n", True),
    (b"id\tname\n1\tnu\x00ll\n", True),  # TSV
    (b"id;name\n1;\x00;x\n", True),  # SSV with `;`
    (b"id name\n1 nul\x00l x\n", True),  # SSV with a space
    (b'id,name\n1,"a,\x00,b"\n', True),  # a quoted delimiter counts as a value's end: unsure
    (b"id,name\n1,ll\x00\n", True),  # not `null`, but the scan does not spell words
    (b"id\nab\x00", True),  # a run ending the file: unsure
    (b"id,name\n1,x\n", False),  # no NUL bytes
]


@pytest.mark.parametrize(("content", "may_leave_null"), MAY_LEAVE_NULL)
@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 1 << 20])
def test_nul_scan_tells_whether_a_value_may_read_as_null(
    tmp_path, monkeypatch, content, may_leave_null, chunk
):
    """Exact in one chunk; a chunk's edge counts as a value's end (so a small chunk may say
    yes where one chunk says no, never the reverse)."""
    monkeypatch.setattr(nul_module, "CHUNK", chunk)
    scan = nul_scan(_written(tmp_path, "f.csv", content))
    assert scan.kind is (NulBytes.IN_VALUES if b"\x00" in content else NulBytes.NONE)
    if chunk == 1 << 20 or may_leave_null:
        assert scan.may_leave_null is may_leave_null


def test_every_delimiter_ends_a_value_for_the_scan():
    for sep in [*DELIMITERS.values(), *SSV_DELIMITERS, '"', "\r", "\n"]:
        assert ord(sep) in VALUE_ENDS


def test_a_chunk_with_many_nul_runs_may_leave_null(tmp_path, monkeypatch):
    """Past RUNS_IN_PYTHON runs in a chunk the scan does not look at each: it says yes."""
    content = b"id,name\n" + b"1,nul\x00byte\n" * 5
    assert nul_scan(_written(tmp_path, "a.csv", content)).may_leave_null is False
    monkeypatch.setattr(nul_module, "RUNS_IN_PYTHON", 2)
    assert nul_scan(_written(tmp_path, "b.csv", content)).may_leave_null is True


def test_without_null_tests_the_load_is_the_nul_free_files(tmp_path, conn, no_copy, monkeypatch):
    """When the scan rules out a value reading as NULL, the query leaves the NULL tests out,
    and loads what the NUL-free file loads."""
    sql = []
    monkeypatch.setattr(
        loader_module, "nul_free", lambda c, m=True: sql.append(m) or nul_module.nul_free(c, m)
    )
    content = b'id,name\n1,nul\x00byte\n2,\x00\xc3\xa9t\xc3\xa9\x00\n3,null\n4,"a\x00,b"\n'
    got, before = load_both(conn, tmp_path, content, columns_for(FIELDS[:2], {}))
    assert got == before == [(1, "nulbyte"), (2, "été"), (3, None), (4, "a,b")]
    assert sql and not any(sql)
    assert "nullif" not in nul_module.nul_free('"c"', False)


def test_random_nul_bytes_near_null_load_like_the_nul_free_file(tmp_path, conn):
    """NUL bytes put inside values that are, or are close to, what reads as NULL ('' and
    'null'), in each format: the scan's answer keeps the load equal to the NUL-free file's,
    and both answers occur."""
    rng = random.Random(23)
    columns = columns_for([("id", "integer"), ("a", "string"), ("b", "string")], {})
    words = ["null", "nul", "nulll", "ull", "", "NULL", "x", "nulx", "llun", "a,b", 'say "hi"']
    seen = set()
    for case in range(40):
        fmt, sep = rng.choice([("CSV", ","), ("TSV", "\t"), ("SSV", ";"), ("SSV", " ")])
        lines = [sep.join(["id", "a", "b"]).encode()]
        for i in range(5):
            values = []
            for _ in range(2):
                word = rng.choice(words)
                raw = bytearray(word.encode())
                if rng.random() < 0.5:
                    for _ in range(rng.randint(1, 3)):
                        raw[rng.randint(0, len(raw)) : 0] = b"\x00"
                quoted = any(ch in word for ch in (sep, '"'))
                body = bytes(raw).replace(b'"', b'""')
                values.append(b'"' + body + b'"' if quoted else body)
            lines.append(sep.encode().join([str(i).encode(), *values]))
        data = b"\n".join(lines) + b"\n"
        raw_path = _written(tmp_path, "raw.csv", data)
        scan = nul_scan(raw_path)
        seen.add((scan.kind, scan.may_leave_null))
        got = _outcome(conn, raw_path, columns, fmt)
        clean = _written(tmp_path, "clean.csv", data.replace(b"\x00", b""))
        assert got == _outcome(conn, clean, columns, fmt), (case, data)
    assert {(NulBytes.IN_VALUES, True), (NulBytes.IN_VALUES, False)} <= seen, seen


VALUES = ["plain", "a,b", 'say "hi"', "line\nbreak", "crlf\r\nend", "bare\rcr", "Zoë 王伟 🚀",
          "null", "NULL", "", None, "1.5", "2025-01-02T03:04:05Z", "true", "  pad  "]  # fmt: skip


def _render(value, sep):
    if value is None:
        return "null"
    if sep in value or any(ch in value for ch in '"\r\n') or value == "":
        return '"' + value.replace('"', '""') + '"'
    return value


def test_random_nul_bytes_load_like_the_nul_free_file(tmp_path, conn):
    """NUL bytes dropped at random byte positions (structure included) of random files: the
    load gives the rows the NUL-free file gives, or fails where that one fails."""
    rng = random.Random(17)
    columns = columns_for([("id", "integer"), ("a", "string"), ("b", "string")], {})
    used = {kind: 0 for kind in NulBytes}
    for case in range(60):
        sep = rng.choice(",\t;")
        rows = [[str(i), *(_render(rng.choice(VALUES), sep) for _ in range(2))] for i in range(6)]
        text = "".join(sep.join(r) + rng.choice(["\n", "\r\n"]) for r in [["id", "a", "b"], *rows])
        data = bytearray(text.encode())
        for _ in range(rng.randint(1, 4)):
            data[rng.randint(0, len(data)) : 0] = b"\x00" * rng.randint(1, 2)
        fmt = {",": "CSV", "\t": "TSV", ";": "SSV"}[sep]
        raw = _written(tmp_path, "raw.csv", bytes(data))
        used[nul_scan(raw).kind] += 1
        got = _outcome(conn, raw, columns, fmt)
        clean = _written(tmp_path, "clean.csv", bytes(data).replace(b"\x00", b""))
        assert got == _outcome(conn, clean, columns, fmt), (case, bytes(data))
    assert used[NulBytes.IN_VALUES] > 25 and used[NulBytes.OUTSIDE_VALUES] > 5, used


def _outcome(conn, path, columns, fmt):
    """The rows loaded from `path`, or "fails" if the load fails."""
    conn.execute("DROP TABLE IF EXISTS m.t")
    try:
        load(conn, path, "m.t", columns, fmt)
    except LoadError:
        return "fails"
    return table_rows(conn, "m.t")


def _written(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    return path
