"""``lifewatch record``: a window of InfluxDB into a Parquet recording, exactly what was written."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ingest.readers import read_columns
from ingest.readers.parquet import read_metadata
from ingest.record import add_arguments, build_query, cli, record
from lifewatch.influx import InfluxClient
from lifewatch.lineprotocol import encode_reading
from lifewatch.model import Reading, format_ts

pytestmark = pytest.mark.integration

T0 = 1_767_571_200_000_000_000  # 2026-01-05T00:00:00Z
S = 1_000_000_000


def sample() -> list[Reading]:
    out = []
    for i in range(60):
        t = T0 + i * S + (i * 7919) % S  # nanoseconds that must survive
        out.append(Reading("water", "d 01", "w,1=x", t, {"pressure": 0.3 + i / 1000, "flow": None if i % 5 == 0 else i * 0.5},
                           i, 'q "x" \\' if i % 7 == 0 else None))
        out.append(Reading("power", "石河子", "p-1", t + 3, {"voltage": 230.0 + i, "load": 1e-3 * i}, None, None))
        if i % 10 == 0:
            out.append(Reading("gas", "d02", "g-1", t + 5, {"pressure": None}))  # a heartbeat
    return out


def stored(r: Reading) -> Reading:
    """What InfluxDB keeps of a reading: no null values; an empty reading is a quality="missing" heartbeat."""
    values = {k: v for k, v in sorted(r.values.items()) if v is not None}
    quality = r.quality if r.quality is not None or values or r.seq is not None else "missing"
    return Reading(r.lifeline, r.district, r.sensor_id, r.ts_ns, values, r.seq, quality)


def expected(rs: list[Reading]) -> list[Reading]:
    return sorted((stored(r) for r in rs), key=lambda r: (r.ts_ns, r.lifeline, r.district, r.sensor_id))


def readings_of(path: Path) -> list[Reading]:
    return [r for b in read_columns(path).reading_batches() for r in b]


def test_query_quotes_every_identifier_and_literal() -> None:
    q = build_query('we"ird', 1, 2, ["d'1", "x\\"], ['s"1'])
    assert q == ('SELECT * FROM "we\\"ird" WHERE time >= 1 AND time < 2 AND ("district" = \'d\\\'1\' OR "district" = '
                 "'x\\\\') AND (\"sensor_id\" = 's\"1') GROUP BY \"district\", \"sensor_id\"")


def test_record_exports_exactly_what_was_written(influx: InfluxClient, tmp_path: Path) -> None:
    rs = sample()
    influx.write("\n".join(encode_reading(r) for r in rs))
    out = tmp_path / "rec.parquet"
    seen = []
    res = record(influx, T0, T0 + 61 * S, out, chunk_s=7.0, meta={"source": {"test": 1}},
                 progress=lambda done, total, n, at: seen.append((done, total, n)))
    assert res["readings"] == len(rs) and res["chunks"] == 9
    assert seen[-1] == (9, 9, len(rs))
    assert readings_of(out) == expected(rs)  # values, tags, seq, quality, ns timestamps, order
    meta = read_metadata(out)
    assert (meta["from"], meta["to"], meta["readings"], meta["source"]) == (format_ts(T0), format_ts(T0 + 61 * S), len(rs), {"test": 1})

    # filters: lifeline, district, sensor (awkward names go through quote_literal)
    record(influx, T0, T0 + 61 * S, out, lifelines=["water", "power"], districts=["d 01", "石河子"], sensors=["w,1=x"])
    assert readings_of(out) == expected([r for r in rs if r.sensor_id == "w,1=x"])
    record(influx, T0 + 10 * S, T0 + 20 * S, out, lifelines=["gas"])
    assert readings_of(out) == expected([r for r in rs if r.lifeline == "gas" and T0 + 10 * S <= r.ts_ns < T0 + 20 * S])


def test_cli_writes_the_file_and_reports(settings, influx: InfluxClient, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    rs = sample()[:30]
    influx.write("\n".join(encode_reading(r) for r in rs))
    p = argparse.ArgumentParser()
    add_arguments(p)
    out = tmp_path / "cli.parquet"
    args = p.parse_args(["--from", format_ts(T0), "--to", format_ts(T0 + 3600 * S), "-o", str(out)])
    assert cli(args, settings) == 0
    captured = capsys.readouterr()
    assert f"{len(rs)} readings" in captured.out
    assert "1/1 chunks (100%)" in captured.err
    assert readings_of(out) == expected(rs)
    meta = read_metadata(out)
    assert meta["source"] == {"influx_url": settings.influx_url, "database": settings.influx_db}
    assert meta["lifewatch_version"] and meta["created_at"].endswith("Z")

    bad = p.parse_args(["--from", "yesterday", "-o", str(out)])
    assert cli(bad, settings) == 2
    down = settings.replace(influx_url="http://127.0.0.1:9", influx_timeout=1.0)
    assert cli(p.parse_args(["--from=-1h", "-o", str(tmp_path / "x.parquet")]), down) == 1
    assert not (tmp_path / "x.parquet").exists()  # nothing half-written
    assert "record: InfluxDB at http://127.0.0.1:9" in capsys.readouterr().err
