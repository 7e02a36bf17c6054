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
from pydantic import (
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
)

from marketo_assets.extract import (
    RESERVED_COLUMNS,
    FilterCapabilities,
    Ledger,
    LedgerKind,
    open_ledger,
    private_dir,
)
from marketo_assets.extract.local_paths import LocalPathError, private_umask
from marketo_assets.extract.staging import staging_root
from marketo_assets.marketo import ClientSettings, Event, MarketoClient
from marketo_assets.marketo.settings import (
    JOB_TIMEOUT,
    MAX_CALLS_PER_WINDOW,
    MAX_CONCURRENT,
    POLL_INTERVAL,
    QUEUE_FULL_BACKOFF,
    RETRY_INITIAL_WAIT,
    RETRY_MAX_WAIT,
    WINDOW_SECONDS,
    CallsPerWindow,
    JobTimeout,
    MaxConcurrent,
    PollInterval,
    RetryInitialWait,
    RetryMaxWait,
    WindowSeconds,
    check_backoff,
    instance_root,
    is_loopback_host,
)
from marketo_assets.marketo.throttle import shared_throttle
from marketo_assets.settings import (
    CREDENTIALS,
    DAILY_QUOTA_MB,
    DATA_DIR,
    EXPORT_FORMAT,
    FORMATS,
    LIST_FIELDS,
    QUOTA_BUDGET_SHARE,
    STAGING_MAX_AGE_HOURS,
    DailyQuotaMb,
    ListConfig,
    ListSettings,
    ProjectSettings,
    QuotaBudgetMb,
    StagingMaxAgeHours,
    bounds_text,
    field_list,
    format_name,
    parse_header_names,
    variable_of,
)
from marketo_assets.warehouse import (
    DuckDBSession,
    WarehouseLockedError,
    WarehouseSession,
    WarehouseUnavailableError,
    check_writable,
    connect_for_write,
)
from marketo_assets.warehouse.postgres import PostgresWarehouse


def _help(name: str) -> str:
    """The help text of the project setting `name`."""
    return str(ProjectSettings.model_fields[name].description)


class SecretConfigError(Exception):
    """A credential has an unusable value. Not a ValueError on purpose: pydantic keeps the
    input value of a ValueError in `ValidationError.errors()`; this exception holds none."""


class MarketoResource(dg.ConfigurableResource):
    """Connection to Marketo (or the local simulator) plus where exports are staged and recorded.

    Validated when a run starts (before any step calls Marketo); errors never echo the values
    (`hide_input_in_errors`), so a secret can not end up in an error message."""

    model_config = ConfigDict(hide_input_in_errors=True)

    # Defaults, bounds and help come from the settings' declarations (settings.py and
    # marketo/settings.py); `from_settings` fills them from the environment at load.
    base_url: str = Field(description=CREDENTIALS["MARKETO_BASE_URL"])
    client_id: str = Field(description=CREDENTIALS["MARKETO_CLIENT_ID"])
    client_secret: str = Field(description=CREDENTIALS["MARKETO_CLIENT_SECRET"])
    poll_interval: PollInterval = POLL_INTERVAL
    job_timeout: JobTimeout = JOB_TIMEOUT
    max_calls_per_window: CallsPerWindow = MAX_CALLS_PER_WINDOW
    window_seconds: WindowSeconds = WINDOW_SECONDS
    max_concurrent: MaxConcurrent = MAX_CONCURRENT
    daily_quota_mb: DailyQuotaMb = DAILY_QUOTA_MB
    quota_budget_mb: QuotaBudgetMb = None
    max_job_attempts: int = Field(
        default=3, ge=1, description="Re-create a job Marketo marks Failed this often"
    )
    retry_initial_wait: RetryInitialWait = RETRY_INITIAL_WAIT
    retry_max_wait: RetryMaxWait = RETRY_MAX_WAIT
    queue_full_backoff: list[float] = Field(
        default_factory=lambda: list(QUEUE_FULL_BACKOFF),
        description="Waits (s) when Marketo's export queue is full (1029), then the step fails",
    )
    claim_lease_seconds: float = Field(
        default=3600.0,
        gt=0,
        description=(
            "A partition claimed by a run between its export and load steps (or by a process "
            "on another host) is taken over by another run after this many seconds"
        ),
    )
    staging_dir: str = Field(description=_help("staging_dir"))
    ledger_path: str = Field(description=_help("ledger_path"))
    ledger_store: LedgerKind = Field(default="sqlite", description=_help("ledger_store"))
    ledger_schema: str = Field(default="marketo_ledger", description=_help("ledger_schema"))
    capabilities_path: str = Field(
        default="",
        description=(
            "JSON file remembering whether the updatedAt / smart-list filters are enabled "
            "(1035); empty = filter_capabilities.json next to the ledger"
        ),
    )
    staging_max_age_hours: StagingMaxAgeHours = STAGING_MAX_AGE_HOURS

    @classmethod
    def from_settings(cls, settings: ProjectSettings) -> MarketoResource:
        """The resource of the code location: credentials read by Dagster at run time
        (`EnvVar`, so the UI shows their names only), the rest from the settings."""
        return cls(
            base_url=dg.EnvVar("MARKETO_BASE_URL"),
            client_id=dg.EnvVar("MARKETO_CLIENT_ID"),
            client_secret=dg.EnvVar("MARKETO_CLIENT_SECRET"),
            poll_interval=settings.poll_interval,
            job_timeout=settings.job_timeout,
            max_calls_per_window=settings.max_calls_per_window,
            max_concurrent=settings.max_concurrent,
            daily_quota_mb=settings.daily_quota_mb,
            quota_budget_mb=settings.quota_budget_mb,
            staging_dir=str(settings.staging_dir),
            ledger_path=str(settings.ledger_path),
            ledger_store=settings.ledger_store,
            ledger_schema=settings.ledger_schema,
            staging_max_age_hours=settings.staging_max_age_hours,
        )

    @field_validator(
        "poll_interval",
        "job_timeout",
        "max_calls_per_window",
        "window_seconds",
        "max_concurrent",
        "daily_quota_mb",
        "quota_budget_mb",
        "max_job_attempts",
        "retry_initial_wait",
        "retry_max_wait",
        "claim_lease_seconds",
        "staging_max_age_hours",
        mode="wrap",
    )
    @classmethod
    def _check_bounds(
        cls, value: object, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> object:
        """Out of bounds: say the bounds, and the variable that sets the default."""
        try:
            return handler(value)
        except ValidationError as exc:
            name = str(info.field_name)
            kinds = {err["type"] for err in exc.errors()}
            if not kinds <= {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
                raise
            variable = variable_of(name)
            where = f" ({variable})" if variable else ""
            raise ValueError(
                f"{name} must be {bounds_text(cls.model_fields[name])}{where}: fix the "
                f"resource's {name} config" + (f" or {variable}" if variable else "")
            ) from None

    @field_validator("queue_full_backoff")
    @classmethod
    def _check_backoff(cls, value: list[float]) -> list[float]:
        return list(check_backoff(tuple(value)))

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

    @property
    def budget_mb(self) -> float:
        """The daily budget (MB): quota_budget_mb, or 80% of daily_quota_mb."""
        return self.quota_budget_mb or self.daily_quota_mb * QUOTA_BUDGET_SHARE

    def ledger(self) -> Ledger:
        """The export ledger (SQLite file or PostgreSQL schema); a path that cannot work fails
        the step at once, without retries."""
        with _local_path_failure():
            return open_ledger(
                self.ledger_store,
                self.ledger_path,
                setting=LEDGER_SETTING,
                schema=self.ledger_schema,
            )

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
    metadata: dict[str, int | str] = {}
    if isinstance(exc, WarehouseLockedError):
        metadata = {"lock_holder_pid": exc.holder.pid, "lock_holder": exc.holder.name}
    return dg.Failure(description=f"{exc} {outcome}", metadata=metadata, allow_retries=False)


DEFAULT_LIST_FIELDS = LIST_FIELDS  # the name this module exported before


class ExportOptions(dg.ConfigurableResource):
    """What each export asks Marketo for. Changeable per run in the Launchpad.

    Checked when the run starts, before any Marketo call: blank field names, header names that
    are empty, repeated (DuckDB column names ignore case) or take a lineage column's name,
    and unknown formats. Field names themselves are checked against describe before any
    export job is created."""

    fields: list[str] = Field(default_factory=list, description=_help("export_fields"))
    column_header_names: dict[str, str] = Field(
        default_factory=dict, description=_help("column_header_names")
    )
    format: str = Field(default=EXPORT_FORMAT, description=_help("export_format"))
    list_fields: list[str] = Field(
        default_factory=lambda: list(LIST_FIELDS),
        description=str(ListSettings.model_fields["list_fields"].description),
    )

    @classmethod
    def from_settings(cls, settings: ProjectSettings, lists: ListSettings) -> ExportOptions:
        """The export options of the code location, from the settings."""
        return cls(
            fields=field_list(settings.export_fields),
            column_header_names=_env_headers(settings.column_header_names),
            format=settings.export_format,
            list_fields=field_list(lists.list_fields) or list(LIST_FIELDS),
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
        upper = format_name(value)
        if upper not in FORMATS:
            raise ValueError(
                f"format {value!r} is not an export format Marketo supports: use CSV, TSV or SSV"
            )
        return upper


def _env_headers(raw: str) -> dict[str, str]:
    try:
        return parse_header_names(raw)  # already checked by load_settings
    except ValueError as exc:
        raise ValueError(f"MARKETO_COLUMN_HEADER_NAMES: {exc}") from None


def build_resources(settings: ProjectSettings, lists: ListConfig) -> dict[str, object]:
    """The resources of the definitions, from the settings; credentials stay `EnvVar`s."""
    return {
        "marketo": MarketoResource.from_settings(settings),
        "export_options": ExportOptions.from_settings(settings, lists.settings),
        "warehouse": WarehouseResource(
            database=str(settings.duckdb_path), warehouse=settings.warehouse
        ),
    }
