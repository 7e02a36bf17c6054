"""Deleted and merged leads: which leads go away, when, and (merges) into which lead.

Decided per lead from the seed with cheap hashes; the lists are built by one pass over the lead
ids on first need (a few hundred ms per million leads) and hold only the leads that go away.
A deleted or merged-away lead does nothing after that moment (no activities). The lead export is
a snapshot of the data set and still lists them (see the README).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from .data import DataSet, mix64

SPAN = 120 * 86400  # a deletion or merge happens within 120 days of the lead's creation
MIN_AGE = 3600  # ... and not in the lead's first hour
RATE_SCALE = 1_000_000


@dataclass(frozen=True)
class Merge:
    at: int
    winner: int
    merged: tuple[int, ...]


class Lifecycle:
    """Deletions and merges for one data set and one pair of rates."""

    def __init__(self, ds: DataSet, delete_rate: float, merge_rate: float) -> None:
        self.rates = (delete_rate, merge_rate)
        d_cut = int(delete_rate * RATE_SCALE)
        m_cut = int(merge_rate * RATE_SCALE)
        d_salt = mix64(ds.seed * 104729 + 37)
        m_salt = mix64(ds.seed * 130363 + 32)
        created, as_of = ds.created, ds.as_of
        deleted: list[tuple[int, int]] = []  # (deletedAt, lead id)
        merges: list[Merge] = []
        gone: dict[int, int] = {}  # lead id -> epoch it stopped existing
        for i in range(1, ds.n + 1) if (d_cut or m_cut) else ():
            c = created[i - 1]
            h = mix64(i ^ d_salt)
            if h % RATE_SCALE < d_cut:
                t = c + MIN_AGE + (h >> 24) % SPAN
                if t <= as_of:
                    deleted.append((t, i))
                    gone[i] = t
                    continue
            h = mix64(i ^ m_salt)
            if i > 1 and h % RATE_SCALE < m_cut:
                winner = 1 + (h >> 24) % (i - 1)
                t = c + MIN_AGE + (h >> 40) % SPAN
                if winner not in gone and t <= as_of:
                    merges.append(Merge(t, winner, (i,)))
                    gone[i] = t
        deleted.sort()
        merges.sort(key=lambda m: (m.at, m.winner))
        self.deleted = deleted
        self.merges = merges
        self.gone = gone
        self._merge_at = [m.at for m in merges]

    def alive(self, lead: int, at: int) -> bool:
        t = self.gone.get(lead)
        return t is None or at < t

    def deleted_between(self, start: int, end: int) -> list[tuple[int, int]]:
        """(deletedAt, lead id) with start <= deletedAt <= end, oldest first."""
        lo = bisect_left(self.deleted, (start, 0))
        hi = bisect_right(self.deleted, (end, 1 << 62))
        return self.deleted[lo:hi]

    def merges_between(self, start: int, end: int) -> list[Merge]:
        lo = bisect_left(self._merge_at, start)
        hi = bisect_right(self._merge_at, end)
        return self.merges[lo:hi]
