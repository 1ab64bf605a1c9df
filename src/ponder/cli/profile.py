"""`ponder profile`: measure this engine's step times and write the profile `ponder sim` reads."""

from __future__ import annotations

import argparse
from pathlib import Path

from ponder.errors import InvalidRequestError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("profile", help="measure step times and write a simulator profile")
    parser.add_argument("--model", default=None, help="model dir (default: the built-in model)")
    parser.add_argument("--output", "-o", default="profile.json")
    parser.add_argument("--max-num-batched-tokens", type=int, default=2048)
    parser.add_argument("--device", default=None)
    parser.add_argument("--quick", action="store_true", help="a few tiny shapes (tests, smoke runs)")
    parser.add_argument(
        "--grid",
        default=None,
        metavar="BATCHES:INPUT_LENS:OUTPUT_LEN",
        help="measure every (decode batch, prompt length) pair, e.g. 1,4,16:64,256:16",
    )
    parser.add_argument(
        "--from-step-log",
        nargs="+",
        default=None,
        metavar="FILE",
        help="fit from step logs a server wrote under PONDER_STEP_LOG instead of running the engine",
    )
    parser.add_argument(
        "--request-overhead-ms",
        type=float,
        default=0.0,
        help="fixed latency per request (HTTP, validation) the simulator adds before a worker",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ponder.profiling.step_model import fit

    if args.request_overhead_ms < 0:
        raise InvalidRequestError("--request-overhead-ms must be >= 0", param="request_overhead_ms")
    if args.from_step_log:
        from ponder.profiling.step_log import read_logs

        try:
            records = read_logs([Path(p) for p in args.from_step_log])
        except (OSError, ValueError, TypeError) as error:
            raise InvalidRequestError(f"bad step log: {error}", param="from_step_log") from error
        model = fit([(r.tokens, r.seqs, r.attn, r.sampled, r.seconds) for r in records])
        num_steps, device = len(records), "step log"
    else:
        model, num_steps, device = _measure(args)
    model = replace(model, request_overhead_s=args.request_overhead_ms / 1e3)
    model.save(args.output, device=device, num_steps=num_steps, budget=args.max_num_batched_tokens)
    print(f"{num_steps} steps measured; {model}; wrote {args.output}")
    return 0


def _measure(args: argparse.Namespace):
    from ponder.llm import LLM
    from ponder.profiling.runner import QUICK_SHAPES, grid_shapes, profile

    shapes = QUICK_SHAPES if args.quick else None
    if args.grid:
        try:
            batches, lens, out = args.grid.split(":")
            shapes = grid_shapes(
                [int(b) for b in batches.split(",")], [int(n) for n in lens.split(",")], int(out)
            )
        except ValueError as error:
            raise InvalidRequestError(f"bad --grid {args.grid!r}: {error}", param="grid") from error
        if not shapes or min(min(s) for s in shapes) < 1:
            raise InvalidRequestError("--grid values must be >= 1", param="grid")
    kwargs = {"max_num_batched_tokens": args.max_num_batched_tokens}
    if args.device:
        kwargs["device"] = args.device
    llm = LLM(args.model, **kwargs)
    model, rows = profile(llm.engine, shapes)
    return model, len(rows), str(llm.engine.device)
