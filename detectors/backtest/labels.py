"""Ground truth for a backtest: the simulator's labels file, NAB's windows, or labels carried by the recording.

* the simulator's ``--labels`` file (:func:`simulators.cli.labels_document`)::

      {"city": "Shihezi", "seed": 1,
       "incidents": [{"scenario": "water.burst", "target": "dma-d01-1", "sensors": ["w-d01-001", ...],
                      "start": "2026-01-05T10:30:00Z", "end": "2026-01-05T16:30:00Z"}, ...]}

  one label per incident, about its sensors and its target (asset or district);
* NAB's windows (``labels/combined_windows.json``)::

      {"realKnownCause/nyc_taxi.csv": [["2014-10-30 15:30:00.000000", "2014-11-03 22:30:00.000000"], ...], ...}

  the entry of the recording's file (matched on ``<category>/<file>.csv``,
  else on the file name alone), one label per window, about any sensor of
  the recording; NAB's timestamps are naive and read as UTC, as the NAB
  reader reads the data;
* a recording's own labels (SKAB's ``anomaly`` column, a mapped CSV's
  ``labels:`` column), used when no labels file is given.

>>> import json, tempfile, os
>>> d = tempfile.mkdtemp()
>>> p = os.path.join(d, "windows.json")
>>> _ = open(p, "w").write(json.dumps({"realKnownCause/x.csv": [["2014-01-01 00:00:00.000000", "2014-01-02 00:00:00.000000"]]}))
>>> labels, kind = load_labels(p, "data/realKnownCause/x.csv")
>>> kind, labels[0].start_ns, labels[0].sensors
('nab', 1388534400000000000, None)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class LabelsError(ValueError):
    pass


@dataclass(frozen=True)
class Label:
    name: str  # scenario name, or "window" / "anomaly"
    start_ns: int
    end_ns: int
    sensors: frozenset[str] | None = None  # None: about any sensor of the recording
    target: str | None = None  # asset or district the incident was injected into
    window: tuple[str, str] | None = None  # NAB's limits as written (NAB scoring matches them to rows)


def _ns(text: str, where: str) -> int:
    import pandas as pd

    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError) as exc:
        raise LabelsError(f"{where}: {text!r} is not a time: {exc}") from None
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return int(ts.as_unit("ns").value)


def _nab_key(windows: Mapping[str, Any], recording: str | Path | None) -> str:
    if recording is None:
        if len(windows) == 1:
            return next(iter(windows))
        raise LabelsError("a NAB windows file names many files: which one is the recording?")
    p = Path(recording)
    exact = f"{p.parent.name}/{p.name}"
    if exact in windows:
        return exact
    by_name = [k for k in windows if Path(k).name == p.name]
    if len(by_name) == 1:
        return by_name[0]
    if not by_name:
        raise LabelsError(f"the NAB windows file has no entry for {p.name}")
    raise LabelsError(f"the NAB windows file has several entries named {p.name}: {by_name}")


def load_labels(path: str | Path, recording: str | Path | None = None) -> tuple[list[Label], str]:
    """Labels from a file; returns ``(labels, kind)`` with kind ``"simulator"`` or ``"nab"``."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise LabelsError(f"cannot read labels {path}: {exc}") from None
    if isinstance(doc, dict) and isinstance(doc.get("incidents"), list):
        out = []
        for i, inc in enumerate(doc["incidents"]):
            where = f"{path}: incident {i + 1}"
            if not isinstance(inc, dict) or not {"start", "end"} <= set(inc):
                raise LabelsError(f"{where}: needs start and end")
            sensors = inc.get("sensors") or []
            if not isinstance(sensors, list):
                raise LabelsError(f"{where}: sensors must be a list")
            out.append(Label(str(inc.get("scenario", "incident")), _ns(str(inc["start"]), where),
                             _ns(str(inc["end"]), where), frozenset(map(str, sensors)) if sensors else None,
                             inc.get("target")))
        return out, "simulator"
    if isinstance(doc, dict) and all(isinstance(v, list) for v in doc.values()):
        key = _nab_key(doc, recording)
        out = []
        for j, w in enumerate(doc[key]):
            if not (isinstance(w, list) and len(w) == 2):
                raise LabelsError(f"{path}: {key} window {j + 1} is not [start, end]")
            where = f"{path}: {key} window {j + 1}"
            out.append(Label("window", _ns(str(w[0]), where), _ns(str(w[1]), where), None, None, (str(w[0]), str(w[1]))))
        return out, "nab"
    raise LabelsError(f"{path}: neither a simulator labels file ({{\"incidents\": [...]}}) nor NAB windows "
                      "({\"<category>/<file>.csv\": [[start, end], ...]})")


def labels_from_recording(labels: Iterable[Mapping[str, Any]]) -> list[Label]:
    """The labels a recording carries (``Columns.labels``)."""
    return [Label(str(lb.get("name", "anomaly")), int(lb["start_ns"]), int(lb["end_ns"]),
                  frozenset(lb["sensors"]) if lb.get("sensors") else None) for lb in labels]
