"""The backtest's HTML report: one self-contained file, hand-written inline SVG, no plotting library.

For each sensor (those with detections or labels first, up to ``max_sensors``
plots) one panel per metric shows:

* the signal: a line, or where there are more points than pixels the min-max
  band of each pixel column (so a one-point spike stays visible);
* the thresholds a detection's evidence names (``limits`` of a threshold
  detection: dashed lines in the level's colour) and the baselines (a
  statistical detection's ``baseline`` at its raise and clear: small
  diamonds);
* detections: from raise to clear a band in the level's colour on top of the
  panel, a triangle where it was raised;
* labels: grey shaded windows (the label's sensors, or every sensor when the
  label names none).

Above the plots: the run's figures (readings, detections by kind, the
metrics when there are labels) and, after a sweep, the comparison table.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from detectors.backtest.labels import Label
from detectors.events import CLEARED, RAISED, Detection
from lifewatch.model import format_ts

NS = 1_000_000_000
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 900, 160, 64, 12, 14, 22
LEVEL_COLOURS = {"red": "#d62728", "orange": "#ff7f0e", "yellow": "#e6b800", "blue": "#1f77b4"}
CSS = """
body{font:13px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}h2{margin-top:1.6em;font-size:15px}
.sensor{margin:1.2em 0}.meta{color:#666}svg{display:block;margin:2px 0}
"""


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def downsample(t: np.ndarray, x: np.ndarray, t0: int, t1: int, px: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel column: (column, min, max) of the finite values in it."""
    ok = np.isfinite(x)
    t, x = t[ok], x[ok]
    if not len(t):
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    col = np.clip(((t - t0) / max(1, t1 - t0) * (px - 1)).astype(np.int64), 0, px - 1)  # float: ns x px overflows int64
    order = np.argsort(col, kind="stable")
    col, x = col[order], x[order]
    starts = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])
    return col[starts], np.minimum.reduceat(x, starts), np.maximum.reduceat(x, starts)


def svg_panel(t: np.ndarray, x: np.ndarray, t0: int, t1: int, *, title: str, detections: Sequence[Detection] = (),
              labels: Sequence[Label] = (), thresholds: Mapping[str, float] | None = None,
              baselines: Sequence[tuple[int, float]] = ()) -> str:
    """One metric of one sensor as an inline SVG."""
    pw = WIDTH - LEFT - RIGHT
    ph = HEIGHT - TOP - BOTTOM
    cols, lo, hi = downsample(t, x, t0, t1, pw)
    ys = [v for v in (thresholds or {}).values()] + [b for _, b in baselines]
    vals = np.concatenate([lo, hi, np.asarray(ys, dtype=float)]) if len(lo) or ys else np.zeros(0)
    vals = vals[np.isfinite(vals)]
    ymin, ymax = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 1.0)
    if ymax - ymin < 1e-12:
        ymin, ymax = ymin - 1.0, ymax + 1.0
    pad = 0.05 * (ymax - ymin)
    ymin, ymax = ymin - pad, ymax + pad

    def X(tt: float) -> float:
        return LEFT + (tt - t0) * pw / max(1, t1 - t0)

    def Y(v: float) -> float:
        return TOP + (ymax - v) * ph / (ymax - ymin)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}">',
             f'<title>{_esc(title)}</title>',
             f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="#fff" stroke="#bbb"/>']
    for lb in labels:
        a, b = max(lb.start_ns, t0), min(lb.end_ns, t1)
        if b >= a:
            parts.append(f'<rect x="{X(a):.1f}" y="{TOP}" width="{max(1.0, X(b) - X(a)):.1f}" height="{ph}" fill="#000" '
                         f'fill-opacity="0.09"><title>{_esc(lb.name)} {format_ts(lb.start_ns)} .. {format_ts(lb.end_ns)}</title></rect>')
    for name, v in (thresholds or {}).items():
        if np.isfinite(v) and ymin <= v <= ymax:
            c = LEVEL_COLOURS.get(name.split("_")[0], "#888")
            parts.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" stroke="{c}" '
                         f'stroke-dasharray="5,3"><title>{_esc(name)} {v:g}</title></line>')
    if len(cols):
        xs = LEFT + cols + 0.5
        if np.all(lo == hi) or len(cols) < pw // 2:
            pts = " ".join(f"{a:.1f},{Y(b):.1f}" for a, b in zip(xs, (lo + hi) / 2, strict=True))
            parts.append(f'<polyline points="{pts}" fill="none" stroke="#333" stroke-width="1"/>')
        else:
            up = " ".join(f"{a:.1f},{Y(b):.1f}" for a, b in zip(xs, hi, strict=True))
            down = " ".join(f"{a:.1f},{Y(b):.1f}" for a, b in zip(xs[::-1], lo[::-1], strict=True))
            parts.append(f'<polygon points="{up} {down}" fill="#555" fill-opacity="0.55" stroke="#333" stroke-width="0.6"/>')
    for d in detections:
        c = LEVEL_COLOURS.get(d.level.label, "#888")
        a = max(d.start_ns, t0)
        b = d.end_ns if d.end_ns is not None else t1
        parts.append(f'<rect x="{X(a):.1f}" y="{TOP}" width="{max(2.0, X(b) - X(a)):.1f}" height="5" fill="{c}">'
                     f'<title>{_esc(d.detector)}:{_esc(d.kind)} {d.level.label} {format_ts(d.start_ns)}'
                     f'{" .. " + format_ts(d.end_ns) if d.end_ns else " (open)"}</title></rect>')
        xr = X(max(d.ts_ns, t0))
        parts.append(f'<path d="M{xr:.1f},{TOP + 6} l-4,7 h8 z" fill="{c}"/>')
    for tt, v in baselines:
        if t0 <= tt <= t1 and ymin <= v <= ymax:
            parts.append(f'<path d="M{X(tt):.1f},{Y(v) - 3:.1f} l3,3 l-3,3 l-3,-3 z" fill="#2ca02c"><title>baseline {v:g}</title></path>')
    parts.append(f'<text x="{LEFT - 4}" y="{TOP + 9}" text-anchor="end" font-size="10">{ymax - pad:.4g}</text>')
    parts.append(f'<text x="{LEFT - 4}" y="{TOP + ph}" text-anchor="end" font-size="10">{ymin + pad:.4g}</text>')
    parts.append(f'<text x="{LEFT}" y="{HEIGHT - 6}" font-size="10">{format_ts(t0)}</text>')
    parts.append(f'<text x="{LEFT + pw}" y="{HEIGHT - 6}" text-anchor="end" font-size="10">{format_ts(t1)}</text>')
    parts.append(f'<text x="{LEFT + pw / 2}" y="{HEIGHT - 6}" text-anchor="middle" font-size="11">{_esc(title)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def episodes(detections: Sequence[Detection]) -> list[Detection]:
    """One detection per condition: the raised one, with ``end_ns`` and level from its clear (None if open)."""
    open_: dict[tuple, Detection] = {}
    out: list[Detection] = []
    for d in detections:
        k = (d.detector, d.key, d.start_ns)
        if d.state == RAISED:
            e = Detection(**{f: getattr(d, f) for f in d.__dataclass_fields__})
            open_[k] = e
            out.append(e)
        elif k in open_:
            e = open_[k]
            if d.level.value < e.level.value:
                e.level = d.level  # the worst level reached
            if d.state == CLEARED:
                e.end_ns = d.ts_ns
                del open_[k]
    return out


def _thresholds(dets: Sequence[Detection], metric: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for d in dets:
        if d.metric != metric:
            continue
        lim = d.evidence.get("limits")
        if isinstance(lim, Mapping):
            for k, v in lim.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    out[str(k)] = float(v)
                elif isinstance(v, (list, tuple)):
                    for j, w in enumerate(v):
                        if isinstance(w, (int, float)) and not isinstance(w, bool):
                            out[f"{k}{'_lo' if j == 0 else '_hi'}"] = float(w)
    return out


def render(cols: Any, detections: Sequence[Detection], labels: Sequence[Label], *, summary: Mapping[str, Any],
           sweep: Sequence[Mapping[str, Any]] | None = None, max_sensors: int = 60, title: str = "Lifewatch backtest") -> str:
    """The whole report as one HTML string (``cols`` an ``ingest.readers.Columns`` in event-time order)."""
    t0 = int(cols.ts_ns.min()) if len(cols) else 0
    t1 = int(cols.ts_ns.max()) if len(cols) else 1
    eps = episodes(detections)
    by_sensor: dict[str, list[Detection]] = {}
    for e in eps:
        for s in e.sensors:
            by_sensor.setdefault(s, []).append(e)
    baselines: dict[tuple[str, str], list[tuple[int, float]]] = {}
    raw_by_sensor: dict[str, list[Detection]] = {}
    for d in detections:
        for s in d.sensors:
            raw_by_sensor.setdefault(s, []).append(d)
        b = d.evidence.get("baseline") if isinstance(d.evidence, Mapping) else None
        if isinstance(b, (int, float)) and d.metric and len(d.sensors) == 1:
            baselines.setdefault((d.sensors[0], d.metric), []).append((d.ts_ns, float(b)))
    sensors = cols.sensor_id.categories
    labelled = {s for lb in labels for s in (lb.sensors or ())}
    any_label = any(lb.sensors is None for lb in labels)
    order = sorted(range(len(sensors)), key=lambda i: (-(sensors[i] in labelled), -len(by_sensor.get(sensors[i], [])), sensors[i]))
    shown = [i for i in order if by_sensor.get(sensors[i]) or sensors[i] in labelled or any_label][:max_sensors]
    if len(shown) < max_sensors:
        rest = [i for i in order if i not in shown]
        shown += rest[:max_sensors - len(shown)]

    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_esc(title)}</title><style>{CSS}</style></head><body>",
           f"<h1>{_esc(title)}</h1>", f"<p class='meta'>{_esc(summary.get('recording', ''))}: {format_ts(t0)} .. {format_ts(t1)}</p>"]
    out.append("<table>")
    for k in ("readings", "sensors", "pipeline", "detections", "raised", "raised_per_sensor_day", "seconds", "readings_per_s"):
        if k in summary:
            out.append(f"<tr><th class='l'>{_esc(k)}</th><td>{_esc(_fmt(summary[k]))}</td></tr>")
    m = summary.get("metrics")
    if m:
        for k in ("labels", "detected", "precision", "recall", "f1", "false_alarms", "false_alarms_per_sensor_day"):
            out.append(f"<tr><th class='l'>{_esc(k)}</th><td>{_esc(_fmt(m.get(k)))}</td></tr>")
        out.append(f"<tr><th class='l'>delay (mean, s)</th><td>{_esc(_fmt(m['delay_s']['mean']))}</td></tr>")
    if summary.get("nab"):
        for k, v in summary["nab"].items():
            out.append(f"<tr><th class='l'>NAB {_esc(k)}</th><td>{_esc(_fmt(v))}</td></tr>")
    out.append("</table>")
    kinds = summary.get("by_kind") or {}
    if kinds:
        out.append("<h2>Raised detections by detector:kind</h2><table><tr><th class='l'>detector:kind</th><th>raised</th></tr>")
        out += [f"<tr><td class='l'>{_esc(k)}</td><td>{n}</td></tr>" for k, n in kinds.items()]
        out.append("</table>")
    if sweep:
        out.append("<h2>Parameter sweep</h2>" + sweep_table_html(sweep))
    if m and m.get("per_label"):
        out.append("<h2>Labels</h2><table><tr><th class='l'>label</th><th class='l'>target</th><th class='l'>start</th>"
                   "<th>detected</th><th>delay (s)</th></tr>")
        for r in m["per_label"]:
            out.append(f"<tr><td class='l'>{_esc(r['name'])}</td><td class='l'>{_esc(r['target'] or '')}</td>"
                       f"<td class='l'>{format_ts(r['start_ns'])}</td><td>{'yes' if r['detected'] else 'no'}</td>"
                       f"<td>{_esc(_fmt(r['delay_s']))}</td></tr>")
        out.append("</table>")
    out.append(f"<h2>Sensors ({len(shown)} of {len(sensors)} plotted: detections and labels first)</h2>")
    scode = cols.sensor_id.codes
    mcode = cols.metric.codes
    for i in shown:
        sid = sensors[i]
        rows = np.flatnonzero(scode == i)
        sdets = by_sensor.get(sid, [])
        slabels = [lb for lb in labels if lb.sensors is None or sid in lb.sensors]
        out.append(f"<div class='sensor' id='{_esc(sid)}'><b>{_esc(sid)}</b> <span class='meta'>"
                   f"{_esc(cols.lifeline[int(rows[0])] if len(rows) else '')} / {_esc(cols.district[int(rows[0])] if len(rows) else '')}"
                   f", {len(sdets)} detection(s)</span>")
        for mc in np.unique(mcode[rows]).tolist():
            if mc < 0:
                continue
            metric = cols.metric.categories[mc]
            sel = rows[mcode[rows] == mc]
            mdets = [d for d in sdets if d.metric in (None, metric)]
            out.append(svg_panel(cols.ts_ns[sel], cols.value[sel], t0, t1, title=f"{sid} {metric}", detections=mdets,
                                 labels=slabels, thresholds=_thresholds(raw_by_sensor.get(sid, []), metric),
                                 baselines=baselines.get((sid, metric), [])))
        out.append("</div>")
    out.append("</body></html>")
    return "\n".join(out)


def sweep_table_html(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return ""
    keys = list(rows[0]["set"].keys())
    cols = ["raised", "precision", "recall", "f1", "false_alarms_per_sensor_day", "raised_per_sensor_day", "nab_standard"]
    head = "".join(f"<th class='l'>{_esc(k)}</th>" for k in keys) + "".join(f"<th>{_esc(c)}</th>" for c in cols)
    body = []
    for r in rows:
        cells = "".join(f"<td class='l'>{_esc(r['set'][k])}</td>" for k in keys)
        cells += "".join(f"<td>{_esc(_fmt(r.get(c)))}</td>" for c in cols)
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"
