"""The Dagster UI in a real browser (Debian's Chromium through Playwright).

One simulator, webserver and daemon for the whole module (see conftest.py). The tests follow
what a user does: look at the asset graph, check the automation page, launch a lead partition
and read its export metadata and checks, then backfill three windows from the Materialize
dialog. Screenshots of each step go to test-artifacts/browser/.
"""

from __future__ import annotations

import itertools
import re
import time

import duckdb
import pytest
from playwright.sync_api import Page, expect

from marketo_assets_tests.support.browser import LOCATION, DagsterUI, screenshot
from marketo_assets_tests.support.dagster import created_at_window

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

# A loaded machine (2 cores shared by several test runs): runs start subprocesses that load the
# definitions, so give them minutes, and the UI's queries tens of seconds.
RUN_TIMEOUT = 600
UI_TIMEOUT = 60_000

SINGLE_PARTITION = "2025-02-01"
BACKFILL_PARTITIONS = ["2025-03-01", "2025-04-01", "2025-05-01"]
BACKFILL_DONE = {"COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
LEAD_ASSETS = [["marketo", "lead_export_files"], ["marketo", "leads"]]


# ---------------------------------------------------------------- helpers


_LAUNCH_RUN = """
mutation ($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename
  ... on LaunchRunSuccess { run { runId } }
  ... on PythonError { message }
  ... on InvalidSubsetError { message }
  ... on RunConfigValidationInvalid { errors { message } }
} }
"""
_RUN_STATUS = "query ($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
_BACKFILL_RUNS = """
query ($id: String!) { runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
  ... on Runs { results { status runConfigYaml tags { key value } } }
} }
"""
_BACKFILL_STATUS = """
query ($id: String!) { partitionBackfillOrError(backfillId: $id) {
  ... on PartitionBackfill { status numPartitions }
  ... on PythonError { message }
} }
"""


def _launch_partition_run(ui: DagsterUI, partition: str) -> str:
    """What the UI's Materialize button sends for one partition of the two lead assets (the
    project's default executor: in-process, one process per run)."""
    params = {
        "runConfigData": {},
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": "__repository__",
            "pipelineName": "__ASSET_JOB",
            "assetSelection": [{"path": path} for path in LEAD_ASSETS],
        },
        "mode": "default",
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
    }
    result = ui.graphql(_LAUNCH_RUN, {"params": params})["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    return result["run"]["runId"]


def _wait_for_run(ui: DagsterUI, run_id: str) -> str:
    deadline = time.monotonic() + RUN_TIMEOUT
    status = None
    while time.monotonic() < deadline:
        status = ui.graphql(_RUN_STATUS, {"id": run_id})["runOrError"]["status"]
        if status in {"SUCCESS", "FAILURE", "CANCELED"}:
            return status
        time.sleep(2)
    raise AssertionError(f"run {run_id} still {status} after {RUN_TIMEOUT}s\n{ui.logs()}")


def _wait_for_backfill(ui: DagsterUI, backfill_id: str) -> dict:
    deadline = time.monotonic() + RUN_TIMEOUT
    backfill: dict = {}
    while time.monotonic() < deadline:
        backfill = ui.graphql(_BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        if backfill.get("status") in BACKFILL_DONE:
            return backfill
        time.sleep(2)
    raise AssertionError(f"backfill {backfill_id} still {backfill} after {RUN_TIMEOUT}s")


def _open(page: Page, ui: DagsterUI, path: str) -> None:
    page.goto(f"{ui.url}{path}", wait_until="domcontentloaded")


def _nav(page: Page, label: str):
    """A link of the left navigation bar, by its visible text."""
    return page.get_by_role("link").filter(has_text=re.compile(rf"^{label}$")).first


def _metadata_value(page: Page, key: str) -> str:
    """The value cell of the metadata table row whose key cell is exactly `key`."""
    row = page.locator("tr").filter(has=page.locator("td", has_text=re.compile(rf"^{key}$")))
    expect(row.first).to_be_visible(timeout=UI_TIMEOUT)
    return row.first.locator("td").nth(1).inner_text().strip()


def _export_job(ui: DagsterUI, partition: str) -> dict:
    """The simulator's record of the latest export job created for a monthly partition."""
    start = created_at_window(partition)["createdAt"]["startAt"]
    jobs = [j for j in ui.sim.state()["jobs"] if j["filter"]["createdAt"]["startAt"] == start]
    assert jobs, f"no export job for {partition}"
    return jobs[-1]


def _partition_rows(ui: DagsterUI) -> dict[str, int]:
    with duckdb.connect(ui.env["DUCKDB_PATH"], read_only=True) as conn:
        return dict(
            conn.execute(
                "SELECT _partition_key, count(*) FROM marketo.marketo.leads GROUP BY 1"
            ).fetchall()
        )


# ---------------------------------------------------------------- tests


def test_asset_graph_connects_marketo_raw_assets_to_dbt_models(page: Page, dagster_ui):
    _open(page, dagster_ui, "/")
    _nav(page, "Lineage").click()
    expect(page.get_by_text("Global asset lineage")).to_be_visible(timeout=UI_TIMEOUT)
    graph = page.locator("svg").filter(has=page.locator("path[marker-end]"))
    for group in ("marketo", "marketo_models"):
        expect(graph.get_by_text(group, exact=True).first).to_be_visible(timeout=UI_TIMEOUT)
    screenshot(page, "01-global-lineage")

    # The dbt staging model's page names the raw Marketo table as its upstream asset.
    _open(page, dagster_ui, "/assets/staging/stg_marketo__leads")
    upstream = page.get_by_text("Upstream assets", exact=True)
    expect(upstream).to_be_visible(timeout=UI_TIMEOUT)
    expect(page.locator("a[href='/assets/marketo/leads']").first).to_be_visible()
    screenshot(page, "02-dbt-model-upstream")

    # Its upstream lineage graph: export files -> leads -> stg_marketo__leads, two edges.
    _open(page, dagster_ui, "/assets/staging/stg_marketo__leads?view=lineage")
    page.get_by_role("button", name="Upstream").click()
    page.get_by_role("button", name="All", exact=True).click()
    for label in ("lead_export_files", "leads", "stg_marketo__leads"):
        expect(page.get_by_text(label, exact=True).last).to_be_visible(timeout=UI_TIMEOUT)
    edges = page.locator("svg path[marker-end]")
    expect(edges).to_have_count(2, timeout=UI_TIMEOUT)
    chain = _edge_chain(page, ["lead_export_files", "leads", "stg_marketo__leads"])
    assert chain == [True, True], "the lineage edges do not join the nodes left to right"
    screenshot(page, "03-dbt-model-lineage")


def _edge_chain(page: Page, labels: list[str]) -> list[bool]:
    """For each consecutive pair of node labels, whether an edge runs from the first node to
    the second: it starts right of the first label and ends left of the second one."""
    # The last match of a label is the graph node (the breadcrumb shows the page's asset first).
    boxes = [page.get_by_text(label, exact=True).last.bounding_box() for label in labels]
    edges = [e.bounding_box() for e in page.locator("svg path[marker-end]").all()]
    result = []
    for source, target in itertools.pairwise(boxes):
        result.append(
            any(
                e["x"] > source["x"]
                and e["x"] + e["width"] <= target["x"] + 2
                and e["x"] + e["width"] > source["x"] + source["width"]
                for e in edges
            )
        )
    return result


def test_automation_page_lists_the_running_list_sensors(page: Page, dagster_ui):
    _open(page, dagster_ui, "/")
    _nav(page, "Automation").click()
    for sensor in ("static_list_sensor", "smart_list_sensor"):
        name = page.get_by_text(sensor, exact=True)
        expect(name).to_be_visible(timeout=UI_TIMEOUT)
        row = (
            page.locator("div")
            .filter(has=name)
            .filter(has=page.locator("input[type=checkbox]"))
            .last
        )
        expect(row).to_contain_text("Standard sensor")
        # The row's on/off switch (the last checkbox; the first one selects the row).
        expect(row.locator("input[type=checkbox]").last).to_be_checked()
    screenshot(page, "04-automation-sensors")

    page.get_by_text("static_list_sensor", exact=True).click()
    expect(page).to_have_url(re.compile(r"/sensors/static_list_sensor"), timeout=UI_TIMEOUT)
    expect(page.get_by_text("Running", exact=True).first).to_be_visible(timeout=UI_TIMEOUT)
    expect(page.get_by_text("export_static_lists").first).to_be_visible()
    screenshot(page, "05-static-list-sensor")


def test_lead_partition_run_shows_export_metadata_and_passed_checks(page: Page, dagster_ui):
    run_id = _launch_partition_run(dagster_ui, SINGLE_PARTITION)
    _open(page, dagster_ui, f"/runs/{run_id}")
    status = _wait_for_run(dagster_ui, run_id)
    assert status == "SUCCESS", dagster_ui.logs()
    expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=UI_TIMEOUT)
    screenshot(page, "06-lead-partition-run")

    job = _export_job(dagster_ui, SINGLE_PARTITION)
    expected_records = dagster_ui.sim.truth(created_at_window(SINGLE_PARTITION))["count"]
    assert job["numberOfRecords"] == expected_records > 0

    _open(
        page,
        dagster_ui,
        f"/assets/marketo/lead_export_files?view=partitions&partition={SINGLE_PARTITION}",
    )
    expect(page.get_by_text("Materialized", exact=True).first).to_be_visible(timeout=UI_TIMEOUT)
    assert _metadata_value(page, "export_id") == job["exportId"]
    assert int(_metadata_value(page, "records")) == expected_records
    assert int(_metadata_value(page, "file_size_bytes")) == job["fileSize"]
    assert _metadata_value(page, "checksum_verified") == "true"
    quota_used = int(_metadata_value(page, "quota_used_today_bytes"))
    assert job["fileSize"] <= quota_used <= dagster_ui.sim.state()["quota_used_bytes"]
    assert float(_metadata_value(page, "quota_used_today_pct")) >= 0
    page.set_viewport_size({"width": 1600, "height": 1800})  # the whole metadata table
    screenshot(page, "07-lead-export-metadata")
    page.set_viewport_size({"width": 1600, "height": 1000})

    _open(page, dagster_ui, "/assets/marketo/leads?view=checks")
    checks = [
        "rows_match_marketo",
        "lead_ids_unique_in_partition",
        "created_at_inside_window",
        "lead_ids_unique_in_table",
        "materialized_partitions_in_table",
    ]
    for check in checks:
        item = (
            page.locator("div")
            .filter(has=page.get_by_text(check, exact=True))
            .filter(has=page.get_by_text("Succeeded", exact=True))
            .last
        )
        expect(item).to_be_visible(timeout=UI_TIMEOUT)
    expect(page.get_by_text("Succeeded", exact=True)).to_have_count(len(checks))
    page.get_by_text("rows_match_marketo", exact=True).first.click()
    expect(page.get_by_text("Passed", exact=True).first).to_be_visible(timeout=UI_TIMEOUT)
    assert int(_metadata_value(page, "loaded_rows")) == expected_records
    screenshot(page, "08-lead-checks-passed")


def test_backfill_of_three_windows_from_the_materialize_dialog_completes(page: Page, dagster_ui):
    # The lead assets' lineage: export files and table, then "Materialize all…" on both.
    _open(page, dagster_ui, "/assets/marketo/leads?view=lineage")
    page.get_by_role("button", name="Upstream").click()
    expect(page.get_by_text("lead_export_files", exact=True).first).to_be_visible(
        timeout=UI_TIMEOUT
    )
    page.get_by_role("button", name="Materialize all…").click()

    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Launch runs to materialize 2 assets")).to_be_visible(
        timeout=UI_TIMEOUT
    )
    # The dialog offers the last 90 days by day; the windows to backfill are older.
    date_range = dialog.get_by_role("button").filter(
        has_text=re.compile(r"^(Last \d+ days|All time)")
    )
    expect(date_range).to_be_visible(timeout=UI_TIMEOUT)
    if not date_range.inner_text().startswith("All time"):
        date_range.click()
        page.get_by_role("menuitem").filter(has_text=re.compile("^All time$")).click()
        expect(date_range).to_contain_text("All time")
    selection = dialog.locator("input[type=text]").first
    selection.fill(f"[{BACKFILL_PARTITIONS[0]}...{BACKFILL_PARTITIONS[-1]}]")
    selection.press("Enter")
    expect(dialog.get_by_text("3 partitions", exact=True)).to_be_visible(timeout=UI_TIMEOUT)

    screenshot(page, "10-backfill-dialog")
    dialog.get_by_role("button", name="Launch backfill").click()

    created = page.get_by_text(re.compile(r"^Created backfill \w+$"))
    expect(created).to_be_visible(timeout=UI_TIMEOUT)
    backfill_id = created.inner_text().split()[-1]

    backfill = _wait_for_backfill(dagster_ui, backfill_id)
    assert backfill["status"] == "COMPLETED_SUCCESS", f"{backfill}\n{dagster_ui.logs()}"
    assert backfill["numPartitions"] == 3
    runs = dagster_ui.graphql(_BACKFILL_RUNS, {"id": backfill_id})["runsOrError"]["results"]
    partitions = sorted(
        tag["value"] for run in runs for tag in run["tags"] if tag["key"] == "dagster/partition"
    )
    assert partitions == BACKFILL_PARTITIONS
    assert all(run["status"] == "SUCCESS" for run in runs)

    _open(page, dagster_ui, f"/runs/b/{backfill_id}")
    expect(page.get_by_text(f"{BACKFILL_PARTITIONS[0]}...{BACKFILL_PARTITIONS[-1]}")).to_be_visible(
        timeout=UI_TIMEOUT
    )
    # "Succeeded" and "In progress" are column headers; the status tag adds a second one.
    expect(page.get_by_text("Succeeded", exact=True)).to_have_count(2, timeout=UI_TIMEOUT)
    expect(page.get_by_text("In progress", exact=True)).to_have_count(1)
    expect(page.get_by_text("100% completed", exact=True)).to_have_count(2)
    screenshot(page, "11-backfill-completed")

    rows = _partition_rows(dagster_ui)
    for partition in BACKFILL_PARTITIONS:
        assert rows[partition] == dagster_ui.sim.truth(created_at_window(partition))["count"]
