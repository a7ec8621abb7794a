"""The reading contract: topics, the JSON payload and the typed :class:`Reading`.

See ``docs/contract.md``.  One message on
``<prefix>/<lifeline>/<district>/<sensor_id>/reading`` carries either one
reading object or (batch form, from a gateway) a JSON array of them::

    {"sensor_id": "w-d01-001", "ts": "2026-01-01T00:00:00Z" | 1767225600000,
     "values": {"pressure": 0.31, "flow": null}, "seq": 12, "quality": "good"}

:func:`parse_message` turns the raw bytes into readings and rejects; it never
raises on bad input.  Each reject carries a machine-readable ``reason`` that
the dead-letter store and the ``rejected_total{reason=...}`` metric use.
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from lifewatch.lifelines import LIFELINE_IDS, Lifeline

NS = 1_000_000_000
MIN_TS_NS = 946_684_800 * NS  # 2000-01-01T00:00:00Z: nothing older is a plausible event time
MAX_ID_LEN = 128
MAX_QUALITY_LEN = 64


@dataclass(slots=True)
class Reading:
    """One sensor's values at one event time (UTC, ns since the epoch)."""

    lifeline: str
    district: str
    sensor_id: str
    ts_ns: int
    values: dict[str, float | None]
    seq: int | None = None
    quality: str | None = None


@dataclass(slots=True)
class Reject:
    """Why (part of) a message could not become a reading."""

    reason: str
    detail: str
    index: int | None = None  # position in a batch payload, None for the whole message


@dataclass(slots=True)
class Limits:
    max_payload_bytes: int = 256 * 1024
    max_batch_readings: int = 1000
    future_margin_ns: int = 86_400 * NS

    @classmethod
    def from_settings(cls, s) -> Limits:  # noqa: ANN001 - Settings, kept loose to avoid a cycle
        return cls(s.max_payload_bytes, s.max_batch_readings, int(s.future_margin * NS))


class ContractError(ValueError):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# ---------------------------------------------------------------- topics


@dataclass(frozen=True, slots=True)
class Topic:
    lifeline: str
    district: str
    sensor_id: str
    kind: str  # "reading" or "status"


def reading_topic(prefix: str, lifeline: str, district: str, sensor_id: str) -> str:
    return f"{prefix}/{lifeline}/{district}/{sensor_id}/reading"


def status_topic(prefix: str, lifeline: str, district: str, sensor_id: str) -> str:
    return f"{prefix}/{lifeline}/{district}/{sensor_id}/status"


def parse_topic(topic: str, prefix: str) -> Topic:
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != prefix or parts[4] not in ("reading", "status"):
        raise ContractError("bad_topic", f"expected {prefix}/<lifeline>/<district>/<sensor_id>/reading, got {topic!r}")
    _, lifeline, district, sensor_id, kind = parts
    if lifeline not in LIFELINE_IDS:
        raise ContractError("unknown_lifeline", f"{lifeline!r} is not one of {', '.join(LIFELINE_IDS)}")
    check_identifier("district", district)
    check_identifier("sensor_id", sensor_id)
    return Topic(lifeline, district, sensor_id, kind)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_identifier(what: str, value: str) -> None:
    """A tag value must survive line protocol exactly and be a single MQTT topic level.

    InfluxDB 1.x unescapes only ``\\,``, ``\\ `` and ``\\=`` in tags, so a
    backslash before one of those characters or at the very end cannot be
    written back unchanged: such names are refused with a clear reason.
    """
    if not value:
        raise ContractError("bad_identifier", f"{what} is empty")
    if len(value) > MAX_ID_LEN:
        raise ContractError("bad_identifier", f"{what} longer than {MAX_ID_LEN} characters")
    if _CONTROL.search(value):
        raise ContractError("bad_identifier", f"{what} contains a control character")
    if "/" in value or "+" in value or "#" in value:
        raise ContractError("bad_identifier", f"{what} contains an MQTT topic character (/ + #)")
    if value.endswith("\\") or re.search(r"\\[ ,=]", value):
        raise ContractError("bad_identifier", f"{what} has a backslash that line protocol cannot carry")


# ---------------------------------------------------------------- timestamps

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})\Z"
)


def parse_ts(raw: object) -> int:
    """RFC 3339 text or epoch milliseconds (number) -> ns since the epoch."""
    if isinstance(raw, bool):
        raise ContractError("bad_timestamp", "ts is a boolean")
    if isinstance(raw, int):
        return raw * 1_000_000
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise ContractError("bad_timestamp", "ts is not finite")
        whole = int(raw)  # split first: raw * 1e6 would lose the sub-ms digits of a 13-digit number
        return whole * 1_000_000 + round((raw - whole) * 1_000_000)
    if isinstance(raw, str):
        m = _RFC3339.match(raw)
        if not m:
            raise ContractError("bad_timestamp", f"ts {raw[:40]!r} is not RFC 3339 (e.g. 2026-01-01T00:00:00Z)")
        y, mo, d, h, mi, s, frac, tz = m.groups()
        if not (1 <= int(mo) <= 12 and 1 <= int(d) <= calendar.monthrange(int(y), int(mo))[1]):
            raise ContractError("bad_timestamp", f"ts {raw!r} is not a real date")
        try:
            secs = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(s), 0, 0, 0))
        except (ValueError, OverflowError):
            raise ContractError("bad_timestamp", f"ts {raw!r} is not a real date") from None
        if not (int(h) < 24 and int(mi) < 60 and int(s) < 61):
            raise ContractError("bad_timestamp", f"ts {raw!r} is not a real date")
        if tz not in ("Z", "z"):
            sign = 1 if tz[0] == "+" else -1
            secs -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
        ns = int(frac.ljust(9, "0")) if frac else 0
        return secs * NS + ns
    raise ContractError("bad_timestamp", f"ts must be RFC 3339 text or epoch ms, got {type(raw).__name__}")


def format_ts(ts_ns: int) -> str:
    """ns since the epoch -> RFC 3339 UTC with nanoseconds trimmed to what is set."""
    secs, ns = divmod(ts_ns, NS)
    base = _time_str(secs)
    if ns == 0:
        return base + "Z"
    frac = f"{ns:09d}".rstrip("0")
    return f"{base}.{frac}Z"


def _time_str(secs: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))


# ---------------------------------------------------------------- payloads


def parse_message(
    topic: str,
    payload: bytes,
    lifelines: Mapping[str, Lifeline],
    arrival_ns: int,
    limits: Limits,
    prefix: str = "lifelines",
) -> tuple[list[Reading], list[Reject]]:
    """Validate one MQTT message.  Never raises on bad input.

    Returns the good readings and the rejects.  A reject with ``index=None``
    concerns the whole message; in a batch, each bad element is rejected on
    its own and the good ones still land.
    """
    try:
        t = parse_topic(topic, prefix)
        if t.kind != "reading":
            raise ContractError("bad_topic", "status messages are not readings")
        if len(payload) > limits.max_payload_bytes:
            raise ContractError("payload_too_large", f"{len(payload)} bytes > {limits.max_payload_bytes}")
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise ContractError("not_json", str(exc)[:200]) from None
    except ContractError as exc:
        return [], [Reject(exc.reason, exc.detail)]

    lifeline = lifelines[t.lifeline]
    if isinstance(doc, dict):
        try:
            r = _reading(doc, t, lifeline, arrival_ns, limits, batch=False)
        except ContractError as exc:
            return [], [Reject(exc.reason, exc.detail)]
        return [r], []
    if isinstance(doc, list):
        if not doc:
            return [], [Reject("empty_batch", "the batch array is empty")]
        if len(doc) > limits.max_batch_readings:
            return [], [Reject("batch_too_large", f"{len(doc)} readings > {limits.max_batch_readings}")]
        good: list[Reading] = []
        bad: list[Reject] = []
        for i, item in enumerate(doc):
            try:
                if not isinstance(item, dict):
                    raise ContractError("not_object", f"batch element is {type(item).__name__}, not an object")
                good.append(_reading(item, t, lifeline, arrival_ns, limits, batch=True))
            except ContractError as exc:
                bad.append(Reject(exc.reason, exc.detail, index=i))
        return good, bad
    return [], [Reject("not_object", f"payload is a JSON {type(doc).__name__}, not an object or array")]


def _reading(doc: dict, t: Topic, lifeline: Lifeline, arrival_ns: int, limits: Limits, batch: bool) -> Reading:
    sensor_id = doc.get("sensor_id")
    if sensor_id is None:
        raise ContractError("missing_field", "sensor_id is missing")
    if not isinstance(sensor_id, str):
        raise ContractError("bad_type", "sensor_id must be a string")
    if batch:
        check_identifier("sensor_id", sensor_id)
    elif sensor_id != t.sensor_id:
        raise ContractError("sensor_mismatch", f"payload sensor_id {sensor_id[:64]!r} != topic {t.sensor_id!r}")
    if "ts" not in doc:
        raise ContractError("missing_field", "ts is missing")
    ts_ns = parse_ts(doc["ts"])
    if ts_ns < MIN_TS_NS:
        raise ContractError("ts_too_old", f"event time {format_ts(ts_ns)} is before 2000-01-01")
    if ts_ns > arrival_ns + limits.future_margin_ns:
        raise ContractError(
            "ts_in_future",
            f"event time {format_ts(ts_ns)} is more than {limits.future_margin_ns / NS:g} s ahead of arrival",
        )
    raw_values = doc.get("values")
    if raw_values is None:
        raise ContractError("missing_field", "values is missing")
    if not isinstance(raw_values, dict):
        raise ContractError("bad_type", "values must be an object of metric -> number|null")
    if not raw_values:
        raise ContractError("empty_values", "values is empty")
    values: dict[str, float | None] = {}
    missing: list[str] = []
    metrics = lifeline.metrics
    for name, v in raw_values.items():
        m = metrics.get(name)
        if m is None:
            raise ContractError("unknown_metric", f"{name[:64]!r} is not a {lifeline.id} metric ({', '.join(metrics)})")
        if v is None:
            values[name] = None
        elif isinstance(v, bool):
            raise ContractError("bad_type", f"{name} is a boolean, not a number")
        elif isinstance(v, (int, float)):
            fv = float(v)
            if not math.isfinite(fv):
                raise ContractError("not_finite", f"{name} is not a finite number")
            if fv in m.sentinel_numbers:
                values[name] = None
                missing.append(name)
            else:
                values[name] = fv
        elif isinstance(v, str) and v in m.sentinel_strings:
            values[name] = None
            missing.append(name)
        else:
            raise ContractError("bad_type", f"{name} must be a number or null, got {type(v).__name__}")
    seq = doc.get("seq")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or seq < 0 or seq >= 2**63):
        raise ContractError("bad_type", "seq must be a non-negative integer")
    quality = doc.get("quality")
    if quality is not None:
        if not isinstance(quality, str) or len(quality) > MAX_QUALITY_LEN or _CONTROL.search(quality):
            raise ContractError("bad_type", f"quality must be a short string (<= {MAX_QUALITY_LEN} chars)")
    if missing:
        flag = "missing:" + ",".join(missing)
        quality = f"{quality};{flag}" if quality else flag
    return Reading(t.lifeline, t.district, sensor_id, ts_ns, values, seq, quality)


def reading_to_json(r: Reading) -> dict:
    """The payload form of a reading (what a device would publish)."""
    doc: dict = {"sensor_id": r.sensor_id, "ts": format_ts(r.ts_ns), "values": r.values}
    if r.seq is not None:
        doc["seq"] = r.seq
    if r.quality is not None:
        doc["quality"] = r.quality
    return doc
