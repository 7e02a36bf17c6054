"""Tests share helpers through `marketo_assets_tests.support` only: no module of the test suite
imports a test module (`test_*.py`) or a conftest, whose names pytest owns."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def imported_modules(source: str, path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every import in `source`, the text of the suite's file `path`
    (relative imports resolved from there)."""
    package = ["marketo_assets_tests", *path.relative_to(TESTS).parent.parts]
    found = []
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.append((node.lineno, module))
            # `from package import test_x` imports the module test_x itself
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def is_test_module(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return module.startswith("marketo_assets_tests") and (
        last.startswith("test_") or last == "conftest"
    )


def test_no_test_module_imports_another_test_module_or_a_conftest():
    offending = [
        f"{path.relative_to(TESTS.parent)}:{line}: imports {module}"
        for path in sorted(TESTS.rglob("*.py"))
        for line, module in imported_modules(path.read_text(), path)
        if is_test_module(module)
    ]
    assert not offending, (
        "Move the shared helpers to marketo_assets_tests/support/ and import them from "
        "there:\n" + "\n".join(offending)
    )


def test_the_check_sees_relative_and_absolute_imports():
    """Guard for the test above: every spelling of a test-module import is found."""
    source = (
        "from .test_bad_input_runs import failure_text\n"
        "from ..dagster.conftest import SIM_ARGS\n"
        "from marketo_assets_tests.dagster import test_staging\n"
        "import marketo_assets_tests.unit.test_docs\n"
        "from marketo_assets_tests.support.dagster import failure_text\n"
    )
    where = TESTS / "browser" / "test_example.py"
    found = [m for _, m in imported_modules(source, where) if is_test_module(m)]
    assert found == [
        "marketo_assets_tests.browser.test_bad_input_runs",
        "marketo_assets_tests.dagster.conftest",
        "marketo_assets_tests.dagster.test_staging",
        "marketo_assets_tests.unit.test_docs",
    ]
