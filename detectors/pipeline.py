"""The detector pipeline: readings in, detections out, right after ingest.

A pipeline is an ordered list of :class:`Stage` objects sharing one
:class:`~detectors.frame.Registry`.  Each batch of readings becomes one
:class:`~detectors.frame.Frame`; every stage selects its rows and returns
:class:`~detectors.events.Detection` events.  Live ingest and offline
backtests run the very same pipeline; only the batch sizes differ.

A stage's contract:

* ``process(frame) -> list[Detection]`` uses event time only and walks its
  rows in order (batch size never changes the result);
* ``state_dict()`` / ``load_state_dict(d)`` round-trip its state (numpy
  arrays), so a restarted pipeline resumes where it stopped;
* ``state_bytes_per_stream()`` reports its bounded per-stream state.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from detectors.decide import CLEAR, RAISE, severity_to_level
from detectors.events import CLEARED, RAISED, UPDATED, Detection
from detectors.frame import Frame, Registry, build_frame
from lifewatch.city import City
from lifewatch.model import Reading


class Stage(ABC):
    name: str = "stage"

    @abstractmethod
    def process(self, frame: Frame) -> list[Detection]: ...

    def state_dict(self) -> dict[str, np.ndarray]:
        return {}

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        return None

    def state_bytes_per_stream(self) -> int:
        return 0

    def finish(self, registry: Registry) -> list[Detection]:
        """End of a backtest: nothing to flush by default (open conditions stay open)."""
        return []


def emit_stream_events(
    frame: Frame,
    rows: np.ndarray,
    events: tuple[np.ndarray, ...],
    *,
    detector: str,
    kind: str,
    evidence: dict[str, Any] | None = None,
    scores: np.ndarray | None = None,
) -> list[Detection]:
    """Turn hysteresis events over per-stream rows into detections about one sensor each.

    ``rows`` are the frame rows the stage fed (in order); ``events`` is what
    :meth:`Hysteresis.step` returned for them with ``with_peaks=True``, so the
    peak evidence is each event's peak as of its row, whatever the batching.
    """
    ev_row, ev_kind, ev_sev, ev_start, ev_peak = events
    reg = frame.registry
    out: list[Detection] = []
    for j, (r, k, sev, start) in enumerate(zip(ev_row.tolist(), ev_kind.tolist(), ev_sev.tolist(), ev_start.tolist(), strict=True)):
        row = int(rows[r])
        sensor = int(frame.sensor[row])
        metric = reg.metric_names[int(frame.metric[row])].split(".", 1)[1]
        ev = dict(evidence or {})
        ev["value"] = float(frame.x[row])
        if scores is not None:
            ev["score"] = float(scores[r])
        ev["peak_score"] = float(ev_peak[j])
        t = int(frame.t[row])
        out.append(
            Detection(
                detector=detector,
                kind=kind,
                state=RAISED if k == RAISE else (CLEARED if k == CLEAR else UPDATED),
                lifeline=reg.sensor_lifeline[sensor],
                district=reg.sensor_district[sensor],
                asset=reg.asset_of(sensor),
                sensors=(reg.sensor_ids[sensor],),
                level=severity_to_level(sev),
                score=float(scores[r]) if scores is not None else float(sev),
                start_ns=int(start),
                ts_ns=t,
                end_ns=t if k == CLEAR else None,
                metric=metric,
                evidence=ev,
            )
        )
    return out


class DetectorPipeline:
    def __init__(self, stages: Iterable[Stage], city: City | None = None):
        self.stages = list(stages)
        self.registry = Registry(city)

    def process(self, readings: list[Reading]) -> list[Detection]:
        if not readings:
            return []
        return self.process_frame(build_frame(readings, self.registry))

    def process_frame(self, frame: Frame) -> list[Detection]:
        """Run every stage on a frame built with this pipeline's registry (backtests build frames from columns)."""
        out: list[Detection] = []
        for stage in self.stages:
            out.extend(stage.process(frame))
        out.sort(key=lambda d: d.ts_ns)
        return out

    def finish(self) -> list[Detection]:
        out: list[Detection] = []
        for stage in self.stages:
            out.extend(stage.finish(self.registry))
        return out

    # ---- persistence: one .npz with the registry's stream keys and every stage's arrays

    def save(self, path: Path) -> None:
        arrays: dict[str, np.ndarray] = {}
        reg = self.registry
        arrays["registry/sensor_ids"] = np.array(reg.sensor_ids, dtype=object)
        arrays["registry/sensor_district"] = np.array(reg.sensor_district, dtype=object)
        arrays["registry/sensor_lifeline"] = np.array(reg.sensor_lifeline, dtype=object)
        arrays["registry/streams"] = reg.streams.state_dict()["keys"]
        for i, stage in enumerate(self.stages):
            for k, v in stage.state_dict().items():
                arrays[f"stage{i}:{stage.name}/{k}"] = v
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(buf.getvalue())
        tmp.replace(path)

    def load(self, path: Path) -> None:
        with np.load(path, allow_pickle=True) as z:
            data = {k: z[k] for k in z.files}
        reg = self.registry
        for sid, dist, lid in zip(data["registry/sensor_ids"], data["registry/sensor_district"], data["registry/sensor_lifeline"], strict=True):
            reg.sensor_slot(str(sid), str(lid), str(dist))
        for joined in data["registry/streams"]:
            sensor, metric = str(joined).split("\x1f", 1)
            reg.streams.slot(sensor, metric)
        for i, stage in enumerate(self.stages):
            prefix = f"stage{i}:{stage.name}/"
            part = {k[len(prefix):]: v for k, v in data.items() if k.startswith(prefix)}
            if part:
                stage.load_state_dict(part)
