"""Simulator activity generation, in process: windows add up, volume and mix are realistic,
every activity's lead exists and is still there, merges and deletions are consistent."""

from __future__ import annotations

from collections import Counter

from marketo_assets.simulator.activity_data import MIX, ActivityModel, Filter
from marketo_assets.simulator.data import DataSet, parse_day
from marketo_assets.simulator.lifecycle import Lifecycle
from marketo_assets.simulator.programs import make_programs

LEADS = 3000


def _model(seed: int = 7, per_lead: float = 8.0) -> ActivityModel:
    ds = DataSet(LEADS, seed, "2025-01-01", "2025-07-01", as_of=parse_day("2026-01-01"))
    return ActivityModel(ds, per_lead, Lifecycle(ds, 0.01, 0.005), make_programs(ds, 10))


def test_adjacent_windows_add_up_to_the_whole():
    m = _model()
    a, b, c = parse_day("2025-03-01"), parse_day("2025-03-04"), parse_day("2025-03-09")
    whole = [r[0] for r in m.rows(Filter(a, c - 1))]
    parts = [r[0] for r in m.rows(Filter(a, b - 1))] + [r[0] for r in m.rows(Filter(b, c - 1))]
    assert whole == parts and len(set(whole)) == len(whole) > 100


def test_volume_mix_and_leads_are_realistic():
    m = _model()
    rows = list(m.rows(Filter(m.ds.start, m.ds.as_of)))
    assert 7.5 < len(rows) / LEADS < 8.5
    types = Counter(r[3] for r in rows)
    assert set(types) == set(MIX) | {12, 32} and 37 not in types
    assert types[12] == LEADS  # one "New Lead" per lead, at its createdAt
    assert types[1] > types[6] > types[11]  # visits > sends > clicks
    life = m.life
    for _guid, lead, t, *_ in rows:
        assert m.ds.created[lead - 1] <= t <= m.ds.as_of
        assert life.alive(lead, t)
    times = [r[2] for r in rows]
    assert times == sorted(times)


def test_same_seed_same_activities_other_seed_other_ones():
    f = Filter(parse_day("2025-04-01"), parse_day("2025-04-02") - 1)
    one = list(_model().rows(f))
    assert one == list(_model().rows(f))
    assert [r[0] for r in one] != [r[0] for r in _model(seed=8).rows(f)]


def test_merges_and_deletions_are_consistent():
    m = _model()
    gone = {lead for _, lead in m.life.deleted}
    for merge in m.life.merges:
        assert merge.winner not in gone and merge.winner < min(merge.merged)
        gone.update(merge.merged)
    assert len(gone) == len(m.life.gone)
    rows = list(m.rows(Filter(m.ds.start, m.ds.as_of, frozenset({32}))))
    assert [(r[1], r[7]["Merge IDs"]) for r in rows] == [
        (x.winner, list(x.merged)) for x in m.life.merges
    ]
