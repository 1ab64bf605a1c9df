"""One simulated engine: the same token-budget scheduler as ponder's (running first, then waiting
in arrival order; chunked prefill; decodes batched with prefill chunks in one step), with the
KV pool's limit: blocks are taken as tokens are scheduled, a running sequence that finds none
preempts the newest running one (which recomputes later), and no request is admitted in a step
that preempted (engine/scheduler.py)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from ponder.profiling.step_model import StepModel


@dataclass(eq=False)
class SimRequest:
    rid: int
    arrival: float
    input_len: int
    output_len: int
    first_token: float | None = None
    finished: float | None = None
    prefill_done: float | None = None  # disaggregated: when the prefill worker finished
    kv_failed: bool = False  # disaggregated: its hand-off failed (the decode worker recomputed)
    preemptions: int = 0


@dataclass(eq=False)
class SimSeq:
    req: SimRequest
    num_tokens: int  # prompt + generated so far
    computed: int
    generated: int
    target: int  # tokens to generate on this worker before it leaves
    blocks: int = 0  # KV blocks held

    @property
    def key(self) -> tuple[float, int]:
        return (self.req.arrival, self.req.rid)


class SimWorker:
    def __init__(
        self, wid: int, model: StepModel, budget: int, max_seqs: int, kv_blocks: int = 0, block_size: int = 16
    ):
        self.wid = wid
        self.model = model
        self.budget = budget
        self.max_seqs = max_seqs
        self.kv_blocks = kv_blocks  # 0: unlimited
        self.block_size = block_size
        self.free_blocks = kv_blocks
        self.waiting: list[SimSeq] = []
        self.running: list[SimSeq] = []
        self.busy_until: float | None = None
        self._step: list[tuple[SimSeq, int]] = []
        # (start, end, tokens, seqs, attn, sampled) per step when a list is given (benchmarks/sim_rescore.py)
        self.trace: list[tuple[float, float, int, int, float, int]] | None = None

    @property
    def load(self) -> int:
        return len(self.waiting) + len(self.running)

    def add(self, seq: SimSeq) -> None:
        bisect.insort_right(self.waiting, seq, key=lambda s: s.key)

    def _allocate(self, seq: SimSeq, n: int) -> bool:
        if not self.kv_blocks:
            return True
        need = -(-(seq.computed + n) // self.block_size) - seq.blocks
        if need > self.free_blocks:
            return False
        self.free_blocks -= max(need, 0)
        seq.blocks += max(need, 0)
        return True

    def _free(self, seq: SimSeq) -> None:
        self.free_blocks += seq.blocks
        seq.blocks = 0

    def _preempt(self, seq: SimSeq) -> None:
        self.running.remove(seq)
        self._free(seq)
        seq.computed = 0  # recompute: the tokens stay, the KV goes
        seq.req.preemptions += 1
        self.add(seq)

    def start_step(self, now: float) -> float | None:
        """Schedule a step like Scheduler.schedule; returns its end time (None when idle)."""
        budget = self.budget
        step: list[tuple[SimSeq, int]] = []
        preempted = False
        index = 0
        while index < len(self.running) and budget > 0:
            seq = self.running[index]
            n = min(seq.num_tokens - seq.computed, budget)
            while not self._allocate(seq, n):
                victim = self.running[-1]
                self._preempt(victim)
                preempted = True
                if victim is seq:
                    break
            else:
                step.append((seq, n))
                budget -= n
                index += 1
        while not preempted and self.waiting and budget > 0 and len(self.running) < self.max_seqs:
            seq = self.waiting[0]
            n = min(seq.num_tokens - seq.computed, budget)
            if not self._allocate(seq, n):
                break
            self.waiting.pop(0)
            bisect.insort_right(self.running, seq, key=lambda s: s.key)  # the tail is preempted first
            step.append((seq, n))
            budget -= n
        if not step:
            self.busy_until = None
            return None
        tokens = sum(n for _, n in step)
        attn = float(sum(n * (s.computed + n / 2) for s, n in step))
        sampled = sum(1 for s, n in step if s.computed + n == s.num_tokens)
        self._step = step
        self.busy_until = now + self.model.step_time(tokens, len(step), attn, sampled)
        if self.trace is not None:
            self.trace.append((now, self.busy_until, tokens, len(step), attn, sampled))
        return self.busy_until

    def finish_step(self, now: float) -> list[SimSeq]:
        """Apply the step's tokens; returns the sequences that leave this worker."""
        done = []
        for seq, n in self._step:
            seq.computed += n
            if seq.computed == seq.num_tokens:  # a token is sampled
                seq.generated += 1
                seq.num_tokens += 1
                if seq.req.first_token is None and seq.target > 0:
                    seq.req.first_token = now
                if seq.generated >= seq.target:
                    done.append(seq)
        for seq in done:
            self.running.remove(seq)
            self._free(seq)
        self._step = []
        self.busy_until = None
        return done
