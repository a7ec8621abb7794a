"""Typed errors of the alert queue, translated once at each boundary.

The tree (the API maps each branch to one HTTP status)::

    AlertError
     ├── NotFound                  404  no such alert / incident / silence / user (or not in the caller's unit)
     ├── Conflict                  409
     │    ├── IllegalTransition        the state machine has no edge from_state -> to_state
     │    ├── VersionConflict          someone changed the alert since the caller read it
     │    └── DuplicateName            a user of that name exists
     ├── Invalid                   422  well-formed but unusable: missing resolve feedback, bad silence window
     ├── AuthError                 401  no, malformed, unknown or revoked token
     ├── NotPermitted              403  the caller's role may not do this
     └── StoreError                503  the database failed (SQLAlchemy errors are translated in alerts.db)
          └── AuditImmutable           something tried to UPDATE or DELETE an audit row

SQLAlchemy exceptions never leave :mod:`alerts.db`; they become
:class:`StoreError` (``raise ... from exc``).
"""

from __future__ import annotations


class AlertError(Exception):
    """Base class of every error the alert queue raises on purpose."""

    code = "alert_error"


class NotFound(AlertError):
    code = "not_found"


class Conflict(AlertError):
    code = "conflict"


class IllegalTransition(Conflict):
    """The state machine has no edge between the two states (or the edge is not for this actor)."""

    code = "illegal_transition"

    def __init__(self, from_state: str, to_state: str, detail: str = ""):
        self.from_state = str(from_state)
        self.to_state = str(to_state)
        msg = f"illegal transition {self.from_state} -> {self.to_state}"
        super().__init__(f"{msg}: {detail}" if detail else msg)


class VersionConflict(Conflict):
    """Optimistic concurrency: the alert's version is not the one the caller expected."""

    code = "version_conflict"

    def __init__(self, alert_id: str, expected: int, actual: int, state: str):
        self.alert_id = alert_id
        self.expected = expected
        self.actual = actual
        self.state = str(state)
        super().__init__(
            f"alert {alert_id} changed: version {actual} (state {self.state}), expected {expected}; reload and retry"
        )


class DuplicateName(Conflict):
    code = "duplicate"


class Invalid(AlertError):
    """Well-formed but unusable; ``fields`` names the offending inputs (the API reports them like pydantic's)."""

    code = "invalid"

    def __init__(self, message: str, *, fields: tuple[str, ...] | list[str] = ()):
        self.fields = tuple(fields)
        super().__init__(message)


class AuthError(AlertError):
    code = "unauthenticated"


class NotPermitted(AlertError):
    code = "forbidden"


class StoreError(AlertError):
    code = "store_unavailable"


class AuditImmutable(StoreError):
    code = "audit_immutable"
