"""Fault injection profiles. Decisions come from a seeded RNG, so a run is repeatable when the
client sends the same calls in the same order."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

PROFILES = (
    "flaky",  # ~10% of Marketo calls: HTTP 5xx or a dropped connection
    "download-resets",  # every file download is cut mid-body `resets_per_file` times, then works
    "rate-bursts",  # bursts of 606 / 615 answers
    "token-revoke",  # tokens revoked at random moments (601 or 602 on the next call)
    "job-fail",  # the first `job_fail_times` jobs of each distinct request end Failed
    "file-gone",  # the first Completed job of each distinct request: its file answers 404
    "busy-queue",  # foreign jobs fill the queue (2 processing + 8 queued) for `busy_seconds`
    "stuck-queue",  # jobs stay Queued until the clock moved `stuck_seconds` past queuedAt
    "corrupt",  # the first download of each file has flipped bytes; later ones are correct
    "oversize",  # every file response streams `oversize_bytes` more than the job's fileSize
)

DEFAULTS = {
    "flaky_rate": 0.10,
    "resets_per_file": 3,
    "burst_rate": 0.08,  # chance that a call starts a burst
    "burst_length": 4,  # calls answered 606/615 in one burst
    "revoke_rate": 0.05,
    "job_fail_times": 1,
    "busy_seconds": 300.0,
    "stuck_seconds": 600.0,
    "error_msg": "Export failed: internal error while generating the file",
    "oversize_bytes": 50 << 20,
}


class Drop(Exception):
    """Raised inside a response to break the HTTP connection (uvicorn closes the socket)."""


@dataclass
class Faults:
    seed: int
    active: set[str] = field(default_factory=set)
    options: dict = field(default_factory=lambda: dict(DEFAULTS))
    rng: random.Random = field(init=False)
    burst_left: int = 0
    burst_code: str = "606"
    resets: dict[str, int] = field(default_factory=dict)  # exportId -> resets done
    downloads: dict[str, int] = field(default_factory=dict)  # exportId -> full downloads served
    fail_counts: dict[str, int] = field(default_factory=dict)  # request signature -> failures
    gone_signatures: set[str] = field(default_factory=set)
    gone_jobs: set[str] = field(default_factory=set)
    injected: dict[str, int] = field(default_factory=dict)  # what was injected, for /_sim/state

    def __post_init__(self) -> None:
        self.rng = random.Random(f"faults:{self.seed}")

    def set(self, spec) -> None:
        """spec: "a,b" | ["a", "b"] | {"profiles": [...], option: value} | {"a": {opts}}."""
        profiles, options = parse_spec(spec)
        bad = [p for p in profiles if p not in PROFILES]
        if bad:
            raise ValueError(f"unknown fault profile(s): {', '.join(bad)}; known: {PROFILES}")
        unknown = [k for k in options if k not in DEFAULTS]
        if unknown:
            raise ValueError(f"unknown fault option(s): {', '.join(unknown)}")
        self.active = set(profiles)
        self.options = dict(DEFAULTS) | options
        self.rng = random.Random(f"faults:{self.seed}")
        self.burst_left = 0
        self.resets.clear()
        self.downloads.clear()
        self.fail_counts.clear()
        self.gone_signatures.clear()
        self.gone_jobs.clear()

    def on(self, name: str) -> bool:
        return name in self.active

    def count(self, what: str) -> None:
        self.injected[what] = self.injected.get(what, 0) + 1

    # ---- per call --------------------------------------------------------------------------
    def call_fault(self) -> tuple[str, str] | None:
        """For a Marketo call (not identity, not control): ("http", "500"|"502"|"503"),
        ("drop", ""), ("code", "606"|"615") or None."""
        if self.on("rate-bursts"):
            if self.burst_left <= 0 and self.rng.random() < self.options["burst_rate"]:
                self.burst_left = int(self.options["burst_length"])
                self.burst_code = self.rng.choice(("606", "615"))
            if self.burst_left > 0:
                self.burst_left -= 1
                self.count(f"burst_{self.burst_code}")
                return "code", self.burst_code
        if self.on("flaky") and self.rng.random() < self.options["flaky_rate"]:
            kind = self.rng.choice(("500", "502", "503", "drop"))
            self.count(f"flaky_{kind}")
            return ("drop", "") if kind == "drop" else ("http", kind)
        return None

    def revoke_now(self) -> str | None:
        """token-revoke: None, or "601"/"602" meaning revoke all tokens as invalid/expired."""
        if self.on("token-revoke") and self.rng.random() < self.options["revoke_rate"]:
            code = self.rng.choice(("601", "602"))
            self.count(f"revoke_{code}")
            return code
        return None

    # ---- jobs ------------------------------------------------------------------------------
    def job_fails(self, signature: str) -> bool:
        if not self.on("job-fail"):
            return False
        n = self.fail_counts.get(signature, 0)
        if n < int(self.options["job_fail_times"]):
            self.fail_counts[signature] = n + 1
            self.count("job_fail")
            return True
        return False

    def mark_completed(self, export_id: str, signature: str) -> None:
        """file-gone: the first job of each signature to complete loses its file."""
        if self.on("file-gone") and signature not in self.gone_signatures:
            self.gone_signatures.add(signature)
            self.gone_jobs.add(export_id)
            self.count("file_gone")

    def file_gone(self, export_id: str) -> bool:
        return export_id in self.gone_jobs

    def stuck(self, queued_at: float, now: float) -> bool:
        return self.on("stuck-queue") and now < queued_at + float(self.options["stuck_seconds"])

    # ---- downloads -------------------------------------------------------------------------
    def download_plan(self, export_id: str, length: int) -> tuple[int | None, bool]:
        """(cut_after_bytes or None, corrupt) for one file response of `length` bytes.
        Tiny probes (< 2 bytes, e.g. Range 0-0) are never disturbed."""
        if length < 2:
            return None, False
        cut = None
        if self.on("download-resets"):
            done = self.resets.get(export_id, 0)
            if done < int(self.options["resets_per_file"]):
                self.resets[export_id] = done + 1
                cut = max(1, length // 2)
                self.count("download_reset")
        corrupt = False
        if self.on("corrupt") and cut is None:
            n = self.downloads.get(export_id, 0)
            self.downloads[export_id] = n + 1
            if n == 0:
                corrupt = True
                self.count("corrupt_download")
        return cut, corrupt

    def extra_bytes(self, length: int) -> int:
        """Filler bytes sent after a file response of `length` bytes (`oversize`)."""
        if length < 2 or not self.on("oversize"):
            return 0
        self.count("oversize_download")
        return int(self.options["oversize_bytes"])


def parse_spec(spec) -> tuple[list[str], dict]:
    if spec is None:
        return [], {}
    if isinstance(spec, str):
        return [p.strip() for p in spec.split(",") if p.strip()], {}
    if isinstance(spec, list | tuple):
        return [str(p) for p in spec], {}
    if isinstance(spec, dict):
        if "profiles" in spec:
            profiles, _ = parse_spec(spec["profiles"])
            return profiles, {k: v for k, v in spec.items() if k != "profiles"}
        profiles, options = [], {}
        for name, opts in spec.items():
            profiles.append(name)
            if isinstance(opts, dict):
                options.update(opts)
        return profiles, options
    raise ValueError("fault spec must be a string, a list or an object")


def flip(chunk: bytes, offset: int, start: int, length: int) -> bytes:
    """Corrupt 3 bytes of a response at fixed places inside [start, start+length)."""
    targets = {start + length // 4, start + length // 2, start + (3 * length) // 4}
    hits = [t - offset for t in targets if offset <= t < offset + len(chunk)]
    if not hits:
        return chunk
    b = bytearray(chunk)
    for h in hits:
        b[h] ^= 0x01
    return bytes(b)
