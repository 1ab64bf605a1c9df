"""Runs one benchmark at one request rate: arrivals, the concurrency cap, and the progress bar."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import replace

import httpx
import numpy as np
from tqdm import tqdm

from ponder.bench.arrival import arrival_offsets
from ponder.bench.client import send_request
from ponder.bench.config import LoadPattern, Target
from ponder.bench.datasets import BenchPrompt
from ponder.bench.records import RequestRecord, RunResult
from ponder.bench.tokens import TextTokenizer


async def run_at_rate(
    client: httpx.AsyncClient,
    target: Target,
    prompts: list[BenchPrompt],
    rate: float,
    load: LoadPattern,
    num_requests: int,
    tokenizer: TextTokenizer | None,
    show_progress: bool = False,
) -> RunResult:
    """Send `num_requests` requests (or, with load.duration_s, keep sending for that long)."""
    slots = asyncio.Semaphore(load.max_concurrency) if load.max_concurrency else None
    # With an infinite rate every request has arrived at once, so the dispatcher itself may
    # wait for a free slot; at a finite rate requests queue for slots and arrivals stay on time.
    dispatcher_waits = slots is not None and math.isinf(rate)
    total = None if load.duration_s else num_requests
    label = "inf" if math.isinf(rate) else f"{rate:g}"
    bar = tqdm(total=total, desc=f"rate {label} req/s", unit="req", disable=not show_progress)

    async def send(index: int, prompt: BenchPrompt, holds_slot: bool) -> RequestRecord:
        try:
            if slots is not None and not holds_slot:
                await slots.acquire()
            return await send_request(client, target, prompt, index, run_start, tokenizer)
        finally:
            if slots is not None:
                slots.release()
            bar.update(1)

    tasks: list[asyncio.Task[RequestRecord]] = []
    run_start = time.perf_counter()
    offsets = arrival_offsets(rate, load.burstiness, np.random.default_rng(load.seed))
    for index, offset in enumerate(offsets):
        if _arrivals_done(index, offset, num_requests, load.duration_s, run_start):
            break
        delay = run_start + offset - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if dispatcher_waits:
            assert slots is not None
            await slots.acquire()
            if _arrivals_done(index, 0.0, num_requests, load.duration_s, run_start):
                slots.release()
                break
        prompt = prompts[index % len(prompts)]
        tasks.append(asyncio.create_task(send(index, prompt, dispatcher_waits)))
    records = list(await asyncio.gather(*tasks))
    duration = time.perf_counter() - run_start
    bar.close()
    return RunResult(request_rate=rate, duration_s=duration, records=records)


def _arrivals_done(
    index: int, offset: float, num_requests: int, duration_s: float | None, run_start: float
) -> bool:
    if duration_s is None:
        return index >= num_requests
    return offset >= duration_s or time.perf_counter() - run_start >= duration_s


WARM_UP_MAX_TOKENS = 16


async def warm_up(
    client: httpx.AsyncClient,
    target: Target,
    prompts: list[BenchPrompt],
    num_warmups: int,
    tokenizer: TextTokenizer | None,
) -> list[RequestRecord]:
    """Sequential requests whose results are thrown away: connections, caches and JIT warm up.

    Each is marked at its start, so it cannot seed the server's prefix cache with a prompt that
    is measured later, and is cut to a few tokens: a reasoning workload's 4k-token warm-up would
    cost the run half a minute and warm nothing more.
    """
    start = time.perf_counter()
    records = []
    for index in range(num_warmups):
        prompt = prompts[index % len(prompts)]
        marked = replace(
            prompt,
            text=f"(warm-up {index}) {prompt.text}",
            output_len=min(prompt.output_len, WARM_UP_MAX_TOKENS),
            check=None,
        )
        records.append(await send_request(client, target, marked, index, start, tokenizer))
    return records
