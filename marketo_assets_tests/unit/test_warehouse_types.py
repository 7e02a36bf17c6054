import pytest

from marketo_assets.warehouse import DUCKDB_TYPES, Column, columns_for, duckdb_type


@pytest.mark.parametrize(
    ("marketo", "duck"),
    [
        ("integer", "BIGINT"),
        ("score", "BIGINT"),
        ("float", "DECIMAL(38,18)"),
        ("currency", "DECIMAL(38,18)"),
        ("percent", "DECIMAL(38,18)"),
        ("boolean", "BOOLEAN"),
        ("date", "DATE"),
        ("datetime", "TIMESTAMPTZ"),
        ("Datetime", "TIMESTAMPTZ"),
    ],
)
def test_typed_marketo_types_map_to_duckdb_types(marketo, duck):
    assert duckdb_type(marketo) == duck
    assert DUCKDB_TYPES[marketo.lower()] == duck


@pytest.mark.parametrize(
    "marketo",
    [
        "string",
        "email",
        "phone",
        "text",
        "textarea",
        "url",
        "reference",
        "lead_function",
        "array",
        "formula",
        "somethingNew",
        "",
        None,
    ],
)
def test_text_and_unknown_types_are_varchar(marketo):
    assert duckdb_type(marketo) == "VARCHAR"


def test_columns_for_uses_header_overrides_and_keeps_order():
    cols = columns_for(
        [("id", "integer"), ("firstName", "string"), ("createdAt", "datetime")],
        {"firstName": "First Name", "unused": "x"},
    )
    assert cols == [
        Column(name="id", field="id", type="BIGINT"),
        Column(name="First Name", field="firstName", type="VARCHAR"),
        Column(name="createdAt", field="createdAt", type="TIMESTAMPTZ"),
    ]


def test_types_are_spelled_as_duckdb_does_in_one_query_and_a_bad_one_is_named():
    import duckdb

    from marketo_assets.warehouse.loader import canonical_type, canonical_types

    conn = duckdb.connect()
    wanted = ["TIMESTAMPTZ", "TEXT", "DECIMAL(18,3)", "BIGINT", "TEXT", "DATE"]
    got = canonical_types(conn, wanted)
    assert got == {t: canonical_type(conn, t) for t in wanted}
    assert got["TIMESTAMPTZ"] == "TIMESTAMP WITH TIME ZONE" and got["TEXT"] == "VARCHAR"
    with pytest.raises(ValueError, match="not a DuckDB type: 'NOTATYPE'"):
        canonical_types(conn, ["BIGINT", "NOTATYPE"])
    with pytest.raises(ValueError, match="not a column type"):
        canonical_types(conn, ["BIGINT", "INT; DROP TABLE x"])
