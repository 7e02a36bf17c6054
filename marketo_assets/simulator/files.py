"""Render export files (CSV/TSV/SSV) fast, from per-persona row templates."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable

from .data import (
    EDGE_PERSONAS,
    FIELDS,
    PERSONA_BITS,
    PERSONAS,
    UPDATE_SPAN,
    DataSet,
    mix64,
    updated_at,
)

DELIMITERS = {"CSV": ",", "TSV": "\t", "SSV": ";"}
# Marketo's pages disagree on SSV's separator (semicolon or space): the simulator writes either.
SSV_SEPARATORS = {"semicolon": ";", "space": " "}
FIELD_INDEX = {f.name: i for i, f in enumerate(FIELDS)}
BATCH = 20000  # rows per write


def escape(value: str | None, delim: str) -> str:
    """`null` for empty values; RFC-4180 quoting when the value needs it."""
    if value is None:
        return "null"
    if delim in value or '"' in value or "\n" in value or "\r" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def header_line(fields: list[str], headers: dict[str, str], delim: str) -> str:
    return delim.join(escape(headers.get(f, f), delim) for f in fields) + "\n"


def render_row(values: dict[str, str | None], fields: list[str], delim: str) -> str:
    return delim.join(escape(values[f], delim) for f in fields) + "\n"


class _Templates:
    """Per-persona row templates for one (fields, format).

    A template is (parts, id_slots): `parts` is a list of UTF-8 pieces where the slots for the
    lead id, createdAt (slot `c_slot`) and updatedAt (slot `u_slot`) are overwritten per row
    before b"".join(parts). Much faster than formatting text rows and encoding them.
    """

    def __init__(self, ds: DataSet, fields: list[str], delim: str) -> None:
        self.ds, self.fields, self.delim = ds, fields, delim
        self.cache: list[tuple[list[bytes], tuple[int, ...]] | None] = [None] * PERSONAS
        # slot positions are the same for every persona
        _, _, c, u = self._layout(EDGE_PERSONAS)
        self.c_slot, self.u_slot = c, u

    def _layout(self, p: int) -> tuple[list[str], tuple[int, ...], int, int]:
        ds, d = self.ds, self.delim
        pv = ds.persona_values(p)
        parts: list[str] = [""]
        ids: list[int] = []
        c_slot = u_slot = -1

        def slot() -> int:
            parts.append("")  # the slot
            parts.append("")  # next literal
            return len(parts) - 2

        for n, f in enumerate(self.fields):
            if n:
                parts[-1] += d
            if f == "id":
                ids.append(slot())
            elif f == "createdAt":
                c_slot = slot()
            elif f == "updatedAt":
                u_slot = slot()
            elif f == "email":
                em = ds.email_of(p)
                if em is None:  # keep an (always empty) slot so positions match other personas
                    parts[-1] += "null"
                    slot()
                else:
                    parts[-1] += em[0]
                    ids.append(slot())
                    parts[-1] += "@" + em[1]
            else:
                parts[-1] += escape(pv[FIELD_INDEX[f]], d)
        parts[-1] += "\n"
        return parts, tuple(ids), c_slot, u_slot

    def build(self, p: int) -> tuple[list[bytes], tuple[int, ...]]:
        """Template for persona p: from the data set's shared cache (templates do not depend on
        control-API changes) or built now; each job works on its own copy of the list."""
        key = (tuple(self.fields), self.delim)
        shared = self.ds.templates.get(key)
        if shared is None:
            shared = self.ds.templates.setdefault(key, [None] * PERSONAS)
        t = shared[p]
        if t is None:
            parts, ids, _, _ = self._layout(p)
            t = shared[p] = (tuple(x.encode("utf-8") for x in parts), ids)
        mine = (list(t[0]), t[1])
        self.cache[p] = mine
        return mine


def write_export(
    ds: DataSet,
    ids: Iterable[int],
    fields: list[str],
    fmt: str,
    headers: dict[str, str],
    path: str,
    overrides: dict[int, dict],
    changed: dict[int, int],
    ssv_separator: str = ";",
) -> tuple[int, int, str]:
    """Write the file; returns (rows, bytes, sha256 hex). `overrides`/`changed` are snapshots;
    SSV files use `ssv_separator` (";" or " ")."""
    delim = ssv_separator if fmt == "SSV" else DELIMITERS[fmt]
    tpl = _Templates(ds, fields, delim)
    cache, build = tpl.cache, tpl.build
    c_slot, u_slot = tpl.c_slot, tpl.u_slot
    days, day0, tod = ds.ts_tables_bytes()
    created = ds.created
    need_c = "createdAt" in fields
    need_u = "updatedAt" in fields
    salt = ds._persona_salt
    shift = 32 - PERSONA_BITS
    edge = EDGE_PERSONAS
    upd_salt = ds._salt
    as_of = ds.as_of

    h = hashlib.sha256()
    rows = size = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb", buffering=0) as out:

        def flush(buf: list[bytes]) -> None:
            nonlocal size
            data = b"".join(buf)
            out.write(data)
            h.update(data)
            size += len(data)

        buf = [header_line(fields, headers, delim).encode("utf-8")]
        for i in ids:
            if i in overrides or i in changed:
                vals = ds.lead_values(i, overrides, changed)
                buf.append(render_row(vals, fields, delim).encode("utf-8"))
            else:
                p = (
                    (i // 50) % edge
                    if i % 50 == 7
                    else ((i * 2654435761 + salt) & 0xFFFFFFFF) >> shift
                )
                parts, id_slots = cache[p] or build(p)
                if id_slots:
                    s = b"%d" % i
                    for k in id_slots:
                        parts[k] = s
                if need_c or need_u:
                    c = created[i - 1]
                    if need_c:
                        parts[c_slot] = days[c // 86400 - day0] + tod[c % 86400]
                    if need_u:
                        room = as_of - c  # inline data.updated_at (hot loop)
                        if room >= UPDATE_SPAN:
                            u = c + (mix64(i ^ upd_salt) >> 20) % UPDATE_SPAN
                        else:
                            u = updated_at(c, mix64(i ^ upd_salt), as_of)
                        parts[u_slot] = days[u // 86400 - day0] + tod[u % 86400]
                buf.append(b"".join(parts))
            rows += 1
            if len(buf) >= BATCH:
                if ds.stopping:  # server shutting down: do not hold up the exit
                    raise RuntimeError("simulator is stopping")
                flush(buf)
                buf = []
        if buf:
            flush(buf)
    return rows, size, h.hexdigest()


def write_cells(
    path: str,
    fields: list[str],
    headers: dict[str, str],
    delim: str,
    records: Iterable[dict[str, str | None]],
    stopping: Callable[[], bool],
    batch: int = 5000,
) -> tuple[int, int, str]:
    """Write one row per record (field -> text, None = empty) under a header line; returns
    (rows, bytes, sha256 hex). For the activity and program member files (the lead file has
    its own fast path above)."""
    h = hashlib.sha256()
    rows = size = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        buf = [header_line(fields, headers, delim)]

        def flush() -> None:
            nonlocal size
            data = "".join(buf).encode("utf-8")
            out.write(data)
            h.update(data)
            size += len(data)
            buf.clear()

        for cells in records:
            buf.append(delim.join(escape(cells[f], delim) for f in fields) + "\n")
            rows += 1
            if len(buf) >= batch:
                if stopping():  # server shutting down: do not hold up the exit
                    raise RuntimeError("simulator is stopping")
                flush()
        flush()
    return rows, size, h.hexdigest()
