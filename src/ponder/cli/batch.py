"""`ponder batch in.jsonl -o out.jsonl`: an OpenAI Batch API file run offline (resumable)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from pathlib import Path

from ponder.engine.args import EngineArgs


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from ponder.cli.serve import add_reasoning_args

    parser = subparsers.add_parser("batch", help="run an OpenAI Batch API .jsonl file offline (resumable)")
    parser.add_argument("input", type=Path, help="requests, one OpenAI Batch API line each")
    parser.add_argument("-o", "--output", type=Path, required=True, help="results (.jsonl)")
    parser.add_argument("--model", default=None, help="HF checkpoint dir (default: built-in model)")
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=None,
        help="requests in the engine at once (default: 4 x --max-num-seqs)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_reasoning_args(parser)
    EngineArgs.add_cli_args(parser)
    parser.set_defaults(handler=run_batch)


def run_batch(args: argparse.Namespace) -> int:
    from ponder.cli.serve import settings_from_args
    from ponder.engine.async_engine import AsyncEngine
    from ponder.openai.batch import process_file
    from ponder.openai.service import OpenAIService

    # One model answers whatever `model` a line names; every line is admitted (no 429s offline).
    settings = dataclasses.replace(settings_from_args(args), accept_any_model=True, max_queue_len=1 << 30)
    concurrency = args.max_concurrency or 4 * args.max_num_seqs

    async def main() -> tuple[int, int]:
        engine = AsyncEngine.from_engine_args(EngineArgs.from_cli_args(args))
        try:
            service = OpenAIService.for_engine(engine, settings)
            return await process_file(
                service,
                args.input,
                args.output,
                concurrency=concurrency,
                show_progress=not args.no_progress,
            )
        finally:
            await engine.shutdown()

    done, failed = asyncio.run(main())
    print(f"ponder batch: {done} written to {args.output} ({failed} with errors)", file=sys.stderr)
    return 0
