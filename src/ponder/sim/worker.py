"""One simulated engine: the same token-budget scheduler as ponder's (running first, then waiting
in arrival order; chunked prefill; decodes batched with prefill chunks in one step)."""

from __future__ import annotations

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


@dataclass(eq=False)
class SimSeq:
    req: SimRequest
    num_tokens: int  # prompt + generated so far
    computed: int
    generated: int
    target: int  # tokens to generate on this worker before it leaves


class SimWorker:
    def __init__(self, wid: int, model: StepModel, budget: int, max_seqs: int):
        self.wid = wid
        self.model = model
        self.budget = budget
        self.max_seqs = max_seqs
        self.waiting: list[SimSeq] = []
        self.running: list[SimSeq] = []
        self.busy_until: float | None = None
        self._step: list[tuple[SimSeq, int]] = []

    @property
    def load(self) -> int:
        return len(self.waiting) + len(self.running)

    def start_step(self, now: float) -> float | None:
        """Schedule a step like Scheduler.schedule; returns its end time (None when idle)."""
        budget = self.budget
        step: list[tuple[SimSeq, int]] = []
        for seq in self.running:
            if budget <= 0:
                break
            n = min(seq.num_tokens - seq.computed, budget)
            step.append((seq, n))
            budget -= n
        while self.waiting and budget > 0 and len(self.running) < self.max_seqs:
            seq = self.waiting.pop(0)
            self.running.append(seq)
            n = min(seq.num_tokens - seq.computed, budget)
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
        self._step = []
        self.busy_until = None
        return done
