"""Plumbing shared by the multi-sensor incident rules.

A rule watches one kind of asset (DMA, feeder, gas segment, bridge) from
the city model.  Each stream that plays a *role* in it (the DMA's inlet
flow, a logger's pressure...) gets a dense local index; a numba kernel
walks the frame's rows in order, keeps per-stream and per-asset state, and
writes one *observation* per evaluation: (asset, event time, severity,
score).  A :class:`~detectors.decide.Hysteresis` per asset turns these into
raised / updated / cleared detections.

Evidence must not depend on batching, so the kernel copies the asset's
per-member numbers (value, baseline, spread, flag) into a *snapshot* row
for every observation that may become an event (abnormal, or within
``clear_points`` of the last abnormal one); the detection reads its
evidence from the snapshot of its own observation.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from detectors.decide import RAISE, Hysteresis, severity_to_level
from detectors.events import CLEARED, RAISED, UPDATED, Detection
from detectors.frame import Frame, Registry
from detectors.health._kit import StateArrays, hyst_state, level_severity, load_hyst
from detectors.pipeline import Stage
from lifewatch.city import City, Sensor

SNAP_FIELDS = 4  # per member in a snapshot: value, baseline, spread, flag


class AssetRule(Stage):
    """Base for rules over one asset type.

    Subclasses set ``name`` (= detector = kind), ``lifeline``, ``asset_type``,
    ``ROLES`` (role name -> (sensor kinds, metric)), ``defaults``,
    ``STREAM`` / ``ASSET`` state layouts, ``N_SCALARS`` (per-observation
    scalars in a snapshot) and implement :meth:`_kernel` and :meth:`_evidence`.
    """

    name: ClassVar[str]
    lifeline: ClassVar[str]
    asset_type: ClassVar[str]
    ROLES: ClassVar[dict[str, tuple[tuple[str, ...], str]]]
    defaults: ClassVar[dict[str, Any]] = {}
    STREAM: ClassVar[dict[str, tuple[tuple[int, ...], Any, float]]] = {}
    ASSET: ClassVar[dict[str, tuple[tuple[int, ...], Any, float]]] = {}
    N_SCALARS: ClassVar[int] = 4
    source: ClassVar[str] = ""

    def __init__(self, **params: Any):
        base = {"level": "orange", "min_points": 1, "clear_points": 3}
        known = {**base, **self.defaults}
        unknown = set(params) - set(known)
        if unknown:
            raise TypeError(f"{self.name}: unknown parameters {sorted(unknown)}; known: {sorted(known)}")
        self.p = {**known, **params}
        self.lvl = level_severity(self.p["level"])
        self.hyst = Hysteresis(int(self.p["min_points"]), int(self.p["clear_points"]))
        self.streams = StateArrays(self.stream_spec())
        self.assets_state = StateArrays({**self.asset_spec(), "_quiet": ((), np.int64, 1 << 40)})
        self.role_names = list(self.ROLES)
        self._city: City | None = None
        self.assets: list[str] = []
        self._asset_index: dict[str, int] = {}
        self.role_count = np.zeros((0, len(self.ROLES)), dtype=np.int64)  # per asset: sensors of each role in the city
        self.related: list[tuple[str, ...]] = []  # per asset: the city's sensors of the rule's roles
        # stream slot -> local index (-2 not seen yet, -1 not part of this rule)
        self.loc_of_stream = np.zeros(0, dtype=np.int64)
        self.loc_asset = np.zeros(0, dtype=np.int64)
        self.loc_role = np.zeros(0, dtype=np.int64)
        self.loc_sensor = np.zeros(0, dtype=np.int64)
        self.loc_stream = np.zeros(0, dtype=np.int64)
        self._csr: tuple[np.ndarray, np.ndarray] | None = None

    # ---- layouts (override for parameter-dependent shapes)

    def stream_spec(self) -> dict[str, tuple[tuple[int, ...], Any, float]]:
        return dict(self.STREAM)

    def asset_spec(self) -> dict[str, tuple[tuple[int, ...], Any, float]]:
        return dict(self.ASSET)

    # ---- city model

    def _bind(self, city: City) -> None:
        if self._city is city:
            return
        self._city = city
        old = self.assets
        self.assets = [a.id for a in city.assets.values() if a.lifeline == self.lifeline and a.type == self.asset_type]
        self._asset_index = {a: i for i, a in enumerate(self.assets)}
        if old and old != self.assets:
            self._remap_assets(old)
        self.role_count = np.zeros((len(self.assets), len(self.ROLES)), dtype=np.int64)
        self.related = []
        for i, a in enumerate(self.assets):
            rel = []
            for s in city.sensors_by_asset.get(a, []):
                hit = False
                for r, (kinds, _metric) in enumerate(self.ROLES.values()):
                    if s.kind in kinds and self._accepts(s, r):
                        self.role_count[i, r] += 1
                        hit = True
                if hit:
                    rel.append(s.id)
            self.related.append(tuple(rel))
        self.assets_state.ensure(len(self.assets) + 1)

    def _remap_assets(self, old: list[str]) -> None:
        """The city file changed since the state was saved: move per-asset state to the new asset order."""
        new_of_old = np.array([self._asset_index.get(a, -1) for a in old], dtype=np.int64)
        n_new = len(self.assets) + 1

        def move(arr: np.ndarray, fill: Any) -> np.ndarray:
            out = np.full((max(n_new, 64), *arr.shape[1:]), fill, dtype=arr.dtype)
            keep = np.flatnonzero(new_of_old >= 0)
            keep = keep[keep < len(arr)]
            out[new_of_old[keep]] = arr[keep]
            return out

        spec = self.assets_state.spec
        self.assets_state.a = {k: move(v, spec[k][2]) for k, v in self.assets_state.a.items()}
        self.assets_state.capacity = max(n_new, 64)
        self.hyst.state = {k: move(v, 0) for k, v in self.hyst.state.items()}
        self.hyst.capacity = max(n_new, 64)
        if len(self.loc_asset):
            moved = new_of_old[self.loc_asset]
            gone = moved < 0
            self.loc_of_stream[self.loc_stream[gone]] = -1  # streams of an asset no longer in the city: ignored
            self.loc_asset = np.where(gone, 0, moved)
            self.loc_role = np.where(gone, -1, self.loc_role)
        self._csr = None

    def _role_of(self, reg: Registry, sensor: int, metric_code: int) -> tuple[int, int]:
        meta = reg.sensor_meta[sensor]
        if meta is None or meta.asset not in self._asset_index:
            return -1, -1
        lid, metric = reg.metric_names[metric_code].split(".", 1)
        if lid != self.lifeline:
            return -1, -1
        for r, (kinds, m) in enumerate(self.ROLES.values()):
            if meta.kind in kinds and metric == m and self._accepts(meta, r):
                return self._asset_index[meta.asset], r
        return -1, -1

    def _accepts(self, sensor: Sensor, role: int) -> bool:
        """Whether a sensor of a matching kind really plays ``role`` (e.g. not a bearing gauge)."""
        return True

    def _sync(self, frame: Frame) -> np.ndarray:
        """Local index of every frame row (-1: not this rule's)."""
        reg = frame.registry
        n = len(reg.streams)
        if len(self.loc_of_stream) < n:
            self.loc_of_stream = np.concatenate([self.loc_of_stream, np.full(n - len(self.loc_of_stream), -2, np.int64)])
        loc = self.loc_of_stream[frame.stream]
        pending = np.flatnonzero(loc == -2)
        if len(pending):
            uniq, first = np.unique(frame.stream[pending], return_index=True)
            order = np.argsort(pending[first], kind="stable")  # local indices in order of first appearance
            add_a, add_r, add_s, add_st = [], [], [], []
            for j in order.tolist():
                st = int(uniq[j])
                row = int(pending[first[j]])
                a, r = self._role_of(reg, int(frame.sensor[row]), int(frame.metric[row]))
                if a < 0:
                    self.loc_of_stream[st] = -1
                    continue
                self.loc_of_stream[st] = len(self.loc_asset) + len(add_a)
                add_a.append(a)
                add_r.append(r)
                add_s.append(int(frame.sensor[row]))
                add_st.append(st)
            if add_a:
                self.loc_asset = np.concatenate([self.loc_asset, np.array(add_a, np.int64)])
                self.loc_role = np.concatenate([self.loc_role, np.array(add_r, np.int64)])
                self.loc_sensor = np.concatenate([self.loc_sensor, np.array(add_s, np.int64)])
                self.loc_stream = np.concatenate([self.loc_stream, np.array(add_st, np.int64)])
                self._csr = None
            loc = self.loc_of_stream[frame.stream]
        self.streams.ensure(len(self.loc_asset) + 1)
        return loc

    def csr(self) -> tuple[np.ndarray, np.ndarray]:
        """(indptr over assets, local indices sorted by asset, role, first appearance)."""
        if self._csr is None:
            valid = np.flatnonzero(self.loc_role >= 0)  # -1: the stream's asset left the city file
            la, lr = self.loc_asset[valid], self.loc_role[valid]
            order = valid[np.lexsort((valid, lr, la))].astype(np.int64)
            counts = np.bincount(la, minlength=len(self.assets)) if len(la) else np.zeros(len(self.assets), np.int64)
            indptr = np.zeros(len(self.assets) + 1, dtype=np.int64)
            np.cumsum(counts, out=indptr[1:])
            self._csr = (indptr, order)
        return self._csr

    # ---- Stage

    def process(self, frame: Frame) -> list[Detection]:
        reg = frame.registry
        if reg.city is None or not len(frame):
            return []
        self._bind(reg.city)
        if not self.assets:
            return []
        loc = self._sync(frame)
        rows = np.flatnonzero(loc >= 0)
        if not len(rows):
            return []
        indptr, members = self.csr()
        width = int(np.diff(indptr).max()) if len(indptr) > 1 else 0
        n = len(rows)
        obs = {"asset": np.empty(n, np.int64), "t": np.empty(n, np.int64), "now": np.empty(n, np.int64),
               "sev": np.empty(n, np.int8),
               "score": np.empty(n, np.float64), "snap": np.empty(n, np.int64)}
        snap = np.full((n, self.N_SCALARS + SNAP_FIELDS * max(width, 1)), np.nan)
        k = self._kernel(frame, rows, loc[rows], indptr, members, obs, snap)
        if k == 0:
            return []
        o = {key: a[:k] for key, a in obs.items()}
        ev = self.hyst.step(o["asset"], o["t"], o["sev"], o["score"], with_peaks=True)
        out: list[Detection] = []
        city = reg.city
        for r, kind, sev, start, peak in zip(*(a.tolist() for a in ev), strict=True):
            a = int(o["asset"][r])
            asset = city.assets[self.assets[a]]
            ts = int(o["now"][r])
            state = RAISED if kind == RAISE else (CLEARED if kind == 3 else UPDATED)
            j = int(o["snap"][r])
            row = snap[j] if j >= 0 else np.full(snap.shape[1], np.nan)
            mem = members[indptr[a]:indptr[a + 1]]
            evidence = self._evidence(a, row, mem, reg)
            evidence["peak_score"] = peak
            evidence["source"] = self.source
            out.append(Detection(
                detector=self.name, kind=self.name, state=state, lifeline=self.lifeline, district=asset.district,
                asset=asset.id, sensors=self.related[a], level=severity_to_level(sev), score=float(o["score"][r]),
                start_ns=int(start), ts_ns=ts, end_ns=ts if state == CLEARED else None, metric=self._metric(),
                evidence=evidence))
        return out

    def _metric(self) -> str | None:
        return None

    def _kernel(self, frame: Frame, rows: np.ndarray, loc: np.ndarray, indptr: np.ndarray, members: np.ndarray,
                obs: dict[str, np.ndarray], snap: np.ndarray) -> int:
        raise NotImplementedError

    def _evidence(self, asset: int, snap_row: np.ndarray, members: np.ndarray, reg: Registry) -> dict[str, Any]:
        raise NotImplementedError

    def members_evidence(self, snap_row: np.ndarray, members: np.ndarray, reg: Registry,
                         names: tuple[str, str, str, str] = ("value", "baseline", "spread", "flag")) -> list[dict]:
        """Per member of the asset: sensor, role and the four snapshot numbers (NaN left out)."""
        out = []
        base = self.N_SCALARS
        for j, m in enumerate(members.tolist()):
            vals = snap_row[base + SNAP_FIELDS * j: base + SNAP_FIELDS * (j + 1)]
            d: dict[str, Any] = {"sensor": reg.sensor_ids[int(self.loc_sensor[m])], "role": self.role_names[int(self.loc_role[m])]}
            for name, v in zip(names, vals.tolist(), strict=True):
                if v == v:  # not NaN
                    d[name] = bool(v) if name == "flag" else round(float(v), 6)
            out.append(d)
        return out

    # ---- state

    def state_dict(self) -> dict[str, np.ndarray]:
        d = self.streams.state_dict("stream/")
        d.update(self.assets_state.state_dict("asset/"))
        d.update(hyst_state(self.hyst))
        d["loc/of_stream"] = self.loc_of_stream.copy()
        d["loc/asset"] = self.loc_asset.copy()
        d["loc/role"] = self.loc_role.copy()
        d["loc/sensor"] = self.loc_sensor.copy()
        d["loc/stream"] = self.loc_stream.copy()
        d["assets"] = np.array(self.assets, dtype=object)
        return d

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        self.streams.load_state_dict(d, "stream/")
        self.assets_state.load_state_dict(d, "asset/")
        load_hyst(self.hyst, d)
        self.loc_of_stream = np.asarray(d["loc/of_stream"], np.int64).copy()
        self.loc_asset = np.asarray(d["loc/asset"], np.int64).copy()
        self.loc_role = np.asarray(d["loc/role"], np.int64).copy()
        self.loc_sensor = np.asarray(d["loc/sensor"], np.int64).copy()
        self.loc_stream = np.asarray(d["loc/stream"], np.int64).copy()
        self.assets = [str(a) for a in d.get("assets", [])]  # the asset order the state was saved in
        self._asset_index = {a: i for i, a in enumerate(self.assets)}
        self._city = None
        self._csr = None

    def state_bytes_per_stream(self) -> int:
        """Bytes per stream that plays a role (its own state plus its share is not counted: see assets)."""
        return self.streams.bytes_per_slot() + 8 * 4

    def state_bytes_per_asset(self) -> int:
        return self.assets_state.bytes_per_slot() + self.hyst.state_bytes_per_slot()


def snapshot_needed(sev: int, quiet: int, clear_points: int) -> bool:
    return sev > 0 or quiet <= clear_points
