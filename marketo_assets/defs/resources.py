"""Resources: the Marketo client (built per run, closed after), export options and DuckDB.

This module holds only resources: a `@dg.definitions` here hides any other definition in the
same module from the `defs/` loader.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from marketo_assets.marketo import ClientSettings, Event, MarketoClient
from marketo_assets.marketo.capabilities import FilterCapabilities
from marketo_assets.marketo.ledger import ExportLedger
from marketo_assets.settings import load_settings
from marketo_assets.warehouse import DuckDBSession, WarehouseSession
from marketo_assets.warehouse.postgres import PostgresWarehouse


class MarketoResource(dg.ConfigurableResource):
    """Connection to Marketo (or the local simulator) plus where exports are staged and recorded."""

    base_url: str = Field(description="REST base URL, e.g. https://123-ABC-456.mktorest.com")
    client_id: str = Field(description="LaunchPoint client id")
    client_secret: str = Field(description="LaunchPoint client secret (set through an env var)")
    poll_interval: float = Field(60.0, description="Seconds between job status polls (>= 60 real)")
    job_timeout: float = Field(10800.0, description="Cancel a Marketo job after this many seconds")
    max_calls_per_window: int = Field(80, description="Client-side cap per 20 s (Marketo: 100)")
    max_concurrent: int = Field(5, description="Client-side cap on calls in flight (Marketo: 10)")
    daily_quota_mb: int = Field(500, description="Subscription's daily bulk export quota in MB")
    max_job_attempts: int = Field(3, description="Re-create a job Marketo marks Failed this often")
    staging_dir: str = Field(description="Private folder for downloaded export files")
    ledger_path: str = Field(description="SQLite file recording every export job created")
    capabilities_path: str = Field(
        "",
        description=(
            "JSON file remembering whether the updatedAt / smart-list filters are enabled "
            "(1035); empty = filter_capabilities.json next to the ledger"
        ),
    )

    @contextmanager
    def client(
        self, on_event: Callable[[Event], None] | None = None, **overrides: object
    ) -> Iterator[MarketoClient]:
        """A client for one run (or one sensor tick: pass smaller retry budgets as
        `overrides` of ClientSettings, since a tick must finish within a minute)."""
        settings = ClientSettings(
            base_url=self.base_url,
            client_id=self.client_id,
            client_secret=self.client_secret,
            poll_interval=self.poll_interval,
            job_timeout=self.job_timeout,
            max_calls_per_window=self.max_calls_per_window,
            max_concurrent=self.max_concurrent,
            **overrides,
        )
        client = MarketoClient(settings, on_event=on_event)
        try:
            yield client
        finally:
            client.close()

    def ledger(self) -> ExportLedger:
        return ExportLedger(self.ledger_path)

    def capabilities(self) -> FilterCapabilities:
        path = self.capabilities_path or Path(self.ledger_path).with_name(
            "filter_capabilities.json"
        )
        return FilterCapabilities(path)

    def staging_path(self, *parts: str) -> Path:
        """A private staging folder (root is 0700): export files hold personal data."""
        root = Path(self.staging_dir)
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o700)
        path = root.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path


class WarehouseResource(DuckDBResource):
    """Where the load steps write the raw tables: the DuckDB file `database` (default), or with
    `warehouse="postgres"` a PostgreSQL database reached through the standard libpq variables
    (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE) of the run process, so no connection
    string or password is ever part of the run config shown in the UI."""

    warehouse: Literal["duckdb", "postgres"] = Field(
        "duckdb", description="duckdb (the `database` file) or postgres (PG* variables)"
    )

    @contextmanager
    def session(self) -> Iterator[WarehouseSession]:
        if self.warehouse == "postgres":
            with PostgresWarehouse().session() as session:
                yield session
        else:
            with self.get_connection() as conn:
                yield DuckDBSession(conn)


@contextmanager
def warehouse_session(resource: DuckDBResource) -> Iterator[WarehouseSession]:
    """A warehouse session from the `duckdb` resource (a plain DuckDBResource is DuckDB)."""
    if isinstance(resource, WarehouseResource):
        with resource.session() as session:
            yield session
    else:
        with resource.get_connection() as conn:
            yield DuckDBSession(conn)


DEFAULT_LIST_FIELDS = ("id", "email", "firstName", "lastName", "company", "createdAt", "updatedAt")


class ExportOptions(dg.ConfigurableResource):
    """What each export asks Marketo for. Changeable per run in the Launchpad."""

    fields: list[str] = Field(
        default_factory=list,
        description="Lead REST field names; empty = every exportable field from describe",
    )
    column_header_names: dict[str, str] = Field(
        default_factory=dict, description="Rename file headers: {restName: header}"
    )
    format: str = Field("CSV", description="CSV, TSV or SSV")
    list_fields: list[str] = Field(
        default_factory=lambda: list(DEFAULT_LIST_FIELDS),
        description="Lead REST field names exported for list members (static and smart lists)",
    )


def _env_fields(raw: str) -> list[str]:
    return [name.strip() for name in raw.split(",") if name.strip()]


def _env_headers(raw: str) -> dict[str, str]:
    if not raw.strip():
        return {}
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("MARKETO_COLUMN_HEADER_NAMES must be a JSON object {restName: header}")
    return {str(k): str(v) for k, v in value.items()}


@dg.definitions
def resources() -> dg.Definitions:
    settings = load_settings()
    return dg.Definitions(
        resources={
            "marketo": MarketoResource(
                base_url=dg.EnvVar("MARKETO_BASE_URL"),
                client_id=dg.EnvVar("MARKETO_CLIENT_ID"),
                client_secret=dg.EnvVar("MARKETO_CLIENT_SECRET"),
                poll_interval=settings.poll_interval,
                job_timeout=settings.job_timeout,
                max_calls_per_window=settings.max_calls_per_window,
                max_concurrent=settings.max_concurrent,
                daily_quota_mb=settings.daily_quota_mb,
                staging_dir=str(settings.staging_dir),
                ledger_path=str(settings.ledger_path),
            ),
            "export_options": ExportOptions(
                fields=_env_fields(settings.export_fields),
                column_header_names=_env_headers(settings.column_header_names),
                format=settings.export_format,
                list_fields=_env_fields(settings.list_fields) or list(DEFAULT_LIST_FIELDS),
            ),
            "duckdb": WarehouseResource(
                database=str(settings.duckdb_path), warehouse=settings.warehouse
            ),
        }
    )
