"""The private Dagster and dagster-dbt hooks this project still relies on (no public API does
the same): each test fails loudly when an upgrade renames one or stops calling it."""

import functools
import inspect
from datetime import UTC, datetime
from importlib.metadata import version as installed_version

from dagster_dbt import DbtCliResource
from dagster_dbt.core import resource as dbt_core_resource
from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation
from packaging import version

from marketo_assets.defs import dbt as dbt_resources
from marketo_assets.defs.dbt import DuckDBDbtCliResource, dbt_resource


def test_dbt_hooks_exist_on_the_parent_with_the_expected_shape():
    assert isinstance(
        inspect.getattr_static(DbtCliResource, "_cli_version"), functools.cached_property
    )
    assert list(inspect.signature(DbtCliResource._initialize_dbt_core_adapter).parameters) == [
        "self",
        "args",
    ]


def test_dbt_cli_uses_both_overrides(monkeypatch):
    """`DbtCliResource.cli` reads `_cli_version` (ours: the installed dbt-core, no
    `dbt --version` subprocess) and builds its adapter with `_initialize_dbt_core_adapter` (ours:
    none). If a release stops calling either, the start-up cost they remove comes back."""
    calls: dict[str, list] = {"version": [], "adapter": []}
    real_version = dbt_resources.installed_version

    def counted_version(name: str) -> str:
        calls["version"].append(name)
        return real_version(name)

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"dbt --version run in a subprocess: {args}")

    def adapter_hook(self, args):
        calls["adapter"].append(list(args))

    captured: dict = {}

    def fake_run(*args, **kwargs):
        captured.update(kwargs)
        return "invocation"

    monkeypatch.setattr(dbt_resources, "installed_version", counted_version)
    monkeypatch.setattr(dbt_core_resource, "check_output", no_subprocess)
    monkeypatch.setattr(DuckDBDbtCliResource, "_initialize_dbt_core_adapter", adapter_hook)
    monkeypatch.setattr(DbtCliInvocation, "run", fake_run)

    resource = dbt_resource()
    assert resource.cli(["build"]) == "invocation"
    assert calls["version"] == ["dbt-core"]
    assert captured["cli_version"] == version.parse(installed_version("dbt-core"))
    assert calls["adapter"] == [["build"]]
    assert captured["adapter"] is None


def test_private_dagster_api_used_by_local_still_has_this_shape():
    """`make demo` / `make dev` (local/) submit backfills and read sensor ticks with these:
    Dagster has no public equivalent."""
    from dagster._core.execution.backfill import (
        BulkActionsFilter,
        BulkActionStatus,
        PartitionBackfill,
    )
    from dagster._core.scheduler.instigation import InstigatorStatus, InstigatorType, TickStatus

    params = inspect.signature(PartitionBackfill.from_asset_partitions).parameters
    used = {
        "backfill_id",
        "asset_graph",
        "partition_names",
        "asset_selection",
        "backfill_timestamp",
        "tags",
        "dynamic_partitions_store",
        "all_partitions",
        "title",
        "description",
        "run_config",
    }
    assert used <= set(params), sorted(used - set(params))
    for status in ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"):
        assert hasattr(BulkActionStatus, status)
    assert BulkActionsFilter(created_after=datetime.now(UTC)).created_after is not None
    assert hasattr(InstigatorType, "SENSOR")
    assert hasattr(InstigatorStatus, "RUNNING")
    for status in ("SUCCESS", "SKIPPED", "FAILURE"):
        assert hasattr(TickStatus, status)
