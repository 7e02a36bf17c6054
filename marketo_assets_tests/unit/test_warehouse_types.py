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
