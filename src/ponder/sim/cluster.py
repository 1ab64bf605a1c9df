"""The event loop: arrivals, worker steps and KV transfers over colocated or P/D workers."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

from ponder.errors import InvalidRequestError
from ponder.profiling.step_model import StepModel
from ponder.sim.worker import SimRequest, SimSeq, SimWorker


@dataclass(frozen=True)
class ClusterSpec:
    colocated: int = 1  # replicas that do both; ignored when prefill/decode > 0
    prefill: int = 0
    decode: int = 0
    budget: int = 2048  # max_num_batched_tokens
    max_seqs: int = 256
    router: str = "least_loaded"  # | "round_robin"
    kv_transfer_s: float = 0.0  # fixed cost per hand-off
    kv_transfer_s_per_token: float = 0.0
    kv_tokens: int = 0  # KV pool per worker in tokens (0: unlimited); full -> preemption
    block_size: int = 16
    # Failed hand-offs (--kv-load-failure-policy recompute): this share of them fails; the decode
    # worker waits kv_timeout_s (--kv-transfer-timeout) and then computes the prompt itself.
    kv_failed_share: float = 0.0
    kv_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.prefill < 0 or self.decode < 0 or self.colocated < 0:
            raise InvalidRequestError("worker counts must be >= 0", param="workers")
        if (self.prefill > 0) != (self.decode > 0):
            raise InvalidRequestError("disaggregated needs both prefill and decode workers", param="workers")
        if self.prefill == 0 and self.colocated == 0:
            raise InvalidRequestError("need at least one worker", param="workers")
        if self.router not in ("least_loaded", "round_robin"):
            raise InvalidRequestError(f"unknown router {self.router!r}", param="router")
        if self.kv_tokens < 0 or self.block_size < 1:
            raise InvalidRequestError("kv_tokens must be >= 0 and block_size >= 1", param="kv_tokens")
        if not 0.0 <= self.kv_failed_share <= 1.0 or self.kv_timeout_s < 0:
            raise InvalidRequestError("kv_failed_share must be in [0, 1], kv_timeout_s >= 0", param="kv")
        if self.budget < 1 or self.max_seqs < 1:
            raise InvalidRequestError("budget and max_seqs must be >= 1", param="budget")

    @property
    def disaggregated(self) -> bool:
        return self.prefill > 0


class _Router:
    def __init__(self, workers: list[SimWorker], policy: str):
        self.workers = workers
        self.policy = policy
        self._next = itertools.cycle(range(len(workers)))

    def pick(self) -> SimWorker:
        if self.policy == "round_robin":
            return self.workers[next(self._next)]
        return min(self.workers, key=lambda w: (w.load, w.wid))


def simulate(
    requests: list[SimRequest],
    spec: ClusterSpec,
    model: StepModel,
    decode_model: StepModel | None = None,
    trace: list[tuple[float, float, int, int, float, int]] | None = None,
) -> list[SimRequest]:
    """Runs every request to completion; fills first_token and finished in place. trace: a list
    the (first) worker's steps are appended to (start, end, tokens, seqs, attn, sampled)."""
    ids = itertools.count()
    blocks = spec.kv_tokens // spec.block_size
    if blocks and any(r.input_len + r.output_len > blocks * spec.block_size for r in requests):
        raise InvalidRequestError("a request needs more KV than a worker's pool holds", param="kv_tokens")

    def make(n: int, m: StepModel) -> list[SimWorker]:
        return [
            SimWorker(next(ids), m, spec.budget, spec.max_seqs, blocks, spec.block_size) for _ in range(n)
        ]

    if spec.disaggregated:
        front, back = make(spec.prefill, model), make(spec.decode, decode_model or model)
    else:
        front, back = make(spec.colocated, model), []
    front[0].trace = trace
    front_router, back_router = _Router(front, spec.router), (_Router(back, spec.router) if back else None)
    events: list[tuple[float, int, int, object]] = []  # (time, kind order, seq, payload)
    tie = itertools.count()
    handoffs = failures = 0
    for req in requests:  # the fixed per-request cost (HTTP, validation) before the engine sees it
        heapq.heappush(events, (req.arrival + model.request_overhead_s, 1, next(tie), req))

    def kick(worker: SimWorker, now: float) -> None:
        if worker.busy_until is None:
            end = worker.start_step(now)
            if end is not None:
                heapq.heappush(events, (end, 0, next(tie), worker))

    while events:
        now, kind, _, payload = heapq.heappop(events)
        if isinstance(payload, SimWorker):
            for seq in payload.finish_step(now):
                if spec.disaggregated and payload in front:
                    seq.req.prefill_done = now
                    delay = spec.kv_transfer_s + spec.kv_transfer_s_per_token * seq.req.input_len
                    handoffs += 1
                    if failures < round(handoffs * spec.kv_failed_share):  # spread evenly, no RNG
                        failures += 1
                        seq.req.kv_failed = True
                        delay = spec.kv_timeout_s
                    heapq.heappush(events, (now + delay, 2, next(tie), seq))
                else:
                    seq.req.finished = now
            kick(payload, now)
        elif isinstance(payload, SimRequest):
            target = 1 if spec.disaggregated else payload.output_len
            worker = front_router.pick()
            worker.add(SimSeq(payload, payload.input_len, 0, 0, target))
            kick(worker, now)
        else:  # KV arrived on a decode worker: it continues without recomputing the prompt
            assert isinstance(payload, SimSeq) and back_router is not None
            seq = payload
            if seq.req.output_len <= 1:
                seq.req.finished = now
                continue
            worker = back_router.pick()
            # the prompt's KV arrived (all but the first token's), or it failed: compute it all
            computed = 0 if seq.req.kv_failed else seq.num_tokens - 1
            worker.add(SimSeq(seq.req, seq.num_tokens, computed, 1, seq.req.output_len))
            kick(worker, now)
    return requests
