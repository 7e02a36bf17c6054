"""Fixtures for the browser tests: the simulator, `dagster-webserver` and `dagster-daemon` on
loopback with a temporary instance (one set per module), and Debian's Chromium through Playwright.

Chromium is the system one (`.ci/setup-chromium` installs it), never a Playwright download.
Without it the tests skip, unless MARKETO_REQUIRE_ALL=1 (CI), where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from marketo_assets.local.instance import ensure_pools, instance_at, running_daemon
from marketo_assets.simulator.process import run_simulator
from marketo_assets_tests.support.browser import (
    ARTIFACTS,
    DBT_LOCATION,
    DagsterUI,
    chromium_path,
    running_webserver,
    stop_sensor,
)
from marketo_assets_tests.support.dagster import SIM_ARGS, run_env


@pytest.fixture(scope="module")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        reason = (
            "Chromium not found: run .ci/setup-chromium (apt-get install chromium) "
            "or set CHROMIUM_PATH"
        )
        if os.environ.get("MARKETO_REQUIRE_ALL") == "1":
            pytest.fail(f"MARKETO_REQUIRE_ALL=1 and {reason}")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def dagster_ui(chromium, tmp_path_factory) -> Iterator[DagsterUI]:
    """Simulator + daemon + webserver on a temporary DAGSTER_HOME (the project's dagster.yaml:
    queued runs, pools, retries, run monitoring), DuckDB file, staging folder and ledger."""
    from marketo_assets.transform.manifest import ensure_manifest

    ensure_manifest()  # parsed once here, not by each Dagster process (a clean clone has none)
    tmp = tmp_path_factory.mktemp("browser")
    with run_simulator(**SIM_ARGS) as sim:
        env = run_env(sim, tmp)
        with instance_at(env["DAGSTER_HOME"]) as instance:
            ensure_pools(instance)
        ui_log, daemon_log = tmp / "webserver.log", tmp / "daemon.log"
        with (
            running_daemon(env, log_path=daemon_log),
            running_webserver(env, ui_log) as url,
        ):
            ui = DagsterUI(url, env, tmp, sim, ui_log, daemon_log)
            # The dbt models are not under test here (marketo_assets_tests/dagster covers
            # them): keep their automation sensor from adding dbt builds to the runs below.
            stop_sensor(ui, "dbt_models_after_raw_loads", DBT_LOCATION)
            yield ui


@pytest.fixture(scope="module")
def browser(chromium) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            # Root in a container has no user namespaces for Chromium's sandbox.
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, dagster_ui, request) -> Iterator:
    """A fresh page on the Dagster UI; on failure, a screenshot and the server logs."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(60_000)
    page = context.new_page()
    try:
        yield page
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=ARTIFACTS / f"FAILED-{request.node.name}.png", full_page=True)
            print(dagster_ui.logs())
        context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
