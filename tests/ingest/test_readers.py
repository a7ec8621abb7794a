"""Recording readers: every format into the same columns, exact to the nanosecond; errors name line and column."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ingest.readers import Columns, RecordingError, detect_format, read_columns, read_recording
from ingest.readers.parquet import read_metadata, read_parquet, write_recording
from lifewatch.lineprotocol import encode_reading
from lifewatch.model import ContractError, Reading, check_identifier

T0 = 1_767_571_200_000_000_000  # 2026-01-05T00:00:00Z


def _readings_of(cols: Columns) -> list[Reading]:
    return [r for batch in cols.reading_batches(7) for r in batch]


def awkward_readings() -> list[Reading]:
    return [
        Reading("water", "district 01", "w,1=a b", T0 + 1, {"flow": 1.25, "pressure": None}, 0, 'say "hi" \\ ü'),
        Reading("water", "d,02", "w-2", T0 + 999_999_999, {"pressure": -3.25e-5}, 2**62, None),
        Reading("power", "石河子", "p 3", T0 + 2, {}, None, "missing"),  # a heartbeat
        Reading("gas", "d", "g-4", T0 - 7, {"pressure": 0.1 + 0.2, "flow": 1e300}, 5, "good"),
    ]


# ---------------------------------------------------------------- Parquet


def test_parquet_roundtrip_is_exact_to_the_nanosecond(tmp_path: Path) -> None:
    rs = awkward_readings()
    path = tmp_path / "r.parquet"
    write_recording(path, Columns.from_readings(rs), {"source": {"test": True}})
    back = read_columns(path)
    assert _readings_of(back) == rs  # file order, values, None, seq up to 2^62, quality, heartbeat
    # the schema as documented, and pyarrow (not pandas) keeps the nanoseconds
    schema = pq.read_schema(path)
    assert schema.field("ts").type == pa.timestamp("ns", tz="UTC")
    assert pa.types.is_dictionary(schema.field("sensor_id").type)
    assert schema.field("value").type == pa.float64() and schema.field("seq").type == pa.int64()
    ts = pq.read_table(path).column("ts").cast(pa.int64()).to_pylist()
    assert ts == [T0 + 1, T0 + 1, T0 + 999_999_999, T0 + 2, T0 - 7, T0 - 7]
    meta = read_metadata(path)
    assert meta["format"] == "lifewatch-recording" and meta["readings"] == 4 and meta["rows"] == 6
    assert meta["source"] == {"test": True}
    # event-time order for the replay
    assert [r.ts_ns for batch in read_recording(path, batch=2) for r in batch] == sorted(r.ts_ns for r in rs)


def test_parquet_written_by_pandas_with_microseconds_is_read(tmp_path: Path) -> None:
    """A foreign Parquet file: plain strings, naive microsecond timestamps (pandas 3's default unit)."""
    table = pa.table({
        "ts": pa.array([1_767_571_200_000_001, 1_767_571_200_000_002], type=pa.timestamp("us")),
        "lifeline": ["water", "water"], "district": ["d", "d"], "sensor_id": ["a", "b"],
        "metric": ["flow", None], "value": [1.0, None],
    })
    pq.write_table(table, tmp_path / "f.parquet")
    rs = _readings_of(read_columns(tmp_path / "f.parquet"))
    assert [(r.sensor_id, r.ts_ns, r.values) for r in rs] == [("a", T0 + 1000, {"flow": 1.0}), ("b", T0 + 2000, {})]


# ---------------------------------------------------------------- NAB, SKAB, mapped CSV


def test_nab_defaults_and_mapping(tmp_path: Path) -> None:
    p = tmp_path / "speed_7578.csv"
    p.write_text("timestamp,value\n2015-09-08 11:39:00,73\n2015-09-08 11:44:00,\n2015-09-08 11:49:00.5,62.5\n")
    assert detect_format(p) == "nab"
    rs = _readings_of(read_columns(p))
    assert [(r.lifeline, r.district, r.sensor_id, r.values) for r in rs] == [
        ("water", "nab", "speed_7578", {"flow": 73.0}), ("water", "nab", "speed_7578", {"flow": None}),
        ("water", "nab", "speed_7578", {"flow": 62.5})]
    assert [r.ts_ns for r in rs] == [1441712340 * 10**9, 1441712640 * 10**9, 1441712940 * 10**9 + 500_000_000]
    rs = _readings_of(read_columns(p, mapping={"lifeline": "power", "metric": "load", "sensor_id": "s", "timezone": "+06:00"}))
    assert (rs[0].lifeline, rs[0].sensor_id, rs[0].values, rs[0].ts_ns) == ("power", "s", {"load": 73.0}, (1441712340 - 6 * 3600) * 10**9)


def test_skab_sensors_and_anomaly_labels(tmp_path: Path) -> None:
    p = tmp_path / "1.csv"
    p.write_text("datetime;Accelerometer1RMS;Volume Flow RateRMS;anomaly;changepoint\n"
                 "2020-03-09 10:14:33;0.02;32.0;0.0;0.0\n2020-03-09 10:14:34;0.03;33.0;1.0;1.0\n"
                 "2020-03-09 10:14:35;0.02;;1.0;0.0\n2020-03-09 10:14:36;0.02;32.0;0.0;0.0\n")
    cols = read_columns(p)
    assert cols.format == "skab"
    rs = _readings_of(cols)
    assert [(r.sensor_id, r.values["flow"]) for r in rs[:4]] == [
        ("Accelerometer1RMS", 0.02), ("Volume Flow RateRMS", 32.0), ("Accelerometer1RMS", 0.03), ("Volume Flow RateRMS", 33.0)]
    assert rs[5].values == {"flow": None}
    s0 = 1583748873 * 10**9
    assert cols.labels == [{"name": "anomaly", "start_ns": s0 + 10**9, "end_ns": s0 + 2 * 10**9, "sensors": None}]


def test_mapped_csv(tmp_path: Path) -> None:
    p = tmp_path / "export.csv"
    p.write_text("when;id;q;p;p2;n;flag;anomaly\n"
                 "1767571200000.000001;w-1;1.5;0.3;0.31;4;ok;0\n"
                 "1767571260000;w-1;;0.29;;5;;1\n")
    m = tmp_path / "map.yaml"
    m.write_text("time: {column: when, format: epoch_ms}\nsensor_id: id\ndistrict: {value: d01}\nlifeline: {value: water}\n"
                 "metrics:\n  q: flow\n  p: water.pressure\n  p2: {lifeline: water, metric: pressure, sensor_id: w-2}\n"
                 "seq: n\nquality: flag\nlabels: {column: anomaly}\n")
    cols = read_columns(p, mapping=m)
    rs = _readings_of(cols)
    assert rs == [
        Reading("water", "d01", "w-1", T0 + 1, {"flow": 1.5, "pressure": 0.3}, 4, "ok"),
        Reading("water", "d01", "w-2", T0 + 1, {"pressure": 0.31}, 4, "ok"),
        Reading("water", "d01", "w-1", T0 + 60 * 10**9, {"flow": None, "pressure": 0.29}, 5, None),
        Reading("water", "d01", "w-2", T0 + 60 * 10**9, {"pressure": None}, 5, None),
    ]
    assert [(lb["start_ns"], lb["end_ns"]) for lb in cols.labels] == [(T0 + 60 * 10**9, T0 + 60 * 10**9)]


def test_iso_times_exact_in_both_paths(tmp_path: Path) -> None:
    """Uniform layouts go through the vectorised parser, mixed ones through the regex: same ns."""
    texts = ["2026-01-05T00:00:00.123456789Z", "2026-01-05T00:00:01.000000001Z", "2024-02-29T23:59:59.999999999Z"]
    want = [T0 + 123456789, T0 + 10**9 + 1, 1709251199 * 10**9 + 999999999]
    for rows in (texts, [*texts[:2], "2024-02-29T23:59:59.999999999+00:00"]):
        p = tmp_path / "t.csv"
        p.write_text("t,v\n" + "".join(f"{t},1\n" for t in rows))
        rs = _readings_of(read_columns(p, mapping={"time": "t", "sensor_id": {"value": "s"}, "metrics": {"v": "water.flow"}}))
        assert [r.ts_ns for r in rs] == want


# ---------------------------------------------------------------- line protocol


def test_lineprotocol_escapes_and_types(tmp_path: Path) -> None:
    p = tmp_path / "x.lp"
    p.write_text("# DML\n# CONTEXT-DATABASE: lifelines\n\n"
                 'water,district=d\\ 1\\,x\\=y,sensor_id=w\\\\1,extra=t flow=1,pressure=-2.5e-3,seq=7i,quality="a \\"b\\" \\\\ c" 1767571200000000001\n'
                 'power,district=d2,sensor_id=p\\ 1 load=3i,quality="multi\nline" 1767571200000000002\n'
                 'gas,district=d,sensor_id=g quality="missing" -5\n')
    rs = _readings_of(read_columns(p))
    assert rs == [
        Reading("water", "d 1,x=y", "w\\\\1", T0 + 1, {"flow": 1.0, "pressure": -2.5e-3}, 7, 'a "b" \\ c'),
        Reading("power", "d2", "p 1", T0 + 2, {"load": 3.0}, None, "multi\nline"),
        Reading("gas", "d", "g", -5, {}, None, "missing"),
    ]


identifiers = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), min_size=1, max_size=20)
# the contract's quality: a short string without control characters (lifewatch.model)
qualities = st.none() | st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)
values = st.none() | st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(district=identifiers, sensor=identifiers, flow=values, pressure=values, seq=st.none() | st.integers(0, 2**63 - 1),
       quality=qualities, ts=st.integers(-(2**62), 2**62))
def test_lineprotocol_reads_back_what_lifewatch_writes(tmp_path: Path, district, sensor, flow, pressure, seq, quality, ts) -> None:  # noqa: ANN001
    try:
        check_identifier("district", district)
        check_identifier("sensor_id", sensor)
    except ContractError:
        assume(False)
    r = Reading("water", district, sensor, ts, {"flow": flow, "pressure": pressure}, seq, quality)
    p = tmp_path / "h.lp"
    p.write_text(encode_reading(r) + "\n", encoding="utf-8")
    (back,) = _readings_of(read_columns(p))
    stored = {k: v for k, v in r.values.items() if v is not None}  # line protocol does not carry nulls
    want_quality = quality if quality is not None else (None if stored or seq is not None else "missing")
    assert (back.district, back.sensor_id, back.ts_ns, back.values, back.seq, back.quality) == (
        district, sensor, ts, stored, seq, want_quality)


# ---------------------------------------------------------------- errors name line and column

ERRORS = [
    ("nab.csv", b"timestamp,value\n2015-09-08 11:39:00,73\n2015-09-08 11:44:00,7x3\n", 3, "value", "not a number"),
    ("nab.csv", b"timestamp,value\n2015-09-08 11:39:00,73\n2015-02-30 11:44:00,1\n", 3, "timestamp", "not a real date"),
    ("nab.csv", b"timestamp,value\n2015-09-08 11:39:00,73\nyesterday,1\n", 3, "timestamp", "ISO 8601"),
    ("nab.csv", b"timestamp,value\n2015-09-08 11:39:00,73\n2015-09-08 11:40:00,inf\n", 3, "value", "finite"),
    ("nab.csv", b"timestamp,value\n2015-09-08 11:39:00,73,4\n", 2, None, "expected 2 fields"),
    ("nab.csv", b"timestamp,value\n2015-09-08 11:39:00,\xff\n", 2, 21, "UTF-8"),
    ("s.csv", b"datetime;a;anomaly\n2020-03-09 10:14:33;1;0\n2020-03-09 10:14:34;1;maybe\n", 3, "anomaly", "0/1"),
    ("x.lp", b"water,district=d,sensor_id=s flow=1 1\nwater,district=d flow=2 2\n", 2, 6, "missing tag sensor_id"),
    ("x.lp", b"water,district=d,sensor_id=s flow=1 1\nwater,district=d,sensor_id=s flow=abc 2\n", 2, 35, "invalid field value"),
    ("x.lp", b"water,district=d,sensor_id=s flow=1\n", 1, 36, "missing timestamp"),
    ("x.lp", b"water,district=d,sensor_id=s flow=1,note=\"open 1\n", 1, 49, "unterminated"),
    ("x.lp", b"water,district=d,sensor_id=s flow=1 12x\n", 1, 37, "invalid timestamp"),
    ("x.lp", b"water,district=d,sensor_id=s flow=1 1\n\nwater,district,sensor_id=s flow=1 1\n", 3, 7, "no '='"),
    ("x.lp", b"water,district=d,sensor_id=s on=true 1\n", 1, 30, "bool"),
    ("x.lp", b"water,district=d,sensor_id=s flow=1,,x=1 1\n", 1, 37, "missing field key"),
    ("x.lp", b"water,district=d,sensor_id=s flow=1 1 2\n", 1, 39, "unexpected text"),
    ("x.lp", b'water,district=d,sensor_id=s q="x\n"y 1\n', 2, 2, "expected ','"),
]


@pytest.mark.parametrize(("name", "data", "line", "column", "message"), ERRORS)
def test_errors_name_the_line_and_column(tmp_path: Path, name: str, data: bytes, line: int, column, message: str) -> None:  # noqa: ANN001
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(RecordingError) as exc:
        read_columns(p)
    assert (exc.value.line, exc.value.column) == (line, column), str(exc.value)
    assert message in exc.value.message
    assert f"line {line}" in str(exc.value)


def test_mapped_and_parquet_errors(tmp_path: Path) -> None:
    p = tmp_path / "m.csv"
    p.write_text("t,v\n2026-01-05T00:00:00Z,1\n")
    with pytest.raises(RecordingError) as exc:
        read_columns(p, mapping={"time": "t", "sensor_id": {"value": "s"}, "metrics": {"w": "water.flow"}})
    assert (exc.value.line, exc.value.column) == (1, "w")
    with pytest.raises(RecordingError, match="unknown CSV layout"):
        read_columns(p)
    table = pa.table({"ts": pa.array([1, None], type=pa.int64()), "lifeline": ["w", "w"], "district": ["d", "d"],
                      "sensor_id": ["s", "s"], "metric": ["flow", "flow"], "value": [1.0, 2.0]})
    pq.write_table(table, tmp_path / "n.parquet")
    with pytest.raises(RecordingError) as exc:
        read_parquet(tmp_path / "n.parquet")
    assert (exc.value.line, exc.value.column) == (2, "ts")
    pq.write_table(table.drop_columns(["metric"]), tmp_path / "m.parquet")
    with pytest.raises(RecordingError) as exc:
        read_columns(tmp_path / "m.parquet")
    assert exc.value.column == "metric"


# ---------------------------------------------------------------- fuzz: nothing but RecordingError escapes

VALID = {
    "f.csv": b"timestamp,value\n2015-09-08 11:39:00,73\n2015-09-08 11:44:00,1.5\n",
    "s.csv": b"datetime;a;b;anomaly\n2020-03-09 10:14:33;1;2;0\n2020-03-09 10:14:34;1;2;1\n",
    "x.lp": b'water,district=d\\ 1,sensor_id=s flow=1,seq=2i,quality="a\\"b" 1767571200000000001\n',
    "y": b"power,district=d,sensor_id=p load=3 4\n",
}


def _read_any(path: Path) -> None:
    try:
        read_columns(path)
    except RecordingError:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".lp", ".parquet", "", ".txt"]))
def test_fuzz_arbitrary_bytes(tmp_path: Path, data: bytes, suffix: str) -> None:
    p = tmp_path / f"fuzz{suffix}"
    p.write_bytes(data)
    _read_any(p)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(VALID)), pos=st.integers(0, 200), junk=st.binary(min_size=1, max_size=6),
       cut=st.booleans())
def test_fuzz_mutated_valid_files(tmp_path: Path, name: str, pos: int, junk: bytes, cut: bool) -> None:
    base = VALID[name]
    pos = min(pos, len(base))
    data = base[:pos] + (b"" if cut else junk) + base[pos + (len(junk) if cut else 0):]
    p = tmp_path / name
    p.write_bytes(data)
    _read_any(p)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pos=st.integers(0, 2000), junk=st.binary(min_size=1, max_size=8))
def test_fuzz_damaged_parquet(tmp_path: Path, pos: int, junk: bytes) -> None:
    good = tmp_path / "g.parquet"
    if not good.exists():
        write_recording(good, Columns.from_readings(awkward_readings()))
    data = good.read_bytes()
    pos = min(pos, len(data) - 1)
    p = tmp_path / "d.parquet"
    p.write_bytes(data[:pos] + junk + data[pos + len(junk):])
    _read_any(p)


def test_columns_unpack_and_order() -> None:
    cols = Columns.from_readings([Reading("water", "d", "b", 20, {"flow": 1.0}), Reading("water", "d", "a", 10, {"flow": 2.0})])
    ts, sensor, lifeline, district, metric, value = cols
    assert ts.dtype == np.int64 and value.dtype == np.float64
    assert list(sensor.values()) == ["b", "a"] and list(metric.values()) == ["flow", "flow"]
    o = cols.ordered()
    assert o.ts_ns.tolist() == [10, 20] and list(o.sensor_id.values()) == ["a", "b"]
    assert json.dumps(lifeline.categories) == '["water"]' and district.categories == ["d"]
