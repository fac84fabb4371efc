"""RunStatus transitions: what may follow what."""

from __future__ import annotations

import pytest

from core.queue.status import TRANSITIONS, RunStatus, can_transition

S = RunStatus
ALLOWED = {
    (S.QUEUED, S.RUNNING),
    (S.QUEUED, S.CANCELLED),
    (S.RUNNING, S.SUCCEEDED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLED),
    (S.RUNNING, S.QUEUED),  # requeued by a worker's first SIGINT/SIGTERM
    (S.FAILED, S.QUEUED),  # retry
    (S.CANCELLED, S.QUEUED),  # retry
}


@pytest.mark.parametrize("old", list(S))
@pytest.mark.parametrize("new", list(S))
def test_transition_table(old: RunStatus, new: RunStatus) -> None:
    assert can_transition(old, new) == ((old, new) in ALLOWED)


def test_every_status_has_an_entry_and_succeeded_is_final() -> None:
    assert set(TRANSITIONS) == set(S)
    assert TRANSITIONS[S.SUCCEEDED] == frozenset()


def test_values_are_the_stored_strings() -> None:
    assert [s.value for s in S] == ["queued", "running", "succeeded", "failed", "cancelled"]
