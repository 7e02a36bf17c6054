"""One run at a time exports and loads a partition (the claim lives in the ledger)."""

from __future__ import annotations

import time
from collections.abc import Callable

from .errors import ExportFailed
from .ledger_base import Ledger

__all__ = ["RunStatus", "claim_partition"]

# What the orchestrator knows of a run: "finished", "active" or None (unknown to it).
RunStatus = Callable[[str], str | None]


def claim_partition(
    ledger: Ledger,
    asset: str,
    partition_key: str,
    run_id: str,
    *,
    lease_seconds: float,
    run_status: RunStatus | None = None,
    wait_seconds: float = 0.0,
    poll_seconds: float = 1.0,
) -> None:
    """Claim the partition for `run_id`, or fail naming the run that holds it. A claim of a run
    that ended, or of a killed process, is taken over. With `wait_seconds`, a live claim of
    another run is waited for that long first (a shared export another step is making)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        other = ledger.claim(
            asset, partition_key, run_id, lease_seconds=lease_seconds, run_status=run_status
        )
        if other is None or time.monotonic() >= deadline:
            break
        time.sleep(poll_seconds)
    if other is not None:
        raise ExportFailed(
            f"Partition {partition_key} of {asset} is already being exported or loaded by "
            f"{other.describe()}. This run stops so that a partition never has two Marketo "
            "export jobs or two loads at once; nothing was changed. Let that run finish, "
            "or re-run this partition after it ends.",
            retryable=False,
            metadata={"other_run_id": other.run_id},
        )
