"""Run the real engine over a grid of batch shapes and record every step's shape and time."""

from __future__ import annotations

from ponder.engine.llm_engine import LLMEngine
from ponder.engine.sampling_params import SamplingParams
from ponder.profiling.step_log import StepLog
from ponder.profiling.step_model import StepModel, fit

Row = tuple[int, int, float, int, float]  # tokens, seqs, attn, sampled, seconds


def measure_steps(engine: LLMEngine, shapes: list[tuple[int, int, int]], vocab: int = 600) -> list[Row]:
    """shapes: (batch, input_len, output_len): `batch` requests at once, run to completion, so
    each shape gives prefill steps (chunked by the token budget) then decode steps of `batch`
    sequences at contexts input_len..input_len+output_len."""
    log = StepLog(engine)
    try:
        counter = 0
        for batch, in_len, out_len in shapes:
            params = SamplingParams(max_tokens=out_len, ignore_eos=True, temperature=0.0)
            for _ in range(batch):
                prompt = [3 + (counter * 7 + i) % vocab for i in range(in_len)]
                engine.add_request(f"p{counter}", prompt, params)
                counter += 1
            while engine.has_unfinished_requests():
                engine.step()
    finally:
        log.close()
    return log.rows()


QUICK_SHAPES = [(1, 16, 2), (2, 32, 3), (4, 8, 4), (1, 64, 2)]
DEFAULT_SHAPES = [(1, 16, 4), (1, 128, 4), (1, 512, 4), (4, 64, 16), (8, 128, 16), (16, 32, 24), (2, 256, 8)]


def grid_shapes(batches: list[int], input_lens: list[int], output_len: int) -> list[tuple[int, int, int]]:
    """Every (decode batch, context) pair: prefill chunks of each length, decodes of each batch."""
    return [(b, n, output_len) for b in batches for n in input_lens]


def profile(
    engine: LLMEngine, shapes: list[tuple[int, int, int]] | None = None
) -> tuple[StepModel, list[Row]]:
    engine_shapes = shapes or DEFAULT_SHAPES
    measure_steps(engine, [(1, 16, 2)])  # warm-up
    rows = measure_steps(engine, engine_shapes)
    return fit(rows), rows
