"""Processes that claim a pool's last slot at the same moment, round after round: how many got
it in each round (the instance of DAGSTER_HOME in `env`, any storage)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

CLAIM = textwrap.dedent(
    """
    import json, sys, time, uuid
    import dagster as dg

    rounds, every = int(sys.argv[1]), float(sys.argv[2])
    claimed = []
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        storage.get_concurrency_info("p")  # connected, tables checked
        print("ready", flush=True)
        start = float(sys.stdin.readline())  # the same instant for every process
        for r in range(rounds):
            while time.time() < start + r * every:
                time.sleep(0.0005)
            run_id = uuid.uuid4().hex
            if storage.claim_concurrency_slot("p", run_id, "step").is_claimed:
                claimed.append(r)
            time.sleep(every / 2)
            storage.free_concurrency_slots_for_run(run_id)
    print(json.dumps(claimed))
    """
)


def claims_per_round(
    env: dict[str, str], work: Path, processes: int = 4, rounds: int = 6, every: float = 2.0
) -> list[int]:
    """Set pool "p" to 1 slot, then let `processes` processes claim it together `rounds` times
    (each holds it `every` / 2 seconds): the number of processes that got it, per round.
    `every` leaves time for every process to free its claim before the next round, on a busy
    machine too (at 1 s, a round once started while the last holder was still freeing: nobody
    got the slot that round)."""
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import dagster as dg\n"
            "with dg.DagsterInstance.get() as i: i.event_log_storage.set_concurrency_slots('p', 1)",
        ],
        env=env,
        check=True,
        timeout=60,
    )
    script = work / "claim.py"
    script.write_text(CLAIM)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(rounds), str(every)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for p in procs:  # every process has loaded Dagster and opened the instance
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    start = time.time() + 0.5
    for p in procs:
        assert p.stdin is not None
        p.stdin.write(f"{start}\n")
        p.stdin.close()
    for p in procs:
        p.wait(timeout=60 + rounds * every)
    outputs = [p.stdout.read() for p in procs if p.stdout is not None]
    if any(p.returncode for p in procs):
        raise RuntimeError(f"a claiming process failed: {[p.returncode for p in procs]}")
    claimed = [json.loads(out) for out in outputs]
    return [sum(r in c for c in claimed) for r in range(rounds)]
