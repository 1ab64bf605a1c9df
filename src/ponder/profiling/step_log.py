"""A per-step timing log of a live engine: what each step scheduled and how long the engine loop
took from one step's start to the next.

The simulator is fitted from these records (profiling/fit_log.py), so it learns the step time the
real server has under its real load: the cycle time includes the loop's work between steps
(delivering outputs, streaming, HTTP handlers holding the GIL), which a bare step() timing misses.

`ponder serve` attaches one when PONDER_STEP_LOG is set (a path prefix; each process writes
PREFIX.<role>.<pid>.jsonl, so the workers of a router or of an xPyD deployment each get their own)."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ponder.engine.llm_engine import LLMEngine
from ponder.profiling.step_model import attn_work

ENV = "PONDER_STEP_LOG"


@dataclass(frozen=True)
class StepRecord:
    start: float  # wall clock (time.time()), comparable across processes on one host
    seconds: float  # start of this step to the start of the next one (or its end if idle after)
    tokens: int
    seqs: int
    sampled: int  # sequences that sample a token this step (decodes + last prefill chunks)
    attn: float
    busy_after: bool  # work was left when it ended: the next step followed at once

    @classmethod
    def from_json(cls, line: str) -> StepRecord:
        return cls(**json.loads(line))


class StepLog:
    """Wraps engine.step and the scheduler's schedule on one engine instance (no engine change)."""

    def __init__(self, engine: LLMEngine, path: str | Path | None = None):
        self.records: list[StepRecord] = []
        self._file = open(path, "a", buffering=1) if path is not None else None  # noqa: SIM115
        self._lock = threading.Lock()
        self._shape: tuple[int, int, int, float] | None = None
        self._pending: tuple[float, float, tuple[int, int, int, float], bool] | None = None
        scheduler, step = engine.scheduler, engine.step
        schedule = scheduler.schedule

        def logged_schedule():
            batch = schedule()
            if batch.seqs:
                computed = [s.num_computed_tokens for s in batch.seqs]
                sampled = sum(
                    1 for s, n, c in zip(batch.seqs, batch.num_new_tokens, computed) if c + n >= s.num_tokens
                )
                self._shape = (
                    batch.num_tokens,
                    len(batch.seqs),
                    sampled,
                    attn_work(batch.num_new_tokens, computed),
                )
            return batch

        def logged_step():
            self._shape = None
            start = time.time()
            if self._pending is not None:  # the step before ran back to back: close its cycle
                self._close(start)
            outputs = step()
            end = time.time()
            if self._shape is not None:
                self._pending = (start, end, self._shape, engine.has_unfinished_requests())
                if not self._pending[3]:
                    self._close(end)
            return outputs

        scheduler.schedule = logged_schedule  # type: ignore[method-assign]
        engine.step = logged_step  # type: ignore[method-assign]
        self._engine = engine

    def close(self) -> None:
        """Unwrap (the class methods show through again) and close the file."""
        for owner, name in ((self._engine, "step"), (self._engine.scheduler, "schedule")):
            owner.__dict__.pop(name, None)
        if self._pending is not None:
            self._close(self._pending[1])
        if self._file is not None:
            self._file.close()
            self._file = None

    def rows(self) -> list[tuple[int, int, float, int, float]]:
        """(tokens, seqs, attn, sampled, seconds) per step: what step_model.fit takes."""
        return [(r.tokens, r.seqs, r.attn, r.sampled, r.seconds) for r in self.records]

    def _close(self, next_start: float) -> None:
        assert self._pending is not None
        start, end, (tokens, seqs, sampled, attn), busy = self._pending
        self._pending = None
        record = StepRecord(start, (next_start if busy else end) - start, tokens, seqs, sampled, attn, busy)
        with self._lock:
            self.records.append(record)
            if self._file is not None:
                self._file.write(json.dumps(asdict(record)) + "\n")


def attach_from_env(engine: LLMEngine, role: str = "colocated") -> StepLog | None:
    """PREFIX.<role>.<pid>.jsonl: a disaggregated deployment's prefill and decode workers can be
    fitted apart (their steps share a host but not a batch mix)."""
    prefix = os.environ.get(ENV)
    if not prefix:
        return None
    return StepLog(engine, f"{prefix}.{role}.{os.getpid()}.jsonl")


def read_logs(paths: list[Path]) -> list[StepRecord]:
    """Records of these logs (plain or .gz), in start order."""
    import gzip

    records = []
    for path in paths:
        text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
        records += [StepRecord.from_json(line) for line in text.splitlines() if line.strip()]
    return sorted(records, key=lambda r: r.start)
