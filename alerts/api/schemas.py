"""Request and response bodies, one schema per direction: ``*Create`` in, ``*Public`` / ``*Detail`` out.

Incoming bodies forbid unknown fields (a typo is a 422, not silently
ignored).  Event times (``first_seen``, ``last_seen``, ``ended``) are
RFC 3339 strings with the detections' nanoseconds; wall times are datetimes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from alerts.silences import Scope
from alerts.states import AlertState

LevelName = Literal["red", "orange", "yellow", "blue"]
MAX_TEXT = 4000


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- alerts --------------------------------------------------------------------------------------


class AlertPublic(_Out):
    id: str
    key: str
    kind: str
    detector: str
    lifeline: str
    district: str
    asset: str | None
    sensors: list[str]
    metric: str | None
    unit: str
    level: LevelName
    state: AlertState
    silenced: bool
    count: int
    flaps: int
    first_seen: str
    last_seen: str
    ended: str | None
    peak_score: float
    peak_value: float | None
    incident_id: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    ack_due: datetime
    resolve_due: datetime
    reminders: int
    ack_escalated_at: datetime | None
    resolve_escalated_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    dispatched_at: datetime | None
    crew: list[str] | None
    resolved_at: datetime | None
    resolution: dict[str, str | None] | None
    cleared_at: datetime | None
    closed_at: datetime | None


class AuditPublic(_Out):
    id: int
    at: datetime
    kind: str
    actor: str
    role: str
    from_state: str | None
    to_state: str | None
    note: str | None
    data: dict[str, Any]
    event_ns: int | None


class CommentPublic(_Out):
    id: int
    alert_id: str
    at: datetime
    author: str
    role: str
    text: str


class AlertDetail(AlertPublic):
    evidence: dict[str, Any]
    timeline: list[AuditPublic]
    comments: list[CommentPublic]
    actions: list[AlertState] = Field(description="states the caller may move this alert to")


class AlertPage(BaseModel):
    items: list[AlertPublic]
    total: int
    limit: int
    offset: int


class TransitionCreate(_In):
    to: AlertState
    expected_version: int | None = Field(default=None, ge=1, description="the version the caller saw; 409 if it changed")
    note: str | None = Field(default=None, max_length=MAX_TEXT)
    cause: str | None = Field(default=None, max_length=MAX_TEXT, description="resolve: what caused it (required)")
    action: str | None = Field(default=None, max_length=MAX_TEXT, description="resolve: what was done (required)")
    notes: str | None = Field(default=None, max_length=MAX_TEXT, description="resolve: anything else")
    crew: list[str] = Field(default_factory=list, max_length=50, description="dispatch: who goes (required)")


class CommentCreate(_In):
    text: str = Field(min_length=1, max_length=MAX_TEXT)


# --- incidents -----------------------------------------------------------------------------------


class IncidentPublic(_Out):
    id: str
    asset: str
    lifeline: str
    district: str
    unit: str
    level: LevelName
    alert_count: int
    first_seen: str
    last_seen: str
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None


class IncidentDetail(IncidentPublic):
    alerts: list[AlertPublic]


class IncidentPage(BaseModel):
    items: list[IncidentPublic]
    total: int
    limit: int
    offset: int


# --- silences ------------------------------------------------------------------------------------


class SilenceCreate(_In):
    scope: Scope
    target: str = Field(min_length=1, max_length=100, description="sensor id, asset id or district id")
    lifeline: str | None = Field(default=None, max_length=32)
    kind: str | None = Field(default=None, max_length=100, description="only this detection kind")
    starts_at: AwareDatetime = Field(description="event time; with a zone")
    ends_at: AwareDatetime
    reason: str = Field(min_length=1, max_length=2000)


class SilencePublic(_Out):
    id: int
    scope: Scope
    target: str
    lifeline: str | None
    kind: str | None
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None


# --- errors --------------------------------------------------------------------------------------


class ErrorPublic(BaseModel):
    """401, 403, 404, 409 and 503 answers (422 answers have pydantic's shape: ``detail`` is a list)."""

    detail: str
    error: str = Field(description="unauthenticated, forbidden, not_found, illegal_transition, version_conflict, duplicate, store_unavailable")
    from_state: str | None = Field(default=None, description="illegal_transition: the alert's state")
    to_state: str | None = Field(default=None, description="illegal_transition: the state asked for")
    expected_version: int | None = Field(default=None, description="version_conflict: the version the caller sent")
    version: int | None = Field(default=None, description="version_conflict: the alert's version now")
    state: str | None = Field(default=None, description="version_conflict: the alert's state now")


# --- stats, me, health ---------------------------------------------------------------------------


class KpiRow(BaseModel):
    unit: str | None = Field(description="null: all units and levels together")
    level: LevelName | None
    count: int
    mean_s: float | None
    p50_s: float | None
    p90_s: float | None
    breached: int = Field(description="how many of them missed the SLA")


class StatsPublic(BaseModel):
    since: datetime | None
    until: datetime | None
    alerts: int
    time_to_acknowledge: list[KpiRow]
    time_to_resolve: list[KpiRow]


class MePublic(BaseModel):
    name: str
    role: str
    unit: str | None
    unit_scoped: bool
    actions: list[str] = Field(description="state-machine actions this role may perform")


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: str
