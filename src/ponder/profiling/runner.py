"""Run the real engine over a grid of batch shapes and record every step's shape and time."""

from __future__ import annotations

import time

from ponder.engine.llm_engine import LLMEngine
from ponder.engine.sampling_params import SamplingParams
from ponder.profiling.step_model import StepModel, attn_work, fit

Row = tuple[int, int, float, float]


def measure_steps(engine: LLMEngine, shapes: list[tuple[int, int, int]], vocab: int = 600) -> list[Row]:
    """shapes: (batch, input_len, output_len). Wraps the scheduler to see each step's batch."""
    rows: list[Row] = []
    scheduler = engine.scheduler
    original = scheduler.schedule
    seen: list[tuple[int, int, float]] = []

    def schedule():
        batch = original()
        computed = [s.num_computed_tokens for s in batch.seqs]
        seen.append((batch.num_tokens, len(batch.seqs), attn_work(batch.num_new_tokens, computed)))
        return batch

    scheduler.schedule = schedule  # type: ignore[method-assign]
    try:
        counter = 0
        for batch, in_len, out_len in shapes:
            params = SamplingParams(max_tokens=out_len, ignore_eos=True, temperature=0.0)
            for _ in range(batch):
                prompt = [3 + (counter * 7 + i) % vocab for i in range(in_len)]
                engine.add_request(f"p{counter}", prompt, params)
                counter += 1
            while engine.has_unfinished_requests():
                seen.clear()
                start = time.perf_counter()
                engine.step()
                elapsed = time.perf_counter() - start
                if seen and seen[0][1]:
                    rows.append((*seen[0], elapsed))
    finally:
        scheduler.schedule = original  # type: ignore[method-assign]
    return rows


QUICK_SHAPES = [(1, 16, 2), (2, 32, 3), (4, 8, 4), (1, 64, 2)]
DEFAULT_SHAPES = [(1, 16, 4), (1, 128, 4), (1, 512, 4), (4, 64, 16), (8, 128, 16), (16, 32, 24), (2, 256, 8)]


def profile(
    engine: LLMEngine, shapes: list[tuple[int, int, int]] | None = None
) -> tuple[StepModel, list[Row]]:
    engine_shapes = shapes or DEFAULT_SHAPES
    measure_steps(engine, [(1, 16, 2)])  # warm-up
    rows = measure_steps(engine, engine_shapes)
    return fit(rows), rows
