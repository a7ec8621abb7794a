"""Shared pieces of the text readers: decoding, CSV rows with their line numbers, times and numbers.

Times are parsed exactly to the nanosecond without pandas (whose default
resolution is the microsecond since pandas 3): ISO 8601 / RFC 3339 text
(``2014-04-01 00:00:00``, ``2026-01-05T00:00:00.123456789Z``, offsets
``+06:00``; naive times are read in the given ``tz``, UTC by default), or
epoch numbers in s, ms, us or ns.  A file whose timestamps all share one
layout (NAB's and SKAB's ``YYYY-MM-DD HH:MM:SS``) is parsed with numpy in a
few vectorised steps; the rest goes through one regular expression per value.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingest.readers.errors import RecordingError

NS = 1_000_000_000
NULL_TOKENS = frozenset({"", "null", "NULL", "Null", "NaN", "nan", "NAN", "NA", "N/A", "n/a", "None", "none"})
MAX_FIELD = 1 << 20

_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?\Z"
)
_TZ = re.compile(r"(?:Z|UTC|[+-]\d{2}(?::?\d{2})?)\Z")
_DECIMAL = re.compile(r"[+-]?\d+(?:\.\d*)?\Z|[+-]?\.\d+\Z")
EPOCH_UNITS = {"epoch_s": NS, "epoch_ms": 1_000_000, "epoch_us": 1_000, "epoch_ns": 1}


def decode(path: Path, data: bytes) -> str:
    """UTF-8 text (a BOM is dropped); bad bytes are an error naming their line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise RecordingError(path, line, col, "not UTF-8 text") from None
    if "\x00" in text:
        i = text.index("\x00")
        raise RecordingError(path, text.count("\n", 0, i) + 1, i - text.rfind("\n", 0, i), "NUL byte in a text file")
    return text[1:] if text.startswith("\ufeff") else text


@dataclass
class Table:
    """A CSV file: header, rows of strings by column, and the line each row came from."""

    header: list[str]
    columns: list[list[str]]
    lines: list[int]
    header_line: int

    def column(self, name: str) -> list[str]:
        return self.columns[self.header.index(name)]

    def __len__(self) -> int:
        return len(self.lines)


def read_csv(path: Path, text: str, delimiter: str) -> Table:
    """Rows of a delimited file with a header; every row must have the header's number of fields."""
    csv.field_size_limit(MAX_FIELD)
    reader = csv.reader(text.splitlines(keepends=True), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    header_line = 0
    cols: list[list[str]] = []
    lines: list[int] = []
    try:
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if header is None:
                header = [h.strip() for h in row]
                header_line = reader.line_num
                if len(set(header)) != len(header):
                    dup = next(h for h in header if header.count(h) > 1)
                    raise RecordingError(path, header_line, dup, "column name appears twice in the header")
                cols = [[] for _ in header]
                continue
            if len(row) != len(header):
                raise RecordingError(path, reader.line_num, None,
                                     f"expected {len(header)} fields separated by {delimiter!r}, found {len(row)}")
            for c, v in zip(cols, row, strict=True):
                c.append(v)
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise RecordingError(path, reader.line_num or 1, None, f"bad CSV: {exc}") from None
    if header is None:
        raise RecordingError(path, None, None, "empty file: no header")
    return Table(header, cols, lines, header_line)


# ---------------------------------------------------------------- numbers


def parse_numbers(path: Path, values: Sequence[str], lines: Sequence[int], column: str) -> np.ndarray:
    """Decimal text -> float64; null tokens (empty, NaN, null, NA...) -> NaN; anything else is an error."""
    cleaned = ["nan" if v.strip() in NULL_TOKENS else v for v in values]
    try:
        out = np.asarray(cleaned, dtype=np.float64).reshape(-1)
    except (ValueError, OverflowError):
        for i, v in enumerate(cleaned):
            try:
                float(v)
            except (ValueError, OverflowError):
                raise RecordingError(path, lines[i], column, f"{v[:40]!r} is not a number") from None
        raise RecordingError(path, None, column, "not numbers") from None  # pragma: no cover - numpy and float() agree
    bad = np.flatnonzero(np.isinf(out))
    if bad.size:
        i = int(bad[0])
        raise RecordingError(path, lines[i], column, f"{values[i][:40]!r} is not a finite number")
    return out


def parse_ints(path: Path, values: Sequence[str], lines: Sequence[int], column: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer text -> (int64 values, valid mask); null tokens are invalid (null), anything else an error."""
    out = np.zeros(len(values), dtype=np.int64)
    ok = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        s = v.strip()
        if s in NULL_TOKENS:
            continue
        try:
            n = int(s)
        except ValueError:
            raise RecordingError(path, lines[i], column, f"{v[:40]!r} is not an integer") from None
        if not 0 <= n < 2**63:
            raise RecordingError(path, lines[i], column, f"{n} is out of range (0 .. 2^63-1)")
        out[i], ok[i] = n, True
    return out, ok


# ---------------------------------------------------------------- times


def parse_offset(text: str) -> int:
    """``UTC``, ``Z``, ``+06:00``, ``-0530``, ``+06`` -> ns to add to local time to get UTC (i.e. minus the offset)."""
    t = text.strip()
    if t in ("Z", "z", "UTC", "utc", ""):
        return 0
    m = re.fullmatch(r"([+-])(\d{2})(?::?(\d{2}))?", t)
    if not m:
        raise ValueError(f"timezone {text!r}: use UTC or an offset like +06:00")
    sign = 1 if m.group(1) == "+" else -1
    return -sign * (int(m.group(2)) * 3600 + int(m.group(3) or 0) * 60) * NS


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm), vectorised."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _month_days(y: np.ndarray, m: np.ndarray) -> np.ndarray:
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    table = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    return table[np.clip(m, 0, 12)] + ((m == 2) & leap)


def _one_iso(text: str, naive_offset_ns: int) -> int | None:
    m = _ISO.match(text.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    yy, mm, dd = int(y), int(mo), int(d)
    if not (1 <= mm <= 12 and 1 <= dd <= int(_month_days(np.array([yy]), np.array([mm]))[0])):
        return None
    hh, mn, ss = int(h or 0), int(mi or 0), int(s or 0)
    if not (hh < 24 and mn < 60 and ss < 61):
        return None
    days = int(_days_from_civil(np.array([yy]), np.array([mm]), np.array([dd]))[0])
    ns = ((days * 24 + hh) * 60 + mn) * 60 * NS + ss * NS + (int(frac.ljust(9, "0")) if frac else 0)
    return ns + (parse_offset(tz) if tz is not None else naive_offset_ns)


_FIXED = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)?Z?\Z")


def _fixed_layout(path: Path, values: Sequence[str], lines: Sequence[int], column: str,
                  naive_offset_ns: int) -> np.ndarray | None:
    """All values in one fixed-width ISO layout: parse with numpy.  None when the layout is not uniform."""
    first = values[0]
    if not _FIXED.match(first) or not first.isascii():
        return None
    width = len(first)
    try:
        raw = np.array(values, dtype=f"S{width}")
    except (UnicodeEncodeError, ValueError):
        return None
    if any(len(v) != width for v in values):  # numpy would silently truncate longer ones
        return None
    b = raw.view(np.uint8).reshape(len(values), width)
    digit = np.frombuffer(first.encode(), dtype=np.uint8)
    is_digit = (digit >= 48) & (digit <= 57)
    d = b[:, is_digit].astype(np.int64) - 48
    same = np.all(b[:, ~is_digit] == digit[~is_digit], axis=1) & np.all((d >= 0) & (d <= 9), axis=1)
    if not same.all():
        return None  # mixed layouts: the slow path names the bad line

    def num(a: int, k: int) -> np.ndarray:  # k digits starting at character a
        col = np.cumsum(is_digit)[a] - 1  # index of character a among the digit columns
        out = np.zeros(len(values), dtype=np.int64)
        for j in range(k):
            out = out * 10 + d[:, col + j]
        return out

    y, mo, dd = num(0, 4), num(5, 2), num(8, 2)
    hh = mi = ss = np.zeros(len(values), dtype=np.int64)
    frac = np.zeros(len(values), dtype=np.int64)
    if width >= 19 and first[10] in "T ":
        hh, mi, ss = num(11, 2), num(14, 2), num(17, 2)
        if width > 20 and first[19] == ".":
            k = width - 20 - (1 if first.endswith("Z") else 0)
            frac = num(20, k) * 10 ** (9 - k)
    ok = (mo >= 1) & (mo <= 12) & (dd >= 1) & (dd <= _month_days(y, mo)) & (hh < 24) & (mi < 60) & (ss < 61)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise RecordingError(path, lines[i], column, f"{values[i]!r} is not a real date and time")
    days = _days_from_civil(y, mo, dd)
    ns = ((days * 24 + hh) * 60 + mi) * 60 * NS + ss * NS + frac
    return ns + (0 if first.endswith("Z") else naive_offset_ns)


def parse_times(path: Path, values: Sequence[str], lines: Sequence[int], column: str, fmt: str = "iso",
                tz: str = "UTC") -> np.ndarray:
    """Timestamps -> int64 ns since the epoch, exactly.

    ``fmt``: ``iso`` (ISO 8601 / RFC 3339; naive times are in ``tz``),
    ``epoch_s`` / ``epoch_ms`` / ``epoch_us`` / ``epoch_ns`` (decimal numbers,
    fractions kept exactly down to the ns), or a ``strptime`` pattern such as
    ``%d/%m/%Y %H:%M`` (read in ``tz``).
    """
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    try:
        naive = parse_offset(tz)
    except ValueError as exc:
        raise RecordingError(path, None, column, str(exc)) from None
    if fmt == "iso":
        fast = _fixed_layout(path, values, lines, column, naive)
        if fast is not None:
            return fast
        out = np.empty(n, dtype=np.int64)
        for i, v in enumerate(values):
            t = _one_iso(v, naive)
            if t is None:
                raise RecordingError(path, lines[i], column, f"{v[:40]!r} is not an ISO 8601 time (e.g. 2026-01-05T00:00:00Z)")
            out[i] = t
        return out
    if fmt in EPOCH_UNITS:
        unit = EPOCH_UNITS[fmt]
        out = np.empty(n, dtype=np.int64)
        for i, v in enumerate(values):
            s = v.strip()
            if not _DECIMAL.match(s):
                raise RecordingError(path, lines[i], column, f"{v[:40]!r} is not an epoch number ({fmt})")
            neg = s.startswith("-")
            whole, _, frac = s.lstrip("+-").partition(".")
            digits = len(str(unit)) - 1  # decimal places that still land on whole ns
            if frac[digits:].strip("0"):
                raise RecordingError(path, lines[i], column, f"{v[:40]!r} has digits below a nanosecond")
            t = int(whole or 0) * unit + (int(frac[:digits].ljust(digits, "0")) if digits else 0)
            t = -t if neg else t
            if not -(2**63) <= t < 2**63:
                raise RecordingError(path, lines[i], column, f"{v[:40]!r} is out of range")
            out[i] = t
        return out
    if "%" in fmt:
        from datetime import UTC, datetime

        out = np.empty(n, dtype=np.int64)
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        for i, v in enumerate(values):
            try:
                dt = datetime.strptime(v.strip(), fmt)
            except ValueError:
                raise RecordingError(path, lines[i], column, f"{v[:40]!r} does not match the format {fmt!r}") from None
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
                extra = naive
            else:
                extra = 0
            delta = dt - epoch
            out[i] = (delta.days * 86400 + delta.seconds) * NS + delta.microseconds * 1000 + extra
        return out
    raise RecordingError(path, None, column, f"unknown time format {fmt!r}: use iso, epoch_s, epoch_ms, epoch_us, "
                         "epoch_ns or a strptime pattern")
