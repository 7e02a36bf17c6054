"""Shared pieces: result rows, the worker subprocess runner, memory sampling, the table."""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
RESULT_MARK = "BENCH_RESULT "
MB = 1024 * 1024

# The export of rows 1-3: 25 of the simulator's lead fields (every column type Marketo uses:
# integer, string, email, phone, url, datetime, boolean, currency, score, percent), ~268 bytes a
# row, so 2,000,000 leads make a ~536 MB file.
TRANSFER_FIELDS = [
    "id",
    "email",
    "firstName",
    "lastName",
    "company",
    "title",
    "phone",
    "address",
    "city",
    "state",
    "postalCode",
    "country",
    "website",
    "industry",
    "leadSource",
    "leadStatus",
    "leadScore",
    "annualRevenue",
    "numberOfEmployees",
    "unsubscribed",
    "createdAt",
    "updatedAt",
    "customerTier__c",
    "npsScore__c",
    "churnRisk__c",
]
# Simulator leads are spread over January 2025: the monthly partition 2025-01-01 holds them all.
MONTH = {"created_from": "2025-01-01", "created_to": "2025-02-01"}
PARTITION = "2025-01-01"


@dataclass
class Row:
    """One line of the table: our figure, the reference measured in the same run, the goal."""

    key: str
    figure: str
    ours: float
    reference: float
    unit: str
    goal: str
    met: bool | None
    ratio: float | None = None
    ours_text: str = ""
    reference_text: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ratio is None and self.reference:
            self.ratio = self.ours / self.reference
        if not self.ours_text:
            self.ours_text = fmt(self.ours, self.unit)
        if not self.reference_text:
            self.reference_text = fmt(self.reference, self.unit)


def fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "MB":
        return f"{value:.0f} MB"
    if unit == "calls":
        return f"{value:.0f} calls"
    return f"{value:g} {unit}".strip()


def missed(key: str, figure: str, goal: str, error: str) -> Row:
    """A row whose measurement failed: reported as missed, never hidden."""
    return Row(
        key,
        figure,
        0.0,
        0.0,
        "",
        goal,
        False,
        ours_text="failed",
        reference_text="-",
        details={"error": error},
    )


def say(text: str) -> None:
    print(text, flush=True)


def drop_files(*paths: Path) -> None:
    """Remove earlier outputs and flush dirty pages, so every timed transfer starts alike
    (writing into a page cache full of another run's dirty pages is much slower)."""
    for path in paths:
        Path(path).unlink(missing_ok=True)
    os.sync()


class TreeSampler:
    """Polls the resident memory of a process and all its descendants from outside (psutil)."""

    def __init__(self, pid: int, interval: float = 0.02):
        self.pid = pid
        self.interval = interval
        self.peak_tree = 0
        self.peak_single = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            for proc in procs:
                try:
                    rss = proc.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                self.peak_single = max(self.peak_single, rss)
            self.peak_tree = max(self.peak_tree, total)
            self.samples += 1
            self._stop.wait(self.interval)


@dataclass
class WorkerResult:
    data: dict[str, Any]
    wall: float
    peak_tree_rss: int = 0
    peak_single_rss: int = 0
    max_rss_kernel: int = 0  # ru_maxrss of the worker process (largest RSS it ever had), bytes


def run_worker(
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    sample: bool = False,
    timeout: float = 600,
) -> WorkerResult:
    """Run `python -m bench.worker ARGS` and return the JSON it prints after RESULT_MARK."""
    cmd = [sys.executable, "-m", "bench.worker", *args]
    full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    err = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    sampler = TreeSampler(proc.pid) if sample else None
    try:
        if sampler:
            sampler.__enter__()

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line.rstrip("\n"))

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                max_rss = usage.ru_maxrss * 1024
                break
            if time.monotonic() > deadline:
                proc.terminate()  # the worker exits through its cleanup (stops a daemon)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                raise TimeoutError(f"bench worker {args[0]} still running after {timeout:.0f} s")
            time.sleep(0.02)
        reader.join(5)
    finally:
        if sampler:
            sampler.__exit__()
        _kill_group(proc.pid)  # leftovers of the worker (code servers, runs): never outlive it
        if log:
            err.close()
    wall = time.monotonic() - started
    results = [json.loads(x[len(RESULT_MARK) :]) for x in lines if x.startswith(RESULT_MARK)]
    if proc.returncode != 0 or not results:
        where = f" (log: {log})" if log else ""
        raise RuntimeError(f"bench worker {args[0]} failed with exit {proc.returncode}{where}")
    return WorkerResult(
        results[-1],
        wall,
        sampler.peak_tree if sampler else 0,
        sampler.peak_single if sampler else 0,
        max_rss,
    )


def _kill_group(pgid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.5)


def emit(data: dict[str, Any]) -> None:
    """Worker side: hand a result to run_worker."""
    print(RESULT_MARK + json.dumps(data, default=str), flush=True)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import dagster
    import duckdb
    import httpx

    return {
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "dagster": dagster.__version__,
        "duckdb": duckdb.__version__,
        "httpx": httpx.__version__,
        "curl": _curl_version(),
    }


def _curl_version() -> str:
    try:
        out = subprocess.run(["curl", "--version"], capture_output=True, text=True, check=True)
        return out.stdout.split()[1]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "missing"


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


HEADER = ["#", "figure", "ours", "reference", "ratio", "goal", "met?"]


def table_lines(rows: list[Row]) -> list[str]:
    out = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        met = {True: "yes", False: "**no**", None: "-"}[r.met]
        cells = [r.key, r.figure, r.ours_text, r.reference_text, ratio, r.goal, met]
        out.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return out


def short_table_lines(rows: list[Row], names: dict[str, str]) -> list[str]:
    """The table with short figure names (`names`: row key -> name), for the README."""
    head = ["#", "figure", "ours", "reference", "ratio", "goal", "met?"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        met = {True: "yes", False: "**no**", None: "-"}[r.met]
        ours = r.ours_text.split(" (")[0]
        reference = r.reference_text.split(" (")[0]
        cells = [r.key, names.get(r.key, r.figure), ours, reference, ratio, r.goal, met]
        out.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return out


def markdown(rows: list[Row], meta: dict[str, Any]) -> str:
    m = meta["machine"]
    lines = [
        f"Benchmark ({meta['profile']}) of {meta['date']}, {meta['seconds']:.0f} s in all; "
        f"{m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB memory, "
        f"load average {meta['load_before']} before / {meta['load_after']} after.",
        "",
        *table_lines(rows),
        "",
    ]
    notes = [f"- {r.key}: {r.details['note']}" for r in rows if r.details.get("note")]
    if notes:
        lines += ["Notes:", *notes, ""]
    if meta.get("short_names"):
        lines += ["Short table (the README's):", "", *short_table_lines(rows, meta["short_names"])]
        lines.append("")
    return "\n".join(lines)


def save(rows: list[Row], meta: dict[str, Any], out_dir: Path = RESULTS) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    data = {"meta": meta, "rows": [asdict(r) for r in rows]}
    text = markdown(rows, meta)
    paths = []
    for name in (f"bench-{meta['profile']}-{stamp}", f"latest-{meta['profile']}"):
        j = out_dir / f"{name}.json"
        j.write_text(json.dumps(data, indent=2, default=str))
        md = out_dir / f"{name}.md"
        md.write_text(text)
        paths = [j, md]
    return paths[0], paths[1]
