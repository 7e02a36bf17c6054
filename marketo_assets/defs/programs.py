"""Program members: `marketo/program_member_export_files` → `marketo/program_members`, one
dynamic partition per selected program (its id), kept by `program_sensor.py`.

The programs one sensor tick requests share Marketo jobs (filter `programIds`, up to 10 per
job; run tag BATCH_TAG, see extract/batch.py): the first member's export step creates the job,
the others reuse its verified file; each partition still loads only its program's rows, in its
own transaction. A program requested alone (a manual run, a re-run) gets its own job (filter
`programId`). The quota counts bytes, so batching saves queue slots and calls, not quota.
"""

from dataclasses import replace

import dagster as dg

from marketo_assets.extract.checks import CHECK_PROGRAM, program_checks
from marketo_assets.marketo import LeadField, MarketoClient, ProgramMemberFilter
from marketo_assets.settings import ListConfig

from .family import Context, ExportFamily, build_family

PM_EXPORTS = dg.AssetKey(["marketo", "program_member_export_files"])
PROGRAM_MEMBERS = dg.AssetKey(["marketo", "program_members"])
TABLE = "marketo.program_members"
PROGRAM_PARTITIONS = dg.DynamicPartitionsDefinition(name="programs")
CHECK_UNIQUE = "program_lead_ids_unique"


def program_id(context: Context) -> int:
    key = context.partition_key
    if not key.isdigit():
        raise dg.Failure(f"{key!r} is not a program partition (a program id)", allow_retries=False)
    return int(key)


def member_fields(client: MarketoClient) -> list[LeadField]:
    """The program member describe, with programId as INTEGER (the contract's type)."""
    return [
        replace(f, data_type="int32") if f.name == "programId" else f
        for f in client.describe_program_members()
    ]


def program_family(lists: ListConfig) -> ExportFamily:
    problem = lists.problem("MARKETO_PROGRAMS")

    def load_checks(context: Context):
        key, pid = context.partition_key, program_id(context)
        return lambda wh, loaded: program_checks(wh, TABLE, key, pid)

    return ExportFamily(
        export_key=PM_EXPORTS,
        load_key=PROGRAM_MEMBERS,
        partitions=PROGRAM_PARTITIONS,
        table=TABLE,
        ledger_asset="marketo/program_members",
        required_fields=("programId", "leadId"),
        id_field="leadId",
        fixed_fields=True,
        filters=lambda context: [ProgramMemberFilter(program_id=program_id(context))],
        batch_filters=lambda keys: [ProgramMemberFilter(program_ids=tuple(int(k) for k in keys))],
        shared_column="programId",
        describe=member_fields,
        export_description=(
            "Marketo bulk program member export of one program (partition `<program id>`, "
            "filter `programId`), every field of the program member describe; programs a "
            "sensor tick requests together share one job (filter `programIds`, up to 10), "
            "created by the first of their steps and reused by the others. Creates (or "
            "reattaches to) the job, waits, downloads and verifies the file and stages it for "
            "the load step. Runs in the `marketo_bulk_export` pool; terminating the run "
            "cancels the Marketo job." + (f" OFF: {problem}" if problem else "")
        ),
        load_description=(
            f"Table `{TABLE}`: one row per (programId, leadId), columns typed from the program "
            "member describe, plus `_partition_key` (the program id), `_export_id`, "
            "`_loaded_at`. Each partition's load replaces that program's rows in one "
            "transaction (from a shared file: only its program's rows, checked against their "
            "count in the file; the file is deleted once every program of it is loaded). "
            "Runs in the `duckdb` pool (one writer)."
        ),
        checks=(
            (CHECK_UNIQUE, "No lead twice in a program: (programId, leadId) unique"),
            (CHECK_PROGRAM, "Every row's programId is the partition's program"),
        ),
        load_checks=load_checks,
        export_metadata=lambda context: {"program_id": program_id(context)},
        off_reason=f"Program exports are off: {problem}" if problem else None,
    )


def program_assets(lists: ListConfig) -> tuple[dg.AssetsDefinition, dg.AssetsDefinition]:
    return build_family(program_family(lists))
