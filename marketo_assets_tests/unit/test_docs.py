"""The README stays a front door, and the docs point at things that exist.

A reader follows the README's links and looks up the modules the docs name: a moved file or a
renamed module must fail here, not confuse the next engineer.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted(
    [
        README,
        ROOT / "deploy" / "README.md",
        ROOT / "marketo_assets" / "simulator" / "README.md",
        ROOT / "marketo_assets_tests" / "spec" / "README.md",
        *(ROOT / "docs").glob("*.md"),
    ]
)
# Files whose comments name modules (a module name in them must exist too).
COMMENTED = [ROOT / "dagster_home" / "dagster.yaml", ROOT / "deploy" / "dagster.yaml"]

# Where a path written in the docs may be relative to: the repository, the package, the tests
# (`dagster/test_x.py`), the dbt project (`macros/x.sql`).
BASES = [ROOT, ROOT / "marketo_assets", ROOT / "marketo_assets_tests", ROOT / "dbt_project"]

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# A path to a Python file: `marketo_assets/warehouse/types.py`, `defs/executor.py`,
# `dagster/test_staging.py`, `bench/run.py`.
PY_PATH = re.compile(r"(?<![\w./<…-])((?:[A-Za-z_][\w-]*/)+[A-Za-z_]\w*\.py)\b")
# A test named with its file: `dagster/test_staging.py::test_staged_files_private`, or a
# family of tests: `unit/test_warehouse_values.py::test_ssv_*`.
TEST_REF = re.compile(r"((?:[A-Za-z_]\w*/)+test_\w+\.py)::(test_\w+)(\*?)")
# A dotted module name, maybe ending in an attribute: `marketo_assets.local.instance.ensure_pools`.
DOTTED = re.compile(r"\bmarketo_assets(?:\.[A-Za-z_]\w*)+")


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _without_code_blocks(text: str) -> str:
    """Markdown without fenced code blocks (shell examples hold paths of the user's machine)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def _anchors(doc: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings: `## Tables and schema changes` ->
    `tables-and-schema-changes`."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", _without_code_blocks(_text(doc)), re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def _module_file(dotted: list[str]) -> Path | None:
    base = ROOT.joinpath(*dotted)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _dotted_exists(name: str) -> bool:
    """`a.b.c` is a module, or `a.b` is a module that defines `c` (a function, class, name)."""
    parts = name.split(".")
    if _module_file(parts):
        return True
    module = _module_file(parts[:-1])
    if module is None:
        return False
    attr = re.escape(parts[-1])
    return (
        re.search(rf"^\s*(?:def|class|async def)\s+{attr}\b|^{attr}\s*[:=]", _text(module), re.M)
        is not None
    )


def test_readme_is_at_most_10_kb():
    size = README.stat().st_size
    assert size <= 10 * 1024, (
        f"README.md is {size} bytes, over 10 KB: move details into docs/ and link them"
    )


def test_the_readme_links_every_doc():
    linked = {m.group(1).split("#")[0] for m in LINK.finditer(_text(README))}
    missing = [
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "docs").glob("*.md")
        if p.relative_to(ROOT).as_posix() not in linked
    ]
    assert not missing, f"docs not linked from README.md (nobody finds them): {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_point_at_existing_files(doc: Path):
    broken = []
    for match in LINK.finditer(_without_code_blocks(_text(doc))):
        target = match.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        file = (doc.parent / path) if path else doc
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            broken.append(target)  # a heading that was renamed or removed
    assert not broken, f"{doc.relative_to(ROOT)} links to files that do not exist: {broken}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_python_files_named_in_the_docs_exist(doc: Path):
    text = _without_code_blocks(_text(doc))
    missing = sorted(
        {
            path
            for path in PY_PATH.findall(text)
            if not any((base / path).is_file() for base in [*BASES, doc.parent])
        }
    )
    assert not missing, (
        f"{doc.relative_to(ROOT)} names Python files that do not exist (moved or renamed? "
        f"update the text): {missing}"
    )


@pytest.mark.parametrize("doc", DOCS + COMMENTED, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_modules_named_in_docs_and_instance_comments_exist(doc: Path):
    missing = sorted({name for name in DOTTED.findall(_text(doc)) if not _dotted_exists(name)})
    assert not missing, (
        f"{doc.relative_to(ROOT)} names modules that do not exist (moved or renamed? update the "
        f"text): {missing}"
    )


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_tests_named_in_the_docs_exist(doc: Path):
    missing = []
    for path, name, star in set(TEST_REF.findall(_text(doc))):
        files = [base / path for base in BASES if (base / path).is_file()]
        pattern = rf"^def {name}\w*\(" if star else rf"^def {name}\("
        if not any(re.search(pattern, _text(f), re.M) for f in files):
            missing.append(f"{path}::{name}{star}")
    assert not missing, (
        f"{doc.relative_to(ROOT)} cites tests that do not exist (renamed? update the text): "
        f"{sorted(missing)}"
    )


def test_the_checks_catch_what_they_look_for():
    """The patterns find paths, links and modules as the docs write them."""
    assert PY_PATH.findall("see `marketo_assets/warehouse/types.py` and defs/executor.py.") == [
        "marketo_assets/warehouse/types.py",
        "defs/executor.py",
    ]
    assert PY_PATH.findall("`…/x.py`, `<dir>/y.py`") == []
    assert _dotted_exists("marketo_assets.local.instance.ensure_pools")
    assert not _dotted_exists("marketo_assets.instance")
    assert not _dotted_exists("marketo_assets.local.instance.no_such_function")
    assert "tables-and-schema-changes" in _anchors(ROOT / "docs" / "ARCHITECTURE.md")
    assert [m.group(1) for m in LINK.finditer("[a](docs/X.md) [b](https://x.y)")] == [
        "docs/X.md",
        "https://x.y",
    ]
