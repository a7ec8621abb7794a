"""InfluxDB line protocol and InfluxQL quoting: the only places text reaches the database.

Escaping follows InfluxDB 1.x ``models/points.go``: measurements escape
comma and space; tag keys, tag values and field keys escape comma, equals
sign and space; string field values escape backslash and double quote.
Identifiers that cannot round-trip are refused earlier, by
:func:`lifewatch.model.check_identifier`.
"""

from __future__ import annotations

import math

from lifewatch.model import Reading

_MEAS = str.maketrans({",": r"\,", " ": r"\ "})
_TAG = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STR = str.maketrans({"\\": "\\\\", '"': '\\"'})


def escape_measurement(name: str) -> str:
    return name.translate(_MEAS)


def escape_tag(text: str) -> str:
    """Tag keys, tag values and field keys."""
    return text.translate(_TAG)


def escape_string_field(text: str) -> str:
    return '"' + text.translate(_STR) + '"'


def format_float(v: float) -> str:
    if not math.isfinite(v):
        raise ValueError("line protocol cannot carry NaN or infinity")
    return repr(float(v))


def encode_reading(r: Reading) -> str:
    """One reading -> one line: measurement = lifeline, tags district and sensor_id."""
    fields = [f"{escape_tag(k)}={format_float(v)}" for k, v in r.values.items() if v is not None]
    if r.seq is not None:
        fields.append(f"seq={r.seq}i")
    if r.quality is not None:
        fields.append(f"quality={escape_string_field(r.quality)}")
    elif not fields:
        # every value was null: keep the reading as a heartbeat
        fields.append('quality="missing"')
    return (
        f"{escape_measurement(r.lifeline)},district={escape_tag(r.district)},"
        f"sensor_id={escape_tag(r.sensor_id)} {','.join(fields)} {r.ts_ns}"
    )


def encode_point(measurement: str, tags: dict[str, str], fields: dict[str, object], ts_ns: int | None) -> str:
    """A generic point (platform metrics, alert states).  Tags are sorted as InfluxDB prefers."""
    parts = [escape_measurement(measurement)]
    for k in sorted(tags):
        if tags[k] != "":
            parts.append(f"{escape_tag(k)}={escape_tag(str(tags[k]))}")
    fs = []
    for k, v in fields.items():
        if v is None:
            continue
        if isinstance(v, bool):
            fs.append(f"{escape_tag(k)}={'true' if v else 'false'}")
        elif isinstance(v, int):
            fs.append(f"{escape_tag(k)}={v}i")
        elif isinstance(v, float):
            fs.append(f"{escape_tag(k)}={format_float(v)}")
        else:
            fs.append(f"{escape_tag(k)}={escape_string_field(str(v))}")
    if not fs:
        raise ValueError("a point needs at least one field")
    line = ",".join(parts) + " " + ",".join(fs)
    return f"{line} {ts_ns}" if ts_ns is not None else line


# ---------------------------------------------------------------- InfluxQL


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_literal(text: str) -> str:
    """An InfluxQL string literal in single quotes."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
