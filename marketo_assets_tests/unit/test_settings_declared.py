"""Each setting is declared once: the environment, the Dagster resources, the client and the
configuration tables of the docs all agree with that declaration (default, bounds)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pydantic
import pytest

from marketo_assets.defs.resources import ExportOptions, MarketoResource, build_resources
from marketo_assets.marketo import ClientSettings
from marketo_assets.settings import (
    CREDENTIALS,
    PROJECT_ROOT,
    ListSettings,
    ProjectSettings,
    SettingsError,
    declared,
    load_list_settings,
    load_settings,
)
from marketo_assets_tests.support.client_fakes import SECRET

RESOURCE = {
    "base_url": "https://123-ABC-456.mktorest.com",
    "client_id": "client-id",
    "client_secret": SECRET,
    "staging_dir": "/tmp/x",
    "ledger_path": "/tmp/x.sqlite",
}


# ------------------------------------------------------------------ one declaration
def _same_declaration(model: type[pydantic.BaseModel], name: str, source: type) -> None:
    mine, theirs = model.model_fields[name], source.model_fields[name]
    assert mine.get_default(call_default_factory=True) == theirs.get_default(
        call_default_factory=True
    ), name
    assert mine.metadata == theirs.metadata, name  # the bounds
    assert mine.description == theirs.description, name


@pytest.mark.parametrize(
    "name",
    ["poll_interval", "job_timeout", "max_calls_per_window", "max_concurrent", "window_seconds",
     "retry_initial_wait", "retry_max_wait"],
)  # fmt: skip
def test_the_resource_takes_the_client_knobs_from_the_client_declaration(name):
    _same_declaration(MarketoResource, name, ClientSettings)
    if name in ProjectSettings.model_fields:
        _same_declaration(ProjectSettings, name, ClientSettings)


def test_the_resource_takes_the_queue_full_waits_from_the_client():
    resource = MarketoResource(**RESOURCE)
    assert tuple(resource.queue_full_backoff) == ClientSettings.model_fields[
        "queue_full_backoff"
    ].get_default(call_default_factory=True)
    assert resource.client_settings().queue_full_backoff == (60.0, 120.0, 240.0)


@pytest.mark.parametrize("name", ["daily_quota_mb", "quota_budget_mb", "staging_max_age_hours"])
def test_the_resource_takes_project_settings_from_their_declaration(name):
    _same_declaration(MarketoResource, name, ProjectSettings)


def test_export_options_defaults_are_the_settings_defaults():
    options, settings, lists = ExportOptions(), ProjectSettings(), ListSettings()
    assert options.format == settings.export_format
    assert options.fields == [] and settings.export_fields == ""
    assert ",".join(options.list_fields) == lists.list_fields


def test_the_code_location_resources_follow_the_environment(monkeypatch):
    monkeypatch.setenv("MARKETO_POLL_INTERVAL", "0.5")
    monkeypatch.setenv("MARKETO_MAX_CALLS_PER_20S", "100")
    monkeypatch.setenv("MARKETO_LIST_FIELDS", "id,email")
    monkeypatch.setenv("MARKETO_FORMAT", "tsv")
    resources = build_resources(load_settings(), load_list_settings())
    marketo, options = resources["marketo"], resources["export_options"]
    assert isinstance(marketo, MarketoResource) and isinstance(options, ExportOptions)
    assert marketo.poll_interval == 0.5 and marketo.max_calls_per_window == 100
    assert options.list_fields == ["id", "email"] and options.format == "TSV"


# ------------------------------------------------------------------ the same bounds everywhere
@pytest.mark.parametrize(
    ("variable", "name", "bad", "bounds"),
    [
        ("MARKETO_MAX_CALLS_PER_20S", "max_calls_per_window", 101, "between 1 and 100"),
        ("MARKETO_MAX_CALLS_PER_20S", "max_calls_per_window", 0, "between 1 and 100"),
        ("MARKETO_MAX_CONCURRENT", "max_concurrent", 11, "between 1 and 10"),
        ("MARKETO_POLL_INTERVAL", "poll_interval", 0, "> 0"),
        ("MARKETO_JOB_TIMEOUT", "job_timeout", -1, "> 0"),
        ("MARKETO_DAILY_QUOTA_MB", "daily_quota_mb", 0, ">= 1"),
        ("MARKETO_QUOTA_BUDGET_MB", "quota_budget_mb", 0, "> 0"),
    ],
)
def test_a_value_out_of_bounds_is_refused_by_env_resource_and_client(
    monkeypatch, variable, name, bad, bounds
):
    monkeypatch.setenv(variable, str(bad))
    with pytest.raises(SettingsError, match=variable):
        load_settings()
    with pytest.raises(pydantic.ValidationError) as info:
        MarketoResource(**RESOURCE, **{name: bad})
    assert f"{name} must be {bounds} ({variable})" in str(info.value)
    if name in ClientSettings.model_fields:
        with pytest.raises(pydantic.ValidationError, match=name):
            ClientSettings(base_url=RESOURCE["base_url"], client_id="c", client_secret="s",
                           **{name: bad})  # fmt: skip


def test_the_limits_themselves_are_accepted(monkeypatch):
    monkeypatch.setenv("MARKETO_MAX_CALLS_PER_20S", "100")
    monkeypatch.setenv("MARKETO_MAX_CONCURRENT", "10")
    settings = load_settings()
    assert (settings.max_calls_per_window, settings.max_concurrent) == (100, 10)
    resource = MarketoResource(**RESOURCE, max_calls_per_window=100, max_concurrent=10)
    client = resource.client_settings()
    assert (client.max_calls_per_window, client.max_concurrent) == (100, 10)


# ------------------------------------------------------------------ the docs' tables
README = PROJECT_ROOT / "README.md"


def _configuration_doc() -> Path:
    """The full tables move to docs/CONFIGURATION.md; until then they are in the README."""
    moved = PROJECT_ROOT / "docs" / "CONFIGURATION.md"
    return moved if moved.exists() else README


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _documented(doc: Path | None = None) -> dict[str, str]:
    """Variable -> default cell, from every `| Variable | Default | Meaning |` table of `doc`
    (default: the configuration doc); a row may name several variables (`A` / `B`) with one
    default each or one for all."""
    found: dict[str, str] = {}
    in_table = False
    for line in (doc or _configuration_doc()).read_text().splitlines():
        if not line.startswith("|"):
            in_table = False
            continue
        cells = _cells(line)
        if [c.lower() for c in cells[:2]] == ["variable", "default"]:
            in_table = True
            continue
        if not in_table or set(cells[0]) <= set("-: "):
            continue
        names = re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0])
        defaults = [d.strip() for d in cells[1].split(" / ")] if len(names) > 1 else [cells[1]]
        if len(defaults) == 1:
            defaults *= len(names)
        assert len(defaults) == len(names), f"one default per variable: {line}"
        for name, default in zip(names, defaults, strict=True):
            assert name not in found, f"{name} is documented twice"
            found[name] = default
    return found


def _shown(value: object) -> str | None:
    """A declared default as the docs show it (None: no value, see `_documents_nothing`)."""
    if value is None or value == "":
        return None
    if isinstance(value, Path):
        return str(value.relative_to(PROJECT_ROOT))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _documents_nothing(cell: str) -> bool:
    """An empty default is shown as a note in italics, `{}` (an empty JSON map), or the
    variable whose value it falls back to."""
    inner = cell.strip("`")
    return (cell.startswith("*") and cell.endswith("*")) or inner == "{}" or inner in declared()


def test_the_configuration_tables_show_every_setting_with_its_default():
    documented = _documented()
    missing = sorted(set(declared()) - set(documented))
    assert not missing, f"declared but not in {_configuration_doc().name}: {missing}"
    for doc in {_configuration_doc(), README}:  # the README's essential settings too
        for variable, cell in _documented(doc).items():
            if variable not in declared():
                continue  # see the next test
            shown = _shown(declared()[variable].default)
            if shown is None:
                assert _documents_nothing(cell), f"{doc.name}: {variable}: {cell}, declared empty"
            else:
                assert cell == f"`{shown}`", f"{doc.name}: {variable} is {cell}, declared `{shown}`"


def test_every_variable_in_the_configuration_tables_is_declared():
    for doc in {_configuration_doc(), README}:
        unknown = sorted(set(_documented(doc)) - set(declared()) - set(CREDENTIALS))
        assert not unknown, f"in {doc.name} but not declared (settings.py): {unknown}"


def test_the_table_parser_reads_the_tables():
    """Guard for the two tests above: the tables are found, combined rows split."""
    documented = _documented()
    assert documented["MARKETO_MAX_CALLS_PER_20S"] == "`80`"
    assert documented["MARKETO_SMART_LIST_REFRESH_HOURS"] == "`24`"
    assert len(documented) >= len(declared())
