"""Several partitions served by one Marketo job (program members: `programIds`, at most 10).

Each partition (program) stays its own partition; only the job and its file are shared. The
sensor groups the runs one tick requests into batches (`plan_batches`) and tags each run with
its batch (`Batch.tag`). The export step of any member exports the batch under the ledger slot
`Batch.key`: the first step to claim the slot creates (or reattaches to) the job and downloads
it, the others wait for the claim and reuse the same verified file (the engine's usual reuse
of a downloaded export of the same request). The ledger's `export_members` rows say which
partitions the file holds; each partition's load reads only its rows, and the file is deleted
once every member is loaded (or has a newer export).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import ExportFailed
from .ledger_base import Ledger

__all__ = ["MAX_BATCH", "Batch", "batch_for", "open_members", "plan_batches"]

MAX_BATCH = 10  # Marketo's limit of programIds per program member export


@dataclass(frozen=True)
class Batch:
    """The partitions one job exports, requested together (`token`: which request)."""

    token: str
    members: tuple[str, ...]

    @property
    def key(self) -> str:
        """The batch's ledger slot (its job's partition key in the ledger)."""
        return f"batch-{self.token}:{','.join(self.members)}"

    @property
    def tag(self) -> str:
        return f"{self.token}:{','.join(self.members)}"

    @classmethod
    def parse(cls, tag: str, partition_key: str) -> Batch:
        """The batch of a run's tag; ExportFailed (before any call) when it cannot work."""
        token, _, keys = tag.partition(":")
        members = tuple(k for k in keys.split(",") if k)
        if not token or not members or len(set(members)) != len(members):
            problem = "it is not `<token>:<key>,<key>,...`"
        elif len(members) > MAX_BATCH:
            problem = f"it names {len(members)} partitions; Marketo exports at most {MAX_BATCH}"
        elif partition_key not in members:
            problem = f"it does not name this run's partition {partition_key}"
        else:
            return cls(token, members)
        raise ExportFailed(
            f"The run's export batch tag {tag!r} cannot be used: {problem}. Remove the tag to "
            "export this partition alone; nothing was exported.",
            retryable=False,
        )


def plan_batches(runs: Sequence[tuple[str, str]], size: int = MAX_BATCH) -> dict[str, Batch]:
    """{partition key: its batch} for the runs (partition key, run key) requested together, in
    chunks of at most `size` in the given order. A chunk of one is not a batch (left out: that
    partition is exported alone, with its own filter)."""
    if not 1 <= size <= MAX_BATCH:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH} partitions ({size} given)")
    out: dict[str, Batch] = {}
    for start in range(0, len(runs), size):
        chunk = runs[start : start + size]
        if len(chunk) < 2:
            continue
        digest = hashlib.sha256("\n".join(run_key for _, run_key in chunk).encode())
        batch = Batch(digest.hexdigest()[:12], tuple(key for key, _ in chunk))
        out.update({key: batch for key, _ in chunk})
    return out


def _done(ledger: Ledger, asset: str, batch: Batch) -> set[str]:
    """Members already loaded from (or re-exported after) an export of this batch."""
    return {
        m["partition_key"]
        for m in ledger.members(asset)
        if m["slot"] == batch.key and m["status"] != "pending"
    }


def batch_for(ledger: Ledger, asset: str, tag: str, partition_key: str) -> Batch | None:
    """The batch a run's export step exports, or None to export the partition alone: no tag,
    or the partition was already loaded from (or re-exported after) this batch's export, i.e.
    the run is a re-execution: it gets its own job instead of one for the whole batch."""
    if not tag:
        return None
    batch = Batch.parse(tag, partition_key)
    return None if partition_key in _done(ledger, asset, batch) else batch


def open_members(ledger: Ledger, asset: str, batch: Batch) -> tuple[str, ...]:
    """The members still to load from the batch's export (the job always exports them all, so
    every member's step asks Marketo for the same request and reuses the same file)."""
    done = _done(ledger, asset, batch)
    return tuple(k for k in batch.members if k not in done)
