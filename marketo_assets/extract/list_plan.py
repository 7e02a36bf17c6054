"""What one list-sensor tick does, without Dagster or Marketo: which list partitions to add and
delete, which exports to request, the new cursor (`plan_tick`), and the keys of list partitions;
`run_tick` and `run_program_tick` are whole ticks of the list and program sensors.

Run keys are `<partition key>@<list updatedAt>` (plus `@refresh-<n>` for periodic refreshes),
so re-evaluating a tick never requests a run twice; a catalog refresh is requested whenever
lists of the type were added, deleted or renamed.
"""

import fnmatch
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from marketo_assets.settings import ListSelection, SettingsError

PROGRAMS = "MARKETO_PROGRAMS"


def list_partition_key(kind: str, list_id: int) -> str:
    return f"{kind}-{int(list_id)}"


def list_id_from_key(kind: str, partition_key: str) -> int:
    prefix = f"{kind}-"
    if not partition_key.startswith(prefix) or not partition_key[len(prefix) :].isdigit():
        raise ValueError(f"not a {kind} list partition key: {partition_key!r}")
    return int(partition_key[len(prefix) :])


@dataclass(frozen=True)
class DiscoveredList:
    id: int
    name: str
    updated_at: datetime | None

    @property
    def updated_key(self) -> str:
        if self.updated_at is None:
            return "none"
        return self.updated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class TickPlan:
    add: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    runs: list[tuple[str, str, str, int]] = field(default_factory=list)  # key, run key, why, id
    waiting: list[str] = field(default_factory=list)  # changed, but the filter is not enabled
    catalog_run_key: str | None = None
    cursor: dict = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)  # selection entries no list matches


def load_cursor(raw: str | None) -> dict:
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    data.setdefault("lists", {})
    data.setdefault("catalog", "")
    data.setdefault("catalog_gen", 0)
    return data


def plan_tick(
    kind: str,
    discovered: Iterable[DiscoveredList],
    selection: ListSelection,
    existing_keys: Iterable[str],
    cursor: dict,
    now: datetime,
    refresh: timedelta | None = None,
    runs_enabled: bool = True,
    partition_key: Callable[[int], str] | None = None,
) -> TickPlan:
    """What one tick does (pure: no Marketo, no instance).

    - a selected list without a partition gets one; partitions of lists that are gone or no
      longer selected are deleted;
    - a run is requested when a selected list is new (not in the cursor or without partition),
      its updatedAt differs from the cursor's, or `refresh` passed since its last run request;
    - with `runs_enabled=False` (smart-list filter not enabled) no run is requested and the
      cursor keeps the old state of those lists, so they run once the filter is enabled.
    `partition_key(id)`: the partition of a list (default `<kind>-<id>`); programs use their id.
    """
    key_of = partition_key or (lambda list_id: list_partition_key(kind, list_id))
    lists = list(discovered)
    existing = set(existing_keys)
    previous: dict = cursor.get("lists", {})
    plan = TickPlan()
    new_lists: dict[str, dict] = {}
    selected = sorted((lst for lst in lists if selection.matches(lst.id, lst.name)), key=_id)
    for lst in selected:
        key = key_of(lst.id)
        prev = previous.get(key)
        if key not in existing:
            plan.add.append(key)
        reason = None
        if prev is None or key not in existing:
            reason = "new"
        elif prev.get("updated_at") != lst.updated_key:
            reason = "updated"
        elif refresh and _age(prev.get("requested_at"), now) >= refresh:
            reason = "refresh"
        if reason is None:
            assert prev is not None  # only a list seen before is unchanged
            new_lists[key] = prev
            continue
        if not runs_enabled:
            plan.waiting.append(key)
            if prev is not None:
                new_lists[key] = prev
            continue
        run_key = f"{key}@{lst.updated_key}"
        if reason == "refresh":
            assert refresh is not None
            run_key += f"@refresh-{int(now.timestamp() // refresh.total_seconds())}"
        plan.runs.append((key, run_key, reason, lst.id))
        new_lists[key] = {
            "updated_at": lst.updated_key,
            "requested_at": now.astimezone(UTC).isoformat(timespec="seconds"),
        }
    wanted = {key_of(lst.id) for lst in selected}
    plan.delete = sorted(existing - wanted)
    plan.unmatched = unmatched_entries(selection, lists)

    digest = hashlib.sha256(
        json.dumps(sorted((lst.id, lst.name) for lst in lists)).encode()
    ).hexdigest()[:16]
    generation = int(cursor.get("catalog_gen", 0))
    if digest != cursor.get("catalog"):
        generation += 1
        plan.catalog_run_key = f"lists-{kind}@{generation}-{digest}"
    plan.cursor = {"lists": new_lists, "catalog": digest, "catalog_gen": generation}
    return plan


@dataclass
class Tick:
    """What a list-sensor tick returns, as plain values: partitions to add and delete, runs to
    request, the new cursor (None: skip only, nothing to apply), log lines (level, text)."""

    runs: list[tuple[str, str, str, int]] = field(default_factory=list)  # as in TickPlan
    catalog_run_key: str | None = None
    add: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    cursor: str | None = None
    skip: str | None = None
    logs: list[tuple[str, str]] = field(default_factory=list)


def run_tick(
    kind: str,
    selection: ListSelection,
    existing: set[str],
    raw_cursor: str | None,
    now: datetime,
    refresh: timedelta | None,
    discover: Callable[[], list[DiscoveredList]],
    filter_enabled: Callable[[int], tuple[bool, str | None]] | None = None,
) -> Tick:
    """One tick of the `kind` list sensor: `discover` lists Marketo's lists (not called for an
    empty selection); `filter_enabled(list_id)` (smart lists) says whether runs may be
    requested, and why not."""
    if selection.empty:
        setting = f"MARKETO_{kind.upper()}_LISTS"
        return _empty_selection(
            existing, f"No {kind} list selected: set {setting} (ids, names or patterns)."
        )
    discovered = discover()
    cursor = load_cursor(raw_cursor)
    plan = plan_tick(kind, discovered, selection, existing, cursor, now, refresh)
    notice = None
    if filter_enabled and plan.runs:
        enabled, notice = filter_enabled(plan.runs[0][3])
        if not enabled:
            plan = plan_tick(kind, discovered, selection, existing, cursor, now, refresh, False)
    tick = Tick(plan.runs, plan.catalog_run_key, plan.add, plan.delete)
    tick.cursor = json.dumps(plan.cursor, sort_keys=True)
    if plan.delete:
        tick.logs.append(
            ("info", f"Deleting partitions of deleted or unselected lists: {plan.delete}")
        )
    tick.logs += [("info", f"{key}: {why}; requesting run {run}") for key, run, why, _ in plan.runs]
    missing = unmatched_message(kind, plan.unmatched, len(discovered)) if plan.unmatched else ""
    tick.logs += [("warning", line) for line in (notice, missing) if line]
    if not plan.runs and not plan.catalog_run_key:
        tick.skip = notice or f"No {kind} list changed ({len(plan.cursor['lists'])} selected)."
        if missing:
            tick.skip = f"{tick.skip} {missing}"
    return tick


def run_program_tick(
    selection: ListSelection,
    existing: set[str],
    raw_cursor: str | None,
    now: datetime,
    refresh: timedelta | None,
    discover: Callable[[], list[DiscoveredList]],
) -> Tick:
    """One tick of the program sensor (as `run_tick`, partitions keyed by program id). A name
    in MARKETO_PROGRAMS that Marketo does not have refuses the whole tick (SettingsError)."""
    if selection.empty:
        return _empty_selection(existing, f"No program selected: set {PROGRAMS}.")
    found = discover()
    unknown = sorted(selection.names - {p.name for p in found})
    if unknown:  # a typo: export nothing rather than a partial, silent selection
        raise SettingsError(
            f"{PROGRAMS} names program(s) Marketo does not have: {unknown} (names are exact "
            f"and case-sensitive; {len(found)} programs found). Fix {PROGRAMS}; nothing "
            "was requested."
        )
    cursor = load_cursor(raw_cursor)
    plan = plan_tick("program", found, selection, existing, cursor, now, refresh, partition_key=str)
    tick = Tick(plan.runs, None, plan.add, plan.delete, json.dumps(plan.cursor, sort_keys=True))
    if plan.unmatched:
        missing = unmatched_message("program", plan.unmatched, len(found), PROGRAMS, "programs")
        tick.logs.append(("warning", missing))
    if not plan.runs:
        tick.skip = f"No program changed ({len(plan.cursor['lists'])})."
    return tick


def _empty_selection(existing: set[str], message: str) -> Tick:
    """The tick of an empty selection: skip saying `message`; delete the partitions there are."""
    if not existing:
        return Tick(skip=message)
    gone = sorted(existing)
    logs = [("info", f"Selection is empty: deleting partitions {gone}")]
    return Tick(delete=gone, cursor=json.dumps(load_cursor(None)), skip=message, logs=logs)


def unmatched_entries(selection: ListSelection, lists: list[DiscoveredList]) -> list[str]:
    """Entries of the selection that match no list Marketo has (a typo, a deleted list)."""
    ids = {lst.id for lst in lists}
    names = {lst.name for lst in lists}
    out = [f"id {i}" for i in sorted(selection.ids - ids)]
    out += [f"name {n!r}" for n in sorted(selection.names - names)]
    out += [
        f"pattern {p!r}"
        for p in selection.patterns
        if not any(fnmatch.fnmatchcase(n, p) for n in names)
    ]
    return out


def unmatched_message(
    kind: str, unmatched: list[str], lists: int, setting: str = "", noun: str = ""
) -> str:
    setting, noun = setting or f"MARKETO_{kind.upper()}_LISTS", noun or f"{kind} lists"
    return (
        f"{setting} selects {', '.join(unmatched)}, but none of the {lists} "
        f"{noun} in Marketo has that id or name (names are exact and case-sensitive). "
        "Fix the spelling or the id; for names with commas use a JSON array, and `name:...` "
        "for a name made of digits or holding * ? [. Nothing is exported for these entries."
    )


def _id(lst: DiscoveredList) -> int:
    return lst.id


def _age(requested_at: str | None, now: datetime) -> timedelta:
    if not requested_at:
        return timedelta.max
    try:
        return now - datetime.fromisoformat(requested_at)
    except ValueError:
        return timedelta.max
