"""The on-disk buffer of the InfluxDB adapter: line-protocol lines, oldest first, bounded.

One SQLite file (``points.sqlite``) in the buffer folder, one row per line, ids rising
(``AUTOINCREMENT``: never reused, so id order is write order even after the table empties).
Appends and removals are transactions, so a crash leaves whole batches; the file outlives the
process, and what it holds is sent first when the adapter starts again. A lock file
(``lock``, ``flock``) keeps a second process off the same folder.

Only the adapter's writer thread uses it (``count`` may be read from any thread).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path


class BufferInUseError(RuntimeError):
    """Another process holds the buffer folder."""


class DiskBuffer:
    def __init__(self, folder: Path, max_points: int) -> None:
        if max_points < 1:
            raise ValueError(f"buffer_max_points must be >= 1, got {max_points}")
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.max_points = max_points
        self._lock_fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._lock_fd)
            raise BufferInUseError(
                f"time-series buffer {folder} is in use by another process "
                "(give each process its own timeseries.buffer_dir)"
            ) from exc
        self._db = sqlite3.connect(
            folder / "points.sqlite", check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS lines "
            "(id INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT NOT NULL)"
        )
        self.count: int = self._db.execute("SELECT count(*) FROM lines").fetchone()[0]

    def append(self, lines: Sequence[str]) -> int:
        """Add ``lines`` after everything held; returns how many of the oldest were dropped to
        stay within ``max_points`` (the new lines themselves when there are more of them)."""
        if not lines:
            return 0
        dropped = 0
        if len(lines) > self.max_points:
            dropped = len(lines) - self.max_points
            lines = lines[dropped:]
        excess = self.count + len(lines) - self.max_points
        with self._transaction():
            if excess > 0:
                self._db.execute(
                    "DELETE FROM lines WHERE id IN (SELECT id FROM lines ORDER BY id LIMIT ?)",
                    (excess,),
                )
            self._db.executemany("INSERT INTO lines (line) VALUES (?)", ((x,) for x in lines))
        if excess > 0:
            dropped += excess
            self.count -= excess
        self.count += len(lines)
        return dropped

    def head(self, n: int) -> tuple[int, list[str]]:
        """The ``n`` oldest lines and the id of the last of them (0 when empty)."""
        rows = self._db.execute("SELECT id, line FROM lines ORDER BY id LIMIT ?", (n,)).fetchall()
        return (rows[-1][0] if rows else 0), [line for _, line in rows]

    def remove_through(self, last_id: int) -> None:
        """Forget every line up to and including ``last_id`` (they were delivered)."""
        with self._transaction():
            cur = self._db.execute("DELETE FROM lines WHERE id <= ?", (last_id,))
        self.count -= cur.rowcount

    def close(self) -> None:
        self._db.close()
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)

    def _transaction(self) -> _Tx:
        return _Tx(self._db)


class _Tx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
