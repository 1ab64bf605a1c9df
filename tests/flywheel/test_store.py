"""The request log: concurrent writers lose nothing, a killed writer process leaves every
committed row and an intact file, retention and content modes hold."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from ponder.errors import InvalidRequestError
from ponder.flywheel.records import LogRecord
from ponder.flywheel.store import RequestLogStore, Retention, read_rows


def record(index: int, **fields) -> LogRecord:
    values = dict(
        response_id=f"chatcmpl-{index}",
        created=time.time(),
        model="ponder",
        model_version="v1",
        workload_id="w",
        endpoint="chat",
        prompt=f'[{{"role": "user", "content": "q{index}"}}]',
        reasoning="think",
        answer="\\boxed{1}",
        final_answer="1",
    )
    values.update(fields)
    return LogRecord(**values)


def test_concurrent_writers_lose_no_row(tmp_path):
    store = RequestLogStore(tmp_path / "log.db", batch_size=64)
    threads = [
        threading.Thread(target=lambda t=t: [store.append(record(t * 1000 + i)) for i in range(500)])
        for t in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    ids = {row.response_id for row in read_rows(tmp_path / "log.db")}
    assert len(ids) == 8 * 500 and store.committed == 4000 and store.dropped == 0


def test_append_does_not_wait_for_the_disk(tmp_path):
    store = RequestLogStore(tmp_path / "log.db", batch_size=1)  # the slowest writer
    started = time.perf_counter()
    for index in range(2000):
        store.append(record(index))
    enqueue_s = time.perf_counter() - started
    store.flush()
    assert store.count() == 2000
    assert enqueue_s < 0.5  # 2000 per-row commits take far longer than this on any disk
    store.close()


CHILD = """
import sys, time
from ponder.flywheel.store import RequestLogStore
from tests.flywheel.test_store import record
store = RequestLogStore(sys.argv[1], batch_size=32)
index = 0
while True:
    for _ in range(50):
        store.append(record(index)); index += 1
    store.flush()
    print(index, flush=True)  # every row up to here is committed
"""


def test_a_killed_writer_loses_no_committed_row(tmp_path):
    path = tmp_path / "log.db"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.getcwd(),
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    committed = 0
    for line in child.stdout:
        committed = int(line)
        if committed >= 2000:
            break
    child.send_signal(signal.SIGKILL)  # mid-write: later batches were in flight
    child.wait()
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    connection.close()
    ids = {row.response_id for row in read_rows(path)}
    assert {f"chatcmpl-{i}" for i in range(committed)} <= ids
    store = RequestLogStore(path)  # the file opens again and takes more rows
    store.append(record(-1))
    store.close()
    assert len(list(read_rows(path))) == len(ids) + 1


def test_retention_keeps_the_newest_rows(tmp_path):
    store = RequestLogStore(tmp_path / "log.db", retention=Retention(max_rows=100), batch_size=10)
    for index in range(250):
        store.append(record(index))
    store.close()
    ids = [row.response_id for row in read_rows(tmp_path / "log.db")]
    assert ids == [f"chatcmpl-{i}" for i in range(150, 250)]


def test_retention_by_age(tmp_path):
    store = RequestLogStore(tmp_path / "log.db", retention=Retention.parse("1h"))
    store.append(record(0, created=time.time() - 7200))
    store.append(record(1))
    store.close()
    assert [row.response_id for row in read_rows(tmp_path / "log.db")] == ["chatcmpl-1"]


def test_retention_parsing():
    assert Retention.parse("100000,7d") == Retention(100000, 7 * 86400.0)
    assert Retention.parse(None) == Retention()
    for bad in ("lots", "0", "-1d"):
        with pytest.raises(InvalidRequestError):
            Retention.parse(bad)


def test_content_none_keeps_only_metrics(tmp_path):
    store = RequestLogStore(tmp_path / "log.db", content="none")
    store.append(record(0, completion_tokens=12, latency_s=0.5, agreement=0.75))
    store.close()
    (row,) = read_rows(tmp_path / "log.db")
    assert (row.prompt, row.reasoning, row.answer, row.final_answer) == (None, None, None, None)
    assert (row.completion_tokens, row.latency_s, row.agreement) == (12, 0.5, 0.75)


def test_feedback_finds_a_row_just_appended(tmp_path):
    store = RequestLogStore(tmp_path / "log.db")
    store.append(record(7))
    assert store.feedback("chatcmpl-7", 0.9).result(timeout=10) is True
    assert store.feedback("nope", 0.9).result(timeout=10) is False
    store.close()
    assert next(read_rows(tmp_path / "log.db")).feedback == 0.9
