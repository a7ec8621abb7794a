"""Line-protocol and InfluxQL escaping, checked against a parser that follows InfluxDB 1.x rules.

The round trip through a real InfluxDB is in test_influx_roundtrip.py.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from lifewatch.lineprotocol import (
    encode_point,
    encode_reading,
    escape_string_field,
    escape_tag,
    quote_ident,
    quote_literal,
)
from lifewatch.model import ContractError, Reading, check_identifier


def _split_unescaped(text: str, sep: str) -> list[str]:
    """Split on ``sep`` not preceded by a backslash escape (InfluxDB's scanner: a backslash skips the next byte)."""
    out, cur, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur.append(text[i : i + 2])
            i += 2
            continue
        if ch == sep:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    out.append("".join(cur))
    return out


def _unescape_tag(text: str) -> str:
    # models/points.go unescapeTag: only \, \space and \= are escapes in tags
    return text.replace("\\,", ",").replace("\\ ", " ").replace("\\=", "=")


def parse_line(line: str) -> tuple[str, dict[str, str], str, int]:
    """Measurement, tags, raw field section and timestamp of one line (no string fields with spaces)."""
    head_fields, ts = line.rsplit(" ", 1)
    parts = _split_unescaped(head_fields, " ")
    head, fields = parts[0], " ".join(parts[1:])
    key_parts = _split_unescaped(head, ",")
    tags = {}
    for kv in key_parts[1:]:
        k, v = _split_unescaped(kv, "=")
        tags[_unescape_tag(k)] = _unescape_tag(v)
    return _unescape_tag(key_parts[0]), tags, fields, int(ts)


names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), min_size=1, max_size=30)


@given(names, names)
def test_tag_values_roundtrip(district, sensor):
    try:
        check_identifier("district", district)
        check_identifier("sensor_id", sensor)
    except ContractError:
        assume(False)
    line = encode_reading(Reading("water", district, sensor, 1_700_000_000_000_000_000, {"pressure": 0.25}))
    meas, tags, fields, ts = parse_line(line)
    assert meas == "water"
    assert tags == {"district": district, "sensor_id": sensor}
    assert fields == "pressure=0.25"
    assert ts == 1_700_000_000_000_000_000


@pytest.mark.parametrize("bad", ["a\\", "a\\ b", "a\\,b", "a\\=b", "x/y", "a+b", "#", "", "a\nb", "x" * 129])
def test_unrepresentable_identifiers_are_refused(bad):
    with pytest.raises(ContractError):
        check_identifier("sensor_id", bad)


def test_escaping_examples():
    assert escape_tag("a b,c=d") == r"a\ b\,c\=d"
    assert escape_string_field('say "hi" \\o/') == r'"say \"hi\" \\o/"'
    assert quote_ident('we"ird\\') == r'"we\"ird\\"'
    assert quote_literal("it's \\") == r"'it\'s \\'"
    line = encode_point("alerts", {"unit": "water co", "level": "red"}, {"n": 3, "x": 1.5, "ok": True, "note": 'a "b"'}, 5)
    assert line == r'alerts,level=red,unit=water\ co n=3i,x=1.5,ok=true,note="a \"b\"" 5'


def test_reading_fields_types_and_heartbeat():
    r = Reading("power", "d1", "p-1", 10, {"voltage": 220, "load": None}, seq=4, quality="good")
    assert encode_reading(r) == 'power,district=d1,sensor_id=p-1 voltage=220.0,seq=4i,quality="good" 10'
    # all values missing: the reading still lands, as a heartbeat
    r = Reading("power", "d1", "p-1", 10, {"voltage": None})
    assert encode_reading(r) == 'power,district=d1,sensor_id=p-1 quality="missing" 10'


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_keep_every_bit(v):
    line = encode_reading(Reading("gas", "d", "s", 1, {"pressure": v}))
    assert float(line.split("pressure=")[1].split(" ")[0]) == v


def test_non_finite_refused():
    with pytest.raises(ValueError):
        encode_reading(Reading("gas", "d", "s", 1, {"pressure": float("nan")}))
