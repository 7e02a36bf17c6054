"""Bad input through real Dagster runs against the simulator: each fails with a message naming
the problem and the fix, before any export job is created (before any Marketo call at all for
pure configuration errors), and leaves what is already loaded exactly as it was. Odd but valid
input (header names with quotes, semicolons, spaces, unicode or SQL; odd list names) loads.
"""

from __future__ import annotations

import json

import dagster as dg
import duckdb
import pytest

from marketo_assets.defs.list_sensors import build_list_sensor
from marketo_assets.defs.resources import ExportOptions
from marketo_assets.settings import ListSelection
from marketo_assets.simulator.process import run_simulator
from marketo_assets_tests.support.assets import lead_export_files, leads
from marketo_assets_tests.support.dagster import (
    SIM_ARGS,
    created_at_window,
    failure_text,
    leads_and_ledger,
    materialize_leads,
    request_counts,
    resources_for,
    step_attempts,
)
from marketo_assets_tests.support.list_runs import catalog, execute, members, tick, truth

LOADED = "2025-01-01"  # loaded first; every bad run re-runs it
BAD_KEY = "2025-02-01"


@pytest.fixture(scope="module")
def sim():
    with run_simulator(**SIM_ARGS) as handle:
        yield handle


@pytest.fixture(scope="module")
def loaded(sim, tmp_path_factory):
    """A data dir with partition LOADED already in DuckDB."""
    return materialize_leads(sim, tmp_path_factory.mktemp("loaded"), LOADED)


CASES = {
    # id: (export options, marketo overrides, expected phrases, zero calls at all?)
    "unknown_field": (
        ExportOptions(fields=["id", "email", "noSuchField"]),
        {},
        ["Unknown Marketo lead fields: noSuchField", "describe"],
        False,
    ),
    "blank_field_name": (
        {"fields": ["id", " "]},
        {},
        ["field names must not be empty"],
        True,
    ),
    "header_key_not_in_fields": (
        ExportOptions(fields=["id", "email"], column_header_names={"company": "Firm"}),
        {},
        ["not in fields: company", "Add those fields"],
        False,
    ),
    "duplicate_headers": (
        {"column_header_names": {"email": "Contact", "company": "CONTACT"}},
        {},
        ["same header", "ignore case"],
        True,
    ),
    "header_repeats_a_field_name": (
        ExportOptions(fields=["id", "email", "createdAt"], column_header_names={"email": "ID"}),
        {},
        ["clashes with column 'id'", "another header"],
        False,
    ),
    "header_is_a_lineage_column": (
        {"column_header_names": {"email": "_Partition_Key"}},
        {},
        ["lineage column"],
        True,
    ),
    "unknown_format": ({"format": "XLSX"}, {}, ["use CSV, TSV or SSV"], True),
    "http_on_a_public_host": (
        None,
        {"base_url": "http://123-ABC-456.mktorest.com"},
        ["plain http for host '123-abc-456.mktorest.com'", "Use https://"],
        True,
    ),
    "empty_secret": (None, {"client_secret": ""}, ["MARKETO_CLIENT_SECRET", "is empty"], True),
    "missing_secret_variable": (
        None,
        {"client_secret": None},  # the variable is not set at all
        ["MARKETO_TEST_CLIENT_SECRET"],
        True,
    ),
    "wrong_credentials_401": (
        None,
        {"client_secret": "not-the-right-secret"},
        ["refused the client credentials", "HTTP 401", "Check client_id and client_secret"],
        False,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_fails_early_and_changes_nothing(sim, loaded, case, monkeypatch):
    """Re-running the loaded partition with bad input: the worst place to fail."""
    options, marketo, phrases, no_calls = CASES[case]
    # Connection settings come from environment variables at run time, as in definitions.py.
    env_marketo = {}
    for key, value in marketo.items():
        variable = f"MARKETO_TEST_{key.upper()}"
        if value is None:
            monkeypatch.delenv(variable, raising=False)
        else:
            monkeypatch.setenv(variable, value)
        env_marketo[key] = dg.EnvVar(variable)
    if isinstance(options, dict):
        # A pure config error: what the Launchpad (or the environment) hands the resource.
        run_config = {"resources": {"export_options": {"config": options}}}
        options = None
    else:
        run_config = None
    before, calls = leads_and_ledger(loaded), request_counts(sim)

    try:
        result = dg.materialize(
            [lead_export_files, leads],
            partition_key=LOADED,
            resources=resources_for(sim, loaded, options, **env_marketo),
            instance=dg.DagsterInstance.ephemeral(),
            run_config=run_config,
            raise_on_error=False,
        )
    except dg.DagsterInvalidConfigError as exc:  # refused before the run starts (Launchpad too)
        result, text = None, str(exc)
    else:
        assert not result.success
        text = failure_text(result)
    for phrase in phrases:
        assert phrase in text, f"{phrase!r} not in:\n{text[-2000:]}"
    assert "not-the-right-secret" not in text and sim.client_secret not in text
    after = request_counts(sim)
    assert after["create"] == calls["create"], "an export job was created"
    if no_calls:
        assert after == calls, "Marketo was called for a configuration error"
    if result is not None:
        assert step_attempts(result) <= 1  # no retries of an error a retry cannot fix
    assert leads_and_ledger(loaded) == before  # rows, lineage and ledger untouched


HEADERS = {
    "id": "Lead ID",
    "email": 'E-mail "primary"',
    "firstName": "First; Name",
    "company": "Société 名前 🚀",
    "createdAt": 'x"; DROP TABLE marketo.marketo.leads; --',
}


@pytest.mark.parametrize("fmt", ["CSV", "SSV"])
def test_odd_header_names_load_as_quoted_identifiers(sim, tmp_path, fmt):
    """Odd headers are read from the file; the table's columns stay the REST field names (a
    header never names a column, so it cannot split the table or break dbt)."""
    options = ExportOptions(
        fields=["id", "email", "firstName", "company", "createdAt"],
        column_header_names=HEADERS,
        format=fmt,
    )
    result = dg.materialize(
        [lead_export_files, leads],
        partition_key=BAD_KEY,
        resources=resources_for(sim, tmp_path, options),
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert all(checks.values()), checks  # incl. createdAt inside the window
    expected = sim.truth(created_at_window(BAD_KEY), ids=True)
    with duckdb.connect(str(tmp_path / "marketo.duckdb"), read_only=True) as conn:
        columns = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = 'leads' "
                "ORDER BY column_index"
            ).fetchall()
        ]
        ids = [r[0] for r in conn.execute("SELECT id FROM marketo.marketo.leads").fetchall()]
        emails = conn.execute(
            "SELECT count(*) FILTER (WHERE email LIKE '%@%'), min(createdAt) "
            "FROM marketo.marketo.leads"
        ).fetchone()
    assert columns[:5] == list(HEADERS)
    assert sorted(ids) == sorted(expected["ids"])
    assert emails[0] > 0
    assert str(emails[1]).startswith("2025-02-01")  # typed TIMESTAMPTZ, read via its odd header
    lead = sim.lead(min(ids))
    with duckdb.connect(str(tmp_path / "marketo.duckdb"), read_only=True) as conn:
        company = conn.execute(
            "SELECT company FROM marketo.marketo.leads WHERE id = ?", [min(ids)]
        ).fetchone()[0]
    assert company == lead["company"]  # values intact under a unicode/emoji header


def test_a_list_name_that_does_not_exist_is_reported_by_the_sensor(sim, tmp_path):
    calls = request_counts(sim)
    selection = ListSelection.parse('["No Such List", "id:99999", "Webinar 2031*"]')
    sensor = build_list_sensor("static", selection=selection)
    resources = resources_for(sim, tmp_path)
    with dg.instance_for_test() as instance:
        first = tick(sensor, instance, resources)  # logs the warning; requests the catalog
        assert not [r for r in first.run_requests if r.partition_key]
        result = tick(sensor, instance, resources, first.cursor)  # shown as the skip reason
        assert instance.get_dynamic_partitions("static_lists") == []
    assert not result.run_requests
    reason = str(result.skip_reason)
    for phrase in ("name 'No Such List'", "id 99999", "pattern 'Webinar 2031*'", "spelling"):
        assert phrase in reason, reason
    assert request_counts(sim)["create"] == calls["create"]
    assert not (tmp_path / "marketo.duckdb").exists()  # the sensor never opens DuckDB


def test_odd_list_names_that_exist_are_exported(sim, tmp_path):
    names = [
        'O\'Brien "VIP", EMEA; 1 OR 1=1; DROP TABLE lists; --',  # quotes, comma (JSON), SQL
        "🚀 Launch — ünïcødé 名単",
        "L" * 240 + " (long)",
    ]
    created = {}
    for n, name in enumerate(names):
        lst = sim.create_list("static", name)
        sim.set_list_members("static", lst["id"], add=[n + 1, n + 10, n + 20])
        created[lst["id"]] = name
    resources = resources_for(sim, tmp_path)
    sensor = build_list_sensor("static", selection=ListSelection.parse(json.dumps(names)))
    with dg.instance_for_test() as instance:
        result = tick(sensor, instance, resources)
        assert "none of the" not in str(result.skip_reason)
        for request in result.dynamic_partitions_requests:
            instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
        keys = sorted(r.partition_key for r in result.run_requests if r.partition_key)
        assert keys == sorted(f"static-{i}" for i in created)
        for request in result.run_requests:
            assert execute(request, instance, resources).success
    assert members(tmp_path, "static") == {i: truth(sim, "static", i) for i in created}
    stored = {list_id: name for kind, list_id, _, name in catalog(tmp_path) if kind == "static"}
    for list_id, name in created.items():
        assert stored[list_id] == name
