"""Deterministic generator of the demo city, Shihezi (石河子), Xinjiang.

``python -m simulators.citygen > simulators/cities/shihezi.yaml`` regenerates
the checked-in file; the same seed always gives the same bytes (a test checks
that the file in the repository is exactly what the generator prints).

The layout is real-ish, not surveyed: seven areas named after Shihezi's
subdistricts, towns and the development zone, spread over about 12 km around
44.30N 86.04E.  Per district the generator places

* water: DMAs (district metered areas), each with one ``dma_inlet`` flow meter
  and several ``pressure`` loggers; every water sensor belongs to its DMA and
  carries its distance to the inlet (``dist_m``) and its elevation relative to
  the inlet (``elev_m``), from which the simulator derives static pressure and
  head loss;
* power: 10 kV feeders, each with one ``feeder_head`` monitor, one
  distribution ``transformer`` monitor and LV ``meter`` s (every meter belongs
  to a feeder; ``drop`` is its voltage drop per unit transformer load);
* gas: medium-pressure B network segments with ``pressure`` sensors and
  ``well_methane`` monitors in valve wells close to them (tens to a few
  hundred metres apart, so a leak reaches neighbouring wells);
* bridge: a handful of bridges (not every district has one) with strain
  gauges, accelerometers, displacement sensors (one at midspan, one at a
  bearing) and pier inclinometers; the asset params hold the design values
  (``strain_design`` ustrain, ``deflection_design`` mm, ``tilt_design`` deg),
  ``span_m``, ``f0`` (first natural frequency at the reference temperature,
  Hz) and ``t_ref`` (degC);
* air: one air-monitoring area per district with one national-style station.

Sensor ids are ``<w|p|g|b|a>-<district>-<nnn>``, sensors are listed district by
district (so ``--sensors N`` takes a mix of lifelines).
"""

from __future__ import annotations

import math
import random
import sys
from typing import Any

import yaml

SEED = 20260101
CENTRE = (44.30, 86.04)
M_PER_DEG_LAT = 111_320.0

UNITS: dict[str, dict[str, str]] = {
    "water": {"id": "shz-water", "name": "Shihezi Water Supply Company", "name_zh": "石河子供水公司"},
    "power": {"id": "shz-power", "name": "Shihezi Power Supply Company", "name_zh": "石河子供电公司"},
    "gas": {"id": "shz-gas", "name": "Shihezi Gas Company", "name_zh": "石河子燃气公司"},
    "bridge": {"id": "shz-bridge", "name": "Shihezi Bridge Management Authority", "name_zh": "石河子桥梁管理处"},
    "air": {"id": "shz-env", "name": "Shihezi Ecology and Environment Bureau", "name_zh": "石河子生态环境局"},
}

# id, name, name_zh, centre lat, lon, and how many water DMAs / power feeders / gas segments
DISTRICTS: list[tuple[str, str, str, float, float, int, int, int]] = [
    ("d01", "Xincheng Subdistrict", "新城街道", 44.3150, 86.0300, 2, 2, 2),
    ("d02", "Xiangyang Subdistrict", "向阳街道", 44.2880, 86.0050, 2, 2, 1),
    ("d03", "Hongshan Subdistrict", "红山街道", 44.2680, 86.0580, 2, 2, 1),
    ("d04", "Laojie Subdistrict", "老街街道", 44.3010, 86.0480, 2, 2, 2),
    ("d05", "Dongcheng Subdistrict", "东城街道", 44.3020, 86.0980, 2, 2, 1),
    ("d06", "Beiquan Town", "北泉镇", 44.3560, 86.0780, 1, 1, 1),
    ("d07", "Economic and Technological Development Zone", "经济技术开发区", 44.3350, 85.9820, 1, 1, 1),
]

# district, name, name_zh, span_m, bearing (deg from north), offset from the district centre (m east, m north)
BRIDGES: list[tuple[str, str, str, float, float, tuple[float, float]]] = [
    ("d01", "Beisi Road Overpass", "北四路立交桥", 42.0, 90.0, (600.0, 900.0)),
    ("d02", "Xiangyang Street Canal Bridge", "向阳街渠桥", 24.0, 0.0, (-500.0, 200.0)),
    ("d03", "Hongshan Interchange", "红山立交桥", 56.0, 45.0, (300.0, -700.0)),
    ("d04", "Laojie Railway Overpass", "老街铁路跨线桥", 38.0, 90.0, (-200.0, 500.0)),
    ("d05", "Dongcheng Manas Road Bridge", "东城玛纳斯路桥", 48.0, 0.0, (900.0, 100.0)),
]

WATER_PRESSURE_PER_DMA = 6
METERS_PER_FEEDER = 10
GAS_PRESSURE_PER_SEG = 4
GAS_WELLS_PER_SEG = 4


class _Gen:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def u(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self.rng.random()

    def point_near(self, lat: float, lon: float, radius_m: float, min_m: float = 0.0) -> tuple[float, float]:
        """A point uniformly in the ring min_m..radius_m around (lat, lon)."""
        r = math.sqrt(self.u((min_m / radius_m) ** 2, 1.0)) * radius_m
        a = self.u(0.0, 2 * math.pi)
        return offset(lat, lon, r * math.cos(a), r * math.sin(a))


def offset(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    dlat = north_m / M_PER_DEG_LAT
    dlon = east_m / (M_PER_DEG_LAT * math.cos(math.radians(lat)))
    return lat + dlat, lon + dlon


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Equirectangular distance, good to well under 1% over a city."""
    lat = math.radians((a[0] + b[0]) / 2)
    dy = (a[0] - b[0]) * M_PER_DEG_LAT
    dx = (a[1] - b[1]) * M_PER_DEG_LAT * math.cos(lat)
    return math.hypot(dx, dy)


def terrain_m(lat: float, lon: float) -> float:
    """Ground elevation (m): Shihezi lies on an alluvial fan sloping down to the north (~4 m/km)."""
    north_m = (lat - CENTRE[0]) * M_PER_DEG_LAT
    east_m = (lon - CENTRE[1]) * M_PER_DEG_LAT * math.cos(math.radians(CENTRE[0]))
    return 445.0 - 0.004 * north_m + 0.0008 * east_m + 1.5 * math.sin(east_m / 900.0) * math.cos(north_m / 1100.0)


def _r(x: float, nd: int) -> float:
    return float(round(x, nd))


def generate(seed: int = SEED) -> dict[str, Any]:
    """The city document (schema of :mod:`lifewatch.city`)."""
    g = _Gen(seed)
    districts = [
        {"id": d, "name": name, "name_zh": zh, "lat": lat, "lon": lon}
        for d, name, zh, lat, lon, *_ in DISTRICTS
    ]
    assets: list[dict[str, Any]] = []
    sensors: list[dict[str, Any]] = []

    for did, dname, _zh, dlat, dlon, n_dma, n_fdr, n_gas in DISTRICTS:
        seq = {"w": 0, "p": 0, "g": 0, "b": 0, "a": 0}

        def sid(prefix: str, did: str = did, seq: dict[str, int] = seq) -> str:
            seq[prefix] += 1
            return f"{prefix}-{did}-{seq[prefix]:03d}"

        def sensor(prefix, lifeline, kind, asset, pos, params, did=did):
            sensors.append({
                "id": sid(prefix), "lifeline": lifeline, "kind": kind, "district": did, "asset": asset,
                "lat": _r(pos[0], 5), "lon": _r(pos[1], 5), "params": params,
            })

        short = dname.split()[0]
        # ---------------------------------------------------------------- water
        for i in range(1, n_dma + 1):
            aid = f"dma-{did}-{i}"
            centre = g.point_near(dlat, dlon, 1100.0, 300.0 if n_dma > 1 else 0.0)
            inlet = g.point_near(centre[0], centre[1], 900.0, 600.0)
            base_flow = _r(g.u(70.0, 170.0), 1)
            assets.append({
                "id": aid, "lifeline": "water", "type": "dma", "district": did, "name": f"{short} DMA {i}",
                "params": {"base_flow": base_flow, "p_inlet": _r(g.u(0.40, 0.44), 3),
                           "lat": _r(centre[0], 5), "lon": _r(centre[1], 5)},
            })
            sensor("w", "water", "dma_inlet", aid, inlet, {"dist_m": 0.0, "elev_m": 0.0})
            z0 = terrain_m(*inlet)
            for _ in range(WATER_PRESSURE_PER_DMA):
                pos = g.point_near(centre[0], centre[1], 800.0)
                dist = distance_m(inlet, pos)
                elev = max(-3.0, min(5.0, terrain_m(*pos) - z0 + g.u(-1.0, 1.0)))
                sensor("w", "water", "pressure", aid, pos, {"dist_m": _r(dist, 0), "elev_m": _r(elev, 1)})

        # ---------------------------------------------------------------- power
        for i in range(1, n_fdr + 1):
            aid = f"fdr-{did}-{i}"
            sub = g.point_near(dlat, dlon, 1300.0, 700.0)
            area = g.point_near(dlat, dlon, 900.0)
            n_customers = int(g.u(1200, 2600))
            assets.append({
                "id": aid, "lifeline": "power", "type": "feeder", "district": did, "name": f"{short} 10 kV feeder {i}",
                "params": {"rated_kw": _r(n_customers * g.u(1.6, 2.0), -1), "n_customers": n_customers,
                           "peak_pu": _r(g.u(0.62, 0.78), 2)},
            })
            sensor("p", "power", "feeder_head", aid, sub, {})
            tr = g.point_near(area[0], area[1], 150.0)
            sensor("p", "power", "transformer", aid, tr,
                   {"rated_kva": float(g.rng.choice([500, 630, 800])), "peak_pu": _r(g.u(0.5, 0.66), 2),
                    "enclosure_rise": 5.0})
            for _ in range(METERS_PER_FEEDER):
                pos = g.point_near(tr[0], tr[1], 450.0, 30.0)
                d = distance_m(tr, pos)
                sensor("p", "power", "meter", aid, pos,
                       {"base_kw": _r(g.u(0.45, 1.1), 2), "drop": _r(0.012 + 0.045 * d / 450.0, 4)})

        # ---------------------------------------------------------------- gas
        for i in range(1, n_gas + 1):
            aid = f"gas-{did}-{i}"
            reg = g.point_near(dlat, dlon, 1200.0, 400.0)
            assets.append({
                "id": aid, "lifeline": "gas", "type": "segment", "district": did,
                "name": f"{short} medium-pressure B segment {i}",
                "params": {"setpoint_kpa": _r(g.u(148.0, 156.0), 1), "class": "medium-B",
                           "lat": _r(reg[0], 5), "lon": _r(reg[1], 5)},
            })
            # pressure sensors along the main from the regulator, each with a valve well nearby
            heading = g.u(0.0, 2 * math.pi)
            for k in range(GAS_PRESSURE_PER_SEG):
                along = 150.0 + k * g.u(180.0, 260.0)
                pos = offset(reg[0], reg[1], along * math.sin(heading), along * math.cos(heading))
                pos = g.point_near(pos[0], pos[1], 40.0)
                sensor("g", "gas", "pressure", aid, pos,
                       {"dist_m": _r(distance_m(reg, pos), 0), "drop_kpa": _r(2.0 + along / 120.0, 1)})
            for k in range(GAS_WELLS_PER_SEG):
                along = 180.0 + k * g.u(170.0, 240.0)
                pos = offset(reg[0], reg[1], along * math.sin(heading), along * math.cos(heading))
                pos = g.point_near(pos[0], pos[1], 60.0, 10.0)
                sensor("g", "gas", "well_methane", aid, pos, {"base_lel": _r(g.u(0.1, 0.9), 2)})

        # ---------------------------------------------------------------- bridges
        for bdid, bname, bzh, span, bearing, (de, dn) in BRIDGES:
            if bdid != did:
                continue
            aid = f"br-{did}-1"
            mid = offset(dlat, dlon, de, dn)
            assets.append({
                "id": aid, "lifeline": "bridge", "type": "bridge", "district": did, "name": bname,
                "params": {
                    "name_zh": bzh, "span_m": span, "strain_design": _r(g.u(380.0, 520.0), -1),
                    "deflection_design": _r(span * 1000.0 / 600.0, 1), "tilt_design": 0.1,
                    "f0": _r(95.0 / span + g.u(-0.1, 0.1), 2), "t_ref": 10.0,
                    "lat": _r(mid[0], 5), "lon": _r(mid[1], 5),
                },
            })
            th = math.radians(bearing)

            def along_span(pos_frac: float, th: float = th, mid: tuple[float, float] = mid, span: float = span):
                d = (pos_frac - 0.5) * span
                return offset(mid[0], mid[1], d * math.sin(th), d * math.cos(th))

            for pos in (0.25, 0.5, 0.5, 0.75):
                sensor("b", "bridge", "strain_gauge", aid, along_span(pos),
                       {"pos": pos, "t_coef": _r(g.u(-2.5, 2.5), 2), "offset": _r(g.u(-20.0, 20.0), 1)})
            for pos in (0.5, 0.25):
                sensor("b", "bridge", "accelerometer", aid, along_span(pos), {"pos": pos})
            sensor("b", "bridge", "displacement", aid, along_span(0.5), {"pos": 0.5, "role": "midspan"})
            sensor("b", "bridge", "displacement", aid, along_span(0.0), {"pos": 0.0, "role": "bearing"})
            for pos in (0.0, 1.0):
                sensor("b", "bridge", "inclinometer", aid, along_span(pos),
                       {"pos": pos, "offset": _r(g.u(-0.015, 0.015), 4)})

        # ---------------------------------------------------------------- air
        aid = f"air-{did}"
        assets.append({"id": aid, "lifeline": "air", "type": "air_area", "district": did, "name": f"{short} air area",
                       "params": {}})
        industrial = did in ("d07", "d06")
        sensor("a", "air", "station", aid, g.point_near(dlat, dlon, 400.0),
               {"traffic": _r(g.u(0.8, 1.3), 2), "industry": _r(g.u(1.3, 1.7) if industrial else g.u(0.8, 1.1), 2),
                "local": _r(g.u(0.9, 1.1), 2)})

    return {
        "name": "Shihezi",
        "name_zh": "石河子",
        "utc_offset_hours": 6,
        "units": UNITS,
        "districts": districts,
        "assets": assets,
        "sensors": sensors,
    }


def _flow(item: dict[str, Any]) -> str:
    return yaml.safe_dump(item, default_flow_style=True, width=1_000_000, allow_unicode=True, sort_keys=False).strip()


def render(doc: dict[str, Any]) -> str:
    """The YAML text: block sections, one flow-style line per district, asset and sensor."""
    n = {lid: sum(1 for s in doc["sensors"] if s["lifeline"] == lid) for lid in UNITS}
    out = [
        "# Shihezi (石河子), Xinjiang: the Lifewatch demo city.  GENERATED, do not edit by hand:",
        "#   python -m simulators.citygen > simulators/cities/shihezi.yaml",
        "# Real-ish layout (not surveyed) around 44.30N 86.04E.  Schema: lifewatch/city.py.",
        f"# {len(doc['districts'])} districts, {len(doc['assets'])} assets, {len(doc['sensors'])} sensors: "
        + ", ".join(f"{k} {v}" for k, v in n.items()),
        f"name: {doc['name']}",
        f"name_zh: {doc['name_zh']}",
        f"utc_offset_hours: {doc['utc_offset_hours']}   # Xinjiang time; storage is UTC",
        "units:",
    ]
    out += [f"  {lid}: {_flow(u)}" for lid, u in doc["units"].items()]
    out.append("districts:")
    out += [f"  - {_flow(d)}" for d in doc["districts"]]
    out.append("assets:")
    out += [f"  - {_flow(a)}" for a in doc["assets"]]
    out.append("sensors:")
    out += [f"  - {_flow(s)}" for s in doc["sensors"]]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m simulators.citygen", description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=SEED)
    args = p.parse_args(argv)
    sys.stdout.write(render(generate(args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
