"""Resources: the Marketo client (built per run, closed after), export options and the
warehouse (DuckDB or PostgreSQL), under the keys `marketo`, `export_options` and `warehouse`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import dagster as dg
import duckdb
import httpx
from dagster_duckdb import DuckDBResource
from pydantic import ConfigDict, Field, field_validator

from marketo_assets.extract import RESERVED_COLUMNS, ExportLedger, FilterCapabilities, private_dir
from marketo_assets.extract.local_paths import LocalPathError, private_umask
from marketo_assets.extract.staging import staging_root
from marketo_assets.marketo import ClientSettings, Event, MarketoClient
from marketo_assets.marketo.settings import instance_root, is_loopback_host
from marketo_assets.marketo.throttle import shared_throttle
from marketo_assets.settings import DATA_DIR, ListConfig, ProjectSettings, parse_header_names
from marketo_assets.warehouse import (
    DuckDBSession,
    WarehouseLockedError,
    WarehouseSession,
    WarehouseUnavailableError,
    check_writable,
    connect_for_write,
)
from marketo_assets.warehouse.postgres import PostgresWarehouse

FORMATS = ("CSV", "TSV", "SSV")


class SecretConfigError(Exception):
    """A credential has an unusable value. Not a ValueError on purpose: pydantic keeps the
    input value of a ValueError in `ValidationError.errors()`; this exception holds none."""


class MarketoResource(dg.ConfigurableResource):
    """Connection to Marketo (or the local simulator) plus where exports are staged and recorded.

    Validated when a run starts (before any step calls Marketo); errors never echo the values
    (`hide_input_in_errors`), so a secret can not end up in an error message."""

    model_config = ConfigDict(hide_input_in_errors=True)

    base_url: str = Field(
        description=(
            "Instance root, e.g. https://123-ABC-456.mktorest.com (the REST Endpoint .../rest "
            "or Identity .../identity shown in Admin > Web Services work too)"
        )
    )
    client_id: str = Field(description="LaunchPoint client id")
    client_secret: str = Field(description="LaunchPoint client secret (set through an env var)")
    poll_interval: float = Field(60.0, description="Seconds between job status polls (>= 60 real)")
    job_timeout: float = Field(10800.0, description="Cancel a Marketo job after this many seconds")
    max_calls_per_window: int = Field(80, description="Client-side cap per 20 s (Marketo: 100)")
    window_seconds: float = Field(20.0, description="Length of Marketo's rate-limit window (s)")
    max_concurrent: int = Field(5, description="Client-side cap on calls in flight (Marketo: 10)")
    daily_quota_mb: int = Field(500, description="Subscription's daily bulk export quota in MB")
    max_job_attempts: int = Field(3, description="Re-create a job Marketo marks Failed this often")
    retry_initial_wait: float = Field(
        1.0, description="First wait (s) before retrying a transient Marketo error; doubles"
    )
    retry_max_wait: float = Field(60.0, description="Longest wait (s) between two retries")
    queue_full_backoff: list[float] = Field(
        default_factory=lambda: [60.0, 120.0, 240.0],
        description="Waits (s) when Marketo's export queue is full (1029), then the step fails",
    )
    claim_lease_seconds: float = Field(
        3600.0,
        description=(
            "A partition claimed by a run between its export and load steps (or by a process "
            "on another host) is taken over by another run after this many seconds"
        ),
    )
    staging_dir: str = Field(
        description=(
            "Folder for downloaded export files: they go into its sub-folder marketo_assets/ "
            "(0700, the only place the project writes or deletes)"
        )
    )
    ledger_path: str = Field(description="SQLite file recording every export job created")
    capabilities_path: str = Field(
        "",
        description=(
            "JSON file remembering whether the updatedAt / smart-list filters are enabled "
            "(1035); empty = filter_capabilities.json next to the ledger"
        ),
    )
    staging_max_age_hours: float = Field(
        168.0,
        description=(
            "Staged files older than this are deleted at the start of each export and load "
            "step, unless their export is still active (default 7 days, Marketo's retention)"
        ),
    )

    @field_validator("base_url", mode="before")
    @classmethod
    def _check_base_url(cls, value: object) -> object:
        if not isinstance(value, str) or isinstance(value, dg.EnvVar):
            return value  # an EnvVar is checked once resolved, when the run starts
        text = value.strip()
        try:
            url = httpx.URL(text)
        except Exception:
            url = None
        if url is None or url.scheme not in ("http", "https") or not url.host:
            raise ValueError(
                "MARKETO_BASE_URL (base_url) is not an absolute http(s) URL: set it to your "
                "REST endpoint, e.g. https://123-ABC-456.mktorest.com (Admin > Web Services)"
            )
        if url.scheme != "https" and not is_loopback_host(url.host):
            raise ValueError(
                f"MARKETO_BASE_URL (base_url) uses plain http for host {url.host!r}: "
                "credentials and personal data would travel unencrypted. Use https:// "
                "(plain http is accepted only for loopback hosts such as 127.0.0.1)"
            )
        if url.query or url.fragment:
            raise ValueError(
                "MARKETO_BASE_URL (base_url) must not contain a query string or fragment"
            )
        try:
            return instance_root(url)
        except ValueError as exc:
            raise ValueError(f"MARKETO_BASE_URL (base_url) {exc}") from None

    @field_validator("client_id", mode="before")
    @classmethod
    def _check_client_id(cls, value: object) -> object:
        if not isinstance(value, str) or isinstance(value, dg.EnvVar):
            return value  # an EnvVar is checked once resolved, when the run starts
        if not value.strip() or value != value.strip():
            raise ValueError(
                "MARKETO_CLIENT_ID (client_id) is empty or has leading/trailing whitespace: "
                "set it to the Client Id of your LaunchPoint custom service"
            )
        return value

    @field_validator("client_secret", mode="before")
    @classmethod
    def _check_client_secret(cls, value: object) -> object:
        if not isinstance(value, str) or isinstance(value, dg.EnvVar):
            return value  # an EnvVar is checked once resolved, when the run starts
        if not value.strip():
            raise SecretConfigError(
                "MARKETO_CLIENT_SECRET (client_secret) is empty: set it to the Client Secret "
                "of your LaunchPoint custom service"
            )
        if value != value.strip():
            raise SecretConfigError(
                "MARKETO_CLIENT_SECRET (client_secret) has leading or trailing whitespace "
                "(a copy-paste error?): remove it"
            )
        return value

    @field_validator("staging_max_age_hours")
    @classmethod
    def _check_max_age(cls, value: float) -> float:
        if not value > 0:
            raise ValueError("staging_max_age_hours must be > 0 (MARKETO_STAGING_MAX_AGE_HOURS)")
        return value

    @contextmanager
    def client(
        self, on_event: Callable[[Event], None] | None = None, **overrides: object
    ) -> Iterator[MarketoClient]:
        """A client for one run (or one sensor tick: pass smaller retry budgets as
        `overrides` of ClientSettings, since a tick must finish within a minute)."""
        settings = self.client_settings(**overrides)
        # Runs and sensor ticks in one process share Marketo's 100 calls / 20 s.
        throttle = shared_throttle(
            settings.base_url,
            settings.max_calls_per_window,
            settings.window_seconds,
            settings.max_concurrent,
        )
        client = MarketoClient(settings, on_event=on_event, throttle=throttle)
        try:
            yield client
        finally:
            client.close()

    def client_settings(self, **overrides: object) -> ClientSettings:
        """The client's settings from this resource's fields (`overrides` replace some)."""
        return ClientSettings(
            base_url=self.base_url,
            client_id=self.client_id,
            client_secret=self.client_secret,
            poll_interval=self.poll_interval,
            job_timeout=self.job_timeout,
            max_calls_per_window=self.max_calls_per_window,
            window_seconds=self.window_seconds,
            max_concurrent=self.max_concurrent,
            **{
                "retry_initial_wait": self.retry_initial_wait,
                "retry_max_wait": self.retry_max_wait,
                "queue_full_backoff": tuple(self.queue_full_backoff),
                **overrides,
            },
        )

    def ledger(self) -> ExportLedger:
        """The export ledger; a path that cannot work fails the step at once, without retries."""
        with _local_path_failure():
            return ExportLedger(self.ledger_path, setting=LEDGER_SETTING)

    def capabilities(self) -> FilterCapabilities:
        path = self.capabilities_path or Path(self.ledger_path).with_name(
            "filter_capabilities.json"
        )
        return FilterCapabilities(path)

    def staging_root(self) -> Path:
        """The project's own folder inside staging_dir (see extract.staging); a path that
        cannot work fails the step at once, without retries."""
        with _local_path_failure():
            return staging_root(Path(self.staging_dir), STAGING_SETTING)

    def staging_path(self, *parts: str) -> Path:
        """A private staging folder (every level 0700): export files hold personal data."""
        return private_dir(self.staging_root(), *parts)


LEDGER_SETTING = "MARKETO_LEDGER_PATH (ledger_path)"
STAGING_SETTING = "MARKETO_STAGING_DIR (staging_dir)"


@contextmanager
def _local_path_failure() -> Iterator[None]:
    """A local path that cannot work is not transient: fail at once with its message."""
    try:
        yield
    except LocalPathError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc


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
            with private_umask(), self.get_connection() as conn:
                yield DuckDBSession(conn)

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The DuckDB file opened for writing within seconds, or a Failure without retries
        naming the cause (DuckDBResource's own retries a held lock for ~100 s, and the step's
        retries would only wait again for a program the user left open)."""
        try:
            conn = connect_for_write(self.database, _duckdb_config(self))
        except WarehouseUnavailableError as exc:
            raise _warehouse_failure(
                exc,
                "Nothing was loaded; the staged export is kept: once fixed, re-run the load "
                "step of this partition (no new export is needed).",
            ) from exc
        try:
            yield conn
        finally:
            conn.close()


@contextmanager
def warehouse_session(resource: DuckDBResource) -> Iterator[WarehouseSession]:
    """A warehouse session from the `warehouse` resource (a plain DuckDBResource is DuckDB)."""
    if isinstance(resource, WarehouseResource):
        with resource.session() as session:
            yield session
    else:
        # DuckDB creates the database, its .wal and temp files itself: private (lead data).
        with private_umask(), resource.get_connection() as conn:
            yield DuckDBSession(conn)


def _duckdb_config(resource: DuckDBResource) -> dict:
    return {"custom_user_agent": "dagster", **resource.connection_config}  # as get_connection


def check_warehouse(resource: DuckDBResource, marketo: MarketoResource, log) -> None:
    """The export step's check, before it creates a Marketo job: fail now, without retries,
    if the load could not write its rows (instead of after the export spent quota). A
    missing folder is created only for the default DUCKDB_PATH (the project's data/). A
    DuckDB file held by a step of another run (its claim in the ledger) is not an error."""
    try:
        if isinstance(resource, WarehouseResource) and resource.warehouse == "postgres":
            PostgresWarehouse().check()
            return
        database = resource.database
        if database == ":memory:" or database.startswith("md:"):
            return
        default = Path(database).parent.resolve() == DATA_DIR
        holder = check_writable(
            database,
            _duckdb_config(resource),
            create_folder=default,
            is_ours=lambda h: h.pid in marketo.ledger().working_pids(),
        )
    except WarehouseUnavailableError as exc:
        raise _warehouse_failure(exc, "No Marketo export job was created.") from exc
    if holder is not None:
        log.info(
            f"The DuckDB file is in use by another run's step ({holder.name}, PID "
            f"{holder.pid}): the load step takes its turn in the `duckdb` pool."
        )


def _warehouse_failure(exc: WarehouseUnavailableError, outcome: str) -> dg.Failure:
    metadata = {}
    if isinstance(exc, WarehouseLockedError):
        metadata = {"lock_holder_pid": exc.holder.pid, "lock_holder": exc.holder.name}
    return dg.Failure(description=f"{exc} {outcome}", metadata=metadata, allow_retries=False)


DEFAULT_LIST_FIELDS = ("id", "email", "firstName", "lastName", "company", "createdAt", "updatedAt")


class ExportOptions(dg.ConfigurableResource):
    """What each export asks Marketo for. Changeable per run in the Launchpad.

    Checked when the run starts, before any Marketo call: blank field names, header names that
    are empty, repeated (DuckDB column names ignore case) or take a lineage column's name,
    and unknown formats. Field names themselves are checked against describe before any
    export job is created."""

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

    @field_validator("fields", "list_fields")
    @classmethod
    def _check_fields(cls, value: list[str]) -> list[str]:
        blank = [i for i, name in enumerate(value) if not name or not name.strip()]
        if blank:
            raise ValueError(
                f"field names must not be empty (positions {blank}): give REST field names "
                "such as email, or an empty list for the default"
            )
        padded = [name for name in value if name != name.strip()]
        if padded:
            raise ValueError(f"field names must not have surrounding spaces: {padded}")
        return value

    @field_validator("column_header_names")
    @classmethod
    def _check_headers(cls, value: dict[str, str]) -> dict[str, str]:
        empty = [key for key, name in value.items() if not key.strip() or not name.strip()]
        if empty:
            raise ValueError(
                f"column_header_names has empty field or header names for {empty}: map each "
                'REST field name to a non-empty header, e.g. {"email": "Email Address"}'
            )
        seen: dict[str, str] = {}
        for key, name in value.items():
            folded = name.casefold()
            if folded in seen:
                raise ValueError(
                    f"column_header_names gives {seen[folded]!r} and {key!r} the same header "
                    f"{name!r} (DuckDB column names ignore case): give each field its own header"
                )
            seen[folded] = key
            if folded in RESERVED_COLUMNS:
                raise ValueError(
                    f"column_header_names: header {name!r} for {key!r} is a lineage column "
                    f"name ({', '.join(RESERVED_COLUMNS)}): choose another header"
                )
        return value

    @field_validator("format")
    @classmethod
    def _check_format(cls, value: str) -> str:
        upper = value.strip().upper()
        if upper not in FORMATS:
            raise ValueError(
                f"format {value!r} is not an export format Marketo supports: use CSV, TSV or SSV"
            )
        return upper


def _env_fields(raw: str) -> list[str]:
    return [name.strip() for name in raw.split(",") if name.strip()]


def _env_headers(raw: str) -> dict[str, str]:
    try:
        return parse_header_names(raw)  # already checked by load_settings
    except ValueError as exc:
        raise ValueError(f"MARKETO_COLUMN_HEADER_NAMES: {exc}") from None


def build_resources(settings: ProjectSettings, lists: ListConfig) -> dict[str, object]:
    """The resources of the definitions, from the settings; credentials stay `EnvVar`s."""
    return {
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
            staging_max_age_hours=settings.staging_max_age_hours,
        ),
        "export_options": ExportOptions(
            fields=_env_fields(settings.export_fields),
            column_header_names=_env_headers(settings.column_header_names),
            format=settings.export_format,
            list_fields=_env_fields(lists.settings.list_fields) or list(DEFAULT_LIST_FIELDS),
        ),
        "warehouse": WarehouseResource(
            database=str(settings.duckdb_path), warehouse=settings.warehouse
        ),
    }
