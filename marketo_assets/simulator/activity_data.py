"""Activities, generated lazily and deterministically from the seed, one day at a time.

Nothing is stored: a day's activities are derived from (seed, day, index) with cheap hashes, so
an export or a truth query costs the days of its window, whatever the subscription's size. Per
day the count follows the number of leads that exist by then (total = leads x
`activities_per_lead`); each activity picks a lead that exists (and is not deleted or merged
away) at that moment. Besides those, every lead has a "New Lead" activity at its createdAt and
every merge a "Merge Leads" activity on the surviving lead. "Delete Lead" (37) is never
exported (Marketo answers deletions through deletedleads.json).
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from .activities import TYPES
from .data import FIELDS, DataSet, iso, mix64
from .lifecycle import Lifecycle
from .programs import Program

TAIL = 30 * 86400  # activities go on 30 days after the last lead was created (not past the clock)
DELETE_LEAD = 37
NEW_LEAD, MERGE = 12, 32
# How often each type happens (per mille, roughly Marketo's usual mix).
MIX = {1: 240, 6: 150, 7: 140, 10: 110, 13: 70, 22: 70, 11: 40, 3: 40, 104: 40, 2: 30}
MIX |= {24: 25, 46: 15, 8: 8, 25: 5, 9: 3}
TYPE_TABLE = tuple(t for t, w in MIX.items() for _ in range(w))
EXPORTABLE_TYPES = frozenset(t[0] for t in TYPES if t[0] != DELETE_LEAD)
PRIMARY = {t[0]: t[3][0] for t in TYPES}  # type id -> primary attribute name
ATTRS = {t[0]: tuple(t[4]) for t in TYPES}
# asset groups for the primary attribute value filters (Marketo's table)
GROUPS = {2: "Web Form", 13: "Lead Field", 22: "Lead Field", 24: "Static List"}
GROUPS |= {25: "Static List", 104: "Marketing Program"}
CAMPAIGN_TYPES = frozenset({6, 7, 8, 9, 10, 11, 13, 22, 24, 25, 46, 104})

_PAGES: tuple[str, ...] = ("", "pricing", "products/bulk-export", "blog/activity-data")
_PAGES += ("contact", "docs/api", "careers", "events/berlin", "de/produkte", "ja/価格")
WEBPAGES = tuple((4001 + k, f"www.example.com/{p}") for k, p in enumerate(_PAGES))
FORMS = tuple(
    (1101 + k, n)
    for k, n in enumerate(
        ("Contact Us", "Webinar Registration", "Newsletter Signup", 'Demo "Request"', "Download")
    )
)
LINKS = tuple(
    (5001 + k, f"https://www.example.com/{p}?utm_source=email") for k, p in enumerate(_PAGES)
)
EMAILS = tuple(
    (6001 + k, f"{prog}.{mail}")
    for k, (prog, mail) in enumerate(
        (p, m)
        for p in ("2025 Newsletter", "Spring Promo", "Webinar: Data Warehouses 101", "Nurture")
        for m in ("Invite", "Reminder", "Follow-up, v2", "Digest")
    )
)
SCORE_FIELDS = tuple(
    (1 + 2 * i, f.display)
    for i, f in enumerate(FIELDS)
    if f.name in ("leadScore", "relativeScore", "npsScore__c")
)
CHANGE_FIELDS = tuple(
    (1 + 2 * i, f.display)
    for i, f in enumerate(FIELDS)
    if f.updateable and f.exportable and f.name not in ("email", "leadScore")
)
MILESTONES = tuple(
    (k + 1, n) for k, n in enumerate(("Visited pricing", "Requested demo", "Opened 5 emails"))
)
AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Gecko/20100101 Firefox/127.0",
)
DEVICES = (("Desktop", False, "Windows"), ("iPhone", True, "iOS"), ("Pixel 8", True, "Android"))
REASONS = ('Changed by Smart Campaign "Scoring", step 2', "Form fill: Contact Us", "API, bulk")
SOURCES = ("Web form fillout", "Smart Campaign", "Web service API", "Lead Database")
USERS = ("marketo.admin@example.com", "System", "api.user@example.com")
STATUSES = ("Member", "Engaged", "Invited", "Registered", "Attended")


@dataclass(frozen=True)
class Filter:
    """A validated activity selection: createdAt window [start, end] (inclusive) and options."""

    start: int
    end: int
    types: frozenset[int] | None = None
    value_ids: frozenset[int] | None = None
    values: frozenset[str] | None = None


# A row: guid, leadId, activityDate, typeId, campaignId, valueId, value, attributes, actionResult
Row = tuple[str, int, int, int, int | None, int | None, str | None, dict, str]


def guid(key: int, salt: int) -> str:
    a = mix64(key ^ salt)
    b = mix64(a ^ 0x2545F4914F6CDD1D)
    x = f"{a:016x}{b:016x}"
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def guid_salt(ds: DataSet) -> int:
    return mix64(ds.seed * 15485863 + 2)


def lead_name(ds: DataSet, lead: int) -> str:
    pv = ds.persona_values(ds.persona(lead))
    names = [v for v in (pv[2], pv[3]) if v]  # firstName, lastName
    return " ".join(names) or f"Lead {lead}"


def _day_iso(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")


class ActivityModel:
    """All activities of a data set, one day at a time (see the module docstring)."""

    def __init__(
        self, ds: DataSet, per_lead: float, life: Lifecycle, programs: list[Program]
    ) -> None:
        self.ds, self.life, self.programs = ds, life, programs
        self.salt = mix64(ds.seed * 999331 + 1)
        self.guid_salt = guid_salt(ds)
        self.lists = [
            (x.id, x.name) for x in sorted(ds.lists.values(), key=lambda x: x.id)
            if x.kind == "static"
        ] or [(1001, "List")]  # fmt: skip
        self.first_day = ds.start // 86400
        self.last_t = min(ds.as_of, ds.end + TAIL)
        self.last_day = self.last_t // 86400
        created = ds.created
        weights = [
            bisect_right(created, (d + 1) * 86400 - 1)
            for d in range(self.first_day, self.last_day + 1)
        ]
        total_w = sum(weights) or 1
        extra = int(ds.n * max(0.0, per_lead - 1.0))  # "New Lead" is the first one
        self.cum = [0]  # cum[k] = random activities on days before first_day + k
        acc = 0
        for w in weights:
            acc += w
            self.cum.append(extra * acc // total_w)

    def day_count(self, day: int) -> int:
        k = day - self.first_day
        if k < 0 or day > self.last_day:
            return 0
        return self.cum[k + 1] - self.cum[k]

    def _day_entries(self, day: int) -> list[tuple[int, int, int, int, int]]:
        """(t, key, leadId, typeId, hash) of every activity on `day`, in time order."""
        out = []
        created, alive, last = self.ds.created, self.life.alive, self.last_t
        base = (day - self.first_day) << 32
        t0 = day * 86400
        salt = self.salt
        for k in range(self.day_count(day)):
            h = mix64((base | k) ^ salt)
            t = t0 + h % 86400
            n = bisect_right(created, t)
            if n == 0 or t > last:
                continue
            lead = 1 + (h >> 17) % n
            if alive(lead, t):
                out.append((t, base | k, lead, TYPE_TABLE[(h >> 40) % len(TYPE_TABLE)], h))
        for lead in self.ds.ids_created(t0, t0 + 86399):
            t = created[lead - 1]
            if t <= last:
                out.append((t, (1 << 60) | lead, lead, NEW_LEAD, mix64(lead ^ salt)))
        for m in self.life.merges_between(t0, t0 + 86399):
            key = (2 << 60) | m.merged[0]
            out.append((m.at, key, m.winner, MERGE, mix64(key ^ salt)))
        out.sort()
        return out

    def rows(self, flt: Filter) -> Iterator[Row]:
        """The activities of the window that pass the filter, in time order."""
        types = flt.types or EXPORTABLE_TYPES
        for day in range(max(flt.start // 86400, self.first_day), flt.end // 86400 + 1):
            if day > self.last_day:
                break
            for t, key, lead, type_id, h in self._day_entries(day):
                if t < flt.start or t > flt.end or type_id not in types:
                    continue
                vid, value = self._primary(type_id, lead, key, h)
                if flt.value_ids is not None and vid not in flt.value_ids:
                    continue
                if flt.values is not None and value not in flt.values:
                    continue
                yield self._row(t, key, lead, type_id, h, vid, value)

    def _pick(self, pool, h: int):
        return pool[(h >> 24) % len(pool)]

    def _primary(self, type_id: int, lead: int, key: int, h: int) -> tuple[int, str]:
        name = PRIMARY[type_id]
        if name == "Lead ID":
            return lead, lead_name(self.ds, lead)
        pool = {
            "Webpage ID": WEBPAGES,
            "Webform ID": FORMS,
            "Link ID": LINKS,
            "Mailing ID": EMAILS,
            "List ID": self.lists,
            "Milestone ID": MILESTONES,
        }.get(name)
        if pool is None and name == "Score Name":
            pool = SCORE_FIELDS
        if pool is None and name == "Attribute Name":
            pool = CHANGE_FIELDS
        if pool is None:  # Program ID
            pool = [(p.id, p.name) for p in self.programs] or [(0, "No Program")]
        return self._pick(pool, h)

    def _row(self, t, key, lead, type_id, h, vid, value) -> Row:
        campaign = 1000 + (h >> 50) % 400 if type_id in CAMPAIGN_TYPES else None
        attrs = self._attributes(type_id, lead, key, t, h, vid, value)
        action = "skipped" if type_id == 6 and (h >> 58) % 20 == 0 else "succeeded"
        return (guid(key, self.guid_salt), lead, t, type_id, campaign, vid, value, attrs, action)

    def _attributes(self, type_id, lead, key, t, h, vid, value) -> dict:
        out: dict = {}
        for i, (name, data_type) in enumerate(ATTRS[type_id]):
            g = mix64(h + i + 1)
            v = _special(type_id, name, g, lead, key, t, vid, value, self)
            if v is _GENERIC:
                v = _generic(name, data_type, g, lead, t)
            if v is not None:
                out[name] = v
        return out


_GENERIC = object()


def _special(type_id, name, g, lead, key, t, vid, value, model: ActivityModel):
    """Type-specific attribute values; _GENERIC when the data type's default will do."""
    if type_id == MERGE:
        merged = [key & ((1 << 60) - 1)]
        return {
            "Merge IDs": merged,
            "Merge Source": ("Web", "API", "Lead Database")[g % 3],
            "Merged in Sales": False,
            "Master Updated": g % 2 == 0,
        }.get(name)
    if type_id == 22:
        old = g % 120
        delta = (g >> 8) % 21 - 10
        return {
            "Change Value": f"{delta:+d}",
            "New Value": old + delta,
            "Old Value": old,
            "Reason": REASONS[(g >> 16) % len(REASONS)],
        }.get(name)
    if type_id == 104:
        old_s, new_s = (g >> 4) % len(STATUSES), (g >> 8) % len(STATUSES)
        return {
            "Acquired By": g % 4 == 0,
            "New Status ID": 100 + new_s,
            "Old Status ID": 100 + old_s,
            "New Status": STATUSES[new_s],
            "Old Status": STATUSES[old_s],
            "Program Member ID": (vid or 0) * 1_000_000 + lead,
            "Reason": REASONS[(g >> 12) % len(REASONS)],
            "Success": STATUSES[new_s] in ("Engaged", "Attended"),
        }.get(name)
    if type_id == 13 and name in ("New Value", "Old Value"):
        return None if g % 7 == 0 else f"{value} value {(g >> 8) % 50}"
    if name == "Webpage URL":
        return value
    if name == "Webpage ID" and type_id in (2, 3, 9):
        return WEBPAGES[(g >> 3) % len(WEBPAGES)][0]
    if name == "Email":
        return f"lead.{lead}@example.com"
    if name == "User Agent":
        return AGENTS[g % len(AGENTS)]
    if name in ("Device", "Is Mobile Device", "Platform"):
        d = DEVICES[(t // 7) % len(DEVICES)]  # the same device for all three attributes
        return d[("Device", "Is Mobile Device", "Platform").index(name)]
    if name == "Link":
        return model._pick(LINKS, g)[1]
    if name == "Created Date":
        return _day_iso(t)
    if name in ("Reason",):
        return REASONS[g % len(REASONS)]
    if name == "Source":
        return SOURCES[g % len(SOURCES)]
    if name == "Modifying User":
        return USERS[g % len(USERS)]
    if name == "API Method Name":
        return None if g % 3 else "syncLead"
    if name == "Form Fields":
        return f'Email: lead.{lead}@example.com\nCompany: "ACME, Inc."'
    if name in ("Query Parameters", "Search Query", "Search Engine", "Referrer URL"):
        if g % 3:
            return None
        return {
            "Query Parameters": "utm_source=newsletter&utm_medium=email",
            "Search Query": 'marketo "bulk export", pricing',
            "Search Engine": "Google",
            "Referrer URL": "https://www.google.com/",
        }[name]
    if name == "Client IP Address":
        return f"203.0.113.{g % 250 + 1}"
    return _GENERIC


def _generic(name: str, data_type: str, g: int, lead: int, t: int):
    if data_type == "integer":
        return g % 100000
    if data_type == "boolean":
        return g % 2 == 0
    if data_type == "date":
        return _day_iso(t)
    if data_type == "datetime":
        return iso(t)
    if data_type == "email":
        return f"lead.{lead}@example.com"
    return f"{name} {g % 7}"


def attributes_json(attrs: dict) -> str:
    return json.dumps(attrs, ensure_ascii=False, separators=(",", ":"))
