"""RequestLogStore: the request log in SQLite (WAL), written by one background thread.

Callers only enqueue (`append` never touches the disk), so the server's event loop never waits
on I/O. The writer commits rows in batches; a committed batch survives a crash of the process
(WAL with synchronous=NORMAL loses nothing on a process crash, only possibly the last
transactions on a power loss). Reads open their own connection: WAL lets them run beside the
writer.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ponder.errors import InvalidRequestError
from ponder.flywheel.records import COLUMNS, CONTENT_MODES, LogRecord

logger = logging.getLogger("ponder.flywheel")

DEFAULT_FILE = "requests.db"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS requests (
    row_id INTEGER PRIMARY KEY AUTOINCREMENT,
    {", ".join(COLUMNS)}
);
CREATE INDEX IF NOT EXISTS requests_response_id ON requests(response_id);
CREATE INDEX IF NOT EXISTS requests_created ON requests(created);
"""
_INSERT = f"INSERT INTO requests ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_QUEUE_LIMIT = 100_000  # rows waiting for the writer; beyond it rows are dropped (and counted)


def default_log_path() -> Path:
    """$PONDER_DATA_DIR/requests.db, else ~/.local/share/ponder/requests.db."""
    base = os.environ.get("PONDER_DATA_DIR") or os.path.join(
        os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "ponder"
    )
    return Path(base) / DEFAULT_FILE


@dataclass(frozen=True)
class Retention:
    """Keep at most `max_rows` rows and none older than `max_age_s` (None: no limit)."""

    max_rows: int | None = None
    max_age_s: float | None = None

    @classmethod
    def parse(cls, text: str | None) -> Retention:
        """'100000' (rows), '7d' or '12h' (age), or both joined by a comma."""
        rows: int | None = None
        age: float | None = None
        for part in (text or "").split(","):
            part = part.strip().lower()
            if not part:
                continue
            unit = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}.get(part[-1])
            try:
                if unit is not None:
                    age = float(part[:-1]) * unit
                else:
                    rows = int(part)
            except ValueError:
                raise InvalidRequestError(
                    f"--log-retention expects rows (100000) and/or an age (7d, 12h), got {text!r}",
                    param="log_retention",
                ) from None
        if (rows is not None and rows < 1) or (age is not None and age <= 0):
            raise InvalidRequestError(
                f"--log-retention must be positive, got {text!r}", param="log_retention"
            )
        return cls(rows, age)


@dataclass
class _Feedback:
    response_id: str
    score: float
    done: concurrent.futures.Future[bool]


_STOP = object()


class RequestLogStore:
    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        content: str = "full",
        retention: Retention = Retention(),
        batch_size: int = 256,
        flush_interval_s: float = 0.05,
    ):
        if content not in CONTENT_MODES:
            raise InvalidRequestError(
                f"log content must be one of {', '.join(CONTENT_MODES)}; got {content!r}", param="log_content"
            )
        if batch_size < 1:
            raise InvalidRequestError("batch_size must be at least 1", param="batch_size")
        self.path = Path(path)
        self.content = content
        self.retention = retention
        self.batch_size = batch_size  # 1: commit every row (the slow baseline of the benchmark)
        self.flush_interval_s = flush_interval_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._queue: queue.Queue[object] = queue.Queue(_QUEUE_LIMIT)
        self.committed = 0  # rows this store has committed
        self.dropped = 0  # rows refused because the writer fell behind by _QUEUE_LIMIT
        self.failed = 0  # rows lost to a failed write (logged)
        with opened(self.path) as connection:  # create the schema before anyone reads
            connection.executescript(_SCHEMA)
        self._writer = threading.Thread(target=self._write_loop, name="ponder-request-log", daemon=True)
        self._writer.start()

    # ---- called from the server (any thread, the event loop included): never blocks ----

    def append(self, record: LogRecord) -> None:
        if self.content == "none":
            record = record.without_content()
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def feedback(self, response_id: str, score: float) -> concurrent.futures.Future[bool]:
        """Set the feedback score of a logged response; the future says whether it was found.
        Queued behind the rows, so a response already returned to the client is found."""
        done: concurrent.futures.Future[bool] = concurrent.futures.Future()
        self._queue.put(_Feedback(response_id, score, done))
        return done

    def flush(self) -> None:
        """Wait until everything appended so far is committed."""
        self._queue.join()

    def close(self) -> None:
        if self._writer.is_alive():
            self._queue.put(_STOP)
            self._writer.join()

    # ---- reading: its own connection, beside the writer ----

    def rows(self) -> list[LogRecord]:
        return list(read_rows(self.path))

    def count(self) -> int:
        with opened(self.path) as connection:
            return int(connection.execute("SELECT COUNT(*) FROM requests").fetchone()[0])

    # ---- the writer thread ----

    def _write_loop(self) -> None:
        connection = connect(self.path)
        try:
            while True:
                items = self._next_batch()
                stop = _STOP in items
                try:
                    self._write(connection, [item for item in items if item is not _STOP])
                finally:
                    for _ in items:
                        self._queue.task_done()
                if stop:
                    return
        finally:
            connection.close()

    def _next_batch(self) -> list[object]:
        items = [self._queue.get()]
        deadline = time.monotonic() + self.flush_interval_s
        while len(items) < self.batch_size and items[-1] is not _STOP:
            try:
                items.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return items

    def _write(self, connection: sqlite3.Connection, items: list[object]) -> None:
        records = [item for item in items if isinstance(item, LogRecord)]
        feedback = [item for item in items if isinstance(item, _Feedback)]
        try:
            with connection:  # one transaction: the batch is committed whole or not at all
                connection.executemany(_INSERT, [_values(record) for record in records])
                found = [
                    connection.execute(
                        "UPDATE requests SET feedback = ? WHERE response_id = ?",
                        (each.score, each.response_id),
                    ).rowcount
                    > 0
                    for each in feedback
                ]
                self._apply_retention(connection)
        except sqlite3.Error as error:
            self.failed += len(records)
            logger.error("request log: a write of %d rows failed: %s", len(records), error)
            for each in feedback:
                each.done.set_exception(error)
            return
        self.committed += len(records)
        for each, was_found in zip(feedback, found):
            each.done.set_result(was_found)

    def _apply_retention(self, connection: sqlite3.Connection) -> None:
        if self.retention.max_age_s is not None:
            connection.execute(
                "DELETE FROM requests WHERE created < ?", (time.time() - self.retention.max_age_s,)
            )
        if self.retention.max_rows is not None:
            connection.execute(
                "DELETE FROM requests WHERE row_id <= (SELECT MAX(row_id) FROM requests) - ?",
                (self.retention.max_rows,),
            )


def connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=30.0, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


@contextlib.contextmanager
def opened(path: Path) -> Iterator[sqlite3.Connection]:
    connection = connect(path)
    try:
        yield connection
    finally:
        connection.close()


def read_rows(path: str | os.PathLike[str]) -> Iterator[LogRecord]:
    """Every row of the log at `path`, oldest first."""
    if not Path(path).exists():
        raise InvalidRequestError(f"no request log at {path} (start the server with --log-requests)")
    with opened(Path(path)) as connection:
        cursor = connection.execute(f"SELECT {', '.join(COLUMNS)} FROM requests ORDER BY row_id")
        for values in cursor:
            yield LogRecord(*values)


def _values(record: LogRecord) -> tuple:
    return tuple(getattr(record, name) for name in COLUMNS)
