"""A restarted simulator (same seed) and the persistent ledger: export ids do not repeat."""

from __future__ import annotations

import dagster as dg

from marketo_assets.extract.ledger import ExportLedger
from marketo_assets_tests.support.assets import lead_export_files, leads
from marketo_assets_tests.support.dagster import SIM_ARGS, resources_for


def test_a_restarted_simulator_needs_no_step_retry(simulator_factory, tmp_path):
    """Before: the restarted simulator handed out the ids of the first one again, and the
    export step failed with sqlite3.IntegrityError (UNIQUE exports.export_id) until a retry."""
    instance = dg.DagsterInstance.ephemeral()
    export_ids = []
    for key in ("2025-01-01", "2025-02-01"):
        sim = simulator_factory(**SIM_ARGS)  # a new simulator process, same seed
        result = dg.materialize(
            [lead_export_files, leads],
            partition_key=key,
            resources=resources_for(sim, tmp_path),
            instance=instance,
            raise_on_error=False,
        )
        retried = [e.event_type_value for e in result.all_events if e.is_step_up_for_retry]
        failures = [e.message for e in result.all_events if e.is_step_failure]
        assert result.success and not retried, (retried, failures)
        md = result.asset_materializations_for_node("marketo__lead_export_files")[0].metadata
        export_ids.append(md["export_id"].value)
    assert export_ids[0] != export_ids[1]
    ledger = ExportLedger(tmp_path / "ledger.sqlite")
    assert all(ledger.get(eid).status == "loaded" for eid in export_ids)
