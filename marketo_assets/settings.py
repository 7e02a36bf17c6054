"""Project settings read from the environment (pydantic-settings).

Everything a user may want to change without touching code: where the DuckDB file lives, how
partitions map to Marketo windows, and the client's pacing. Each setting is declared once, here
or (the client's knobs) in `marketo.settings`: environment variable, default, bounds and help
(`description`). The Dagster resources take their defaults and bounds from these declarations,
and a unit test checks the configuration tables of the docs against them.

Marketo credentials are *not* read here: Dagster reads them at run time through `EnvVar` so the
UI never shows their values (`CREDENTIALS` only names the variables).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from marketo_assets.marketo.settings import (
    JOB_TIMEOUT,
    MAX_CALLS_PER_WINDOW,
    MAX_CONCURRENT,
    POLL_INTERVAL,
    CallsPerWindow,
    JobTimeout,
    MaxConcurrent,
    PollInterval,
    instance_root,
    is_loopback_host,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = PROJECT_ROOT / "data"

# Read by Dagster at run time (`dg.EnvVar`), never by this module: name -> help.
CREDENTIALS = {
    "MARKETO_BASE_URL": "Instance root, e.g. https://123-ABC-456.mktorest.com (the REST "
    "Endpoint .../rest or Identity .../identity shown in Admin > Web Services work too)",
    "MARKETO_CLIENT_ID": "Client Id of the LaunchPoint custom service",
    "MARKETO_CLIENT_SECRET": "Client Secret of the LaunchPoint custom service",
}

# Settings shared with the Dagster resources (defs/resources.py): default and bounds/choices.
STAGING_MAX_AGE_HOURS = 7 * 24.0  # Marketo keeps export files for 7 days
StagingMaxAgeHours = Annotated[
    float,
    Field(
        gt=0,
        description="Staged files older than this (hours) are deleted at the start of each "
        "export and load step, unless their export is not loaded yet",
    ),
]
DAILY_QUOTA_MB = 500
DailyQuotaMb = Annotated[
    int, Field(ge=1, description="The subscription's daily bulk export quota (MB)")
]
QUOTA_BUDGET_SHARE = 0.8  # the default budget: 80% of the allocation, 20% left for others
QuotaBudgetMb = Annotated[
    float | None,
    Field(
        gt=0,
        description="This project's share of the daily export quota (MB): no job is started "
        "that is predicted to pass it; empty = 80% of MARKETO_DAILY_QUOTA_MB",
    ),
]
ResumeOrder = Literal["open-first", "oldest-first"]
ExportFormat = Literal["CSV", "TSV", "SSV"]
FORMATS: tuple[str, ...] = get_args(ExportFormat)
EXPORT_FORMAT: ExportFormat = "CSV"
LIST_FIELDS = ("id", "email", "firstName", "lastName", "company", "createdAt", "updatedAt")


def format_name(value: Any) -> Any:
    """An export format in any case ("csv", " Tsv") as Marketo's name for it (checked apart)."""
    return value.strip().upper() if isinstance(value, str) else value


def field_list(raw: str) -> list[str]:
    """MARKETO_FIELDS / MARKETO_LIST_FIELDS as a list of names."""
    return [name.strip() for name in raw.split(",") if name.strip()]


def parse_header_names(raw: str) -> dict[str, str]:
    """MARKETO_COLUMN_HEADER_NAMES: a JSON object mapping REST field names to header strings
    (`{"email": null}` would otherwise become a header named "None")."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ValueError(
            f"not valid JSON ({exc}): write a JSON object {{restName: header}}, e.g. "
            '{"email": "Email Address"}'
        ) from None
    if not isinstance(value, dict):
        raise ValueError('must be a JSON object {restName: header}, e.g. {"email": "Email"}')
    bad = [key for key, header in value.items() if not isinstance(header, str)]
    if bad:
        raise ValueError(
            f"the header of {', '.join(bad)} is not a string "
            f"({', '.join(json.dumps(value[k]) for k in bad)}): write each header as a JSON "
            'string, e.g. {"email": "Email Address"}, or leave the field out to keep its name'
        )
    return value


class ProjectSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    duckdb_path: Path = Field(
        DATA_DIR / "marketo.duckdb",
        validation_alias="DUCKDB_PATH",
        description="DuckDB file of the raw tables and the dbt models",
    )
    warehouse: Literal["duckdb", "postgres"] = Field(
        "duckdb",
        validation_alias="MARKETO_WAREHOUSE",
        description="Where the raw tables are loaded: duckdb (DUCKDB_PATH) or postgres (the "
        "libpq variables PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE of each run process)",
    )
    staging_dir: Path = Field(
        DATA_DIR / "exports",
        validation_alias="MARKETO_STAGING_DIR",
        description="Folder for downloaded export files: they go into its sub-folder "
        "marketo_assets/ (0700, the only place the project writes or deletes)",
    )
    ledger_path: Path = Field(
        DATA_DIR / "export_ledger.sqlite",
        validation_alias="MARKETO_LEDGER_PATH",
        description="SQLite file recording every export job created",
    )
    ledger_store: Literal["sqlite", "postgres"] = Field(
        "sqlite",
        validation_alias="MARKETO_LEDGER",
        description="Where the export ledger and partition claims live: sqlite "
        "(MARKETO_LEDGER_PATH, one machine) or postgres (MARKETO_LEDGER_SCHEMA in the database "
        "of the libpq variables PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE; runs on "
        "several machines, no shared disk)",
    )
    ledger_schema: str = Field(
        "marketo_ledger",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        validation_alias="MARKETO_LEDGER_SCHEMA",
        description="PostgreSQL schema of the export ledger (MARKETO_LEDGER=postgres), created "
        "on first use",
    )
    staging_max_age_hours: StagingMaxAgeHours = Field(
        STAGING_MAX_AGE_HOURS, validation_alias="MARKETO_STAGING_MAX_AGE_HOURS"
    )

    partition_start: date = Field(
        date(2025, 1, 1),
        validation_alias="MARKETO_PARTITION_START",
        description="First day exported (YYYY-MM-DD, midnight in MARKETO_PARTITION_TIMEZONE)",
    )
    partition_window: Literal["monthly", "weekly", "daily"] = Field(
        "monthly", validation_alias="MARKETO_PARTITION_WINDOW", description="Partition length"
    )
    partition_timezone: str = Field(
        "UTC",
        validation_alias="MARKETO_PARTITION_TIMEZONE",
        description="IANA timezone of the partition boundaries",
    )

    poll_interval: PollInterval = Field(POLL_INTERVAL, validation_alias="MARKETO_POLL_INTERVAL")
    job_timeout: JobTimeout = Field(JOB_TIMEOUT, validation_alias="MARKETO_JOB_TIMEOUT")
    max_calls_per_window: CallsPerWindow = Field(
        MAX_CALLS_PER_WINDOW, validation_alias="MARKETO_MAX_CALLS_PER_20S"
    )
    max_concurrent: MaxConcurrent = Field(MAX_CONCURRENT, validation_alias="MARKETO_MAX_CONCURRENT")
    daily_quota_mb: DailyQuotaMb = Field(DAILY_QUOTA_MB, validation_alias="MARKETO_DAILY_QUOTA_MB")
    quota_budget_mb: QuotaBudgetMb = Field(None, validation_alias="MARKETO_QUOTA_BUDGET_MB")
    quota_resume_order: ResumeOrder = Field(
        "open-first",
        validation_alias="MARKETO_QUOTA_RESUME_ORDER",
        description="Partitions stopped by the quota are launched again after the reset in this "
        "order: open-first (open windows and lists, then history newest first) or oldest-first",
    )
    quota_resume_interval: int = Field(
        300,
        ge=5,
        validation_alias="MARKETO_QUOTA_RESUME_INTERVAL",
        description="Seconds between two ticks of the quota_resume sensor",
    )

    export_format: ExportFormat = Field(
        EXPORT_FORMAT,
        validation_alias="MARKETO_FORMAT",
        description="Export file format: CSV, TSV or SSV (any case)",
    )
    export_fields: str = Field(
        "",
        validation_alias="MARKETO_FIELDS",
        description="Lead REST field names, comma-separated; empty = every exportable field",
    )
    column_header_names: str = Field(
        "",
        validation_alias="MARKETO_COLUMN_HEADER_NAMES",
        description='Rename file headers: a JSON object {"restName": "Header"}',
    )

    # Activities.
    activity_types: str = Field(
        "",
        validation_alias="MARKETO_ACTIVITY_TYPES",
        description="Activity types exported to marketo.activities: ids or names, "
        "comma-separated; empty = every type",
    )
    activity_partition_window: Literal["monthly", "weekly", "daily"] = Field(
        "daily",
        validation_alias="MARKETO_ACTIVITY_PARTITION_WINDOW",
        description="Partition length of marketo/activities",
    )

    # Incremental updates. (List settings are read apart: ListSettings.)
    lead_changes_start: date | None = Field(
        None,
        validation_alias="MARKETO_LEAD_CHANGES_START",
        description="First day of marketo/lead_changes; empty = MARKETO_PARTITION_START",
    )
    filter_recheck_hours: float = Field(
        24,
        ge=0,
        validation_alias="MARKETO_FILTER_RECHECK_HOURS",
        description="Re-check a filter Marketo refused (1035) after this many hours (0 = never)",
    )

    @field_validator("partition_start", "lead_changes_start", mode="before")
    @classmethod
    def _plain_date(cls, value: Any) -> Any:
        """A calendar date `YYYY-MM-DD`: no time, no milliseconds, no epoch numbers."""
        if value is None or isinstance(value, date):
            return value
        text = str(value).strip()
        if text == "":
            return None
        if not _DATE.fullmatch(text):
            raise ValueError(
                f"{text!r} is not a date: write it as YYYY-MM-DD, e.g. 2025-01-01 (no time, "
                "milliseconds or timezone: partitions start at midnight of "
                "MARKETO_PARTITION_TIMEZONE)"
            )
        try:
            return date.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a valid calendar date ({exc})") from None

    @field_validator("partition_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        name = value.strip()
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not an IANA timezone name: use e.g. UTC, Europe/Paris or "
                "America/Chicago"
            ) from None
        return name

    @field_validator("column_header_names")
    @classmethod
    def _header_names(cls, value: str) -> str:
        parse_header_names(value)
        return value

    @field_validator("export_fields")
    @classmethod
    def _field_list(cls, value: str) -> str:
        return _field_names(value)

    @field_validator("activity_types")
    @classmethod
    def _activity_types(cls, value: str) -> str:
        items = value.split(",")
        if value.strip() and any(not item.strip() for item in items):
            raise ValueError(
                f"{value!r} has an empty item: write activity type ids or names separated by "
                "single commas, e.g. 1,Fill Out Form,Click Email"
            )
        return value

    @property
    def activity_type_selection(self) -> tuple[str, ...]:
        """The MARKETO_ACTIVITY_TYPES items (ids or names); empty = every type."""
        return tuple(i.strip() for i in self.activity_types.split(",") if i.strip())

    @field_validator("export_format", mode="before")
    @classmethod
    def _format(cls, value: Any) -> Any:
        """CSV, TSV or SSV in any case ("csv", "Tsv"), as in the export_options config."""
        return format_name(value)

    @field_validator("quota_budget_mb", mode="before")
    @classmethod
    def _empty_budget(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _budget_within_allocation(self) -> ProjectSettings:
        if self.quota_budget_mb is not None and self.quota_budget_mb > self.daily_quota_mb:
            raise ValueError(
                f"MARKETO_QUOTA_BUDGET_MB ({self.quota_budget_mb:g}) is above the daily "
                f"allocation MARKETO_DAILY_QUOTA_MB ({self.daily_quota_mb}): set a budget at "
                "most the allocation (unset it for 80% of the allocation), or raise "
                "MARKETO_DAILY_QUOTA_MB if your subscription has more"
            )
        return self

    @property
    def quota_budget(self) -> float:
        """The daily budget in MB (default: 80% of the allocation)."""
        if self.quota_budget_mb is not None:
            return self.quota_budget_mb
        return self.daily_quota_mb * QUOTA_BUDGET_SHARE

    @property
    def lead_changes_first_day(self) -> date:
        return self.lead_changes_start or self.partition_start


def _field_names(value: str) -> str:
    if value.strip() and not [n for n in value.split(",") if n.strip()]:
        raise ValueError(
            f"{value!r} names no field: give comma-separated REST field names (e.g. "
            "id,email,firstName), or leave the variable unset for the default"
        )
    return value


class ListSettings(BaseSettings):
    """Settings that concern only the list sensors and list exports. Read apart from
    ProjectSettings (`load_list_settings`): a bad value switches off the lists, saying why,
    instead of stopping the code location (lead partitions included) from loading."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    # Selection syntax: see ListSelection.
    static_lists: str = Field(
        "",
        validation_alias="MARKETO_STATIC_LISTS",
        description="Static lists to export: ids, names or patterns; empty = no list",
    )
    smart_lists: str = Field(
        "",
        validation_alias="MARKETO_SMART_LISTS",
        description="Smart lists to export: ids, names or patterns; empty = no list",
    )
    programs: str = Field(
        "",
        validation_alias="MARKETO_PROGRAMS",
        description="Programs whose members are exported: ids, names or patterns; empty = none",
    )
    program_refresh_hours: float = Field(
        24,
        ge=0,
        validation_alias="MARKETO_PROGRAM_REFRESH_HOURS",
        description="Also re-export a program's members this long after its last run (0 = on "
        "change)",
    )
    list_fields: str = Field(
        ",".join(LIST_FIELDS),
        validation_alias="MARKETO_LIST_FIELDS",
        description="Lead REST field names exported per list member, comma-separated",
    )
    list_sensor_interval: int = Field(
        300,
        ge=30,
        validation_alias="MARKETO_LIST_SENSOR_INTERVAL",
        description="Seconds between two ticks of each list sensor and of the program sensor",
    )
    static_list_refresh_hours: float = Field(
        0,
        ge=0,
        validation_alias="MARKETO_STATIC_LIST_REFRESH_HOURS",
        description="Also re-export a static list this long after its last run (0 = on change)",
    )
    smart_list_refresh_hours: float = Field(
        24,
        ge=0,
        validation_alias="MARKETO_SMART_LIST_REFRESH_HOURS",
        description="Also re-export a smart list this long after its last run (0 = on change)",
    )

    @field_validator("static_lists", "smart_lists", "programs")
    @classmethod
    def _selection(cls, value: str, info: ValidationInfo) -> str:
        setting = str(cls.model_fields[str(info.field_name)].validation_alias)
        try:
            ListSelection.parse(value, setting)
        except ValueError as exc:
            raise ValueError(
                f"{str(exc).removeprefix(setting + ': ')}. Write list ids, names or patterns "
                "separated by commas (e.g. 1021, Webinar*), or a JSON array such as "
                '["Leads, EMEA", 5001] for names with commas'
            ) from None
        return value

    @field_validator("list_fields")
    @classmethod
    def _field_list(cls, value: str) -> str:
        return _field_names(value)

    @property
    def static_list_selection(self) -> ListSelection:
        return ListSelection.parse(self.static_lists, "MARKETO_STATIC_LISTS")

    @property
    def smart_list_selection(self) -> ListSelection:
        return ListSelection.parse(self.smart_lists, "MARKETO_SMART_LISTS")

    @property
    def program_selection(self) -> ListSelection:
        return ListSelection.parse(self.programs, "MARKETO_PROGRAMS")


@dataclass(frozen=True)
class ListConfig:
    """The list settings, a bad value replaced by its default, and the problems by variable
    (what is wrong and the fix): reported by what they concern instead of raised."""

    settings: ListSettings
    problems: dict[str, str]

    def problem(self, *variables: str) -> str | None:
        found = [self.problems[v] for v in variables if v in self.problems]
        return " ".join(found) or None

    def sensor_problem(self, kind: str) -> str | None:
        """What switches off the `kind` ("static"/"smart"/"program") sensor."""
        if kind == "program":
            return self.problem(
                "MARKETO_PROGRAMS", "MARKETO_PROGRAM_REFRESH_HOURS", "MARKETO_LIST_SENSOR_INTERVAL"
            )
        own = f"MARKETO_{kind.upper()}"
        return self.problem(
            f"{own}_LISTS",
            f"{own}_LIST_REFRESH_HOURS",
            "MARKETO_LIST_SENSOR_INTERVAL",
            "MARKETO_LIST_FIELDS",
        )


def load_list_settings() -> ListConfig:
    """The list settings; a bad value does not raise (see ListConfig)."""
    try:
        return ListConfig(ListSettings(), {})
    except ValidationError as exc:
        errors = exc.errors()
    fields = {str(f.validation_alias): f for f in ListSettings.model_fields.values()}
    problems: dict[str, str] = {}
    for err in errors:
        variable = str(err["loc"][0]) if err.get("loc") else "list settings"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        default = fields[variable].default if variable in fields else None
        shown = "none" if default == "" else repr(default)
        problems[variable] = (
            f"{variable} is {err.get('input')!r}: {msg}. Fix {variable}, or unset it for the "
            f"default ({shown})."
        )
    defaults = {name: fields[name].default for name in problems if name in fields}
    return ListConfig(ListSettings(**defaults), problems)


class SettingsWarning(UserWarning):
    """A setting makes part of the project unusable (said at definitions load)."""


_GLOB_CHARS = set("*?[")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class ListSelection:
    """Which Marketo lists a list sensor exports.

    Syntax of MARKETO_STATIC_LISTS / MARKETO_SMART_LISTS: entries separated by commas, or a JSON
    array of strings/numbers when a name itself contains a comma. An entry is
      - a list id: `1021` or `id:1021`;
      - a name pattern (shell glob, case-sensitive) when it holds `*`, `?` or `[`:
        `Webinar*`, or `glob:<pattern>`; `*` alone selects every list;
      - otherwise an exact list name; `name:<name>` forces that (e.g. for a name that is a
        number or contains `*`).
    Surrounding spaces are ignored. An empty value selects no list (the sensor does nothing).
    """

    ids: frozenset[int] = frozenset()
    names: frozenset[str] = frozenset()
    patterns: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: str, setting: str = "list selection") -> ListSelection:
        text = (raw or "").strip()
        if not text:
            return cls()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except ValueError as exc:
                raise ValueError(f"{setting}: not a JSON array: {exc}") from None
            if not isinstance(items, list) or not all(
                isinstance(i, str) or (isinstance(i, int) and not isinstance(i, bool))
                for i in items
            ):
                raise ValueError(f"{setting}: a JSON value must be an array of names and ids")
            entries = [str(item) for item in items]
        else:
            entries = text.split(",")
        ids: set[int] = set()
        names: set[str] = set()
        patterns: list[str] = []
        for entry in (e.strip() for e in entries):
            if not entry:
                continue
            kind, sep, rest = entry.partition(":")
            kind = kind.strip().lower() if sep else ""
            if kind == "id" or (not sep and entry.isdigit()):
                value = rest.strip() if kind == "id" else entry
                if not value.isdigit() or int(value) <= 0:
                    raise ValueError(f"{setting}: {entry!r} is not a positive list id")
                ids.add(int(value))
            elif kind == "name":
                names.add(rest.strip())
            elif kind == "glob":
                patterns.append(rest.strip())
            elif _GLOB_CHARS & set(entry):
                patterns.append(entry)
            else:
                names.add(entry)
        return cls(frozenset(ids), frozenset(names), tuple(dict.fromkeys(patterns)))

    @property
    def empty(self) -> bool:
        return not (self.ids or self.names or self.patterns)

    def matches(self, list_id: int, name: str) -> bool:
        return (
            list_id in self.ids
            or name in self.names
            or any(fnmatch.fnmatchcase(name, p) for p in self.patterns)
        )

    def describe(self) -> str:
        if self.empty:
            return "no list (empty selection)"
        parts = [f"id {i}" for i in sorted(self.ids)]
        parts += [f"name {n!r}" for n in sorted(self.names)]
        parts += [f"pattern {p!r}" for p in self.patterns]
        return ", ".join(parts)


class SettingsError(ValueError):
    """A setting (environment variable) has a value that cannot be used."""


def _settings_message(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err.get("loc", ())) or "settings"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        given = err.get("input")
        shown = f" (got {given!r})" if isinstance(given, str) and name not in msg else ""
        lines.append(f"{name}: {msg}{shown}")
    return "Invalid configuration: " + "; ".join(lines) + ". Fix the environment variable(s)."


def declared() -> dict[str, FieldInfo]:
    """Every setting read from the environment, by variable: its declaration (default, bounds
    in `metadata`, help in `description`)."""
    return {
        str(info.validation_alias): info
        for model in (ProjectSettings, ListSettings)
        for info in model.model_fields.values()
    }


def variable_of(name: str) -> str | None:
    """The environment variable of the project setting called `name`, if there is one."""
    info = ProjectSettings.model_fields.get(name) or ListSettings.model_fields.get(name)
    return str(info.validation_alias) if info is not None else None


def bounds_text(info: FieldInfo) -> str:
    """The bounds of a declared number, as a user reads them: "> 0", "between 1 and 100"."""
    low = high = ""
    for item in info.metadata:  # annotated_types' Gt, Ge, Lt, Le
        for key, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            bound = getattr(item, key, None)
            if bound is not None and key[0] == "g":
                low = f"{sign} {bound}"
            elif bound is not None:
                high = f"{sign} {bound}"
    if low.startswith(">=") and high.startswith("<="):
        return f"between {low[3:]} and {high[3:]}"
    return " and ".join(part for part in (low, high) if part) or "valid"


def load_settings() -> ProjectSettings:
    """The project settings; a bad value raises SettingsError naming the variable and the fix
    (at definitions load, so nothing runs and Marketo is not called)."""
    try:
        return ProjectSettings()
    except ValidationError as exc:
        raise SettingsError(_settings_message(exc)) from None


# ------------------------------------------------------------------ the resources' run config
# The Dagster resources (defs/resources.py) take these values from the settings above, and
# check a value changed in the Launchpad with the functions below (same bounds, same words).
MAX_JOB_ATTEMPTS = 3
MaxJobAttempts = Annotated[
    int, Field(ge=1, description="Re-create a job Marketo marks Failed this often")
]
CLAIM_LEASE_SECONDS = 3600.0
ClaimLeaseSeconds = Annotated[
    float,
    Field(
        gt=0,
        description="A partition claimed by a run between its export and load steps (or by a "
        "process on another host) is taken over by another run after this many seconds",
    ),
]
QUEUE_FULL_HELP = "Waits (s) when Marketo's export queue is full (1029), then the step fails"
CAPABILITIES_HELP = (
    "JSON file remembering whether the updatedAt / smart-list filters are enabled (1035); "
    "empty = filter_capabilities.json next to the ledger"
)


def help_of(name: str) -> str:
    """The help text of the project setting `name`."""
    info = ProjectSettings.model_fields.get(name) or ListSettings.model_fields[name]
    return str(info.description)


def marketo_config(settings: ProjectSettings) -> dict[str, Any]:
    """The Marketo resource's config from the settings (credentials apart: see CREDENTIALS)."""
    names = ("poll_interval", "job_timeout", "max_calls_per_window", "max_concurrent",
             "daily_quota_mb", "quota_budget_mb", "staging_max_age_hours", "ledger_store",
             "ledger_schema")  # fmt: skip
    config: dict[str, Any] = {name: getattr(settings, name) for name in names}
    return {**config, "staging_dir": str(settings.staging_dir),
            "ledger_path": str(settings.ledger_path)}  # fmt: skip


def export_config(settings: ProjectSettings, lists: ListSettings) -> dict[str, Any]:
    """The export options' config from the settings."""
    try:
        headers = parse_header_names(settings.column_header_names)  # checked at load already
    except ValueError as exc:
        raise ValueError(f"MARKETO_COLUMN_HEADER_NAMES: {exc}") from None
    return {
        "fields": field_list(settings.export_fields),
        "column_header_names": headers,
        "format": settings.export_format,
        "list_fields": field_list(lists.list_fields) or list(LIST_FIELDS),
    }


def bounds_error(name: str, info: FieldInfo) -> ValueError:
    """A resource value out of bounds: the bounds, and the variable that sets the default."""
    variable = variable_of(name)
    where = f" ({variable})" if variable else ""
    return ValueError(
        f"{name} must be {bounds_text(info)}{where}: fix the resource's {name} config"
        + (f" or {variable}" if variable else "")
    )


def explain_bounds(fields: dict[str, FieldInfo], value: Any, handler: Any, info: Any) -> Any:
    """A wrap validator's body: validate `value`; out of bounds, raise `bounds_error`."""
    try:
        return handler(value)
    except ValidationError as exc:
        if not {err["type"] for err in exc.errors()} <= BOUNDS:
            raise
        name = str(info.field_name)
        raise bounds_error(name, fields[name]) from None


BOUNDS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


class SecretConfigError(Exception):
    """A credential has an unusable value. Not a ValueError on purpose: pydantic keeps the
    input value of a ValueError in `ValidationError.errors()`; this exception holds none."""


def check_base_url(value: str) -> str:
    """MARKETO_BASE_URL as the instance root; refused: not http(s), plain http to a host that
    is not loopback, a query, a fragment, a user name or an unknown path."""
    try:
        url: httpx.URL | None = httpx.URL(value.strip())
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
        raise ValueError("MARKETO_BASE_URL (base_url) must not contain a query string or fragment")
    try:
        return instance_root(url)
    except ValueError as exc:
        raise ValueError(f"MARKETO_BASE_URL (base_url) {exc}") from None


def check_client_id(value: str) -> str:
    if not value.strip() or value != value.strip():
        raise ValueError(
            "MARKETO_CLIENT_ID (client_id) is empty or has leading/trailing whitespace: "
            "set it to the Client Id of your LaunchPoint custom service"
        )
    return value


def check_client_secret(value: str) -> str:
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


def check_field_names(value: list[str]) -> list[str]:
    """Export field names: none blank, none with surrounding spaces."""
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


def check_header_names(value: dict[str, str], reserved: Sequence[str]) -> dict[str, str]:
    """Header names: none empty, none twice (DuckDB column names ignore case), none `reserved`
    (the lineage columns)."""
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
        if folded in reserved:
            raise ValueError(
                f"column_header_names: header {name!r} for {key!r} is a lineage column "
                f"name ({', '.join(reserved)}): choose another header"
            )
    return value


def check_export_format(value: str) -> str:
    upper = format_name(value)
    if upper not in FORMATS:
        raise ValueError(
            f"format {value!r} is not an export format Marketo supports: use CSV, TSV or SSV"
        )
    return upper
