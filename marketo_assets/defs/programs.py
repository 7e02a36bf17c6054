"""Program members: one partition per selected program (docs/ASSETS.md#program-members)."""

from dataclasses import replace

import dagster as dg

from marketo_assets.extract.checks import CHECK_PROGRAM, program_checks
from marketo_assets.marketo import LeadField, MarketoClient, ProgramMemberFilter
from marketo_assets.settings import ListConfig

from .family import Context, ExportFamily, Pair, build_family

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


def program_assets(lists: ListConfig) -> Pair:
    problem = lists.problem("MARKETO_PROGRAMS")

    def load_checks(context: Context):
        key, pid = context.partition_key, program_id(context)
        return lambda wh, loaded: program_checks(wh, TABLE, key, pid)

    family = ExportFamily(
        export_key=PM_EXPORTS,
        name="marketo/program_members",
        partitions=PROGRAM_PARTITIONS,
        required_fields=("programId", "leadId"),
        id_field="leadId",
        fixed_fields=True,
        filters=lambda context: [ProgramMemberFilter(program_id=program_id(context))],
        batch_filters=lambda keys: [ProgramMemberFilter(program_ids=tuple(int(k) for k in keys))],
        shared_column="programId",
        describe=member_fields,
        export_description="Marketo bulk program member export of one program (partition "
        "`<program id>`, filter `programId`; a sensor tick's programs share jobs of up to 10), "
        "every field of the program member describe." + (f" OFF: {problem}" if problem else ""),
        load_description=f"Table `{TABLE}`: one row per (programId, leadId), columns typed from "
        "the describe, plus `_partition_key` (the program id), `_export_id`, `_loaded_at`.",
        checks=(
            (CHECK_UNIQUE, "No lead twice in a program: (programId, leadId) unique"),
            (CHECK_PROGRAM, "Every row's programId is the partition's program"),
        ),
        load_checks=load_checks,
        export_metadata=lambda context: {"program_id": program_id(context)},
        off_reason=f"Program exports are off: {problem}" if problem else None,
    )
    return build_family(family)
