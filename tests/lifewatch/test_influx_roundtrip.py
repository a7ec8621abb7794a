"""Line protocol -> /write -> InfluxQL /query against the fixture influxd: values come back exactly."""

from __future__ import annotations

import pytest

from lifewatch.influx import InfluxClient, InfluxRejected, InfluxUnavailable
from lifewatch.lineprotocol import encode_point, encode_reading, quote_ident, quote_literal
from lifewatch.model import Reading
from lifewatch.services import free_port

pytestmark = pytest.mark.integration

T0 = 1_767_225_600_123_456_789  # 2026-01-01T00:00:00.123456789Z: ns must survive

AWKWARD_TAGS = [
    "district 01",  # space
    "d,02",  # comma
    "key=value",  # equals sign
    "石河子 = 区, 北",  # unicode with all three
    "back\\slash",  # a backslash line protocol can carry (not before , = or space)
]
AWKWARD_STRING = 'he said "stop" \\ C:\\pipes\\ \'quoted\' \\"both\\" ü'


def readings() -> list[Reading]:
    out = []
    for i, district in enumerate(AWKWARD_TAGS):
        out.append(
            Reading(
                lifeline="water",
                district=district,
                sensor_id=f"w {i},x=ü",
                ts_ns=T0 + i,
                values={"pressure": 0.1 + i / 7, "flow": -3.25e-5 * (i + 1), "missing": None},
                seq=i,
                quality=AWKWARD_STRING if i % 2 == 0 else None,
            )
        )
    return out


def test_write_then_query_exact(influx: InfluxClient) -> None:
    rs = readings()
    point_tags = {"host name": "gw, east=1", "zone": "Zürich \"x\""}
    point_fields: dict[str, object] = {"note": AWKWARD_STRING, "count": 2**53 + 1, "ok": True, "ratio": 1 / 3}
    lines = [encode_reading(r) for r in rs]
    lines.append(encode_point("platform metrics,v1", point_tags, point_fields, T0 + 1000))
    influx.write("\n".join(lines))

    # every reading, selected by its awkward tag value
    for r in rs:
        q = (
            f"SELECT * FROM {quote_ident(r.lifeline)} "
            f"WHERE {quote_ident('district')} = {quote_literal(r.district)} "
            f"AND {quote_ident('sensor_id')} = {quote_literal(r.sensor_id)}"
        )
        series = influx.query(q, epoch="ns")
        assert len(series) == 1
        rows = series[0].rows()
        assert len(rows) == 1, rows
        row = rows[0]
        expected = {
            "time": r.ts_ns,
            "district": r.district,
            "sensor_id": r.sensor_id,
            "pressure": r.values["pressure"],
            "flow": r.values["flow"],
            "seq": r.seq,
            "quality": r.quality,
        }
        assert row == expected

    # all of them at once: count and tag sets
    series = influx.query(
        f"SELECT {quote_ident('pressure')} FROM {quote_ident('water')} GROUP BY {quote_ident('district')}",
        epoch="ns",
    )
    assert sorted(s.tags["district"] for s in series) == sorted(AWKWARD_TAGS)
    assert sum(len(s.values) for s in series) == len(rs)

    # the generic point: escaped measurement name, tag keys with spaces, typed fields
    series = influx.query(
        f"SELECT * FROM {quote_ident('platform metrics,v1')} "
        f"WHERE {quote_ident('host name')} = {quote_literal(point_tags['host name'])}",
        epoch="ns",
    )
    assert len(series) == 1 and series[0].name == "platform metrics,v1"
    assert series[0].rows() == [
        {"time": T0 + 1000, "host name": point_tags["host name"], "zone": point_tags["zone"], **point_fields}
    ]


def test_bad_line_is_rejected(influx: InfluxClient) -> None:
    with pytest.raises(InfluxRejected) as err:
        influx.write("water,district=d01 this-is-not-a-field\n")
    assert err.value.status == 400
    with pytest.raises(InfluxRejected):
        influx.write(encode_point("water", {"district": "d01"}, {"pressure": 1.0}, T0) + " trailing-garbage")
    # nothing of the refused batch was stored
    assert influx.query(f"SELECT * FROM {quote_ident('water')}") == []


def test_closed_port_is_unavailable(settings) -> None:  # noqa: ANN001
    with InfluxClient(f"http://127.0.0.1:{free_port()}", settings.influx_db, timeout=2.0) as dead:
        with pytest.raises(InfluxUnavailable):
            dead.write(encode_point("water", {"district": "d01"}, {"pressure": 1.0}, T0))
        assert dead.ping() is False
