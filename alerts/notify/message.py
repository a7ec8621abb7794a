"""One notification, typed: :class:`Notice` (built from an outbox row) and its bilingual texts.

The outbox row (:class:`alerts.models.Outbox`, written by
:func:`alerts.journal.record`) holds the event (``kind``: ``alert.raised``,
``alert.transition``, ...) and a payload with the alert as it was right after
the change.  :meth:`Notice.doc` is the JSON every machine receiver gets (the
MQTT payload and the generic webhook body); :class:`Texts` renders the human
texts, Simplified Chinese first, then English, with times in the city's
local time (``city.utc_offset_hours``).

>>> from datetime import UTC, datetime
>>> n = Notice(
...     outbox_id=7, kind="alert.transition", at=datetime(2026, 1, 1, 8, 3, tzinfo=UTC), unit="shz-water", level=Level.ORANGE,
...     payload={"from": "new", "to": "acknowledged", "action": "acknowledge", "actor": "crew-a", "role": "crew",
...              "alert": {"id": "a1", "key": "water:w-d01-002:end_pressure_low", "kind": "end_pressure_low",
...                        "lifeline": "water", "district": "d01", "asset": "dma-d01-1", "sensors": ["w-d01-002"],
...                        "metric": "pressure", "unit": "shz-water", "level": "orange", "state": "acknowledged",
...                        "count": 2, "first_seen": "2026-01-01T08:00:00Z", "last_seen": "2026-01-01T08:02:00Z",
...                        "peak_score": 3.5, "peak_value": 0.121}},
...     evidence={"value": 0.121, "source": "GB 50013-2018", "series": [1, 2]})
>>> t = Texts(utc_offset_hours=6)
>>> print(t.title_zh(n))
【橙色预警(II级)】供水 d01 end_pressure_low: 状态变更 待确认→已确认
>>> print(t.title_en(n))
[ORANGE (II)] Water supply d01 end_pressure_low: new → acknowledged
>>> print(t.local(n.at))
2026-01-01 14:03:00 (UTC+6)
>>> n.doc()["transition"], n.doc()["evidence"]
({'from': 'new', 'to': 'acknowledged', 'action': 'acknowledge', 'actor': 'crew-a', 'role': 'crew', 'note': None}, {'value': 0.121, 'source': 'GB 50013-2018', 'series': [1, 2]})
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from alerts.journal import iso
from lifewatch.levels import Level

EVENTS: dict[str, tuple[str, str]] = {
    "alert.raised": ("新告警", "raised"),
    "alert.transition": ("状态变更", "state change"),
    "alert.reopened": ("重新告警", "re-opened"),
    "alert.level_raised": ("预警升级", "level raised"),
    "alert.condition_cleared": ("告警条件已消失", "condition cleared"),
    "alert.reminder": ("提醒:尚未确认", "reminder: not acknowledged"),
    "alert.escalated": ("超时升级", "escalated: SLA breached"),
    "alert.unsilenced": ("静默期结束仍在告警", "still active after its silence"),
    "alert.comment": ("新备注", "comment"),
    "incident.created": ("新事件(多告警关联)", "incident opened"),
    "incident.closed": ("事件已关闭", "incident closed"),
}
STATES_ZH = {
    "new": "待确认",
    "acknowledged": "已确认",
    "dispatched": "已派工",
    "resolved": "已处置",
    "closed": "已关闭",
    "false_alarm": "误报",
    "cleared": "已消失",
}
SLA_ZH = {"acknowledge": "确认", "resolve": "处置"}
EVIDENCE_KEYS = 12  # scalar evidence entries kept in the summary
EVIDENCE_LIST = 5  # items kept of a list
EVIDENCE_TEXT = 160  # characters kept of a string
SENSORS_SHOWN = 10  # sensors named in human texts (the JSON lists them all)


@dataclass(frozen=True)
class Notice:
    """One outbox row as the channels see it; ``outbox_id`` is the idempotency key of every delivery."""

    outbox_id: int
    kind: str
    at: datetime
    unit: str | None
    level: Level | None
    payload: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] | None = None  # the alert's peak evidence (payload's, or read from the alert)

    @classmethod
    def from_row(cls, row: Any, evidence: dict[str, Any] | None = None) -> Notice:
        """From an :class:`alerts.models.Outbox` row (or anything with its attributes)."""
        payload = dict(row.payload or {})
        alert = payload.get("alert") or {}
        ev = alert.get("evidence") if isinstance(alert.get("evidence"), dict) else evidence
        return cls(row.id, row.kind, row.created_at, row.unit, Level(row.level) if row.level is not None else None, payload, ev)

    @property
    def alert(self) -> dict[str, Any]:
        a = self.payload.get("alert")
        return a if isinstance(a, dict) else {}

    @property
    def has_alert(self) -> bool:
        return bool(self.alert.get("id"))

    @property
    def level_label(self) -> str | None:
        if self.level is not None:
            return self.level.label
        lv = self.payload.get("level") or self.alert.get("level")
        try:
            return Level.parse(lv).label if lv else None
        except (KeyError, ValueError):
            return None

    @property
    def state(self) -> str | None:
        return self.alert.get("state") or self.payload.get("to")

    def transition(self) -> dict[str, Any] | None:
        if "from" not in self.payload and "to" not in self.payload:
            return None
        p = self.payload
        return {"from": p.get("from"), "to": p.get("to"), "action": p.get("action"), "actor": p.get("actor"),
                "role": p.get("role"), "note": p.get("note")}

    def details(self) -> dict[str, Any]:
        """The event's own data (reminder number, SLA, levels, incident...), without the alert snapshot."""
        skip = {"alert", "event", "from", "to", "action", "actor", "role", "at", "note"}
        return {k: v for k, v in self.payload.items() if k not in skip}

    def doc(self) -> dict[str, Any]:
        """The machine-readable notification: MQTT payload and generic webhook body."""
        a = self.alert
        return {
            "outbox_id": self.outbox_id,
            "idempotency_key": f"lifewatch-outbox-{self.outbox_id}",
            "event": self.kind,
            "at": iso(self.at),
            "alert_id": a.get("id"),
            "key": a.get("key"),
            "kind": a.get("kind"),
            "level": self.level_label,
            "state": self.state,
            "unit": self.unit if self.unit is not None else a.get("unit"),
            "lifeline": a.get("lifeline"),
            "district": a.get("district"),
            "asset": a.get("asset"),
            "sensors": list(a.get("sensors") or []),
            "metric": a.get("metric"),
            "first_seen": a.get("first_seen"),
            "last_seen": a.get("last_seen"),
            "ended": a.get("ended"),
            "count": a.get("count"),
            "peak": {"score": a.get("peak_score"), "value": a.get("peak_value")},
            "evidence": summarise_evidence(self.evidence),
            "transition": self.transition(),
            "details": self.details(),
            "incident_id": a.get("incident_id") or self.payload.get("incident_id"),
            "version": a.get("version"),
        }


def summarise_evidence(evidence: dict[str, Any] | None) -> dict[str, Any]:
    """Scalar evidence entries (and short lists of scalars), floats rounded; nested structures dropped.

    >>> summarise_evidence({"value": 0.123456789, "nested": {"a": 1}, "ids": list(range(9)), "note": "x" * 300})["ids"]
    [0, 1, 2, 3, 4]
    """
    out: dict[str, Any] = {}
    for k, v in (evidence or {}).items():
        if len(out) >= EVIDENCE_KEYS:
            break
        if isinstance(v, list | tuple):
            items = [_scalar(x) for x in v[:EVIDENCE_LIST]]
            if all(x is not _SKIP for x in items):
                out[str(k)] = items
            continue
        s = _scalar(v)
        if s is not _SKIP:
            out[str(k)] = s
    return out


_SKIP = object()


def _scalar(v: Any) -> Any:
    if v is None or isinstance(v, bool | int):
        return v
    if isinstance(v, float):
        return float(f"{v:.6g}") if math.isfinite(v) else None
    if isinstance(v, str):
        return v if len(v) <= EVIDENCE_TEXT else v[: EVIDENCE_TEXT - 1] + "…"
    return _SKIP


@lru_cache(maxsize=1)
def _lifelines() -> dict[str, tuple[str, str, dict[str, str]]]:
    from lifewatch.lifelines import load_lifelines

    return {lid: (ll.title, ll.title_zh, {m: spec.unit for m, spec in ll.metrics.items()}) for lid, ll in load_lifelines().items()}


class Texts:
    """Human texts of a notice: titles, markdown for group robots, a short SMS; Chinese then English.

    ``city`` (a :class:`lifewatch.city.City`) names districts and units; without it, ids are shown.
    """

    def __init__(self, city: Any = None, utc_offset_hours: float | None = None):
        self.city = city
        hours = utc_offset_hours if utc_offset_hours is not None else (city.utc_offset_hours if city is not None else 0.0)
        self.tz = timezone(timedelta(hours=hours))
        self.tz_label = "UTC" + (f"{hours:+g}" if hours else "")

    # --- pieces -----------------------------------------------------------------------------

    def local(self, dt: datetime | str | None, *, with_zone: bool = True) -> str:
        if dt is None:
            return "-"
        if isinstance(dt, str):
            dt = parse_iso(dt)
        text = dt.astimezone(self.tz).strftime("%Y-%m-%d %H:%M:%S")
        return f"{text} ({self.tz_label})" if with_zone else text

    def lifeline(self, lid: str | None) -> tuple[str, str]:
        if not lid:
            return "-", "-"
        en, zh, _units = _lifelines().get(lid, (lid, lid, {}))
        return zh or en, en

    def district(self, did: str | None) -> tuple[str, str]:
        if not did:
            return "-", "-"
        d = self.city.districts.get(did) if self.city is not None else None
        if d is None:
            return did, did
        return f"{d.name_zh or d.name}({did})", f"{d.name} ({did})"

    def unit(self, uid: str | None) -> tuple[str, str]:
        if not uid:
            return "-", "-"
        if self.city is not None:
            for u in [*self.city.units.values(), *self.city.district_units.values()]:
                if u.id == uid:
                    return f"{u.name_zh or u.name}({uid})", f"{u.name} ({uid})"
        return uid, uid

    def metric_unit(self, n: Notice) -> str:
        a = n.alert
        return _lifelines().get(a.get("lifeline") or "", ("", "", {}))[2].get(a.get("metric") or "", "")

    @staticmethod
    def level(n: Notice) -> tuple[str, str]:
        label = n.level_label
        if label is None:
            return "通知", "NOTICE"
        lv = Level.parse(label)
        return lv.zh, f"{lv.label.upper()} ({lv.roman})"

    def event(self, n: Notice) -> tuple[str, str]:
        zh, en = EVENTS.get(n.kind, (n.kind, n.kind))
        p = n.payload
        if n.kind == "alert.transition" or (n.kind in ("alert.reopened",) and p.get("from")):
            frm, to = p.get("from") or "", p.get("to") or ""
            zh = f"{zh} {STATES_ZH.get(frm, frm)}→{STATES_ZH.get(to, to)}"
            en = f"{frm} → {to}"
        elif n.kind == "alert.level_raised":
            a, b = p.get("from_level"), p.get("to_level")
            if a and b:
                zh = f"{zh} {Level.parse(a).zh}→{Level.parse(b).zh}"
                en = f"{en}: {a} → {b}"
        elif n.kind == "alert.escalated":
            sla = str(p.get("sla") or "")
            zh = f"{zh}({SLA_ZH.get(sla, sla)}时限已过,已通知值班主管)"
            en = f"{en} ({sla} SLA; supervisor notified)"
        elif n.kind == "alert.reminder" and p.get("reminder"):
            zh = f"{zh}(第{p['reminder']}次)"
            en = f"{en} (#{p['reminder']})"
        return zh, en

    def subject(self, n: Notice) -> tuple[str, str]:
        """What the notice is about: lifeline, district, kind (or the incident's asset)."""
        a = n.alert
        if not a:
            asset = n.payload.get("asset") or "-"
            k = len(n.payload.get("alerts") or [])
            return (f"资产 {asset} 关联事件" + (f"({k}条告警)" if k else ""),
                    f"incident at asset {asset}" + (f" ({k} alerts)" if k else ""))
        lz, le = self.lifeline(a.get("lifeline"))
        did = a.get("district") or ""
        d = self.city.districts.get(did) if self.city is not None else None
        dz, de = ((d.name_zh or d.name), d.name) if d is not None else (did, did)
        kind = a.get("kind") or ""
        return f"{lz} {dz} {kind}".strip(), (f"{le}, {de}, {kind}" if d is not None else f"{le} {de} {kind}").strip()

    # --- whole texts ------------------------------------------------------------------------

    def title_zh(self, n: Notice) -> str:
        return f"【{self.level(n)[0]}】{self.subject(n)[0]}: {self.event(n)[0]}"

    def title_en(self, n: Notice) -> str:
        return f"[{self.level(n)[1]}] {self.subject(n)[1]}: {self.event(n)[1]}"

    def lines(self, n: Notice) -> list[tuple[str, str, str]]:
        """(label_zh, label_en, value) rows shared by the markdown and plain texts."""
        a = n.alert
        rows: list[tuple[str, str, str]] = []
        ez, ee = self.event(n)
        rows.append(("事件", "Event", f"{ez} / {ee}"))
        if a:
            dz, de = self.district(a.get("district"))
            rows.append(("地点", "Where", f"{dz} / {de}" + (f", 资产 asset {a['asset']}" if a.get("asset") else "")))
            state = a.get("state") or ""
            rows.append(("状态", "State", f"{STATES_ZH.get(state, state)} / {state}"))
            sensors = list(a.get("sensors") or [])
            shown = ", ".join(sensors[:SENSORS_SHOWN]) + (f" (+{len(sensors) - SENSORS_SHOWN})" if len(sensors) > SENSORS_SHOWN else "")
            if shown:
                rows.append(("传感器", "Sensors", shown))
            rows.append(("首次/最近", "First/last seen",
                         f"{self.local(a.get('first_seen'), with_zone=False)} / {self.local(a.get('last_seen'))}"))
            peak = a.get("peak_value")
            unit = self.metric_unit(n)
            value = f"{peak:.6g}{(' ' + unit) if unit else ''}" if isinstance(peak, int | float) else "-"
            score = a.get("peak_score")
            rows.append(("峰值", "Peak", f"{a.get('metric') or ''} {value}, score {score:.3g}" if isinstance(score, int | float)
                         else f"{a.get('metric') or ''} {value}"))
            rows.append(("次数", "Count", str(a.get("count", 1))))
        uz, ue = self.unit(n.unit or a.get("unit"))
        rows.append(("责任单位", "Unit", f"{uz} / {ue}"))
        t = n.transition()
        if t and t.get("actor") and t.get("role") != "system":
            rows.append(("操作人", "By", f"{t['actor']} ({t.get('role')})"))
        note = n.payload.get("note")
        if note and n.kind != "alert.escalated":
            rows.append(("备注", "Note", str(note)[:500]))
        ev = summarise_evidence(n.evidence)
        if ev:
            rows.append(("依据", "Evidence", ", ".join(f"{k}={v}" for k, v in list(ev.items())[:6])))
        rows.append(("时间", "At", self.local(n.at)))
        return rows

    def markdown(self, n: Notice, *, wecom_colour: bool = False) -> str:
        """Markdown for WeCom/DingTalk group robots (both render ``###``, ``**bold**`` and ``>``)."""
        title = f"{self.title_zh(n)}"
        if wecom_colour and n.level_label in ("red", "orange"):
            title = f'<font color="warning">{title}</font>'
        out = [f"### {title}", f"{self.title_en(n)}", ""]
        for zh, en, value in self.lines(n):
            out.append(f"**{zh} {en}**: {value}  ")
        out.append("")
        out.append(f"> lifewatch #{n.outbox_id}" + (f" · alert {n.alert['id']}" if n.has_alert else ""))
        return "\n".join(out)

    def plain(self, n: Notice) -> str:
        """The whole text without markup (the generic webhook's ``text``)."""
        out = [self.title_zh(n), self.title_en(n)]
        out += [f"{zh} {en}: {value}" for zh, en, value in self.lines(n)]
        out.append(f"lifewatch #{n.outbox_id}")
        return "\n".join(out)

    def sms(self, n: Notice) -> str:
        """A short text for an SMS gateway: one Chinese and one English line, local time, the delivery id."""
        when = self.local(n.at, with_zone=False)[5:16]  # MM-DD HH:MM, local
        sz, se = self.subject(n)
        zh = f"【Lifewatch】{self.level(n)[0]} {sz} {self.event(n)[0]} {when}"
        en = f"{self.level(n)[1]} {se}: {self.event(n)[1]}, {when} {self.tz_label}"
        return f"{' '.join(zh.split())}\n{' '.join(en.split())} #{n.outbox_id}"


def parse_iso(text: str) -> datetime:
    """RFC 3339 as the queue writes it (``Z``, up to nanoseconds) -> aware UTC datetime (microseconds)."""
    t = text.strip().replace("Z", "+00:00")
    if "." in t:
        head, _, rest = t.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits):]
        t = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    dt = datetime.fromisoformat(t)
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
