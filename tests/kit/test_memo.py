"""Memos scoped to a unit of work (a batch of webhook events)."""

from __future__ import annotations

from toolkit.kit.memo import in_scope, memo_scope, memoised, remember


def counting_loader():
    calls = []

    def load():
        calls.append(1)
        return len(calls)

    return load, calls


def test_outside_a_scope_every_call_loads(session):
    load, calls = counting_loader()

    assert [memoised(session, "k", load) for _ in range(3)] == [1, 2, 3]
    assert in_scope(session, "k") is None
    remember(session, "k", "ignored")  # no scope: nothing kept
    assert in_scope(session, "k") is None


def test_inside_a_scope_the_first_load_is_kept_until_the_scope_ends(session):
    load, calls = counting_loader()

    with memo_scope(session):
        assert [memoised(session, "k", load) for _ in range(3)] == [1, 1, 1]
        remember(session, "other", "kept")
        assert in_scope(session, "other") == "kept"

    assert memoised(session, "k", load) == 2
    assert in_scope(session, "other") is None


def test_a_nested_scope_starts_empty_and_gives_the_outer_one_back(session):
    load, _ = counting_loader()

    with memo_scope(session):
        assert memoised(session, "k", load) == 1
        with memo_scope(session):
            assert memoised(session, "k", load) == 2
        assert memoised(session, "k", load) == 1
