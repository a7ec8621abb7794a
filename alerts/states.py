"""The alert lifecycle as data: states, the edges between them, and who may walk each edge.

::

    from \\ to     acknowledged  dispatched  resolved  closed   false_alarm  cleared  new
    new            ACKNOWLEDGE   .           .         .        FALSE_ALARM  CLEAR*   .
    acknowledged   .             DISPATCH    RESOLVE   .        FALSE_ALARM  .        .
    dispatched     .             .           RESOLVE   .        FALSE_ALARM  .        .
    resolved       .             REJECT      .         CLOSE    FALSE_ALARM  .        .
    cleared        .             .           .         CLOSE    FALSE_ALARM  .        REOPEN*
    closed         (terminal)
    false_alarm    (terminal)

    * system only: the intake walks these edges when a detection clears or re-raises.

* ``new``: raised by a detection, waiting for the responsible unit to sign for it.
* ``acknowledged``: the unit signed for it (the acknowledgement SLA stops here).
* ``dispatched``: a crew is assigned (the ``crew`` field is required).
* ``resolved``: the crew reports cause and action taken (both required, notes optional);
  ``acknowledged -> resolved`` is the remote fix (a valve closed from SCADA, no crew sent).
* ``closed``: the control room verified the resolution (or closed a cleared alert;
  levels in ``auto_close`` are closed by the system once the re-open cool-down passed).
* ``false_alarm``: the operator's verdict; a note (the reason) is required.
* ``cleared``: the condition ended before anyone acknowledged it.  An acknowledged
  alert is never cleared: the crew still owns it.
* ``resolved -> dispatched`` (REJECT): the control room sends a resolution back; note required.

Who may do what (``crew`` only on alerts of their own unit; ``admin`` may do every
human action; the system edges stay with the system):

>>> for action in Action:
...     print(f"{action.value:12} {' '.join(sorted(r.value for r in PERMISSIONS[action]))}")
acknowledge  admin crew supervisor
dispatch     admin crew supervisor
resolve      admin crew supervisor
close        admin operator supervisor system
reject       admin operator supervisor
false_alarm  admin operator supervisor
clear        system
reopen       system
>>> check_transition(AlertState.NEW, AlertState.DISPATCHED, Role.CREW)
Traceback (most recent call last):
...
alerts.errors.IllegalTransition: illegal transition new -> dispatched
>>> check_transition(AlertState.RESOLVED, AlertState.CLOSED, Role.CREW)
Traceback (most recent call last):
...
alerts.errors.NotPermitted: role crew may not close (resolved -> closed)
>>> [s.value for s in allowed_targets(AlertState.ACKNOWLEDGED, Role.CREW)]
['dispatched', 'resolved']
"""

from __future__ import annotations

from enum import StrEnum

from alerts.errors import IllegalTransition, NotPermitted


class AlertState(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    DISPATCHED = "dispatched"
    RESOLVED = "resolved"
    CLOSED = "closed"
    FALSE_ALARM = "false_alarm"
    CLEARED = "cleared"


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"  # control room
    SUPERVISOR = "supervisor"  # control room; escalations go here
    CREW = "crew"  # a maintenance crew of one unit
    ENGINEER = "engineer"  # tunes detectors: reads everything, manages silences
    READ_ONLY = "read_only"
    SYSTEM = "system"  # the intake and the escalation timer; never a user's role


USER_ROLES = tuple(r for r in Role if r is not Role.SYSTEM)


class Action(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    DISPATCH = "dispatch"
    RESOLVE = "resolve"
    CLOSE = "close"
    REJECT = "reject"
    FALSE_ALARM = "false_alarm"
    CLEAR = "clear"
    REOPEN = "reopen"


S = AlertState
TRANSITIONS: dict[tuple[AlertState, AlertState], Action] = {
    (S.NEW, S.ACKNOWLEDGED): Action.ACKNOWLEDGE,
    (S.ACKNOWLEDGED, S.DISPATCHED): Action.DISPATCH,
    (S.ACKNOWLEDGED, S.RESOLVED): Action.RESOLVE,
    (S.DISPATCHED, S.RESOLVED): Action.RESOLVE,
    (S.RESOLVED, S.CLOSED): Action.CLOSE,
    (S.RESOLVED, S.DISPATCHED): Action.REJECT,
    (S.CLEARED, S.CLOSED): Action.CLOSE,
    (S.NEW, S.FALSE_ALARM): Action.FALSE_ALARM,
    (S.ACKNOWLEDGED, S.FALSE_ALARM): Action.FALSE_ALARM,
    (S.DISPATCHED, S.FALSE_ALARM): Action.FALSE_ALARM,
    (S.RESOLVED, S.FALSE_ALARM): Action.FALSE_ALARM,
    (S.CLEARED, S.FALSE_ALARM): Action.FALSE_ALARM,
    (S.NEW, S.CLEARED): Action.CLEAR,
    (S.CLEARED, S.NEW): Action.REOPEN,
}
del S

_FIELD = frozenset({Role.CREW, Role.SUPERVISOR, Role.ADMIN})
_CONTROL_ROOM = frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN})
PERMISSIONS: dict[Action, frozenset[Role]] = {
    Action.ACKNOWLEDGE: _FIELD,
    Action.DISPATCH: _FIELD,
    Action.RESOLVE: _FIELD,
    Action.CLOSE: _CONTROL_ROOM | {Role.SYSTEM},
    Action.REJECT: _CONTROL_ROOM,
    Action.FALSE_ALARM: _CONTROL_ROOM,
    Action.CLEAR: frozenset({Role.SYSTEM}),
    Action.REOPEN: frozenset({Role.SYSTEM}),
}

# What a human must say when walking an edge (the API answers 422 when it is missing).
REQUIRED_FIELDS: dict[Action, tuple[str, ...]] = {
    Action.DISPATCH: ("crew",),
    Action.RESOLVE: ("cause", "action"),
    Action.REJECT: ("note",),
    Action.FALSE_ALARM: ("note",),
}

TERMINAL_STATES = frozenset({AlertState.CLOSED, AlertState.FALSE_ALARM})
# The queue by default: everything someone still has to act on (a cleared red alert waits for the control room).
OPEN_STATES = tuple(s for s in AlertState if s not in TERMINAL_STATES)
# States in which the unit owns the alert: the acknowledgement SLA has stopped, the resolution SLA runs.
OWNED_STATES = frozenset({AlertState.ACKNOWLEDGED, AlertState.DISPATCHED})


def check_transition(from_state: AlertState, to_state: AlertState, role: Role) -> Action:
    """The action for the edge ``from_state -> to_state`` if ``role`` may walk it; raise otherwise."""
    action = TRANSITIONS.get((AlertState(from_state), AlertState(to_state)))
    if action is None:
        raise IllegalTransition(from_state, to_state)
    if Role(role) not in PERMISSIONS[action]:
        raise NotPermitted(f"role {role} may not {action} ({from_state} -> {to_state})")
    return action


def allowed_targets(state: AlertState, role: Role) -> list[AlertState]:
    """The states ``role`` may move an alert in ``state`` to (what the console offers as buttons)."""
    return [to for (frm, to), act in TRANSITIONS.items() if frm == state and role in PERMISSIONS[act]]
