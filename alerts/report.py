"""``lifewatch report shift``: the control room's hand-over report, one self-contained HTML file.

For a shift ``[start, end)`` (wall time, the queue's clock):

* **raised**: alerts that entered the queue in the shift (``created_at``), per
  unit and level (silenced ones counted too, and shown apart);
* **open at hand-over**: alerts that entered before ``end`` and were not in a
  terminal state at ``end``, most severe first, then oldest first.  The state
  at ``end`` is rebuilt from the append-only audit trail (the last state
  change before ``end``), so a report for a past shift shows what was open
  then, not now.  The level shown is the alert's current one (levels only
  rise while an alert is open);
* **KPIs**: time to acknowledge and time to resolve of the alerts raised in
  the shift, per unit and level (count, mean, p50, p90, SLA breaches), from
  :func:`alerts.stats.kpis` (durations may end after the shift);
* **activity**: state changes, escalations and reminders during the shift.

Headings are bilingual (简体中文 / English); times are the city's local time
(``utc_offset_hours``).  The HTML has no scripts and no external assets;
tables carry ``id`` and ``data-*`` attributes for machines.

``cli(args, settings)``: ``args.from_`` and ``args.to`` (ISO 8601; a time
without offset is city local time; ``now``; default: the 8 hours up to now),
``args.out`` (a file; default stdout).  Exit 0 written, 1 database error,
2 bad arguments.
"""

from __future__ import annotations

import argparse
import html
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, or_, select

from alerts.db import Store
from alerts.models import Alert, AuditEvent
from alerts.states import TERMINAL_STATES, AlertState
from alerts.stats import kpis
from lifewatch.levels import Level

DEFAULT_SHIFT_S = 8 * 3600  # a common three-shift roster [U: project default]
_TERMINAL = {s.value for s in TERMINAL_STATES}
_CHUNK = 500

STATE_NAMES = {
    "new": "待确认 new",
    "acknowledged": "已确认 acknowledged",
    "dispatched": "已派工 dispatched",
    "resolved": "已处置 resolved",
    "closed": "已关闭 closed",
    "false_alarm": "误报 false alarm",
    "cleared": "已消失 cleared",
}
LEVEL_NAMES = {lv: f"{lv.zh[:2]} {lv.label}" for lv in Level}


@dataclass(frozen=True)
class OpenAlert:
    id: str
    level: Level
    state: str  # at hand-over
    unit: str
    lifeline: str
    district: str
    asset: str | None
    kind: str
    created_at: datetime
    age_s: float
    count: int
    silenced: bool
    ack_overdue: bool
    resolve_overdue: bool
    acknowledged_by: str | None
    crew: list[str] | None


@dataclass
class ShiftReport:
    start: datetime
    end: datetime
    generated_at: datetime
    city: str
    utc_offset_hours: float
    raised: dict[tuple[str, Level], int] = field(default_factory=dict)
    raised_silenced: dict[str, int] = field(default_factory=dict)
    open_alerts: list[OpenAlert] = field(default_factory=list)
    kpis: dict[str, Any] = field(default_factory=dict)
    activity: Counter[str] = field(default_factory=Counter)
    unit_names: dict[str, str] = field(default_factory=dict)  # unit id -> "中文名 English name" (from the city)

    @property
    def units(self) -> list[str]:
        return sorted({u for u, _ in self.raised} | {a.unit for a in self.open_alerts})

    def raised_total(self, unit: str | None = None, level: Level | None = None) -> int:
        return sum(n for (u, lv), n in self.raised.items() if (unit is None or u == unit) and (level is None or lv == level))


def shift_report(
    store: Store, start: datetime, end: datetime, *, city: Any = None, now: datetime | None = None
) -> ShiftReport:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("shift bounds must be aware datetimes")
    if end <= start:
        raise ValueError("the shift must end after it starts")
    rep = ShiftReport(
        start=start.astimezone(UTC),
        end=end.astimezone(UTC),
        generated_at=(now or datetime.now(UTC)).astimezone(UTC),
        city=getattr(city, "name", "") or "",
        utc_offset_hours=float(getattr(city, "utc_offset_hours", 0.0) or 0.0),
    )
    if city is not None:
        for u in [*city.units.values(), *city.district_units.values()]:
            rep.unit_names[u.id] = " ".join(x for x in (u.name_zh, u.name) if x)
    with store.read() as s:
        q = (
            select(Alert.unit, Alert.level, Alert.silenced, func.count())
            .where(Alert.created_at >= start, Alert.created_at < end)
            .group_by(Alert.unit, Alert.level, Alert.silenced)
        )
        for unit, level, silenced, n in s.execute(q):
            key = (unit, Level(level))
            rep.raised[key] = rep.raised.get(key, 0) + n
            if silenced:
                rep.raised_silenced[unit] = rep.raised_silenced.get(unit, 0) + n

        candidates = list(
            s.scalars(
                select(Alert).where(Alert.created_at < end, or_(Alert.closed_at.is_(None), Alert.closed_at >= end))
            )
        )
        state_at = _states_at(s, [a.id for a in candidates], end)
        for a in candidates:
            st = state_at.get(a.id, a.state)
            if st in _TERMINAL:
                continue
            rep.open_alerts.append(
                OpenAlert(
                    id=a.id, level=Level(a.level), state=st, unit=a.unit, lifeline=a.lifeline, district=a.district,
                    asset=a.asset, kind=a.kind, created_at=a.created_at, age_s=(end - a.created_at).total_seconds(),
                    count=a.count, silenced=bool(a.silenced),
                    ack_overdue=st == AlertState.NEW.value and a.ack_due <= end,
                    resolve_overdue=st in ("new", "acknowledged", "dispatched") and a.resolve_due <= end,
                    acknowledged_by=a.acknowledged_by if st != AlertState.NEW.value else None,
                    crew=a.crew if st in ("dispatched", "resolved") else None,
                )
            )
        rep.open_alerts.sort(key=lambda o: (o.level.value, o.created_at, o.id))

        rep.kpis = kpis(s, since=start, until=end)

        acts = select(AuditEvent.kind, AuditEvent.to_state, func.count()).where(AuditEvent.at >= start, AuditEvent.at < end)
        for kind, to_state, n in s.execute(acts.group_by(AuditEvent.kind, AuditEvent.to_state)):
            if kind == "transition" and to_state:
                rep.activity["reopened" if to_state == AlertState.NEW.value else to_state] += n
            elif kind in ("raised", "escalation", "reminder", "comment", "level_raised"):
                rep.activity[kind] += n
    return rep


def _states_at(s: Any, ids: list[str], end: datetime) -> dict[str, str]:
    """Each alert's state at ``end``: the target of its last audited state change before ``end``."""
    out: dict[str, str] = {}
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        q = (
            select(AuditEvent.alert_id, AuditEvent.to_state)
            .where(AuditEvent.alert_id.in_(chunk), AuditEvent.to_state.is_not(None), AuditEvent.at < end)
            .order_by(AuditEvent.id)
        )
        for alert_id, to_state in s.execute(q):
            out[alert_id] = to_state  # later rows win
    return out


# --- HTML ----------------------------------------------------------------------------------------

CSS = """
body{font-family:"Noto Sans SC","PingFang SC","Microsoft YaHei",system-ui,sans-serif;margin:2em;color:#1f2328;}
h1{margin-bottom:.2em} h2{margin-top:1.6em;border-bottom:1px solid #d0d7de;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0;font-size:.92em} th,td{border:1px solid #d0d7de;padding:.3em .6em;text-align:left}
th{background:#f6f8fa} td.num{text-align:right;font-variant-numeric:tabular-nums}
.lv{display:inline-block;padding:0 .5em;border-radius:3px;color:#fff;font-weight:600;white-space:nowrap}
.lv-yellow{color:#1f2328} .overdue{color:#b42318;font-weight:600} .muted{color:#656d76}
dl.summary{display:grid;grid-template-columns:max-content auto;gap:.2em 1em} dl.summary dt{font-weight:600}
"""


def _e(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def _dur(seconds: float | None) -> str:
    """A duration for people: ``45s``, ``4m 05s``, ``2h 03m``, ``3d 04h``."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def _level_badge(lv: Level) -> str:
    return f'<span class="lv lv-{lv.label}" style="background:{lv.colour}">{_e(LEVEL_NAMES[lv])}</span>'


def render_html(rep: ShiftReport) -> str:
    tz = timezone(timedelta(hours=rep.utc_offset_hours))
    zone = "UTC" + (f"{rep.utc_offset_hours:+g}" if rep.utc_offset_hours else "")

    def local(dt: datetime | None) -> str:
        return dt.astimezone(tz).strftime("%Y-%m-%d %H:%M") if dt is not None else "-"

    window = f"{local(rep.start)} – {local(rep.end)} ({zone})"
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>交接班报告 Shift report {_e(rep.city)} {_e(window)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>交接班报告 / Shift hand-over report{(' — ' + _e(rep.city)) if rep.city else ''}</h1>",
        f'<p id="window" data-start="{_e(rep.start.isoformat())}" data-end="{_e(rep.end.isoformat())}">'
        f"班次 Shift: {_e(window)}</p>",
    ]
    ack_overdue = sum(a.ack_overdue for a in rep.open_alerts)
    out += [
        '<dl class="summary" id="summary">',
        f'<dt>本班新增 Raised</dt><dd data-key="raised">{rep.raised_total()}</dd>',
        f'<dt>交班未关闭 Open at hand-over</dt><dd data-key="open">{len(rep.open_alerts)}</dd>',
        f'<dt>确认超时 Acknowledgement overdue</dt><dd data-key="ack_overdue">{ack_overdue}</dd>',
        f'<dt>超时升级 Escalations</dt><dd data-key="escalations">{rep.activity.get("escalation", 0)}</dd>',
        "</dl>",
    ]

    # raised per unit and level
    out += ['<section id="raised">', "<h2>本班新增告警 / Alerts raised in this shift</h2>"]
    units = sorted({u for u, _ in rep.raised})
    if not units:
        out.append('<p class="muted">无 / none</p>')
    else:
        head = "".join(f"<th>{_level_badge(lv)}</th>" for lv in Level)
        named = [u for u in units if u in rep.unit_names]
        if named:
            out.append('<p class="muted">' + "; ".join(f"{_e(u)}: {_e(rep.unit_names[u])}" for u in named) + "</p>")
        out += ['<table id="raised-table">', f"<thead><tr><th>单位 Unit</th>{head}<th>合计 Total</th><th>其中静默 Silenced</th></tr></thead>", "<tbody>"]
        for u in units:
            cells = "".join(f'<td class="num" data-level="{lv.label}">{rep.raised.get((u, lv), 0)}</td>' for lv in Level)
            out.append(f'<tr data-unit="{_e(u)}"><th title="{_e(rep.unit_names.get(u, u))}">{_e(u)}</th>{cells}<td class="num" data-level="total">{rep.raised_total(u)}</td>'
                       f'<td class="num" data-level="silenced">{rep.raised_silenced.get(u, 0)}</td></tr>')
        cells = "".join(f'<td class="num" data-level="{lv.label}">{rep.raised_total(level=lv)}</td>' for lv in Level)
        out += ["</tbody>", f'<tfoot><tr data-unit="total"><th>合计 Total</th>{cells}<td class="num" data-level="total">'
                f'{rep.raised_total()}</td><td class="num" data-level="silenced">{sum(rep.raised_silenced.values())}</td></tr></tfoot>',
                "</table>"]
    out.append("</section>")

    # open at hand-over
    out += ['<section id="open">', "<h2>交班时未关闭告警 / Alerts open at hand-over</h2>",
            '<p class="muted">按级别、再按等待时间排序 / most severe first, then longest waiting</p>']
    if not rep.open_alerts:
        out.append('<p class="muted">无 / none</p>')
    else:
        out += ['<table id="open-table">',
                "<thead><tr><th>#</th><th>级别 Level</th><th>状态 State</th><th>单位 Unit</th><th>类型 Kind</th>"
                "<th>地点 Where</th><th>进入队列 Entered</th><th>已等待 Age</th><th>次数 Count</th><th>备注 Notes</th>"
                "<th>告警 Alert</th></tr></thead>", "<tbody>"]
        for i, a in enumerate(rep.open_alerts, 1):
            notes = []
            if a.ack_overdue:
                notes.append('<span class="overdue">确认超时 ack overdue</span>')
            if a.resolve_overdue:
                notes.append('<span class="overdue">处置超时 resolve overdue</span>')
            if a.silenced:
                notes.append("静默 silenced")
            if a.acknowledged_by:
                notes.append(f"确认人 by {_e(a.acknowledged_by)}")
            if a.crew:
                notes.append(f"班组 crew {_e(', '.join(a.crew))}")
            where = f"{a.lifeline} · {a.district}" + (f" · {a.asset}" if a.asset else "")
            out.append(
                f'<tr data-alert-id="{_e(a.id)}" data-level="{a.level.label}" data-state="{_e(a.state)}" data-unit="{_e(a.unit)}"'
                f' data-age-s="{int(a.age_s)}"><td class="num">{i}</td><td>{_level_badge(a.level)}</td>'
                f"<td>{_e(STATE_NAMES.get(a.state, a.state))}</td><td>{_e(a.unit)}</td><td>{_e(a.kind)}</td><td>{_e(where)}</td>"
                f'<td>{_e(local(a.created_at))}</td><td class="num">{_dur(a.age_s)}</td><td class="num">{a.count}</td>'
                f"<td>{'; '.join(notes)}</td><td><code>{_e(a.id)}</code></td></tr>"
            )
        out += ["</tbody>", "</table>"]
    out.append("</section>")

    # KPIs
    out += ['<section id="kpi">', "<h2>响应指标 / Response KPIs</h2>",
            '<p class="muted">本班新增告警的确认与处置用时(自进入队列起) / time to acknowledge and to resolve '
            "of the alerts raised in this shift, from entering the queue</p>"]
    for key, table_id, title in (("time_to_acknowledge", "tta-table", "确认用时 Time to acknowledge"),
                                 ("time_to_resolve", "ttr-table", "处置用时 Time to resolve")):
        out += [f"<h3>{title}</h3>", f'<table id="{table_id}">',
                "<thead><tr><th>单位 Unit</th><th>级别 Level</th><th>数量 Count</th><th>平均 Mean</th><th>P50</th><th>P90</th>"
                "<th>超时 SLA breached</th></tr></thead>", "<tbody>"]
        for row in rep.kpis.get(key, []):
            unit = row["unit"] or "合计 all"
            level = Level.parse(row["level"]) if row["level"] else None
            out.append(
                f'<tr data-unit="{_e(row["unit"] or "all")}" data-level="{_e(row["level"] or "all")}"'
                f' data-count="{row["count"]}" data-mean-s="{"" if row["mean_s"] is None else round(row["mean_s"], 3)}">'
                f"<td>{_e(unit)}</td><td>{_level_badge(level) if level else '-'}</td><td class='num'>{row['count']}</td>"
                f"<td class='num'>{_dur(row['mean_s'])}</td><td class='num'>{_dur(row['p50_s'])}</td>"
                f"<td class='num'>{_dur(row['p90_s'])}</td><td class='num'>{row['breached']}</td></tr>"
            )
        out += ["</tbody>", "</table>"]
    out.append("</section>")

    # activity
    names = [("raised", "新告警 Raised"), ("acknowledged", "确认 Acknowledged"), ("dispatched", "派工 Dispatched"), ("resolved", "处置 Resolved"),
             ("closed", "关闭 Closed"), ("false_alarm", "误报 False alarms"), ("cleared", "自动消失 Cleared"),
             ("reopened", "重新打开 Re-opened"), ("level_raised", "升级 Level raised"),
             ("escalation", "超时升级 Escalations"), ("reminder", "提醒 Reminders"), ("comment", "备注 Comments")]
    out += ['<section id="activity">', "<h2>本班处置活动 / Activity in this shift</h2>", '<table id="activity-table">', "<tbody>"]
    for key, label in names:
        out.append(f'<tr data-key="{key}"><th>{label}</th><td class="num">{rep.activity.get(key, 0)}</td></tr>')
    out += ["</tbody>", "</table>", "</section>"]

    out += [f'<footer class="muted"><p>生成于 Generated {_e(local(rep.generated_at))} ({zone}) · Lifewatch</p></footer>',
            "</body>", "</html>"]
    return "\n".join(out) + "\n"


# --- CLI -----------------------------------------------------------------------------------------


def parse_when(text: str | None, utc_offset_hours: float, now: datetime) -> datetime | None:
    """ISO 8601 (a time without offset is city local time), or ``now``; ``None`` stays ``None``.

    >>> now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    >>> parse_when("2026-01-01T08:00", 6, now).isoformat(), parse_when("2026-01-01 08:00Z", 6, now).isoformat()
    ('2026-01-01T02:00:00+00:00', '2026-01-01T08:00:00+00:00')
    """
    if text is None or not text.strip():
        return None
    t = text.strip()
    if t.lower() == "now":
        return now
    dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone(timedelta(hours=utc_offset_hours)))
    return dt.astimezone(UTC)


def configure_parser(p: argparse.ArgumentParser) -> None:
    """``lifewatch report shift --from --to [--out]`` (argparse only)."""
    sub = p.add_subparsers(dest="report", required=True, metavar="REPORT")
    sh = sub.add_parser("shift", help="HTML hand-over report of one shift")
    sh.add_argument("--from", dest="from_", help="shift start, ISO 8601 (no offset = city local time); default: --to minus 8 h")
    sh.add_argument("--to", help="shift end, ISO 8601 or 'now' (default now)")
    sh.add_argument("--out", help="write the HTML here (default stdout)")


def cli(args: argparse.Namespace, settings) -> int:  # noqa: ANN001 - lifewatch.settings.Settings
    from alerts.config import AlertSettings
    from alerts.db import open_store
    from alerts.errors import StoreError
    from lifewatch.city import load_city

    city = load_city(settings.city_file or None)
    now = datetime.now(UTC)
    try:
        end = parse_when(getattr(args, "to", None), city.utc_offset_hours, now) or now
        start = parse_when(getattr(args, "from_", None), city.utc_offset_hours, now) or end - timedelta(seconds=DEFAULT_SHIFT_S)
    except ValueError as exc:
        print(f"lifewatch report shift: bad time: {exc}", file=sys.stderr)
        return 2
    if end <= start:
        print("lifewatch report shift: --to must be after --from", file=sys.stderr)
        return 2
    try:
        store = open_store(AlertSettings.from_settings(settings))
        try:
            rep = shift_report(store, start, end, city=city, now=now)
        finally:
            store.dispose()
    except StoreError as exc:
        print(f"lifewatch report shift: {exc}", file=sys.stderr)
        return 1
    text = render_html(rep)
    out = getattr(args, "out", None)
    if out:
        from pathlib import Path

        Path(out).write_text(text, encoding="utf-8")
        print(f"wrote {out}: {rep.raised_total()} raised, {len(rep.open_alerts)} open at hand-over", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


__all__ = ["OpenAlert", "ShiftReport", "cli", "configure_parser", "parse_when", "render_html", "shift_report"]
