"""Project settings read from the environment (pydantic-settings).

Everything a user may want to change without touching code: where the DuckDB file lives, how
partitions map to Marketo windows, and the client's pacing. Marketo credentials are *not* here:
Dagster reads them at run time through `EnvVar` so the UI never shows their values.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = PROJECT_ROOT / "data"


class ProjectSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    duckdb_path: Path = Field(DATA_DIR / "marketo.duckdb", validation_alias="DUCKDB_PATH")
    staging_dir: Path = Field(DATA_DIR / "exports", validation_alias="MARKETO_STAGING_DIR")
    ledger_path: Path = Field(
        DATA_DIR / "export_ledger.sqlite", validation_alias="MARKETO_LEDGER_PATH"
    )

    partition_start: date = Field(date(2025, 1, 1), validation_alias="MARKETO_PARTITION_START")
    partition_window: Literal["monthly", "weekly", "daily"] = Field(
        "monthly", validation_alias="MARKETO_PARTITION_WINDOW"
    )
    partition_timezone: str = Field("UTC", validation_alias="MARKETO_PARTITION_TIMEZONE")

    poll_interval: float = Field(60.0, gt=0, validation_alias="MARKETO_POLL_INTERVAL")
    job_timeout: float = Field(3 * 3600.0, gt=0, validation_alias="MARKETO_JOB_TIMEOUT")
    max_calls_per_window: int = Field(
        80, ge=1, le=100, validation_alias="MARKETO_MAX_CALLS_PER_20S"
    )
    max_concurrent: int = Field(5, ge=1, le=10, validation_alias="MARKETO_MAX_CONCURRENT")
    daily_quota_mb: int = Field(500, ge=1, validation_alias="MARKETO_DAILY_QUOTA_MB")

    export_format: Literal["CSV", "TSV", "SSV"] = Field("CSV", validation_alias="MARKETO_FORMAT")
    export_fields: str = Field("", validation_alias="MARKETO_FIELDS")
    column_header_names: str = Field("", validation_alias="MARKETO_COLUMN_HEADER_NAMES")


def load_settings() -> ProjectSettings:
    return ProjectSettings()
