"""Programs and their members: the catalog `programs.json` lists, the program member describe,
and each member's values (derived from the seed, never stored).
"""

from __future__ import annotations

from dataclasses import dataclass

from .data import DataSet, mix64

FIRST_ID = 3001
# (type, channel, statuses, success statuses)
_KINDS = (
    ("default", "Email Blast", ("Member", "Engaged"), ("Engaged",)),
    ("webinar", "Webinar", ("Invited", "Registered", "Attended", "No Show"), ("Attended",)),
    ("event", "Tradeshow", ("Invited", "Visited Booth", "Talked to Sales"), ("Talked to Sales",)),
    ("nurture", "Nurture", ("Member", "Engaged"), ("Engaged",)),
    ("default", "Content", ("Member", "Downloaded", "Shared"), ("Downloaded", "Shared")),
)
_NAMES = (
    "2025 Newsletter",
    "Webinar: Data Warehouses 101",
    'Berlin Trade Show "Tech Days"',
    "Nurture — Onboarding, EMEA",
    "Whitepaper: Pipeline Hygiene",
    "Spring Promo",
    "Webinar: Activity Scoring",
    "Customer Summit Tokyo 東京",
    "Nurture — Re-engagement",
    "eBook: Attribution",
)
DENSITIES = (3, 10, 20, 5, 8, 12, 25, 50, 4, 0)  # 1 in d leads is a member; 0 = none
TRACKS = ("Main Track", "Advanced Track", "Re-engage")
REASONS = (None, "Changed by Smart Campaign", 'Filled out form "Contact Us", step 2', None)


@dataclass(frozen=True)
class Program:
    id: int
    name: str
    type: str
    channel: str
    statuses: tuple[str, ...]
    success: tuple[str, ...]
    density: int
    salt: int
    created: int
    updated: int

    @property
    def nurture(self) -> bool:
        return self.type == "nurture"


def make_programs(ds: DataSet, count: int) -> list[Program]:
    out = []
    t0 = ds.start - 60 * 86400
    for k in range(count):
        kind = _KINDS[k % len(_KINDS)]
        name = _NAMES[k % len(_NAMES)]
        if k >= len(_NAMES):
            name += f" ({k // len(_NAMES) + 1})"
        h = mix64(ds.seed * 7777 + k)
        created = t0 + h % (50 * 86400)
        updated = min(created + (h >> 32) % (200 * 86400), ds.as_of)
        out.append(
            Program(
                FIRST_ID + k,
                name,
                kind[0],
                kind[1],
                kind[2],
                kind[3],
                DENSITIES[k % len(DENSITIES)],
                mix64(ds.seed * 31337 + FIRST_ID + k),
                created,
                max(created, updated),
            )
        )
    return out


# The program member describe: (REST name, display name, data type)
MEMBER_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("programId", "Program Id", "integer"),
    ("leadId", "Lead Id", "integer"),
    ("program", "Program", "string"),
    ("statusName", "Status Name", "string"),
    ("statusReason", "Status Reason", "string"),
    ("membershipDate", "Membership Date", "datetime"),
    ("reachedSuccess", "Reached Success", "boolean"),
    ("reachedSuccessDate", "Reached Success Date", "datetime"),
    ("acquiredBy", "Acquired By", "boolean"),
    ("isExhausted", "Is Exhausted", "boolean"),
    ("nurtureCadence", "Nurture Cadence", "string"),
    ("nurtureTrack", "Nurture Track", "string"),
    ("attendanceLikelihood", "Attendance Likelihood", "integer"),
    ("registrationLikelihood", "Registration Likelihood", "integer"),
    ("webinarUrl", "Webinar Url", "url"),
    ("createdAt", "Created At", "datetime"),
    ("updatedAt", "Updated At", "datetime"),
)
MEMBER_FIELD_NAMES = tuple(f[0] for f in MEMBER_FIELDS)


def is_member(p: Program, lead: int) -> bool:
    return p.density > 0 and mix64(lead ^ p.salt) % p.density == 0


def members(ds: DataSet, p: Program):
    """Lead ids of the program's members, ascending (one pass over the leads)."""
    if p.density <= 0:
        return
    salt, d = p.salt, p.density
    for i in range(1, ds.n + 1):
        if mix64(i ^ salt) % d == 0:
            yield i


def member_values(ds: DataSet, p: Program, lead: int) -> dict:
    """One membership as typed values (None = empty)."""
    h = mix64(lead ^ p.salt ^ 0x5BD1E995)
    as_of = ds.as_of
    base = max(ds.created[lead - 1], p.created)
    joined = min(base + (h >> 8) % (30 * 86400), max(as_of, base))
    status = p.statuses[(h >> 20) % len(p.statuses)]
    success = status in p.success
    updated = min(joined + (h >> 32) % (20 * 86400), max(as_of, joined))
    webinar = p.type == "webinar"
    live = p.type in ("webinar", "event")
    return {
        "programId": p.id,
        "leadId": lead,
        "program": p.name,
        "statusName": status,
        "statusReason": REASONS[(h >> 28) % len(REASONS)],
        "membershipDate": joined,
        "reachedSuccess": success,
        "reachedSuccessDate": min(joined + 3600 * ((h >> 36) % 48), updated) if success else None,
        "acquiredBy": (h >> 52) % 3 == 0,
        "isExhausted": p.nurture and (h >> 44) % 5 == 0,
        "nurtureCadence": ("paused" if (h >> 48) % 4 == 0 else "normal") if p.nurture else None,
        "nurtureTrack": TRACKS[(h >> 40) % len(TRACKS)] if p.nurture else None,
        "attendanceLikelihood": (h >> 12) % 101 if live else None,
        "registrationLikelihood": (h >> 16) % 101 if live else None,
        "webinarUrl": f"https://webinar.example.com/join?p={p.id}&l={lead}" if webinar else None,
        "createdAt": joined,
        "updatedAt": updated,
    }
