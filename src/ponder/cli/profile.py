"""`ponder profile`: measure this engine's step times and write the profile `ponder sim` reads."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("profile", help="measure step times and write a simulator profile")
    parser.add_argument("--model", default=None, help="model dir (default: the built-in model)")
    parser.add_argument("--output", "-o", default="profile.json")
    parser.add_argument("--max-num-batched-tokens", type=int, default=2048)
    parser.add_argument("--device", default=None)
    parser.add_argument("--quick", action="store_true", help="a few tiny shapes (tests, smoke runs)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ponder.llm import LLM
    from ponder.profiling.runner import QUICK_SHAPES, profile

    kwargs = {"max_num_batched_tokens": args.max_num_batched_tokens}
    if args.device:
        kwargs["device"] = args.device
    llm = LLM(args.model, **kwargs)
    model, rows = profile(llm.engine, QUICK_SHAPES if args.quick else None)
    model.save(
        args.output, device=str(llm.engine.device), num_steps=len(rows), budget=args.max_num_batched_tokens
    )
    print(f"{len(rows)} steps measured; {model}; wrote {args.output}")
    return 0
