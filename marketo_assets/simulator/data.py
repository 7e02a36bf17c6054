"""Deterministic lead data set for the simulator.

Only one compact array is precomputed (createdAt epoch seconds per lead). Every other value is
derived from (seed, lead id, field) with cheap integer hashes. Leads share "personas": a persona
fixes the values of all non-id fields, so file rows can be rendered from per-persona templates.
"""

from __future__ import annotations

import random
import time
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

MASK64 = (1 << 64) - 1
PERSONA_BITS = 12
PERSONAS = 1 << PERSONA_BITS  # distinct value combinations for non-id fields
EDGE_PERSONAS = 16  # personas 0..15 carry the nasty values (quotes, NUL, CR/LF, CJK...)
UPDATE_SPAN = 60 * 86400  # updatedAt = createdAt + up to 60 days, never past the clock

# Fields whose value depends on the lead id itself (rendered as template placeholders).
DYNAMIC = ("id", "email", "createdAt", "updatedAt")


def mix64(x: int) -> int:
    """splitmix64 finaliser: a cheap, well-spread 64-bit hash."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def iso(sec: int) -> str:
    """Epoch seconds -> Marketo datetime text (UTC, no milliseconds)."""
    return datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def updated_at(created: int, h: int, as_of: int) -> int:
    """createdAt + a seeded offset (hash `h`) of up to 60 days, but never later than `as_of`
    (the simulated clock at start); a lead created after `as_of` has updatedAt = createdAt."""
    room = as_of - created
    if room >= UPDATE_SPAN:
        return created + (h >> 20) % UPDATE_SPAN
    return created + (h >> 20) % (room + 1) if room > 0 else created


def parse_day(text: str) -> int:
    """'2025-01-01' (or a full ISO datetime) -> epoch seconds UTC."""
    if len(text) == 10:
        d = date.fromisoformat(text)
        return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


@dataclass(frozen=True)
class Field:
    name: str
    display: str
    data_type: str
    length: int | None = None
    updateable: bool = True
    crm: bool = False
    null_pct: int = 10  # share of personas with an empty value
    exportable: bool = True


# Realistic Marketo REST names. Order = describe order.
FIELDS: tuple[Field, ...] = (
    Field("id", "Id", "integer", updateable=False, null_pct=0),
    Field("email", "Email Address", "email", 255, null_pct=0),
    Field("firstName", "First Name", "string", 255),
    Field("lastName", "Last Name", "string", 255, null_pct=3),
    Field("middleName", "Middle Name", "string", 255, null_pct=70),
    Field("salutation", "Salutation", "string", 255, null_pct=40),
    Field("title", "Job Title", "string", 255),
    Field("company", "Company Name", "string", 255, crm=True),
    Field("phone", "Phone Number", "phone", 255),
    Field("mobilePhone", "Mobile Phone Number", "phone", 255, null_pct=40),
    Field("address", "Address", "text", 65535, null_pct=20),
    Field("city", "City", "string", 255),
    Field("state", "State", "string", 255, null_pct=25),
    Field("postalCode", "Postal Code", "string", 255, null_pct=15),
    Field("country", "Country", "string", 255),
    Field("website", "Website", "url", 255, null_pct=30),
    Field("industry", "Industry", "string", 255, null_pct=20),
    Field("leadSource", "Lead Source", "string", 255, crm=True),
    Field("leadStatus", "Lead Status", "string", 255, crm=True),
    Field("leadScore", "Lead Score", "score", null_pct=5),
    Field("relativeScore", "Relative Score", "integer", null_pct=20),
    Field("annualRevenue", "Annual Revenue", "currency", null_pct=30),
    Field("numberOfEmployees", "Num Employees", "integer", null_pct=30),
    Field("probability", "Probability", "percent", null_pct=30),
    Field("urgency", "Urgency", "float", null_pct=30),
    Field("unsubscribed", "Unsubscribed", "boolean", null_pct=0),
    Field("doNotCall", "Do Not Call", "boolean", null_pct=0),
    Field("dateOfBirth", "Date of Birth", "date", null_pct=50),
    Field("mktoAcquisitionDate", "Acquisition Date", "datetime", null_pct=20),
    Field("createdAt", "Created At", "datetime", updateable=False, null_pct=0),
    Field("updatedAt", "Updated At", "datetime", updateable=False, null_pct=0),
    Field("sfdcLeadOwnerId", "SFDC Lead Owner ID", "reference", 18, crm=True, null_pct=40),
    Field("externalCompanyId", "External Company Id", "string", 100, null_pct=40),
    Field("cookies", "Cookies", "string", 255, null_pct=30),
    Field("personTimeZone", "Person Time Zone", "string", 255, null_pct=20),
    Field("inferredCountry", "Inferred Country", "string", 255, null_pct=20),
    # custom fields
    Field("customerTier__c", "Customer Tier", "string", 255, null_pct=15),
    Field("npsScore__c", "NPS Score", "integer", null_pct=35),
    Field("lastProductSeen__c", "Last Product Seen", "string", 255, null_pct=20),
    Field("churnRisk__c", "Churn Risk", "percent", null_pct=25),
    Field("contractValue__c", "Contract Value", "currency", null_pct=40),
    Field("isPartner__c", "Is Partner", "boolean", null_pct=10),
    Field("renewalDate__c", "Renewal Date", "date", null_pct=40),
    Field("notes__c", "Notes", "text", 65535, null_pct=50),
    # formula: listed by describe, rejected by bulk export create (1003)
    Field("fullNameFormula", "Full Name (formula)", "formula", updateable=False, exportable=False),
)
FIELD_BY_NAME = {f.name: f for f in FIELDS}
EXPORTABLE = tuple(f.name for f in FIELDS if f.exportable)

# Nasty values used by the edge personas and mixed into the pools.
EDGE_TEXT = (
    'Zoë "Zee" O\'Brien',
    "Acme, Inc.",
    "line one\nline two",
    "carriage\rreturn",
    "windows\r\nline end",
    "nul\x00byte",
    "王伟",
    "株式会社テスト",
    "Дмитрий Иванов",
    "محمد العلي",
    "rocket 🚀 émoji",
    'say "hi", then\nleave',
    "semi;colon\ttab",
    "{curly} %s braces",
    "  padded  ",
    "null-ish",
)

FIRST = (
    "Anna",
    "Ben",
    "Carla",
    "David",
    "Elif",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kemi",
    "Liam",
    "Mei",
    "Noah",
    "Olga",
    "Pedro",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Ümit",
    "Zoë",
    "Ольга",
    "Иван",
    "李娜",
    "陈杰",
    "فاطمة",
    "Søren",
    "José",
    "Ngọc",
)
LAST = (
    "Smith",
    "Müller",
    "García",
    "Kowalski",
    "Nguyen",
    "O'Neil",
    "Tanaka",
    "Rossi",
    "Dubois",
    "Johansson",
    "Patel",
    "Kim",
    "Silva",
    "Novak",
    "Haddad",
    "Ivanova",
    "Смирнов",
    "王",
    "김",
    "Van der Berg",
    "D'Amico",
    "Łukasz",
    "Øberg",
    "Şahin",
)
COMPANY = (
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella, Ltd.",
    'The "Best" Widgets',
    "Stark Industries",
    "Wayne Enterprises",
    "Hooli",
    "Vandelay Imports",
    "株式会社サンプル",
    "ООО Ромашка",  # noqa: RUF001
    "شركة المثال",
    "Müller & Söhne GmbH",
    "Soylent; Inc",
    "Tyrell Corp",
)
TITLE = (
    "CEO",
    "CTO",
    "VP, Sales",
    "Marketing Manager",
    "Engineer",
    "Data Analyst",
    "Director of Ops",
    "Intern",
    'Head of "Growth"',
    "Product Owner",
    "Consultant",
)
CITY = (
    "Chicago",
    "Berlin",
    "Paris",
    "Tokyo",
    "São Paulo",
    "Москва",
    "القاهرة",
    "Zürich",
    "New York",
    "London",
    "Madrid",
    "Seoul",
    "Sydney",
    "Toronto",
    "Kraków",
)
STATE = ("IL", "CA", "NY", "TX", "WA", "BY", "ON", "NSW", "Île-de-France")
COUNTRY = (
    "USA",
    "Germany",
    "France",
    "Japan",
    "Brazil",
    "Russia",
    "Egypt",
    "Switzerland",
    "United Kingdom",
    "Spain",
    "South Korea",
    "Australia",
    "Canada",
    "Poland",
)
INDUSTRY = (
    "Software",
    "Manufacturing",
    "Retail",
    "Healthcare",
    "Finance",
    "Education",
    "Media, Entertainment",
    "Energy",
)
SOURCE = ("Website", "Webinar", "Trade Show", "Paid Search", "Referral", "List Import")
STATUS = ("New", "Working", "Nurture", "Qualified", "Unqualified", "Converted")
TIER = ("Bronze", "Silver", "Gold", "Platinum", "Strategic")
PRODUCT = (
    "Widget Pro",
    "Widget Lite",
    "Gadget 3000",
    "Cloud Suite",
    "Analytics+",
    'Widget "XL"',
    "Gadget, Mini",
)
TZ = ("America/Chicago", "Europe/Berlin", "Asia/Tokyo", "America/New_York", "UTC")
NOTES = (
    "Met at booth 12.",
    "Asked for pricing,\nfollow up in Q3.",
    'Said: "call me later"',
    "Prefers email.",
    "Line1\r\nLine2\r\nLine3",
    'JSON-ish {"a": 1}',
    "多语言备注 — заметка — ملاحظة",
)
DOMAINS = ("example.com", "example.org", "mail.test", "corp.example", "example.co.uk")


def _pool(rng: random.Random, f: Field, start: int, end: int) -> list[str]:
    """Values (already as file text) one field can take."""
    t, n = f.data_type, f.name
    pick = rng.choice
    if n in ("firstName", "middleName"):
        return list(FIRST)
    if n == "lastName":
        return list(LAST)
    if n == "salutation":
        return ["Mr.", "Ms.", "Dr.", "Prof.", "Mx."]
    if n == "title":
        return list(TITLE)
    if n == "company":
        return list(COMPANY)
    if n == "address":
        return [
            f"{rng.randint(1, 9999)} {pick(('Main St', 'Oak Ave', 'Hauptstraße'))}"
            + pick(("", "\nSuite 100", ", Floor 2", "\r\nBldg B"))
            for _ in range(64)
        ]
    if n == "city":
        return list(CITY)
    if n == "state":
        return list(STATE)
    if n == "postalCode":
        return [f"{rng.randint(0, 99999):05d}" for _ in range(64)] + ["SW1A 1AA", "75001"]
    if n in ("country", "inferredCountry"):
        return list(COUNTRY)
    if n == "industry":
        return list(INDUSTRY)
    if n == "leadSource":
        return list(SOURCE)
    if n == "leadStatus":
        return list(STATUS)
    if n == "customerTier__c":
        return list(TIER)
    if n == "lastProductSeen__c":
        return list(PRODUCT)
    if n == "personTimeZone":
        return list(TZ)
    if n == "notes__c":
        return list(NOTES)
    if n == "website":
        return [
            f"https://www.{pick(('acme', 'globex', 'hooli'))}{i}.example/p?a=1,b=2"
            if i % 5 == 0
            else f"https://www.site{i}.example"
            for i in range(32)
        ]
    if n == "cookies":
        return [
            f"_mch-example.com-{rng.randint(10**12, 10**13)}-{rng.randint(10000, 99999)}"
            + ("" if i % 3 else f",_mch-x.com-{rng.randint(10**12, 10**13)}-1")
            for i in range(64)
        ]
    if n == "sfdcLeadOwnerId":
        return [
            "005" + "".join(pick("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(15))
            for _ in range(32)
        ]
    if n == "externalCompanyId":
        return [f"EXT-{rng.randint(1000, 999999)}" for _ in range(64)]
    if t == "phone":
        return [f"+1 ({rng.randint(200, 999)}) 555-{rng.randint(0, 9999):04d}" for _ in range(64)]
    if t == "score":
        return [str(rng.randint(0, 250)) for _ in range(128)]
    if n == "npsScore__c":
        return [str(i) for i in range(11)]
    if t == "integer":
        return [str(rng.randint(1, 50000)) for _ in range(128)]
    if t == "currency":
        return [f"{rng.randint(0, 5_000_000) / 100:.2f}" for _ in range(128)]
    if t == "percent":  # integer-typed in Marketo, but sometimes carries decimals
        return [
            str(rng.randint(0, 100)) if i % 4 else f"{rng.randint(0, 10000) / 100}"
            for i in range(128)
        ]
    if t == "float":
        return [repr(round(rng.uniform(0, 10), 4)) for _ in range(128)]
    if t == "boolean":
        return ["true", "false"]
    if t == "date":
        return [
            date.fromordinal(
                rng.randint(date(1950, 1, 1).toordinal(), date(2027, 12, 31).toordinal())
            ).isoformat()
            for _ in range(128)
        ]
    if t == "datetime":
        return [iso(rng.randint(start - 400 * 86400, end)) for _ in range(128)]
    return [f"value {i}" for i in range(16)]


def _edge_value(f: Field, k: int) -> str | None:
    """Value of field f for edge persona k (nasty text for text-like fields)."""
    if f.data_type in ("string", "text") and f.name not in ("cookies", "externalCompanyId"):
        return EDGE_TEXT[(k + len(f.name)) % len(EDGE_TEXT)]
    return None if (k + len(f.name)) % 4 == 0 else ""


@dataclass
class ListDef:
    """A static or smart list. Base membership is a hash rule; add/remove adjust it."""

    kind: str  # "static" | "smart"
    id: int
    name: str
    description: str
    created: int
    updated: int
    density: int  # 1 in `density` leads are members; 0 = none
    salt: int
    program: str = ""
    workspace: str = "Default"
    folder_id: int = 0
    added: set[int] = field(default_factory=set)
    removed: set[int] = field(default_factory=set)
    version: int = 0

    def base_member(self, lead_id: int) -> bool:
        return self.density > 0 and mix64(lead_id ^ self.salt) % self.density == 0


class DataSet:
    """All leads and lists. Mutable only through the control API (overrides, memberships)."""

    def __init__(
        self,
        leads: int,
        seed: int,
        created_from: str,
        created_to: str,
        as_of: float | None = None,
    ) -> None:
        """`as_of`: the simulated clock at start (default: now); no updatedAt is later."""
        self.n = leads
        self.as_of = int(time.time() if as_of is None else as_of)
        self.seed = seed
        self.start = parse_day(created_from)
        self.end = parse_day(created_to)
        if self.end <= self.start:
            raise ValueError("created-to must be after created-from")
        self.created = self._make_created()
        self._salt = mix64(seed * 7919 + 17)
        self._persona_salt = (mix64(seed) & 0xFFFFFFFF) | 1
        rng = random.Random(f"marketo-sim:{seed}")
        self.pools = {
            f.name: _pool(random.Random(f"{seed}:{f.name}"), f, self.start, self.end)
            for f in FIELDS
        }
        self._persona_cache: dict[int, tuple[str | None, ...]] = {}
        self.stopping = False  # set on shutdown; file writers give up
        self.templates: dict = {}  # (fields, delimiter) -> per-persona row templates (files.py)
        self.overrides: dict[int, dict[str, str | None]] = {}
        self.changed: dict[int, int] = {}  # lead id -> epoch of last control-API change
        self.version = 0
        self._updated: array | None = None
        self.lists: dict[tuple[str, int], ListDef] = {}
        self._make_lists(rng)
        self._days: list[str] = []
        self._day0 = 0
        self._tod: list[str] = []
        self._days_b: list[bytes] = []
        self._tod_b: list[bytes] = []

    # ---- creation times -------------------------------------------------------------------
    def _boundaries(self) -> list[int]:
        """Midnight UTC on the 1st of every month in range, and 23:59:59 on the last day."""
        out = []
        d = datetime.fromtimestamp(self.start, UTC)
        m = datetime(d.year, d.month, 1, tzinfo=UTC)
        while True:
            t = int(m.timestamp())
            if t >= self.end:
                break
            if t >= self.start:
                out.append(t)
            if self.start <= t - 1 < self.end:
                out.append(t - 1)
            m = datetime(m.year + (m.month == 12), m.month % 12 + 1, 1, tzinfo=UTC)
        last = int(m.timestamp()) - 1  # end of the month holding `end`
        if self.start <= last < self.end:
            out.append(last)
        return out

    def _make_created(self) -> array:
        rnd = random.Random(self.seed).random
        bounds = self._boundaries()[: self.n]
        span = self.end - self.start
        s = self.start
        times = [s + int(rnd() * span) for _ in range(self.n - len(bounds))]
        times.extend(bounds)
        times.sort()
        return array("q", times)

    # ---- per-lead values --------------------------------------------------------------------
    def persona(self, lead_id: int) -> int:
        if lead_id % 50 == 7:
            return (lead_id // 50) % EDGE_PERSONAS
        return ((lead_id * 2654435761 + self._persona_salt) & 0xFFFFFFFF) >> (32 - PERSONA_BITS)

    def persona_values(self, p: int) -> tuple[str | None, ...]:
        """Values of every field for persona p (dynamic fields hold None placeholders)."""
        vals = self._persona_cache.get(p)
        if vals is not None:
            return vals
        out: list[str | None] = []
        base = self._salt ^ (p * 0x9E3779B97F4A7C15)
        for fi, f in enumerate(FIELDS):
            if f.name in DYNAMIC or not f.exportable:
                out.append(None)
                continue
            h = mix64(base + fi)
            v: str | None
            if p < EDGE_PERSONAS:
                v = _edge_value(f, p)
                if v == "":
                    pool = self.pools[f.name]
                    v = pool[h % len(pool)]
            elif (h >> 40) % 100 < f.null_pct:
                v = None
            else:
                pool = self.pools[f.name]
                v = pool[h % len(pool)]
            out.append(v)
        vals = tuple(out)
        self._persona_cache[p] = vals
        return vals

    def warm(self) -> None:
        """Compute every persona's values and the timestamp tables (run in the background)."""
        self.ts_tables_bytes()
        for p in range(PERSONAS):
            self.persona_values(p)

    def email_of(self, p: int) -> tuple[str, str] | None:
        """Email = local + str(id) + '@' + domain (plain ASCII); edge persona 3 has none."""
        if p == 3:
            return None
        h = mix64(self._salt + p * 31 + 5)
        local = ("lead", "contact", "info.user", "j.doe", "sales_ops")[h % 5]
        return f"{local}.", DOMAINS[(h >> 8) % len(DOMAINS)]

    def updated_base(self, lead_id: int) -> int:
        """updatedAt from the data set alone (ignores control-API changes)."""
        return updated_at(self.created[lead_id - 1], mix64(lead_id ^ self._salt), self.as_of)

    def updated_of(self, lead_id: int, changed: dict[int, int] | None = None) -> int:
        changed = self.changed if changed is None else changed
        return changed.get(lead_id) or self.updated_base(lead_id)

    def updated_array(self) -> array:
        """updatedAt (base) for all leads; built once, on first need."""
        if self._updated is None:
            c, salt, as_of = self.created, self._salt, self.as_of
            self._updated = array(
                "q", (updated_at(c[i - 1], mix64(i ^ salt), as_of) for i in range(1, self.n + 1))
            )
        return self._updated

    def lead_values(
        self, lead_id: int, overrides: dict | None = None, changed: dict | None = None
    ) -> dict[str, str | None]:
        """Every exportable field of one lead as file text (None = empty).
        `overrides`/`changed` default to the live control-API changes (snapshots in workers)."""
        overrides = self.overrides if overrides is None else overrides
        p = self.persona(lead_id)
        pv = self.persona_values(p)
        out = {f.name: pv[i] for i, f in enumerate(FIELDS) if f.exportable}
        em = self.email_of(p)
        out["id"] = str(lead_id)
        out["email"] = None if em is None else f"{em[0]}{lead_id}@{em[1]}"
        out["createdAt"] = iso(self.created[lead_id - 1])
        out["updatedAt"] = iso(self.updated_of(lead_id, changed))
        out.update(overrides.get(lead_id, {}))
        return out

    def update_lead(self, lead_id: int, values: dict, now: int) -> None:
        if not 1 <= lead_id <= self.n:
            raise KeyError(lead_id)
        ov = self.overrides.setdefault(lead_id, {})
        for k, v in values.items():
            f = FIELD_BY_NAME.get(k)
            if f is None or not f.exportable or k in ("id", "createdAt", "updatedAt"):
                raise ValueError(f"field {k!r} cannot be updated")
            ov[k] = None if v is None or v == "" else _text(v)
        self.changed[lead_id] = now
        self.version += 1

    # ---- timestamps as text (fast path) -------------------------------------------------------
    def ts_tables(self) -> tuple[list[str], int, list[str]]:
        """Day prefixes and time-of-day suffixes covering created and base updated times."""
        if not self._tod:  # thread-safe enough: _tod (the sentinel) is assigned last
            d0 = self.start // 86400 - 1
            d1 = (self.end + UPDATE_SPAN) // 86400 + 2
            base = date(1970, 1, 1)
            self._days = [(base + timedelta(days=d)).isoformat() + "T" for d in range(d0, d1)]
            self._day0 = d0
            self._tod = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z" for s in range(86400)]
        return self._days, self._day0, self._tod

    def ts_tables_bytes(self) -> tuple[list[bytes], int, list[bytes]]:
        """ts_tables() as UTF-8 bytes (for the file writer)."""
        if not self._tod_b:
            days, _, tod = self.ts_tables()
            self._days_b = [d.encode() for d in days]
            self._tod_b = [t.encode() for t in tod]
        return self._days_b, self._day0, self._tod_b

    # ---- selections -------------------------------------------------------------------------
    def ids_created(self, start: int, end: int) -> range:
        """Leads with start <= createdAt <= end (ids are in createdAt order)."""
        lo = bisect_left(self.created, start)
        hi = bisect_right(self.created, end)
        return range(lo + 1, hi + 1)

    def ids_updated(self, start: int, end: int, changed: dict[int, int] | None = None) -> list:
        changed = self.changed if changed is None else changed
        upd = self.updated_array()
        out = [i + 1 for i, u in enumerate(upd) if start <= u <= end and (i + 1) not in changed]
        out.extend(i for i, t in changed.items() if start <= t <= end)
        out.sort()
        return out

    def members(self, lst: ListDef) -> list[int]:
        if lst.density > 0:
            salt, d = lst.salt, lst.density
            base = [i for i in range(1, self.n + 1) if mix64(i ^ salt) % d == 0]
        else:
            base = []
        if not lst.added and not lst.removed:
            return base
        s = set(base)
        s |= {i for i in lst.added if 1 <= i <= self.n}
        s -= lst.removed
        return sorted(s)

    # ---- lists ------------------------------------------------------------------------------
    def _make_lists(self, rng: random.Random) -> None:
        t0 = self.start - 30 * 86400
        statics = [
            ("Webinar Attendees 2025", "Registered and attended", 5, "Webinar Program"),
            ("Newsletter Subscribers", "Opted in to the monthly newsletter", 2, "Newsletter"),
            ("Trade Show Leads, Berlin", "Scanned at booth", 20, "Events"),
            ('VIP "Gold" Accounts', "Hand-picked", 50, "Sales"),
            ("Imported — Q1 список", "CSV import", 10, "Imports"),
            ("Empty Test List", "Has no members", 0, "Ops"),
        ]
        for i, (name, desc, dens, prog) in enumerate(statics):
            c = t0 + rng.randint(0, 20 * 86400)
            self.lists[("static", 1001 + i)] = ListDef(
                "static",
                1001 + i,
                name,
                desc,
                c,
                self._list_updated(c, rng.randint(0, 86400 * 5)),
                dens,
                mix64(self.seed * 1000 + 1001 + i),
                program=prog,
                folder_id=100 + i,
            )
        smarts = [
            ("High Score Leads", "leadScore above 100", 4),
            ("Churn Risk", "Customers likely to churn", 8),
            ("Recently Active", "Visited web pages in the last 30 days", 3),
            ("All EMEA Leads", "Country in EMEA", 6),
        ]
        for i, (name, desc, dens) in enumerate(smarts):
            c = t0 + rng.randint(0, 20 * 86400)
            self.lists[("smart", 5001 + i)] = ListDef(
                "smart",
                5001 + i,
                name,
                desc,
                c,
                self._list_updated(c, rng.randint(0, 86400 * 5)),
                dens,
                mix64(self.seed * 1000 + 5001 + i),
                folder_id=200 + i,
            )

    def _list_updated(self, created: int, offset: int) -> int:
        return max(created, min(created + offset, self.as_of))  # not past the clock

    def find_list(self, kind: str, *, list_id: int | None = None, name: str | None = None):
        for (k, i), lst in self.lists.items():
            if k == kind and (i == list_id if list_id is not None else lst.name == name):
                return lst
        return None

    def create_list(self, kind: str, name: str, now: int) -> ListDef:
        base = 1001 if kind == "static" else 5001
        new_id = max([i for (k, i) in self.lists if k == kind], default=base - 1) + 1
        lst = ListDef(kind, new_id, name, "", now, now, 0, 0, program="Sim", folder_id=900)
        self.lists[(kind, new_id)] = lst
        return lst


def _text(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
