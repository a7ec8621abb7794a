"""Training: history from InfluxDB -> the streaming features -> one IsolationForest per sensor class.

``lifewatch detectors train --since 30d [--out DIR]`` reads, for each
lifeline, the last ``--since`` of *event time* (ending at the lifeline's
newest point, not at the wall clock) through InfluxDB's v1 ``/query`` API, a
time chunk (a day by default) per query, grouped by ``sensor_id``.  Every
stream goes through the same :class:`~detectors.learned.features.StreamFeatures`
kernel the streaming stage uses, chunk after chunk, so the training rows are
exactly the rows the stage will score.  Streams are grouped into sensor
classes (:func:`~detectors.learned.features.sensor_class`: lifeline, sensor
kind from the city file, metric) and each class gets an
:class:`~sklearn.ensemble.IsolationForest` with a fixed ``random_state``.

The forest sees a bounded, uniform sample of the warm rows (``max_rows``):
each row gets a priority from a seeded hash of (sensor, metric, event time)
and the ``max_rows`` lowest priorities are kept.  The sample therefore does
not depend on the chunk size or on the order in which streams arrive, and
memory stays bounded however long the window.  The score threshold is the
``threshold_quantile`` (99.9 by default) percentile of the anomaly scores of
that sample: a *setting*, equivalent to assuming that at most 0.1 % of the
training window is abnormal (scikit-learn's ``contamination``); history with
more incidents than that raises the threshold and hides them.  Why 99.9 and
not the more usual 99.5: on 30 days of synthetic diurnal pressure (six
loggers, 100 trees), replaying 30 further normal days through the stage
(default settings, ``min_points=3``) raised 4 false detections per stream
with 99.5 and none with 99.9, and a single-reading spike and a 10-minute
drop were caught with both.

Every identifier (measurement, field, tag key) in a query is written with
:func:`~lifewatch.lineprotocol.quote_ident` and every string literal (a
sensor id) with :func:`~lifewatch.lineprotocol.quote_literal`; times are
integer nanoseconds.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest

from detectors.base import StreamIndex
from detectors.learned.errors import NotEnoughData
from detectors.learned.features import (
    DAY_NS,
    N_FEATURES,
    NS,
    FeatureSpec,
    StreamFeatures,
    check_class_name,
    sensor_class,
)
from detectors.learned.store import StoredModel, TrainedModel, save_model
from lifewatch.city import City
from lifewatch.lifelines import LIFELINE_IDS, load_lifelines
from lifewatch.lineprotocol import quote_ident, quote_literal

log = logging.getLogger("detectors.learned")

StreamKey = tuple[str, str]  # (sensor_id, metric)
Chunk = Mapping[StreamKey, tuple[np.ndarray, np.ndarray]]  # stream -> (t_ns int64, x float64), in time order

DEFAULTS: dict[str, Any] = {
    # IsolationForest (Liu, Ting & Zhou, ICDM 2008): 100 trees of 256-point subsamples are the
    # paper's defaults and scikit-learn's; settings, not domain numbers.
    "n_estimators": 100,
    "max_samples": 256,
    "random_state": 0,
    # training sample per class (bounded memory; see the module docstring)
    "max_rows": 100_000,
    # calibration: anomaly-score percentile of the training sample that becomes the threshold
    # (setting; 99.9 rather than 99.5 after the false-raise measurement in the module docstring)
    "threshold_quantile": 99.9,
    # refuse to fit a class on fewer warm rows than this (setting)
    "min_rows": 500,
}


class Trainer:
    """Incremental training for one sensor class: feed chunks of history, then :meth:`fit`.

    Chunks must come in event-time order, and each stream's arrays must be in
    time order within a chunk (InfluxDB returns them so).
    """

    def __init__(self, sensor_class: str, *, spec: FeatureSpec | None = None, **params: Any):
        check_class_name(sensor_class)
        unknown = set(params) - set(DEFAULTS)
        if unknown:
            raise TypeError(f"unknown training parameters {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        self.sensor_class = sensor_class
        self.p = {**DEFAULTS, **params}
        self.spec = spec or FeatureSpec()
        self.features = StreamFeatures(self.spec)
        self.index = StreamIndex()
        self._seed = int(self.p["random_state"])
        self._last_t: dict[int, int] = {}
        self._kept_x = np.empty((0, N_FEATURES))
        self._kept_p = np.empty(0, np.uint64)
        self._buf_x: list[np.ndarray] = []
        self._buf_p: list[np.ndarray] = []
        self._buffered = 0
        self._cut = np.uint64(np.iinfo(np.uint64).max)
        self.n_rows = 0
        self.t_min: int | None = None
        self.t_max: int | None = None

    def add(self, chunk: Chunk) -> None:
        for key in sorted(chunk):
            t, x = chunk[key]
            t = np.ascontiguousarray(t, dtype=np.int64)
            x = np.ascontiguousarray(x, dtype=np.float64)
            if len(t) == 0:
                continue
            slot = self.index.slot(*key)
            if np.any(np.diff(t) < 0) or t[0] < self._last_t.get(slot, t[0]):
                raise ValueError(f"{key}: history must be in event-time order")
            self._last_t[slot] = int(t[-1])
            self.t_min = int(t[0]) if self.t_min is None else min(self.t_min, int(t[0]))
            self.t_max = int(t[-1]) if self.t_max is None else max(self.t_max, int(t[-1]))
            rows, warm = self.features.process(np.full(len(x), slot, np.int64), t, x)
            if not warm.any():
                continue
            rows, tw = rows[warm], t[warm]
            self.n_rows += len(rows)
            prio = _priority(key, tw, self._seed)
            keep = prio < self._cut
            if keep.any():
                self._buf_x.append(rows[keep])
                self._buf_p.append(prio[keep])
                self._buffered += int(keep.sum())
                if self._buffered >= self.p["max_rows"]:
                    self._compact()

    def _compact(self) -> None:
        if self._buf_x:
            self._kept_x = np.concatenate([self._kept_x, *self._buf_x])
            self._kept_p = np.concatenate([self._kept_p, *self._buf_p])
            self._buf_x, self._buf_p, self._buffered = [], [], 0
        cap = int(self.p["max_rows"])
        if len(self._kept_p) > cap:
            idx = np.argpartition(self._kept_p, cap - 1)[:cap]
            self._kept_x, self._kept_p = self._kept_x[idx], self._kept_p[idx]
        if len(self._kept_p) >= cap:
            self._cut = self._kept_p.max()

    def sample(self) -> np.ndarray:
        """The training rows, in a canonical order (by priority)."""
        self._compact()
        order = np.argsort(self._kept_p, kind="stable")
        return self._kept_x[order]

    def fit(self, window: tuple[int, int] | None = None) -> TrainedModel:
        """Fit the forest on the sample and calibrate the threshold on its scores."""
        X = self.sample()
        if len(X) < self.p["min_rows"]:
            raise NotEnoughData(
                f"{self.sensor_class}: {len(X)} warm feature rows from {len(self.index)} streams, "
                f"need at least {self.p['min_rows']}"
            )
        params = {
            "n_estimators": int(self.p["n_estimators"]),
            "max_samples": min(int(self.p["max_samples"]), len(X)),
            "random_state": int(self.p["random_state"]),
        }
        t0 = time.perf_counter()
        est = IsolationForest(**params).fit(X)
        fit_s = time.perf_counter() - t0
        a = -est.score_samples(X)  # the paper's anomaly score s(x, n) in (0, 1]; high = anomalous
        q = float(self.p["threshold_quantile"])
        threshold = float(np.percentile(a, q))
        quantiles = {f"p{p:g}": float(np.percentile(a, p)) for p in (50, 90, 99, q)}
        start, end = window if window is not None else (self.t_min or 0, self.t_max or 0)
        return TrainedModel(
            sensor_class=self.sensor_class,
            estimator=est,
            spec=self.spec,
            threshold=threshold,
            threshold_quantile=q,
            score_max=float(a.max()),
            feature_min=X.min(axis=0),
            feature_max=X.max(axis=0),
            n_samples=len(X),
            n_rows=self.n_rows,
            n_streams=len(self.index),
            window_start_ns=int(start),
            window_end_ns=int(end),
            params={**params, "max_rows": int(self.p["max_rows"]), "min_rows": int(self.p["min_rows"])},
            fit_seconds=fit_s,
            score_quantiles=quantiles,
        )


def train(
    history: Chunk | Iterable[Chunk],
    sensor_class: str,
    *,
    spec: FeatureSpec | None = None,
    window: tuple[int, int] | None = None,
    **params: Any,
) -> TrainedModel:
    """Fit an IsolationForest for ``sensor_class`` from history.

    ``history`` maps ``(sensor_id, metric)`` to ``(t_ns, x)`` arrays in time
    order (one chunk), or is an iterable of such chunks in time order.  All
    its streams are taken to belong to ``sensor_class``.  ``params`` override
    :data:`DEFAULTS` (``n_estimators``, ``max_samples``, ``random_state``,
    ``max_rows``, ``threshold_quantile``, ``min_rows``).
    """
    tr = Trainer(sensor_class, spec=spec, **params)
    chunks: Iterable[Chunk] = [history] if isinstance(history, Mapping) else history
    for chunk in chunks:
        tr.add(chunk)
    return tr.fit(window)


# ---------------------------------------------------------------- history from InfluxDB


def history_query(lifeline: str, metrics: Sequence[str], start_ns: int, end_ns: int,
                  sensors: Sequence[str] | None = None) -> str:
    """InfluxQL for one time chunk ``[start_ns, end_ns)`` of a lifeline, one series per sensor."""
    fields = ",".join(quote_ident(m) for m in metrics)
    where = f"{quote_ident('time')} >= {int(start_ns)} AND {quote_ident('time')} < {int(end_ns)}"
    if sensors:
        where += " AND (" + " OR ".join(f"{quote_ident('sensor_id')} = {quote_literal(s)}" for s in sensors) + ")"
    return f"SELECT {fields} FROM {quote_ident(lifeline)} WHERE {where} GROUP BY {quote_ident('sensor_id')}"


def last_event_query(lifeline: str, metrics: Sequence[str], sensors: Sequence[str] | None = None) -> str:
    fields = ",".join(quote_ident(m) for m in metrics)
    where = ""
    if sensors:
        where = " WHERE " + " OR ".join(f"{quote_ident('sensor_id')} = {quote_literal(s)}" for s in sensors)
    return f"SELECT {fields} FROM {quote_ident(lifeline)}{where} ORDER BY {quote_ident('time')} DESC LIMIT 1"


def last_event_ns(client: Any, lifeline: str, metrics: Sequence[str] | None = None,
                  sensors: Sequence[str] | None = None) -> int | None:
    """Event time of the newest point of a lifeline (None when it has no data)."""
    metrics = list(metrics or load_lifelines()[lifeline].metrics)
    series = client.query(last_event_query(lifeline, metrics, sensors))
    times = [int(s.values[0][0]) for s in series if s.values]
    return max(times) if times else None


def iter_history(
    client: Any,
    lifeline: str,
    start_ns: int,
    end_ns: int,
    *,
    metrics: Sequence[str] | None = None,
    sensors: Sequence[str] | None = None,
    chunk_ns: int = DAY_NS,
) -> Iterator[dict[StreamKey, tuple[np.ndarray, np.ndarray]]]:
    """Yield ``[start_ns, end_ns)`` of a lifeline as chunks of per-stream arrays, a query per chunk."""
    if chunk_ns <= 0:
        raise ValueError("chunk_ns must be > 0")
    metrics = list(metrics or load_lifelines()[lifeline].metrics)
    a = int(start_ns)
    while a < end_ns:
        b = min(a + int(chunk_ns), int(end_ns))
        chunk: dict[StreamKey, tuple[np.ndarray, np.ndarray]] = {}
        for s in client.query(history_query(lifeline, metrics, a, b, sensors)):
            sid = s.tags.get("sensor_id")
            if sid is None or not s.values:
                continue
            t = np.fromiter((row[0] for row in s.values), dtype=np.int64, count=len(s.values))
            for j, col in enumerate(s.columns):
                if col not in metrics:
                    continue
                x = np.array([row[j] for row in s.values], dtype=np.float64)  # None -> NaN
                if np.isnan(x).all():
                    continue
                chunk[(sid, col)] = (t, x)
        yield chunk
        a = b


def train_from_influx(
    client: Any,
    *,
    since_s: float,
    model_dir: Path | str,
    city: City | None = None,
    lifelines: Sequence[str] | None = None,
    sensors: Sequence[str] | None = None,
    chunk_s: float = 86_400.0,
    spec: FeatureSpec | None = None,
    now: Any = None,
    say: Callable[[str], None] | None = None,
    **params: Any,
) -> list[StoredModel]:
    """What ``lifewatch detectors train`` does: train and store a model per sensor class found in the data.

    For each lifeline: the window is ``[newest event - since_s, newest event]``;
    streams are classed with the city's sensor kinds (sensors it does not
    know fall in ``lifeline.metric``); classes with too few rows are skipped
    and reported.  ``spec`` defaults to the code's feature parameters with
    the city's ``utc_offset_hours``.  Returns the stored models.
    """
    say = say or log.info
    spec = spec or FeatureSpec(utc_offset_hours=city.utc_offset_hours if city else 0.0)
    since_ns = int(round(since_s * NS))
    chunk_ns = int(round(chunk_s * NS))
    out: list[StoredModel] = []
    for lid in lifelines or LIFELINE_IDS:
        metrics = list(load_lifelines()[lid].metrics)
        end = last_event_ns(client, lid, metrics, sensors)
        if end is None:
            say(f"{lid}: no data, nothing to train")
            continue
        start = end - since_ns
        trainers: dict[str, Trainer] = {}
        for chunk in iter_history(client, lid, start, end + 1, metrics=metrics, sensors=sensors, chunk_ns=chunk_ns):
            parts: dict[str, dict[StreamKey, tuple[np.ndarray, np.ndarray]]] = {}
            for (sid, metric), arrays in chunk.items():
                parts.setdefault(sensor_class(lid, metric, _kind(city, lid, sid)), {})[(sid, metric)] = arrays
            for cls, part in parts.items():
                if cls not in trainers:
                    trainers[cls] = Trainer(cls, spec=spec, **params)
                trainers[cls].add(part)
        for cls in sorted(trainers):
            tr = trainers.pop(cls)
            try:
                trained = tr.fit((start, end))
            except NotEnoughData as exc:
                say(f"{cls}: skipped: {exc}")
                continue
            stored = save_model(model_dir, trained, now=now)
            say(
                f"{cls}: {stored.name} from {trained.n_streams} streams, {trained.n_rows} rows "
                f"({trained.n_samples} sampled), threshold {trained.threshold:.4f} -> {stored.path}"
            )
            out.append(stored)
    return out


def _kind(city: City | None, lifeline: str, sensor_id: str) -> str | None:
    meta = city.sensors.get(sensor_id) if city else None
    return meta.kind if meta is not None and meta.lifeline == lifeline else None


def _priority(key: StreamKey, t: np.ndarray, seed: int) -> np.ndarray:
    """A seeded 64-bit hash of (stream, event time) per row: splitmix64 (Steele et al., OOPSLA 2014)."""
    h = hashlib.blake2b(f"{key[0]}\x1f{key[1]}".encode(), digest_size=8, key=str(seed).encode()).digest()
    z = t.astype(np.uint64) ^ np.uint64(int.from_bytes(h, "little"))
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


# ---------------------------------------------------------------- the command


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``lifewatch detectors train``."""
    p.add_argument("--since", default="30d", help="training window of event time per lifeline, e.g. 30d (default 30d)")
    p.add_argument("--out", help="model directory (default <state_dir>/models)")
    p.add_argument("--lifeline", action="append", choices=list(LIFELINE_IDS), help="only this lifeline (repeatable)")
    p.add_argument("--chunk", default="1d", help="time span read per query (default 1d)")


def cli(args: argparse.Namespace, settings: Any) -> int:
    """``lifewatch detectors train --since 30d [--out DIR]``: 0 when a model was stored, 1 when none, 2 on errors."""
    from lifewatch.city import CityError, load_city
    from lifewatch.influx import InfluxClient, InfluxError
    from lifewatch.settings import parse_duration

    try:
        since_s = parse_duration(str(getattr(args, "since", None) or "30d"))
        chunk_s = parse_duration(str(getattr(args, "chunk", None) or "1d"))
    except ValueError as exc:
        print(f"lifewatch detectors train: {exc}", file=sys.stderr)
        return 2
    if since_s <= 0 or chunk_s <= 0:
        print("lifewatch detectors train: --since and --chunk must be > 0", file=sys.stderr)
        return 2
    out = Path(args.out) if getattr(args, "out", None) else Path(settings.state_dir) / "models"
    try:
        city = load_city(settings.city_file or None)
    except CityError as exc:
        print(f"lifewatch detectors train: {exc}", file=sys.stderr)
        return 2
    try:
        with InfluxClient.from_settings(settings) as client:
            stored = train_from_influx(client, since_s=since_s, model_dir=out, city=city,
                                       lifelines=getattr(args, "lifeline", None), chunk_s=chunk_s, say=print)
    except InfluxError as exc:
        print(f"lifewatch detectors train: InfluxDB at {settings.influx_url}: {exc}", file=sys.stderr)
        return 2
    print(f"{len(stored)} model(s) stored in {out}")
    return 0 if stored else 1
