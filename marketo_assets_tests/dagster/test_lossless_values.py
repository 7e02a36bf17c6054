"""Every value arrives as the simulator holds it, in CSV, TSV and both SSV spellings: a real
Dagster run exports over loopback HTTP and loads a DuckDB file; each loaded value is compared
with the simulator's record. The only differences allowed are the ones docs/DATA-TYPES.md lists:
NUL bytes are removed, and an empty value or the text `null` is SQL NULL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from marketo_assets.defs.resources import ExportOptions
from marketo_assets.simulator.data import FIELDS
from marketo_assets.simulator.process import run_simulator
from marketo_assets_tests.support.assets import lead_export_files, leads
from marketo_assets_tests.support.dagster import SIM_ARGS, marketo_resource

PARTITION = "2025-02-01"
WINDOW = {"createdAt": {"startAt": "2025-02-01T00:00:00Z", "endAt": "2025-02-28T23:59:59Z"}}
LONG = ('Grüße, 名前; "q"\t🎉\r\n' * 5000)[:70_000]  # > 64 KB of characters, ~120 KB UTF-8
NASTY = [
    "a\rb",
    "a\nb",
    "a\r\nb\r\n",
    'say "hi" and ""',
    '"',
    "a,b",
    "a;b",
    "a b",
    "a\tb\t",
    "名前 東京 서울",
    "👩‍💻🎉🚀",
    "مرحبا שלום",
    "\u202eabc\u202c \u200f x \u2066y\u2069 \u200b",
    "  padded  ",
    "   ",
    "\ufeffbom",
    "back\\slash",
    "line\u2028sep",
    "NULL",
    "None",
    "nul\x00in\x00middle",
    "null",
    LONG,
]
NUMBERS = {
    "annualRevenue": "12345678901234.5678",  # currency, 18 significant digits
    "contractValue__c": "-98765432109876.5432",  # currency
    "urgency": "0.123456789012345678",  # float
    "probability": "99.999999999999999999",  # percent
    "churnRisk__c": "1.5E+10",  # percent, with an exponent
}
STRING_FIELDS = ("firstName", "title", "company", "city", "cookies", "address", "notes__c")
TYPES = {f.name: f.data_type for f in FIELDS}


def expected(field: str, text: str | None):
    """The value the table must hold for the simulator's text of a field."""
    if text is None or text == "null":
        return None  # Marketo writes an empty value as `null`: the text "null" looks the same
    kind = TYPES[field]
    if kind in ("integer", "score"):
        return int(text)
    if kind in ("currency", "float", "percent"):
        return Decimal(text)
    if kind == "boolean":
        return text == "true"
    if kind == "date":
        return dt.date.fromisoformat(text)
    if kind == "datetime":
        return dt.datetime.fromisoformat(text)
    return text.replace("\x00", "")  # NUL bytes are removed


@pytest.fixture(scope="module")
def nasty_sim():
    """One simulator for the module; its February leads carry the values above."""
    with run_simulator(**SIM_ARGS) as sim:
        ids = sorted(sim.truth(WINDOW, ids=True)["ids"])
        for n, value in enumerate(NASTY):
            sim.update_lead(ids[n], {f: value for f in STRING_FIELDS})
        sim.update_lead(ids[len(NASTY)], NUMBERS)
        truth = {i: sim.lead(i) for i in ids}
        yield sim, truth, ids


@pytest.mark.parametrize(
    ("fmt", "separator"), [("CSV", None), ("TSV", None), ("SSV", ";"), ("SSV", " ")]
)
def test_every_value_loads_as_the_simulator_holds_it(nasty_sim, tmp_path, fmt, separator):
    sim, truth, ids = nasty_sim
    if separator is not None:
        sim.configure(ssv_separator=separator)
    db = tmp_path / "marketo.duckdb"
    result = dg.materialize(
        [lead_export_files, leads],
        partition_key=PARTITION,
        resources={
            "marketo": marketo_resource(sim, tmp_path),
            "export_options": ExportOptions(format=fmt),
            "warehouse": DuckDBResource(database=str(db)),
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success

    with duckdb.connect(str(db), read_only=True) as conn:
        cur = conn.execute("SELECT * FROM marketo.marketo.leads")
        names = [d[0] for d in cur.description]
        table = {
            row[names.index("id")]: dict(zip(names, row, strict=True)) for row in cur.fetchall()
        }
    assert sorted(table) == sorted(truth)
    fields = [f for f in names if not f.startswith("_")]
    assert len(fields) == len(truth[next(iter(truth))])  # every exported field was compared
    wrong = [
        (lead_id, f, truth[lead_id][f], table[lead_id][f])
        for lead_id in truth
        for f in fields
        if table[lead_id][f] != expected(f, truth[lead_id][f])
    ]
    assert wrong == []

    # The injected values themselves (not just "equal after the documented changes"):
    loaded = dict(zip(NASTY, (table[i]["notes__c"] for i in ids), strict=False))
    lossy = {"nul\x00in\x00middle": "nulinmiddle", "null": None}
    assert loaded == {v: lossy.get(v, v) for v in NASTY}
    assert len(LONG.encode()) > 64 * 1024
    numbers = table[ids[len(NASTY)]]
    assert {f: numbers[f] for f in NUMBERS} == {f: Decimal(v) for f, v in NUMBERS.items()}
    assert str(numbers["annualRevenue"].normalize()) == "12345678901234.5678"


def test_dbt_staging_keeps_every_digit(tmp_path, monkeypatch, dbt_manifest):
    """The staging model types currency/float/percent like the raw table: no rounding in dbt."""
    from marketo_assets.defs.dbt import dbt_resource
    from marketo_assets_tests.support.assets import dbt_models

    marketo_dbt_models = dbt_models()

    db = tmp_path / "marketo.duckdb"  # the file name the manifest was parsed with
    monkeypatch.setenv("DUCKDB_PATH", str(db))
    with run_simulator(**SIM_ARGS) as sim:
        lead_id = sim.truth(WINDOW, ids=True)["ids"][0]
        sim.update_lead(lead_id, NUMBERS)
        resources = {
            "marketo": marketo_resource(sim, tmp_path),
            "export_options": ExportOptions(),
            "warehouse": DuckDBResource(database=str(db)),
        }
        instance = dg.DagsterInstance.ephemeral()
        raw = dg.materialize(
            [lead_export_files, leads], partition_key=PARTITION, resources=resources,
            instance=instance,
        )  # fmt: skip
        assert raw.success
    built = dg.materialize(
        [marketo_dbt_models],
        selection=[dg.AssetKey(["staging", "stg_marketo__leads"])],
        resources={"dbt": dbt_resource()},
        instance=instance,
    )
    assert built.success
    columns = {
        "annualRevenue": "annual_revenue",
        "contractValue__c": "contract_value",
        "urgency": "urgency",
        "probability": "probability",
        "churnRisk__c": "churn_risk",
    }
    with duckdb.connect(str(db), read_only=True) as conn:
        got = conn.execute(
            f"SELECT {', '.join(columns.values())} FROM staging.stg_marketo__leads "
            "WHERE lead_id = ?",
            [lead_id],
        ).fetchone()
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM duckdb_columns() "
                "WHERE table_name = 'stg_marketo__leads'"
            ).fetchall()
        )
    assert dict(zip(columns, got, strict=True)) == {f: Decimal(v) for f, v in NUMBERS.items()}
    assert {types[c] for c in columns.values()} == {"DECIMAL(38,18)"}
