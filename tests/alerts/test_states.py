"""The state machine as data: every pair of states and every role, against the table in the brief."""

from __future__ import annotations

import doctest
import itertools

import pytest

import alerts.states
from alerts.errors import IllegalTransition, NotPermitted
from alerts.states import (
    PERMISSIONS,
    TERMINAL_STATES,
    TRANSITIONS,
    Action,
    AlertState,
    Role,
    allowed_targets,
    check_transition,
)

S = AlertState
# written out independently of alerts.states: (from, to) -> roles that may walk it
EXPECTED = {
    (S.NEW, S.ACKNOWLEDGED): {"crew", "supervisor", "admin"},
    (S.ACKNOWLEDGED, S.DISPATCHED): {"crew", "supervisor", "admin"},
    (S.ACKNOWLEDGED, S.RESOLVED): {"crew", "supervisor", "admin"},
    (S.DISPATCHED, S.RESOLVED): {"crew", "supervisor", "admin"},
    (S.RESOLVED, S.CLOSED): {"operator", "supervisor", "admin", "system"},
    (S.RESOLVED, S.DISPATCHED): {"operator", "supervisor", "admin"},
    (S.CLEARED, S.CLOSED): {"operator", "supervisor", "admin", "system"},
    (S.NEW, S.FALSE_ALARM): {"operator", "supervisor", "admin"},
    (S.ACKNOWLEDGED, S.FALSE_ALARM): {"operator", "supervisor", "admin"},
    (S.DISPATCHED, S.FALSE_ALARM): {"operator", "supervisor", "admin"},
    (S.RESOLVED, S.FALSE_ALARM): {"operator", "supervisor", "admin"},
    (S.CLEARED, S.FALSE_ALARM): {"operator", "supervisor", "admin"},
    (S.NEW, S.CLEARED): {"system"},
    (S.CLEARED, S.NEW): {"system"},
}


def test_module_doctests() -> None:
    result = doctest.testmod(alerts.states)
    assert result.attempted >= 4 and result.failed == 0


def test_table_is_the_documented_one() -> None:
    got = {edge: {r.value for r in PERMISSIONS[act]} for edge, act in TRANSITIONS.items()}
    assert got == EXPECTED


@pytest.mark.parametrize("frm,to", list(itertools.product(AlertState, AlertState)))
def test_every_pair_and_role(frm: AlertState, to: AlertState) -> None:
    for role in Role:
        allowed = EXPECTED.get((frm, to))
        if allowed is None:
            with pytest.raises(IllegalTransition) as ei:
                check_transition(frm, to, role)
            assert (ei.value.from_state, ei.value.to_state) == (frm.value, to.value)
            assert frm.value in str(ei.value) and to.value in str(ei.value)
        elif role.value in allowed:
            assert isinstance(check_transition(frm, to, role), Action)
        else:
            with pytest.raises(NotPermitted):
                check_transition(frm, to, role)


def test_terminal_states_have_no_way_out() -> None:
    for st in TERMINAL_STATES:
        assert not [edge for edge in TRANSITIONS if edge[0] == st]
        assert all(allowed_targets(st, r) == [] for r in Role)


def test_every_state_is_reachable_from_new() -> None:
    seen, todo = {S.NEW}, [S.NEW]
    while todo:
        cur = todo.pop()
        for frm, to in TRANSITIONS:
            if frm == cur and to not in seen:
                seen.add(to)
                todo.append(to)
    assert seen == set(AlertState)
