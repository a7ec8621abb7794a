"""The dead-letter store: every message (or batch element, or point) that could not land.

SQLite in the state directory, one row per rejected item with its reason,
detail, topic and raw payload.  Payloads are capped in size and the
truncation is recorded.  The store has a total cap on pending letters: when
it is full, :meth:`DeadLetterStore.add_many` raises :class:`DeadLetterFull`
and ingest stops acknowledging (backpressure) instead of dropping anything.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id            INTEGER PRIMARY KEY,
    received_ns   INTEGER NOT NULL,
    topic         TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    detail        TEXT    NOT NULL,
    batch_index   INTEGER,
    payload       BLOB    NOT NULL,
    payload_size  INTEGER NOT NULL,
    truncated     INTEGER NOT NULL,
    redriven_ns   INTEGER
);
CREATE INDEX IF NOT EXISTS dead_letters_pending ON dead_letters (redriven_ns, reason);
"""


class DeadLetterFull(Exception):
    """The store reached its cap; the caller must apply backpressure."""


@dataclass(slots=True)
class Letter:
    topic: str
    reason: str
    detail: str
    payload: bytes
    batch_index: int | None = None
    received_ns: int = 0


@dataclass(slots=True)
class StoredLetter:
    id: int
    received_ns: int
    topic: str
    reason: str
    detail: str
    batch_index: int | None
    payload: bytes
    payload_size: int
    truncated: bool
    redriven_ns: int | None


class DeadLetterStore:
    def __init__(self, path: Path | str, max_letters: int = 100_000, max_payload: int = 64 * 1024):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_letters = max_letters
        self.max_payload = max_payload
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._pending = self._count_pending()

    @classmethod
    def from_settings(cls, s) -> DeadLetterStore:  # noqa: ANN001
        return cls(s.deadletter_path, s.deadletter_max, s.deadletter_max_payload)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _count_pending(self) -> int:
        return self._db.execute("SELECT count(*) FROM dead_letters WHERE redriven_ns IS NULL").fetchone()[0]

    @property
    def pending(self) -> int:
        """Letters not yet re-driven (read from the file: other processes may add or re-drive)."""
        with self._lock:
            self._pending = self._count_pending()
            return self._pending

    def room(self) -> int:
        return max(0, self.max_letters - self._pending)

    def add_many(self, letters: Iterable[Letter]) -> int:
        """Store letters durably (one transaction).  All or nothing; raises DeadLetterFull."""
        letters = list(letters)
        if not letters:
            return 0
        now = time.time_ns()
        with self._lock:
            if self._pending + len(letters) > self.max_letters:
                self._pending = self._count_pending()  # a redrive elsewhere may have made room
                if self._pending + len(letters) > self.max_letters:
                    raise DeadLetterFull(
                        f"dead-letter store full ({self._pending} of {self.max_letters}); "
                        "inspect with 'lifewatch deadletter list' and re-drive or raise LIFEWATCH_DEADLETTER_MAX"
                    )
            rows = []
            for lt in letters:
                size = len(lt.payload)
                truncated = size > self.max_payload
                rows.append(
                    (
                        lt.received_ns or now,
                        lt.topic,
                        lt.reason,
                        lt.detail[:1000],
                        lt.batch_index,
                        lt.payload[: self.max_payload] if truncated else lt.payload,
                        size,
                        int(truncated),
                    )
                )
            with self._db:
                self._db.executemany(
                    "INSERT INTO dead_letters (received_ns, topic, reason, detail, batch_index, payload, payload_size, truncated)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            self._pending += len(rows)
        return len(rows)

    def list(self, reason: str | None = None, limit: int = 50, include_redriven: bool = False) -> list[StoredLetter]:
        where, params = [], []
        if not include_redriven:
            where.append("redriven_ns IS NULL")
        if reason:
            where.append("reason = ?")
            params.append(reason)
        sql = "SELECT * FROM dead_letters"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit:
            sql += " LIMIT ?"
            params.append(limit)
        with self._lock:
            return [_row(r) for r in self._db.execute(sql, params)]

    def get(self, letter_id: int) -> StoredLetter | None:
        with self._lock:
            r = self._db.execute("SELECT * FROM dead_letters WHERE id = ?", (letter_id,)).fetchone()
        return _row(r) if r else None

    def counts_by_reason(self, include_redriven: bool = False) -> dict[str, int]:
        sql = "SELECT reason, count(*) FROM dead_letters"
        if not include_redriven:
            sql += " WHERE redriven_ns IS NULL"
        sql += " GROUP BY reason ORDER BY reason"
        with self._lock:
            return dict(self._db.execute(sql).fetchall())

    def mark_redriven(self, ids: Iterable[int]) -> None:
        now = time.time_ns()
        ids = list(ids)
        with self._lock, self._db:
            self._db.executemany("UPDATE dead_letters SET redriven_ns = ? WHERE id = ? AND redriven_ns IS NULL", [(now, i) for i in ids])
            self._pending = self._count_pending()


def _row(r: tuple) -> StoredLetter:
    return StoredLetter(r[0], r[1], r[2], r[3], r[4], r[5], bytes(r[6]), r[7], bool(r[8]), r[9])
