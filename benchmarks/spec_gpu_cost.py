"""Cost of verifying K drafts vs one decode step, through the engine's ModelRunner (paged KV).

Usage (from the repo root):
    python benchmarks/spec_gpu_cost.py --shape qwen3-0.6b qwen3-8b --out R      # CUDA, bf16
    python benchmarks/spec_gpu_cost.py --shape tiny --out R                      # CPU smoke run
    python benchmarks/spec_gpu_cost.py --shape builtin --threads 1 --out R       # the built-in model

Shapes are benchmarks/gpu_serving.py's (random-init bf16 Qwen3 checkpoints written by its
`make_checkpoint` into --ckpt-dir/<shape>, reused when already there) plus `builtin` (the bundled
ponder-reasoner). For every batch size, each sequence has --context tokens of KV; the steps timed
are the ones the engine runs under speculation:
  decode        one token per sequence, as the engine runs it (CUDA graph replay on a GPU)
  decode-eager  the same without the graph (what a verify step is compared with kernel-wise)
  verify-K      the last token plus K drafts per sequence in one forward, replaying the verify
                CUDA graphs the engine captures under speculation (1 + K tokens per sequence)
  verify-K-eager  the same forward without a graph (the engine before verify graphs)
They are interleaved round by round (--repeats rounds of --iters steps each) and the median of
the rounds is reported, with `vs decode` and the cost per draft token c = (t / t_decode - 1) / K,
the quantity the adaptive switch (engine/spec/cost.py) measures online. Speculation with
acceptance a pays when (1 + a + ... + a^K) > 1 + c K. Writes spec_gpu_cost.json into --out.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_serving import SHAPES, make_checkpoint  # noqa: E402

from ponder.assets import default_model_dir  # noqa: E402
from ponder.engine.args import EngineArgs  # noqa: E402
from ponder.engine.cuda_graphs import StepGraphs  # noqa: E402
from ponder.engine.llm_engine import LLMEngine  # noqa: E402
from ponder.engine.sampling_params import SamplingParams  # noqa: E402
from ponder.engine.scheduler import ScheduledBatch  # noqa: E402

_PARAMS = SamplingParams(max_tokens=None)


@dataclass(eq=False)
class _Seq:
    """What ModelRunner reads off a Sequence (like the draft proposer's stand-in)."""

    token_ids: list[int]
    num_prompt_tokens: int
    num_computed_tokens: int
    block_table: list[int]
    spec_token_ids: list[int] = field(default_factory=list)
    params: SamplingParams = field(default_factory=lambda: _PARAMS)

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)


def model_dir(shape: str, ckpt_dir: Path) -> Path:
    if shape == "builtin":
        return default_model_dir()
    path = ckpt_dir / shape
    if not (path / "config.json").is_file():
        make_checkpoint(shape, path)
        gc.collect()  # the writer's model: free its GPU memory before the engine loads the copy
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return path


def step_batch(batch_size: int, context: int, k: int, block_size: int, vocab: int) -> ScheduledBatch:
    """batch_size sequences with `context` tokens, the last one not yet computed, plus k drafts;
    each owns distinct blocks for context + k positions."""
    blocks_per_seq = -(-(context + k) // block_size)
    seqs = []
    for index in range(batch_size):
        tokens = [(7 * index + 13 * pos) % (vocab - 1) + 1 for pos in range(context)]
        table = list(range(index * blocks_per_seq, (index + 1) * blocks_per_seq))
        drafts = [(tokens[-1] + 1 + j) % (vocab - 1) + 1 for j in range(k)]
        seqs.append(_Seq(tokens, context // 2, context - 1, table, drafts))
    return ScheduledBatch(seqs=seqs, num_new_tokens=[1 + k] * batch_size)  # type: ignore[arg-type]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(
    engine: LLMEngine,
    batches: dict[str, ScheduledBatch],
    graphs: dict[str, tuple[StepGraphs | None, StepGraphs | None]],
    iters: int,
    repeats: int,
) -> dict:
    """graphs: per step name, the (decode, verify) graph sets the runner replays from."""
    runner = engine.runner
    device = engine.device
    kept = runner.decode_graphs, runner.verify_graphs

    def run(name: str) -> None:
        runner.decode_graphs, runner.verify_graphs = graphs[name]
        runner.execute(batches[name])

    # On a CPU, the process's CPU time: a shared machine's other load swings wall time more
    # than the effect measured (as engine/spec/cost.py does).
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    rounds: dict[str, list[float]] = {name: [] for name in batches}
    for name in batches:  # warm-up (the first eager multi-token step compiles / allocates)
        for _ in range(3):
            run(name)
    synchronize(device)
    for _ in range(repeats):
        for name in batches:
            synchronize(device)
            start = clock()
            for _ in range(iters):
                run(name)
            synchronize(device)
            rounds[name].append((clock() - start) / iters)
    runner.decode_graphs, runner.verify_graphs = kept
    return {name: statistics.median(times) for name, times in rounds.items()}


def capture_verify_graphs(engine: LLMEngine, k: int, max_batch_size: int) -> StepGraphs | None:
    """The graphs the engine captures for K drafts (ModelRunner under speculation)."""
    decode = engine.runner.decode_graphs
    if decode is None:
        return None
    graphs = decode.sibling(max_batch_size, 1 + k)
    graphs.capture(pool=decode.pool)
    return graphs


def measure_shape(shape: str, args: argparse.Namespace) -> list[dict]:
    path = model_dir(shape, Path(args.ckpt_dir))
    batch_sizes, ks = args.batch_sizes, args.ks
    block_size = 16
    blocks = max(batch_sizes) * (-(-(args.context + max(ks)) // block_size)) + 8
    knobs = dict(
        model=str(path),
        num_kv_blocks=blocks,
        max_model_len=args.context + max(ks) + 16,
        max_num_seqs=max(batch_sizes),
        block_size=block_size,
        enable_prefix_caching=False,
    )
    if args.dtype:
        knobs["dtype"] = args.dtype
    if args.device:
        knobs["device"] = args.device
    engine = LLMEngine(EngineArgs.from_kwargs(**knobs).create_engine_config())
    vocab = engine.arch.vocab_size
    decode_graphs = engine.runner.decode_graphs
    verify_graphs = {k: capture_verify_graphs(engine, k, max(batch_sizes)) for k in ks}
    rows = []
    for batch_size in batch_sizes:
        batches = {"decode": step_batch(batch_size, args.context, 0, block_size, vocab)}
        graphs: dict[str, tuple[StepGraphs | None, StepGraphs | None]] = {"decode": (decode_graphs, None)}
        if decode_graphs is not None:
            batches["decode-eager"] = batches["decode"]
            graphs["decode-eager"] = (None, None)
        for k in ks:
            batches[f"verify-{k}"] = step_batch(batch_size, args.context, k, block_size, vocab)
            graphs[f"verify-{k}"] = (decode_graphs, verify_graphs[k])
            if verify_graphs[k] is not None:
                batches[f"verify-{k}-eager"] = batches[f"verify-{k}"]
                graphs[f"verify-{k}-eager"] = (decode_graphs, None)
        seconds = time_steps(engine, batches, graphs, args.iters, args.repeats)
        base = seconds["decode"]
        for name, value in seconds.items():
            k = int(name.split("-")[1]) if name.startswith("verify") else 0
            rows.append(
                {
                    "shape": shape,
                    "batch_size": batch_size,
                    "step": name,
                    "k": k,
                    "ms": value * 1e3,
                    "vs_decode": value / base,
                    "cost_per_draft": (value / base - 1.0) / k if k else None,
                }
            )
    engine.shutdown()
    del engine
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return rows


def device_name(device: str | None) -> str:
    if (device or ("cuda" if torch.cuda.is_available() else "cpu")) == "cuda":
        return torch.cuda.get_device_name()
    return f"CPU ({platform.processor() or platform.machine()}), {torch.get_num_threads()} threads"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", nargs="+", default=["qwen3-0.6b", "qwen3-8b"],
                        choices=[*SHAPES, "builtin"])  # fmt: skip
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--ks", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--context", type=int, default=1024, help="KV tokens per sequence")
    parser.add_argument("--iters", type=int, default=20, help="steps per timed round")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (median)")
    parser.add_argument("--ckpt-dir", default="/tmp/ponder-spec-ckpt")
    parser.add_argument("--dtype", default=None, help="default: bfloat16 on CUDA, float32 on CPU")
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None, help="directory for spec_gpu_cost.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.dtype is None:  # bf16 matmuls are slow on CPUs without AMX: time float32 there
        on_cuda = (args.device or ("cuda" if torch.cuda.is_available() else "cpu")) == "cuda"
        args.dtype = "bfloat16" if on_cuda else "float32"
    start = time.perf_counter()
    rows = [row for shape in args.shape for row in measure_shape(shape, args)]
    device = device_name(args.device)
    print(f"\n{device}, torch {torch.__version__}; context {args.context} tokens per sequence, "
          f"{args.repeats} rounds x {args.iters} steps (median round)")  # fmt: skip
    print("| shape | batch | step | ms/step | vs decode | cost per draft token |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        cost = f"{row['cost_per_draft']:.3f}" if row["cost_per_draft"] is not None else "-"
        print(f"| {row['shape']} | {row['batch_size']} | {row['step']} | {row['ms']:.3f} "
              f"| {row['vs_decode']:.2f}x | {cost} |")  # fmt: skip
    print(f"total {time.perf_counter() - start:.1f} s")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        result = {"device": device, "torch": torch.__version__, "args": vars(args), "rows": rows}
        (out / "spec_gpu_cost.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
