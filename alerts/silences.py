"""Silences (maintenance windows) on a sensor, an asset or a district.

A silence covers detections whose **event time** lies in ``[starts_at,
ends_at)``: a replay of last week with last week's maintenance windows gives
the same result as live.  An alert raised under a silence is recorded and
audited, flagged ``silenced``, gets no reminders or escalations and never
reaches the outbox.  If the condition is still reported after the silence
ended, the alert is unsilenced (audited, announced) and its SLA clocks start
then.  A silence applies to alerts raised while it holds; it does not
silence alerts already in the queue.

Silences are never deleted: revoking sets ``revoked_at`` (and is audited).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from alerts.errors import Invalid, NotFound
from alerts.journal import iso, record
from alerts.models import Silence
from alerts.types import Actor


class Scope(StrEnum):
    SENSOR = "sensor"
    ASSET = "asset"
    DISTRICT = "district"


def silence_doc(x: Silence) -> dict:
    return {
        "id": x.id,
        "scope": x.scope,
        "target": x.target,
        "lifeline": x.lifeline,
        "kind": x.kind,
        "starts_at": iso(x.starts_at),
        "ends_at": iso(x.ends_at),
        "reason": x.reason,
        "created_by": x.created_by,
        "created_at": iso(x.created_at),
        "revoked_at": iso(x.revoked_at),
        "revoked_by": x.revoked_by,
    }


def create(
    s: Session,
    actor: Actor,
    now: datetime,
    *,
    scope: Scope | str,
    target: str,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    max_duration: float,
    lifeline: str | None = None,
    kind: str | None = None,
) -> Silence:
    scope = Scope(scope)
    if ends_at <= starts_at:
        raise Invalid("a silence must end after it starts", fields=("ends_at",))
    if ends_at - starts_at > timedelta(seconds=max_duration):
        raise Invalid(f"a silence may last at most {max_duration / 86400:g} days", fields=("ends_at",))
    if ends_at <= now:
        raise Invalid("this silence would already be over", fields=("ends_at",))
    if not target.strip() or not reason.strip():
        raise Invalid("a silence needs a target and a reason", fields=("target", "reason"))
    x = Silence(
        scope=scope.value,
        target=target.strip(),
        lifeline=lifeline,
        kind=kind,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason.strip(),
        created_by=actor.name,
        created_at=now,
    )
    s.add(x)
    s.flush()
    record(s, "silence_created", now, actor, note=x.reason, data=silence_doc(x))
    return x


def revoke(s: Session, silence_id: int, actor: Actor, now: datetime) -> Silence:
    x = s.get(Silence, silence_id)
    if x is None or x.revoked_at is not None:
        raise NotFound(f"no active silence {silence_id}")
    x.revoked_at = now
    x.revoked_by = actor.name
    record(s, "silence_revoked", now, actor, data=silence_doc(x))
    return x


def listing(s: Session, *, active_at: datetime | None = None, include_revoked: bool = False) -> list[Silence]:
    q = select(Silence).order_by(Silence.starts_at, Silence.id)
    if not include_revoked:
        q = q.where(Silence.revoked_at.is_(None))
    if active_at is not None:
        q = q.where(Silence.starts_at <= active_at, Silence.ends_at > active_at)
    return list(s.scalars(q))


def matching(
    s: Session, at: datetime, *, lifeline: str, district: str, asset: str | None, sensors: tuple[str, ...] | list[str], kind: str
) -> Silence | None:
    """The first silence covering a detection of this subject at event time ``at``, if any."""
    subject = [and_(Silence.scope == Scope.DISTRICT.value, Silence.target == district)]
    if sensors:
        subject.append(and_(Silence.scope == Scope.SENSOR.value, Silence.target.in_(list(sensors))))
    if asset:
        subject.append(and_(Silence.scope == Scope.ASSET.value, Silence.target == asset))
    q = (
        select(Silence)
        .where(
            Silence.revoked_at.is_(None),
            Silence.starts_at <= at,
            Silence.ends_at > at,
            or_(*subject),
            or_(Silence.lifeline.is_(None), Silence.lifeline == lifeline),
            or_(Silence.kind.is_(None), Silence.kind == kind),
        )
        .order_by(Silence.id)
        .limit(1)
    )
    return s.scalars(q).first()
