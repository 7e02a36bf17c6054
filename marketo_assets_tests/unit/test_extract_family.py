"""The engine's side of an export family (`extract.Family`): the request of one partition,
alone or as a member of a batch its run's tag names, built with the run's export options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from marketo_assets.extract.batch import plan_batches
from marketo_assets.extract.family import Family
from marketo_assets.extract.ledger import ExportLedger
from marketo_assets.marketo import ExportFilter, LeadField, ProgramMemberFilter

FIELDS = [LeadField("id", data_type="integer"), LeadField("email", data_type="email")]
FIELDS += [LeadField("firstName", data_type="string")]
MEMBER_FIELDS = [LeadField("programId", data_type="int32"), LeadField("leadId", data_type="int32")]


@dataclass
class Options:
    fields: list[str] = field(default_factory=lambda: ["email"])
    column_header_names: dict[str, str] = field(default_factory=lambda: {"email": "Email"})
    format: str = "CSV"
    list_fields: list[str] = field(default_factory=lambda: ["firstName"])


def leads() -> Family:
    return Family(name="marketo/leads", required_fields=("id",), describe=lambda c: FIELDS)


def programs() -> Family:
    return Family(
        name="marketo/program_members",
        required_fields=("programId", "leadId"),
        describe=lambda c: MEMBER_FIELDS,
        fixed_fields=True,
        id_field="leadId",
        batch_filters=lambda keys: [ProgramMemberFilter(program_ids=tuple(int(k) for k in keys))],
        shared_column="programId",
    )


def test_a_partition_alone_asks_for_the_selected_and_required_fields(tmp_path: Path):
    ledger = ExportLedger(tmp_path / "ledger.sqlite")
    created = ExportFilter.created_at
    filters = [created(*_day("2025-01-01")), created(*_day("2025-01-02"))]
    batch, make = leads().request(ledger, "2025-01-01", filters, Options(), generation="g1")
    spec = make(None)
    assert batch is None
    assert (spec.asset, spec.partition_key, spec.generation) == (
        "marketo/leads",
        "2025-01-01",
        "g1",
    )
    assert [name for name, _ in spec.field_types] == ["id", "email"]
    assert spec.request.column_header_names == {"email": "Email"}
    assert len(spec.parts) == 2 and not spec.members  # one job per filter, loaded together
    assert leads().table == "marketo.leads"
    assert leads().load_options()["table"] == "marketo.leads"


def test_list_fields_export_only_their_own_headers(tmp_path: Path):
    family = Family(
        name="marketo/static_list_members",
        required_fields=("id",),
        list_fields=True,
        describe=lambda c: FIELDS,
    )
    ledger, filters = ExportLedger(tmp_path / "l.sqlite"), [ExportFilter.static_list_id(1)]
    spec = family.request(ledger, "static-1", filters, Options())[1](None)
    assert [name for name, _ in spec.field_types] == ["id", "firstName"]
    assert spec.request.column_header_names == {}  # `email` is not exported: its header dropped


def test_a_batch_member_asks_for_the_batchs_job(tmp_path: Path):
    ledger = ExportLedger(tmp_path / "ledger.sqlite")
    batch = plan_batches([("3001", "3001@a"), ("3002", "3002@a")])["3002"]
    alone = [ProgramMemberFilter(program_id=3002)]
    found, make = programs().request(ledger, "3002", alone, Options(), batch_tag=batch.tag)
    spec = make(None)
    assert found == batch
    assert spec.partition_key == batch.key and spec.member == "3002"
    assert spec.members == ("3001", "3002")
    assert spec.request.filter == ProgramMemberFilter(program_ids=(3001, 3002))
    assert [name for name, _ in spec.field_types] == ["programId", "leadId"]  # every field

    found, make = programs().request(ledger, "3002", alone, Options())  # a re-run, no tag
    assert found is None and make(None).members == ("3002",)
    assert make(None).request.filter == alone[0]


def _day(day: str):
    from datetime import datetime, timedelta

    start = datetime.fromisoformat(day + "T00:00:00+00:00")
    return start, start + timedelta(days=1, seconds=-1)
