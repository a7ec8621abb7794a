"""1,000 malformed payloads of 15 kinds, interleaved with good readings, through real Mosquitto and InfluxDB."""

from __future__ import annotations

import itertools

import orjson

from ingest.deadletter import DeadLetterStore
from tests.mqtt_support import all_points, publish_raw, total_points, wait_for

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
GOOD_TOPIC = "lifelines/gas/d02/g-{i}/reading"


def good(i: int) -> tuple[str, bytes, tuple]:
    sid = f"g-{i % 40}"
    ts = T0_MS + i
    payload = {"sensor_id": sid, "ts": ts, "values": {"pressure": 150.0 + i / 1000, "ch4_lel": (i % 7) / 10}}
    key = ("gas", "d02", sid, ts * 1_000_000, tuple(sorted({"pressure": 150.0 + i / 1000, "ch4_lel": (i % 7) / 10}.items())))
    return f"lifelines/gas/d02/{sid}/reading", orjson.dumps(payload), key


def base(i: int) -> dict:
    return {"sensor_id": "g-1", "ts": T0_MS + i, "values": {"pressure": 150.0}}


T = "lifelines/gas/d02/g-1/reading"

# (reason, factory(i) -> (topic, payload bytes))
KINDS = [
    ("not_json", lambda i: (T, b'{"sensor_id": "g-1", "ts": ' + str(i).encode())),
    ("not_object", lambda i: (T, orjson.dumps(f"reading {i}"))),
    ("empty_batch", lambda i: (T, b"[]")),
    ("missing_field", lambda i: (T, orjson.dumps({"sensor_id": "g-1", "values": {"pressure": 1.0}}))),
    ("bad_type", lambda i: (T, orjson.dumps({**base(i), "values": {"pressure": "high"}}))),
    ("sensor_mismatch", lambda i: (T, orjson.dumps({**base(i), "sensor_id": "g-2"}))),
    ("bad_timestamp", lambda i: (T, orjson.dumps({**base(i), "ts": "2026-02-30T00:00:00Z"}))),
    ("ts_too_old", lambda i: (T, orjson.dumps({**base(i), "ts": "1999-01-01T00:00:00Z"}))),
    ("ts_in_future", lambda i: (T, orjson.dumps({**base(i), "ts": "2999-01-01T00:00:00Z"}))),
    ("empty_values", lambda i: (T, orjson.dumps({**base(i), "values": {}}))),
    ("unknown_metric", lambda i: (T, orjson.dumps({**base(i), "values": {"voltage": 220.0}}))),
    ("unknown_lifeline", lambda i: ("lifelines/sewer/d02/g-1/reading", orjson.dumps(base(i)))),
    ("bad_identifier", lambda i: ("lifelines/gas/d02/g-1\\/reading", orjson.dumps({**base(i), "sensor_id": "g-1\\"}))),
    ("payload_too_large", lambda i: (T, orjson.dumps({**base(i), "quality": "x" * 300_000}))),
    ("batch_too_large", lambda i: (T, orjson.dumps([base(i * 2000 + k) for k in range(1001)]))),
]


def test_malformed_payloads_are_dead_lettered_exactly_and_good_ones_land(settings, influx, ingest_running):
    assert len(KINDS) >= 10
    messages, expected_keys = [], set()
    expected_reasons: dict[str, int] = {}
    kinds = itertools.cycle(KINDS)
    n_bad = 1000
    for i in range(n_bad):
        topic, payload, key = good(i * 3)
        messages.append((topic, payload))
        expected_keys.add(key)
        reason, make = next(kinds)
        messages.append(make(i))
        expected_reasons[reason] = expected_reasons.get(reason, 0) + 1
        topic, payload, key = good(i * 3 + 1)
        messages.append((topic, payload))
        expected_keys.add(key)
    publish_raw(settings.mqtt_host, settings.mqtt_port, messages)

    assert wait_for(lambda: total_points(influx) >= len(expected_keys), timeout=60)
    store = DeadLetterStore.from_settings(settings)
    try:
        assert wait_for(lambda: store.pending >= n_bad, timeout=30)
        assert store.counts_by_reason() == expected_reasons
        assert store.pending == n_bad
        # each letter keeps topic, reason and (capped) payload; truncation is recorded
        big = store.list(reason="payload_too_large", limit=1)[0]
        assert big.truncated and big.payload_size > settings.deadletter_max_payload
        assert len(big.payload) == settings.deadletter_max_payload
        nj = store.list(reason="not_json", limit=1)[0]
        assert nj.topic == T and nj.payload.startswith(b'{"sensor_id": "g-1"') and not nj.truncated
    finally:
        store.close()
    assert all_points(influx) == expected_keys


def test_bad_elements_of_a_gateway_batch_are_dead_lettered_alone(settings, influx, ingest_running):
    batch = [
        {"sensor_id": "a-1", "ts": T0_MS, "values": {"pm25": 35.0, "co": 0.8}},
        {"sensor_id": "a-2", "ts": "nope", "values": {"pm25": 35.0}},
        {"sensor_id": "a-3", "ts": T0_MS, "values": {"pm25": -200, "pm10": 80.0}},
    ]
    publish_raw(settings.mqtt_host, settings.mqtt_port, [("lifelines/air/d05/gw-d05/reading", orjson.dumps(batch))])
    assert wait_for(lambda: total_points(influx) == 2, timeout=30)
    store = DeadLetterStore.from_settings(settings)
    try:
        assert wait_for(lambda: store.pending == 1, timeout=10)
        (letter,) = store.list()
        assert (letter.reason, letter.batch_index) == ("bad_timestamp", 1)
        assert orjson.loads(letter.payload) == [batch[1]]  # re-drivable as a one-element batch
    finally:
        store.close()
    rows = influx.query('SELECT pm25, pm10, quality FROM air WHERE sensor_id = \'a-3\'')[0].rows()
    assert rows == [{"time": T0_MS * 1_000_000, "pm25": None, "pm10": 80.0, "quality": "missing:pm25"}]
