"""Small shared names of the alert queue: who acts, and JSON that both databases accept."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from alerts.states import Role


@dataclass(frozen=True, slots=True)
class Actor:
    """Whoever performs an action: a user (name, role, unit) or the system."""

    name: str
    role: Role
    unit: str | None = None

    @property
    def unit_scoped(self) -> bool:
        """Crews see and act on their own unit's alerts only."""
        return self.role is Role.CREW


INTAKE = Actor("intake", Role.SYSTEM)
TIMER = Actor("escalation", Role.SYSTEM)


def jsonable(value: Any, depth: int = 0) -> Any:
    """Plain JSON: NaN/inf -> None (PostgreSQL's JSONB refuses NaN), numpy scalars -> Python, tuples -> lists.

    >>> jsonable({"v": float("nan"), "s": ("a", 1), 2: 1.5})
    {'v': None, 's': ['a', 1], '2': 1.5}
    """
    if depth > 20:
        return str(value)
    if value is None or isinstance(value, bool | str | int):
        return value if not isinstance(value, int) or isinstance(value, bool) else int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, depth + 1) for v in value]
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return jsonable(item(), depth + 1)
        except (TypeError, ValueError):
            pass
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist):
        return jsonable(tolist(), depth + 1)
    return str(value)
