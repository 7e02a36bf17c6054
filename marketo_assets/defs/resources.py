"""Resources `marketo`, `export_options`, `warehouse`: defaults and checks from settings.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import fields
from datetime import timedelta
from typing import Annotated, Any, Literal

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, field_validator
from pydantic_core.core_schema import ValidationInfo, ValidatorFunctionWrapHandler

from marketo_assets import settings as s
from marketo_assets.extract import RESERVED_COLUMNS, ExportFailed, ExportLimits, Ledger, LedgerKind
from marketo_assets.extract.capabilities import FilterCapabilities, filter_answer
from marketo_assets.extract.local_paths import private_umask
from marketo_assets.extract.local_state import LocalState
from marketo_assets.extract.preflight import open_for_load
from marketo_assets.marketo import ClientSettings, Event, ExportFilter, MarketoClient
from marketo_assets.marketo import settings as ms
from marketo_assets.warehouse import DuckDBSession, WarehouseSession
from marketo_assets.warehouse.postgres import PostgresWarehouse


@contextmanager
def as_failure() -> Iterator[None]:
    """The engine's ExportFailed as the dg.Failure Dagster shows (and retries, or not)."""
    try:
        yield
    except ExportFailed as exc:
        raise dg.Failure(exc.message, metadata=exc.metadata, allow_retries=exc.retryable) from exc


def _resolved(check: Callable[[str], str]) -> BeforeValidator:
    """`check` a credential given as text; an EnvVar is checked once resolved (run start)."""
    return BeforeValidator(
        lambda v: v if isinstance(v, dg.EnvVar) or not isinstance(v, str) else check(v)
    )


class MarketoResource(dg.ConfigurableResource):
    """Connection to Marketo (or the simulator), and where exports are staged and recorded.
    Validated when a run starts, before any Marketo call; errors never echo a value."""

    model_config = ConfigDict(hide_input_in_errors=True)

    base_url: Annotated[str, _resolved(s.check_base_url)] = Field(
        description=s.CREDENTIALS["MARKETO_BASE_URL"]
    )
    client_id: Annotated[str, _resolved(s.check_client_id)] = Field(
        description=s.CREDENTIALS["MARKETO_CLIENT_ID"]
    )
    client_secret: Annotated[str, _resolved(s.check_client_secret)] = Field(
        description=s.CREDENTIALS["MARKETO_CLIENT_SECRET"]
    )
    poll_interval: ms.PollInterval = ms.POLL_INTERVAL
    job_timeout: ms.JobTimeout = ms.JOB_TIMEOUT
    max_calls_per_window: ms.CallsPerWindow = ms.MAX_CALLS_PER_WINDOW
    window_seconds: ms.WindowSeconds = ms.WINDOW_SECONDS
    max_concurrent: ms.MaxConcurrent = ms.MAX_CONCURRENT
    daily_quota_mb: s.DailyQuotaMb = s.DAILY_QUOTA_MB
    quota_budget_mb: s.QuotaBudgetMb = None
    max_job_attempts: s.MaxJobAttempts = s.MAX_JOB_ATTEMPTS
    retry_initial_wait: ms.RetryInitialWait = ms.RETRY_INITIAL_WAIT
    retry_max_wait: ms.RetryMaxWait = ms.RETRY_MAX_WAIT
    queue_full_backoff: Annotated[
        list[float], AfterValidator(lambda v: list(ms.check_backoff(tuple(v))))
    ] = Field(default_factory=lambda: list(ms.QUEUE_FULL_BACKOFF), description=s.QUEUE_FULL_HELP)
    claim_lease_seconds: s.ClaimLeaseSeconds = s.CLAIM_LEASE_SECONDS
    staging_dir: str = Field(description=s.help_of("staging_dir"))
    ledger_path: str = Field(description=s.help_of("ledger_path"))
    ledger_store: LedgerKind = Field(default="sqlite", description=s.help_of("ledger_store"))
    ledger_schema: str = Field(default="marketo_ledger", description=s.help_of("ledger_schema"))
    capabilities_path: str = Field(default="", description=s.CAPABILITIES_HELP)
    staging_max_age_hours: s.StagingMaxAgeHours = s.STAGING_MAX_AGE_HOURS

    @field_validator("*", mode="wrap")
    @classmethod
    def _check_bounds(
        cls, value: object, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> object:
        return s.explain_bounds(cls.model_fields, value, handler, info)

    @contextmanager
    def client(
        self, on_event: Callable[[Event], None] | None = None, **overrides: object
    ) -> Iterator[MarketoClient]:
        """A client for one run (`overrides`: some ClientSettings, see `tick_client`)."""
        settings = self.client_settings(**overrides)
        with MarketoClient.sharing_throttle(settings, on_event) as client:
            yield client

    def client_settings(self, **overrides: object) -> ClientSettings:
        """The client's settings from this resource's fields (`overrides` replace some)."""
        shared = ClientSettings.model_fields.keys() & type(self).model_fields.keys()
        return ClientSettings(**{name: getattr(self, name) for name in shared} | overrides)

    def tick_client(self) -> AbstractContextManager[MarketoClient]:
        """A client for a sensor or schedule tick, which must end within a minute."""
        return self.client(max_attempts=3, max_retry_seconds=20.0, request_timeout=20.0)

    def filter_enabled(
        self, probe: ExportFilter, recheck: timedelta | None, log: Any
    ) -> tuple[bool, str | None]:
        """Is the probe's filter enabled (`extract.capabilities.filter_answer`)?"""

        def ask() -> bool:
            with self.tick_client() as client:
                return client.supports_filter(probe)

        return filter_answer(self.capabilities(), probe, ask, recheck, log)

    def local(self) -> LocalState:
        return LocalState(**{f.name: getattr(self, f.name) for f in fields(LocalState)})

    def export_limits(self) -> ExportLimits:
        shared = {"daily_quota_mb", "max_job_attempts", "claim_lease_seconds"}
        return ExportLimits(budget_mb=self.budget_mb, **self.model_dump(include=shared))

    @property
    def budget_mb(self) -> float:
        """The daily budget (MB): quota_budget_mb, or 80% of daily_quota_mb."""
        return self.quota_budget_mb or self.daily_quota_mb * s.QUOTA_BUDGET_SHARE

    def ledger(self) -> Ledger:
        """The export ledger; a path that cannot work fails the step without retries."""
        with as_failure():
            return self.local().ledger()

    def capabilities(self) -> FilterCapabilities:
        return self.local().capabilities()


class WarehouseResource(DuckDBResource):
    """Where the loads write: the DuckDB file `database`, or with `warehouse="postgres"` the
    PostgreSQL database of the run process's PG* variables (no password in the run config)."""

    warehouse: Literal["duckdb", "postgres"] = Field(
        "duckdb", description="duckdb (the `database` file) or postgres (PG* variables)"
    )

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The DuckDB file opened for writing within seconds, or a Failure without retries
        naming the cause (not DuckDBResource's ~100 s of retries on a held lock)."""
        with as_failure():
            conn = open_for_load(self.database, duckdb_config(self))
        with conn:
            yield conn


def duckdb_config(resource: DuckDBResource) -> dict:
    return {"custom_user_agent": "dagster", **resource.connection_config}  # as get_connection


def warehouse_kind(resource: DuckDBResource) -> str:
    return resource.warehouse if isinstance(resource, WarehouseResource) else "duckdb"


@contextmanager
def warehouse_session(resource: DuckDBResource) -> Iterator[WarehouseSession]:
    """A warehouse session from the `warehouse` resource (a plain DuckDBResource is DuckDB)."""
    if warehouse_kind(resource) == "postgres":
        with PostgresWarehouse().session() as session:
            yield session
    else:
        # DuckDB creates the database, its .wal and temp files itself: private (lead data).
        with private_umask(), resource.get_connection() as conn:
            yield DuckDBSession(conn)


class ExportOptions(dg.ConfigurableResource):
    """What each export asks Marketo for, changeable per run in the Launchpad; checked when
    the run starts (names, headers, format), the fields against describe before any job."""

    fields: Annotated[list[str], AfterValidator(s.check_field_names)] = Field(
        default_factory=list, description=s.help_of("export_fields")
    )
    column_header_names: Annotated[
        dict[str, str], AfterValidator(lambda v: s.check_header_names(v, RESERVED_COLUMNS))
    ] = Field(default_factory=dict, description=s.help_of("column_header_names"))
    format: Annotated[str, AfterValidator(s.check_export_format)] = Field(
        default=s.EXPORT_FORMAT, description=s.help_of("export_format")
    )
    list_fields: Annotated[list[str], AfterValidator(s.check_field_names)] = Field(
        default_factory=lambda: list(s.LIST_FIELDS), description=s.help_of("list_fields")
    )


def build_resources(settings: s.ProjectSettings, lists: s.ListConfig) -> dict[str, object]:
    """From the settings; credentials are `EnvVar`s (the UI shows their names only)."""
    marketo: dict[str, Any] = s.marketo_config(settings)
    for name in s.CREDENTIALS:  # MARKETO_BASE_URL -> base_url
        marketo[name.removeprefix("MARKETO_").lower()] = dg.EnvVar(name)
    return {
        "marketo": MarketoResource(**marketo),
        "export_options": ExportOptions(**s.export_config(settings, lists.settings)),
        "warehouse": WarehouseResource(
            database=str(settings.duckdb_path), warehouse=settings.warehouse
        ),
    }
