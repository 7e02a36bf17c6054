"""The default executor of every job, including the asset jobs of backfills and UI launches:
in-process, one process per run instead of one per step (each step process re-imports dagster,
dagster_dbt and the definitions: seconds of CPU per step on a small machine).

Pools are still claimed per step by the in-process executor: an export step waits for a
`marketo_bulk_export` slot, a load or dbt step for the `duckdb` slot. Terminating a run stops
the running step and cancels its Marketo job (`cycle.RunTerminated`).

This module holds only the executor: a `@dg.definitions` here hides any other definition in
the same module from the `defs/` loader.
"""

import dagster as dg


@dg.definitions
def executor() -> dg.Definitions:
    return dg.Definitions(executor=dg.in_process_executor)
