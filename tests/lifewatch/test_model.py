"""The reading contract: topics, payload validation, timestamps and sentinels."""

from __future__ import annotations

import time

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifewatch.lifelines import LIFELINE_IDS, load_lifelines
from lifewatch.model import (
    NS,
    ContractError,
    Limits,
    Reading,
    format_ts,
    parse_message,
    parse_topic,
    parse_ts,
    reading_to_json,
)

LL = load_lifelines()
NOW = 1_767_225_600 * NS  # 2026-01-01T00:00:00Z, a fixed "arrival" time
LIMITS = Limits(max_payload_bytes=4096, max_batch_readings=10, future_margin_ns=86_400 * NS)


def parse(topic: str, payload: object, **kw):
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return parse_message(topic, raw, LL, kw.get("arrival", NOW), kw.get("limits", LIMITS))


def one_reject(topic: str, payload: object, **kw) -> str:
    good, bad = parse(topic, payload, **kw)
    assert good == [] and len(bad) == 1, (good, bad)
    return bad[0].reason


W = "lifelines/water/d01/w-1/reading"


def test_lifeline_ids_are_exactly_the_five():
    assert set(LL) == {"water", "power", "gas", "bridge", "air"} == set(LIFELINE_IDS)


def test_every_threshold_has_a_source_and_known_metric():
    for ll in LL.values():
        for t in ll.thresholds:
            assert t.source.strip()
            assert t.metric in ll.metrics or t.op == "aqi"


def test_good_single_reading():
    good, bad = parse(W, {"sensor_id": "w-1", "ts": "2026-01-01T00:00:00.5Z", "values": {"pressure": 0.31, "flow": None}, "seq": 7})
    assert bad == []
    assert good == [Reading("water", "d01", "w-1", NOW + NS // 2, {"pressure": 0.31, "flow": None}, 7, None)]


def test_epoch_ms_and_offsets():
    assert parse_ts(1_767_225_600_123) == NOW + 123_000_000
    assert parse_ts("2026-01-01T06:00:00+06:00") == NOW
    assert parse_ts("2026-01-01T00:00:00.123456789Z") == NOW + 123_456_789
    assert parse_ts(1_767_225_600_000.5) == NOW + 500_000


@pytest.mark.parametrize(
    "ts",
    ["2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "yesterday", "2026-01-01 00:00:00", True, None, [1]],
)
def test_bad_timestamps(ts):
    assert one_reject(W, {"sensor_id": "w-1", "ts": ts, "values": {"pressure": 1}}) == "bad_timestamp"


def test_timestamp_sanity_window():
    assert one_reject(W, {"sensor_id": "w-1", "ts": "1999-12-31T23:59:59Z", "values": {"pressure": 1}}) == "ts_too_old"
    assert one_reject(W, {"sensor_id": "w-1", "ts": "2026-01-02T00:00:01Z", "values": {"pressure": 1}}) == "ts_in_future"
    # a clock skew of +2 h passes, so that the detectors can flag it
    good, bad = parse(W, {"sensor_id": "w-1", "ts": "2026-01-01T02:00:00Z", "values": {"pressure": 1}})
    assert bad == [] and good[0].ts_ns == NOW + 2 * 3600 * NS


@pytest.mark.parametrize(
    "payload,reason",
    [
        ({"ts": 1_767_225_600_000, "values": {"pressure": 1}}, "missing_field"),
        ({"sensor_id": "w-1", "values": {"pressure": 1}}, "missing_field"),
        ({"sensor_id": "w-1", "ts": 1_767_225_600_000}, "missing_field"),
        ({"sensor_id": "w-2", "ts": 1_767_225_600_000, "values": {"pressure": 1}}, "sensor_mismatch"),
        ({"sensor_id": 5, "ts": 1_767_225_600_000, "values": {"pressure": 1}}, "bad_type"),
        ({"sensor_id": "w-1", "ts": 1_767_225_600_000, "values": {"pressure": "high"}}, "bad_type"),
        ({"sensor_id": "w-1", "ts": 1_767_225_600_000, "values": {"pressure": True}}, "bad_type"),
        ({"sensor_id": "w-1", "ts": 1_767_225_600_000, "values": [1, 2]}, "bad_type"),
        ({"sensor_id": "w-1", "ts": 1_767_225_600_000, "values": {}}, "empty_values"),
        ({"sensor_id": "w-1", "ts": 1_767_225_600_000, "values": {"voltage": 220}}, "unknown_metric"),
        ({"sensor_id": "w-1", "ts": 1_767_225_600_000, "values": {"pressure": 1}, "seq": -1}, "bad_type"),
        ({"sensor_id": "w-1", "ts": 1_767_225_600_000, "values": {"pressure": 1}, "quality": 3}, "bad_type"),
        ("just a string", "not_object"),
        (42, "not_object"),
        ([], "empty_batch"),
    ],
)
def test_rejects_name_their_reason(payload, reason):
    assert one_reject(W, payload) == reason


def test_not_json_and_non_finite():
    assert one_reject(W, b"{not json") == "not_json"
    assert one_reject(W, b'{"sensor_id":"w-1","ts":1767225600000,"values":{"pressure":NaN}}') == "not_json"
    assert one_reject(W, b'{"sensor_id":"w-1","ts":1767225600000,"values":{"pressure":1e999}}') in {"not_finite", "not_json"}
    assert one_reject(W, b"\xff\xfe") == "not_json"


def test_size_limits():
    big = {"sensor_id": "w-1", "ts": 1_767_225_600_000, "values": {"pressure": 1}, "quality": "x" * 5000}
    assert one_reject(W, big) == "payload_too_large"
    batch = [{"sensor_id": "w-1", "ts": 1_767_225_600_000 + i, "values": {"pressure": 1}} for i in range(11)]
    assert one_reject(W, batch) == "batch_too_large"


@pytest.mark.parametrize(
    "topic,reason",
    [
        ("lifelines/sewer/d01/x/reading", "unknown_lifeline"),
        ("lifelines/water/d01/reading", "bad_topic"),
        ("other/water/d01/w-1/reading", "bad_topic"),
        ("lifelines/water/d01/w-1/telemetry", "bad_topic"),
        ("lifelines/water/d01/w-1/status", "bad_topic"),
        ("lifelines/water/d01/w\\/reading", "bad_identifier"),
    ],
)
def test_bad_topics(topic, reason):
    assert one_reject(topic, {"sensor_id": "w-1", "ts": 1_767_225_600_000, "values": {"pressure": 1}}) == reason


def test_batch_keeps_good_elements_and_rejects_bad_ones_by_index():
    batch = [
        {"sensor_id": "w-1", "ts": 1_767_225_600_000, "values": {"pressure": 0.3}},
        {"sensor_id": "w-9", "ts": 1_767_225_600_000, "values": {"pressure": 0.3}},  # gateway: other sensors allowed
        {"sensor_id": "w-1", "ts": "bad", "values": {"pressure": 0.3}},
        "nope",
    ]
    good, bad = parse("lifelines/water/d01/gw-d01/reading", batch)
    assert [r.sensor_id for r in good] == ["w-1", "w-9"]
    assert [(b.index, b.reason) for b in bad] == [(2, "bad_timestamp"), (3, "not_object")]


def test_sentinels_become_null_with_a_quality_flag_only_where_declared():
    good, _ = parse(
        "lifelines/air/d01/a-1/reading",
        {"sensor_id": "a-1", "ts": 1_767_225_600_000, "values": {"pm25": -200, "pm10": "NaN", "co": -9999, "no2": 20}},
    )
    r = good[0]
    assert r.values == {"pm25": None, "pm10": None, "co": None, "no2": 20.0}
    assert r.quality == "missing:pm25,pm10,co"
    # -200 microstrain is a real compression reading: the bridge description declares no sentinel
    good, bad = parse("lifelines/bridge/d01/b-1/reading", {"sensor_id": "b-1", "ts": 1_767_225_600_000, "values": {"strain": -200}})
    assert bad == [] and good[0].values == {"strain": -200.0} and good[0].quality is None
    # "NaN" text is not a number where no sentinel is declared
    assert one_reject("lifelines/bridge/d01/b-1/reading", {"sensor_id": "b-1", "ts": 1_767_225_600_000, "values": {"strain": "NaN"}}) == "bad_type"


def test_parse_topic_fields():
    t = parse_topic("lifelines/gas/d03/g 7/reading", "lifelines")
    assert (t.lifeline, t.district, t.sensor_id, t.kind) == ("gas", "d03", "g 7", "reading")
    with pytest.raises(ContractError):
        parse_topic("lifelines/gas/d03/g\\ 7/reading", "lifelines")


@given(st.integers(min_value=946_684_800 * NS, max_value=4_102_444_800 * NS))
def test_format_parse_ts_roundtrip(ts):
    assert parse_ts(format_ts(ts)) == ts


@given(
    st.dictionaries(st.sampled_from(["pressure", "flow"]), st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)), min_size=1),
    st.integers(min_value=946_684_800_000, max_value=1_767_225_600_000),
)
def test_payload_roundtrip(values, ts_ms):
    r = Reading("water", "d01", "w-1", ts_ms * 1_000_000, {k: (None if v is None else float(v)) for k, v in values.items()})
    good, bad = parse(W, reading_to_json(r))
    assert bad == [] and good == [r]


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(raw):
    good, bad = parse_message(W, raw, LL, time.time_ns(), LIMITS)
    assert len(good) + len(bad) >= 1
