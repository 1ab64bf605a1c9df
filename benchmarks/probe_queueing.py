"""Answer probes as ponder runs them vs. a baseline with one of their two mechanisms undone.

1. Queue order (`--baseline arrival`). When every sequence slot is taken, a probe queued in
   arrival order waits behind branches that have not started; by the time it runs its thought
   may have ended, and the tokens it was meant to save are spent. ponder queues probes ahead of
   waiting requests.
2. KV reuse (`--baseline no-kv-sharing`). A probe is the live thought plus a few tokens; ponder
   hands it the thought's KV, partly written last block included (`submit(prefix_of=...)`), so it
   computes only its own text. Without that, the prefix cache serves the full blocks only and
   every probe recomputes the tail of its thought.

This runs one strategy twice on the same problems and seeds, as ponder does and with the baseline
patched in, and prints accuracy, generated tokens per problem, prompt tokens computed and wall
time for both.

    OMP_NUM_THREADS=2 python benchmarks/probe_queueing.py --limit 2 --max-num-seqs 24 \\
        --strategy confidence:n=16,wave=4,probe_every=32,agree=1 --baseline arrival
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Iterator
from unittest import mock

from ponder.eval.report import summarize
from ponder.eval.runner import EvalConfig, evaluate
from ponder.llm import LLM
from ponder.reasoning.session import EngineSession
from ponder.reasoning.strategy_args import parse_strategy_arg
from ponder.tasks import FAMILIES


@contextlib.contextmanager
def probes_without(option: str) -> Iterator[None]:
    """EngineSession.submit ignoring one of its probe options: `ahead` or `prefix_of`."""
    submit = EngineSession.submit

    def baseline(self, prompt_token_ids, params, kind="branch", **options):
        options.pop(option, None)
        return submit(self, prompt_token_ids, params, kind, **options)

    with mock.patch.object(EngineSession, "submit", baseline):
        yield


BASELINES = {
    "arrival": ("probes in arrival order", "ahead"),
    "no-kv-sharing": ("probes without KV reuse", "prefix_of"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="default: the built-in model")
    parser.add_argument("--strategy", default="confidence:n=16,wave=4,probe_every=32,agree=1")
    parser.add_argument("--difficulty", default="hard")
    parser.add_argument("--limit", type=int, default=2, help="problems per family")
    parser.add_argument("--max-num-seqs", type=int, default=24, help="small: the engine is full")
    parser.add_argument("--baseline", choices=sorted(BASELINES), default="arrival")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    llm = LLM(args.model, dtype=args.dtype, max_num_seqs=args.max_num_seqs)
    config = EvalConfig(
        families=FAMILIES,
        difficulties=(args.difficulty,),
        limit=args.limit,
        concurrency=len(FAMILIES) * args.limit,
        progress=False,
    )
    results = {}
    baseline_label, option = BASELINES[args.baseline]
    for label, patch in (
        ("as ponder runs them", contextlib.nullcontext()),
        (baseline_label, probes_without(option)),
    ):
        start = time.perf_counter()
        with patch:
            [evaluation] = evaluate(llm.engine, [parse_strategy_arg(args.strategy)], config)
        overall = summarize(evaluation)[-1]
        results[label] = {
            "accuracy": overall.accuracy,
            "generated_tokens": overall.mean_generated_tokens,
            "probe_tokens": overall.mean_probe_tokens,
            "stopped_branches": overall.mean_stopped_branches,
            "prompt_tokens_computed": evaluation.engine.get("prompt_tokens_computed"),
            "wall_s": round(time.perf_counter() - start, 1),
        }
        print(f"{label:24s} {json.dumps(results[label])}", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "results": results}, handle, indent=2)


if __name__ == "__main__":
    main()
