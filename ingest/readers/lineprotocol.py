"""InfluxDB line-protocol files (what ``influx_inspect export`` writes, or any /write body) -> :class:`Columns`.

One line is one reading: ``<lifeline>,district=<d>,sensor_id=<s>[,<other tags>] <fields> <ts>``.
Float and integer fields are metric values, except ``seq`` (an integer:
the reading's sequence number) and ``quality`` (a string: its quality flag);
other tags are ignored; any other string or boolean field is an error.  The
timestamp is required (ns unless ``{"precision": "us" | "ms" | "s"}``).
Blank lines and ``#`` comment lines (``influx_inspect``'s ``# DML`` /
``# CONTEXT-DATABASE:`` headers) are skipped.

The syntax is InfluxDB 1.x's (``models/points.go``), which
:mod:`lifewatch.lineprotocol` writes:

* a backslash escapes the next character while scanning; after scanning,
  the measurement unescapes ``\\,`` and ``\\ ``, tag keys, tag values and field
  keys unescape ``\\,``, ``\\=`` and ``\\ `` (any other backslash stays as it is);
* the key (measurement and tags) ends at the first unescaped space; tags are
  separated by unescaped commas, key and value by an unescaped ``=``;
* field values: a float (``1``, ``-1.5``, ``1e-3``), an integer ``12i``, an
  unsigned ``12u``, a boolean (``t``, ``true``, ``True``, ``TRUE``, ``f``...)
  or a double-quoted string in which ``\\"`` and ``\\\\`` are escapes (it may span
  lines); fields are separated by unescaped commas outside strings;
* then one or more spaces and an optional (here: required) integer timestamp.

Errors name the line and the 1-based character column where the problem starts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ingest.readers.columns import Columns, ColumnsBuilder
from ingest.readers.errors import RecordingError

PRECISION = {"ns": 1, "n": 1, "us": 1_000, "u": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_INT = re.compile(r"[+-]?\d+i\Z")
_UINT = re.compile(r"\d+u\Z")
_TRUE = frozenset({"t", "T", "true", "True", "TRUE"})
_FALSE = frozenset({"f", "F", "false", "False", "FALSE"})
_TS = re.compile(r"-?\d+\Z")


class _Need(Exception):
    """The line ends inside a quoted string: it continues on the next line."""


class _Bad(Exception):
    def __init__(self, col: int, msg: str):
        self.col = col
        self.msg = msg


def _unescape_meas(s: str) -> str:
    return s.replace("\\,", ",").replace("\\ ", " ") if "\\" in s else s


def _unescape_tag(s: str) -> str:
    return s.replace("\\,", ",").replace("\\ ", " ").replace("\\=", "=") if "\\" in s else s


def _unescape_str(s: str) -> str:
    if "\\" not in s:
        return s
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and s[i + 1] in '"\\':
            out.append(s[i + 1])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _scan_token(line: str, i: int, stops: str) -> int:
    """Index of the first unescaped character of ``stops`` from ``i`` (or the end)."""
    n = len(line)
    while i < n:
        c = line[i]
        if c == "\\":
            i += 2
            continue
        if c in stops:
            return i
        i += 1
    return n


def _field_value(raw: str, col: int) -> tuple[str, Any]:
    if not raw:
        raise _Bad(col, "missing field value")
    if _FLOAT.match(raw):
        return "float", float(raw)
    if _INT.match(raw):
        v = int(raw[:-1])
        if not -(2**63) <= v < 2**63:
            raise _Bad(col, f"integer {raw} out of range")
        return "int", v
    if _UINT.match(raw):
        v = int(raw[:-1])
        if v >= 2**64:
            raise _Bad(col, f"unsigned {raw} out of range")
        return "int", v
    if raw in _TRUE or raw in _FALSE:
        return "bool", raw in _TRUE
    raise _Bad(col, f"invalid field value {raw[:40]!r} (a number, 12i, true/false or a \"string\")")


def parse_line(line: str) -> tuple[str, dict[str, str], list[tuple[str, str, Any, int]], int | None]:
    """One line -> (measurement, tags, [(field key, type, value, column)], timestamp or None).

    Raises ``_Bad(column, message)``, or ``_Need`` when a string field is still open at the end.
    """
    n = len(line)
    i = 0
    while i < n and line[i] in " \t":
        i += 1
    start = i
    end_key = _scan_token(line, i, " ")
    parts: list[tuple[int, int]] = []
    j = start
    while True:
        k = _scan_token(line, j, ",")
        k = min(k, end_key)
        parts.append((j, k))
        if k >= end_key:
            break
        j = k + 1
    m0, m1 = parts[0]
    if m1 == m0:
        raise _Bad(start + 1, "missing measurement")
    meas = _unescape_meas(line[m0:m1])
    tags: dict[str, str] = {}
    for a, b in parts[1:]:
        eq = _scan_token(line, a, "=")
        if eq >= b:
            raise _Bad(a + 1, f"tag {line[a:b][:40]!r} has no '='")
        if eq == a:
            raise _Bad(a + 1, "missing tag key")
        if eq + 1 == b:
            raise _Bad(eq + 2, "missing tag value")
        if _scan_token(line, eq + 1, "=") < b:
            raise _Bad(_scan_token(line, eq + 1, "=") + 1, "unescaped '=' in a tag value")
        tags[_unescape_tag(line[a:eq])] = _unescape_tag(line[eq + 1:b])
    i = end_key
    while i < n and line[i] == " ":
        i += 1
    if i >= n:
        raise _Bad(i + 1, "missing fields")
    fields: list[tuple[str, str, Any, int]] = []
    while True:
        fk0 = i
        eq = _scan_token(line, i, "=, ")
        if eq == fk0:
            raise _Bad(fk0 + 1, "missing field key")
        if eq >= n or line[eq] != "=":
            raise _Bad(fk0 + 1, f"field {line[fk0:eq][:40]!r} has no '='")
        fkey = _unescape_tag(line[fk0:eq])
        v0 = eq + 1
        if v0 < n and line[v0] == '"':
            j = v0 + 1
            while j < n:
                c = line[j]
                if c == "\\":
                    j += 2
                    continue
                if c == '"':
                    break
                j += 1
            if j >= n:
                raise _Need()
            fields.append((fkey, "str", _unescape_str(line[v0 + 1:j]), fk0 + 1))
            i = j + 1
        else:
            j = v0
            while j < n and line[j] not in ", ":
                j += 1
            typ, val = _field_value(line[v0:j], v0 + 1)
            fields.append((fkey, typ, val, fk0 + 1))
            i = j
        if i >= n or line[i] == " ":
            break
        if line[i] != ",":
            raise _Bad(i + 1, "expected ',' or ' ' after a field value")
        i += 1
        if i >= n or line[i] == " ":
            raise _Bad(i + 1, "missing field after ','")
    while i < n and line[i] == " ":
        i += 1
    if i >= n:
        return meas, tags, fields, None
    t0 = i
    while i < n and line[i] not in " \t":
        i += 1
    raw_ts = line[t0:i]
    while i < n and line[i] in " \t":
        i += 1
    if i < n:
        raise _Bad(i + 1, "unexpected text after the timestamp")
    if not _TS.match(raw_ts):
        raise _Bad(t0 + 1, f"invalid timestamp {raw_ts[:40]!r}")
    ts = int(raw_ts)
    if not -(2**63) < ts < 2**63:
        raise _Bad(t0 + 1, "timestamp out of range")
    return meas, tags, fields, ts


def read_lineprotocol(path: Path, text: str, mapping: Mapping[str, Any] | None = None) -> Columns:
    opts = dict(mapping or {})
    prec = str(opts.get("precision", "ns"))
    if prec not in PRECISION:
        raise RecordingError(path, None, None, f"unknown precision {prec!r}: one of {sorted(PRECISION)}")
    mult = PRECISION[prec]
    b = ColumnsBuilder()
    lines = text.split("\n")
    k = 0
    while k < len(lines):
        first = k
        line = lines[k].rstrip("\r")
        k += 1
        s = line.lstrip(" \t")
        if not s or s.startswith("#"):
            continue
        while True:
            try:
                meas, tags, fields, ts = parse_line(line)
                break
            except _Need:
                if k >= len(lines):
                    raise RecordingError(path, first + 1, len(line), "unterminated string field") from None
                line = line + "\n" + lines[k].rstrip("\r")
                k += 1
            except _Bad as exc:
                # the column within the physical line where the problem is
                before = line[:exc.col - 1]
                ln = first + 1 + before.count("\n")
                col = exc.col - (before.rfind("\n") + 1)
                raise RecordingError(path, ln, col, exc.msg) from None
        lineno = first + 1
        if ts is None:
            raise RecordingError(path, lineno, len(line) + 1, "missing timestamp (a recording needs event times)")
        for tag in ("district", "sensor_id"):
            if tag not in tags:
                raise RecordingError(path, lineno, len(meas) + 1, f"missing tag {tag}")
        values: dict[str, float | None] = {}
        seq = quality = None
        for fkey, typ, val, col in fields:
            if fkey == "seq" and typ == "int":
                if val < 0:
                    raise RecordingError(path, lineno, col, "seq must not be negative")
                seq = val
            elif fkey == "quality" and typ == "str":
                quality = val
            elif typ in ("float", "int"):
                values[fkey] = float(val)
            else:
                raise RecordingError(path, lineno, col, f"field {fkey!r} is a {typ}: only numbers are metrics "
                                                        "(and the string field quality, the integer seq)")
        t = ts * mult
        if not -(2**63) <= t < 2**63:
            raise RecordingError(path, lineno, None, "timestamp out of range after applying the precision")
        b.add(meas, tags["district"], tags["sensor_id"], t, values, seq, quality)
    cols = b.build(format="lineprotocol", meta={"source": {"file": str(path), "format": "lineprotocol"}})
    return cols
