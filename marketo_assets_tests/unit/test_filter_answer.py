"""The remembered answer to "is this export filter enabled?" (`extract.capabilities`): asked
once with a probe job, then read from the capabilities file until the recheck period passes."""

from datetime import UTC, datetime, timedelta

import pytest

from marketo_assets.extract.capabilities import FilterCapabilities, filter_answer
from marketo_assets.marketo import ExportFilter
from marketo_assets.marketo.errors import MarketoAPIError

NOW = datetime(2025, 6, 16, 6, 30, tzinfo=UTC)
UPDATED_AT = ExportFilter.updated_at(NOW - timedelta(days=1), NOW - timedelta(days=1, seconds=-1))
SMART = ExportFilter.smart_list_id(5001)


def asker(*answers):
    calls = []

    def ask() -> bool:
        calls.append(1)
        answer = answers[len(calls) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return ask, calls


def test_a_missing_updated_at_filter_is_probed_once_and_explained(tmp_path):
    store = FilterCapabilities(tmp_path / "caps.json")
    ask, calls = asker(False)
    for _ in range(2):
        enabled, why = filter_answer(store, UPDATED_AT, ask, timedelta(hours=24))
        assert not enabled
        assert why and "updatedAt filter is not enabled" in why and "Marketo Support" in why
        assert str(store.path) in why
    assert len(calls) == 1
    assert store.get("updatedAt").source == "probe"


def test_a_stale_answer_is_asked_again(tmp_path):
    store = FilterCapabilities(tmp_path / "caps.json")
    ask, calls = asker(False, True)
    tiny = timedelta(microseconds=1)
    assert filter_answer(store, UPDATED_AT, ask, tiny)[0] is False
    assert filter_answer(store, UPDATED_AT, ask, tiny)[0] is True
    assert len(calls) == 2


def test_an_inconclusive_smart_list_probe_counts_as_enabled_but_not_for_updated_at(tmp_path):
    store = FilterCapabilities(tmp_path / "caps.json")
    error = MarketoAPIError("1003", "Invalid request")
    ask, _ = asker(error)
    assert filter_answer(store, SMART, ask, None) == (True, None)
    assert store.get("smartList") is None  # nothing learned, nothing remembered
    ask, _ = asker(error)
    with pytest.raises(MarketoAPIError):
        filter_answer(store, UPDATED_AT, ask, None)


def test_a_missing_smart_list_filter_says_what_to_do(tmp_path):
    store = FilterCapabilities(tmp_path / "caps.json")
    ask, _ = asker(False)
    enabled, why = filter_answer(store, SMART, ask, None)
    assert not enabled
    assert why and "smart-list filter is not enabled" in why and "static lists" in why
