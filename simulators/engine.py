"""The simulation engine: a city's readings, normal behaviour plus incidents, in event-time order.

    sim = Simulation(load_city(), seed=1, start_ns=..., incidents=[make_incident("water.burst", "dma-d01-1", t)])
    for r in sim.iter_readings(until_ns):        # lifewatch.model.Reading, event-time order
        ...
    sim.readings_between(t0_ns, t1_ns)           # one chunk: event times in [t0, t1)
    sim.labels()                                 # ground truth of the injected incidents

Everything is a pure function of (city, seed, start_ns, incidents): the same
arguments give identical readings, however the time span is chunked.  The
start only fixes where sequence numbers count from and where readings begin.

Per sensor and chunk: sample times (every ``interval_s`` with a per-sensor
phase) -> normal values (:mod:`simulators.normal`, with incident hooks on the
transformer load) -> physical incident effects -> sensor faults -> clipped to
the lifeline metric ranges and rounded -> dropouts removed, clock skew added
to ``ts``.  Readings are ordered by true event time (a clock-skewed reading
is sent when it is measured, stamped wrongly), ties by city-file order.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from lifewatch.city import City, Sensor
from lifewatch.lifelines import load_lifelines
from lifewatch.model import NS, Reading
from simulators.normal import DECIMALS, LoadHook, NormalModel
from simulators.scenarios import Incident, Scenario, ScenarioError, activate, compose_hooks

DEFAULT_CHUNK_S = 3600.0


@dataclass
class Series:
    """One sensor's samples in a window, as arrays (what the readings are built from)."""

    sensor: Sensor
    event_ns: np.ndarray  # true event times (int64)
    ts_ns: np.ndarray  # reported timestamps (event time + clock skew)
    seq: np.ndarray  # sample number since the start of the run
    values: dict[str, np.ndarray]  # rounded, clipped to the metric ranges


@dataclass
class _Block:
    sensors: list[Sensor]
    owner: np.ndarray  # index into sensors, per sample
    event_ns: np.ndarray
    ts_ns: np.ndarray
    seq: np.ndarray
    values: dict[str, np.ndarray]


def default_start_ns(now_ns: int | None = None, span_s: float | None = None) -> int:
    """``now - (span or 2 h)`` aligned down to the minute."""
    now = time.time_ns() if now_ns is None else now_ns
    t = now - int((span_s or 7200.0) * NS)
    return t - t % (60 * NS)


class Simulation:
    """A deterministic simulated city.

    ``sensors``: None (all), an int N (the first N sensors of the city file) or
    an iterable of sensor ids.  ``incidents``: :class:`~simulators.scenarios.Incident`
    objects; their targets must exist in the city (they may lie outside the
    simulated subset; labels then list only simulated sensors).
    """

    def __init__(
        self,
        city: City,
        seed: int = 1,
        start_ns: int | None = None,
        incidents: Iterable[Incident] = (),
        sensors: int | Iterable[str] | None = None,
        chunk_s: float = DEFAULT_CHUNK_S,
    ):
        self.city = city
        self.seed = int(seed)
        self.start_ns = default_start_ns() if start_ns is None else int(start_ns)
        self.chunk_ns = int(chunk_s * NS)
        self.model = NormalModel(city, self.seed)
        self.sensors = self._select(sensors)
        self._simulated = {s.id for s in self.sensors}
        self.incidents = list(incidents)
        self.scenarios: list[Scenario] = [activate(self.model, inc) for inc in self.incidents]
        self._physical: dict[str, list[Scenario]] = {}
        self._faults: dict[str, list[Scenario]] = {}
        for sc in self.scenarios:
            table = self._faults if sc.fault else self._physical
            for sid in sc.sensors:
                table.setdefault(sid, []).append(sc)
        self._ranges = {
            lid: {m: spec.range for m, spec in ll.metrics.items()} for lid, ll in load_lifelines().items()
        }
        self._seq0 = {s.id: self.model.sample_index(s, self.start_ns) for s in self.sensors}
        self._index = {s.id: i for i, s in enumerate(self.sensors)}
        self._hooks = {s.id: h for s in self.sensors if (h := self._hook(s)) is not None}

    def _select(self, sensors: int | Iterable[str] | None) -> list[Sensor]:
        allsens = list(self.city.sensors.values())
        if sensors is None:
            return allsens
        if isinstance(sensors, int):
            if sensors < 1:
                raise ValueError("sensors: N must be >= 1")
            return allsens[:sensors]
        ids = list(sensors)
        unknown = [i for i in ids if i not in self.city.sensors]
        if unknown:
            raise ScenarioError(f"unknown sensor id(s): {', '.join(unknown[:5])}")
        wanted = set(ids)
        return [s for s in allsens if s.id in wanted]

    # ---------------------------------------------------------------- values

    def _hook(self, sensor: Sensor) -> LoadHook | None:
        if sensor.lifeline != "power":
            return None
        hooks = [h for sc in self.scenarios if not sc.fault and (h := sc.load_hook(sensor)) is not None]
        return compose_hooks(hooks)

    def physical_values(self, sensor: Sensor, t_ns: np.ndarray) -> dict[str, np.ndarray]:
        """Normal values plus incident effects (no sensor faults), unrounded."""
        v = self.model.values(sensor, t_ns, self._hooks.get(sensor.id))
        for sc in self._physical.get(sensor.id, ()):
            sc.apply(sensor, t_ns, v, self)
        return v

    def _blocks(self, sensors: list[Sensor], t0_ns: int, t1_ns: int) -> list[_Block]:
        """Samples with event time in [max(t0, start), t1), one block per sensor kind (hooked sensors alone)."""
        t0_ns = max(int(t0_ns), self.start_ns)
        t1_ns = int(t1_ns)
        groups: dict[tuple, list[tuple[Sensor, np.ndarray, np.ndarray]]] = {}
        for s in sensors:
            k, t = self.model.sample_times(s, t0_ns, t1_ns)
            if t.size:
                gk = (s.lifeline, s.kind) if s.id not in self._hooks else (s.id,)
                groups.setdefault(gk, []).append((s, k, t))
        return [self._block(members) for members in groups.values()]

    def _block(self, members: list[tuple[Sensor, np.ndarray, np.ndarray]]) -> _Block:
        sens = [m[0] for m in members]
        counts = [m[2].size for m in members]
        t = np.concatenate([m[2] for m in members])
        k = np.concatenate([m[1] for m in members])
        owner = np.repeat(np.arange(len(sens)), counts)
        v = self.model.values_batch(sens, t, counts, self._hooks.get(sens[0].id))
        bounds = np.concatenate([[0], np.cumsum(counts)]).tolist()
        ts = t
        keep = None
        for i, s in enumerate(sens):
            phys, faults = self._physical.get(s.id, ()), self._faults.get(s.id, ())
            if not phys and not faults:
                continue
            a, b = bounds[i], bounds[i + 1]
            ti = t[a:b]
            vi = {m: arr[a:b].copy() for m, arr in v.items()}
            for sc in phys:
                sc.apply(s, ti, vi, self)
            for sc in faults:
                sc.apply(s, ti, vi, self)
            for m, arr in vi.items():
                v[m][a:b] = arr
            for sc in faults:
                drop = sc.drop_mask(s, ti)
                if drop is not None:
                    if keep is None:
                        keep = np.ones(t.size, dtype=bool)
                    keep[a:b] &= ~drop
                off = sc.ts_offset(s, ti)
                if off is not None:
                    if ts is t:
                        ts = t.copy()
                    ts[a:b] += off
        ranges = self._ranges[sens[0].lifeline]
        dec = DECIMALS[sens[0].lifeline]
        out = {m: np.round(np.clip(arr, *ranges[m]), dec.get(m, 4)) for m, arr in v.items()}
        seq = k - np.array([self._seq0[s.id] if s.id in self._seq0 else self.model.sample_index(s, self.start_ns)
                            for s in sens], dtype=np.int64)[owner]
        if keep is not None:
            t, ts, seq, owner = t[keep], ts[keep], seq[keep], owner[keep]
            out = {m: arr[keep] for m, arr in out.items()}
        return _Block(sens, owner, t, ts, seq, out)

    def series(self, sensor: Sensor | str, t0_ns: int, t1_ns: int) -> Series:
        """The samples of one sensor with event time in [max(t0, start), t1)."""
        s = self.city.sensors[sensor] if isinstance(sensor, str) else sensor
        blocks = self._blocks([s], t0_ns, t1_ns)
        if not blocks:
            empty = np.zeros(0, dtype=np.int64)
            return Series(s, empty, empty, empty, {})
        b = blocks[0]
        return Series(s, b.event_ns, b.ts_ns, b.seq, b.values)

    def all_series(self, t0_ns: int, t1_ns: int) -> dict[str, Series]:
        """Every simulated sensor's samples in [max(t0, start), t1), as arrays (for analysis and tests)."""
        out: dict[str, Series] = {}
        for b in self._blocks(self.sensors, t0_ns, t1_ns):
            for i, s in enumerate(b.sensors):
                sel = b.owner == i
                out[s.id] = Series(s, b.event_ns[sel], b.ts_ns[sel], b.seq[sel], {m: a[sel] for m, a in b.values.items()})
        return out

    # ---------------------------------------------------------------- readings

    def chunk(self, t0_ns: int, t1_ns: int) -> tuple[list[Reading], np.ndarray]:
        """Readings with event time in [t0, t1) in event-time order, and their (true) event times."""
        built: list[Reading] = []
        events: list[np.ndarray] = []
        order_ix: list[np.ndarray] = []
        for b in self._blocks(self.sensors, t0_ns, t1_ns):
            if b.event_ns.size == 0:
                continue
            names = list(b.values)
            cols = [b.values[m].tolist() for m in names]
            meta = [(s.lifeline, s.district, s.id) for s in b.sensors]
            built.extend(
                Reading(*meta[o], ts, dict(zip(names, vals, strict=True)), seq)
                for o, ts, seq, *vals in zip(b.owner.tolist(), b.ts_ns.tolist(), b.seq.tolist(), *cols, strict=True)
            )
            events.append(b.event_ns)
            order_ix.append(np.array([self._index[s.id] for s in b.sensors], dtype=np.int64)[b.owner])
        if not built:
            return [], np.zeros(0, dtype=np.int64)
        ev = np.concatenate(events)
        order = np.lexsort((np.concatenate(order_ix), ev))
        return [built[i] for i in order.tolist()], ev[order]

    def readings_between(self, t0_ns: int, t1_ns: int) -> list[Reading]:
        """All readings with event time in [t0, t1) (from the start on), in event-time order."""
        return self.chunk(t0_ns, t1_ns)[0]

    def iter_readings(self, until_ns: int, from_ns: int | None = None) -> Iterator[Reading]:
        """Readings from ``from_ns`` (default: the start) up to ``until_ns``, chunk by chunk."""
        t = self.start_ns if from_ns is None else max(int(from_ns), self.start_ns)
        while t < until_ns:
            t1 = min(t + self.chunk_ns, int(until_ns))
            yield from self.readings_between(t, t1)
            t = t1

    def labels(self) -> list[dict]:
        """Ground truth: {scenario, target, sensors, start, end} per incident (only simulated sensors)."""
        return [sc.label(self._simulated) for sc in self.scenarios]
