"""`ponder generate`: print a completion for one prompt (offline, no server)."""

from __future__ import annotations

import argparse

from ponder.engine.args import EngineArgs


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("generate", help="print a completion for one prompt")
    parser.add_argument("prompt", help="the prompt text")
    parser.add_argument("--model", default=None, help="HF checkpoint dir (default: built-in model)")
    parser.add_argument("--chat", action="store_true", help="wrap the prompt in the chat template")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--n", type=int, default=1)
    parser.add_argument("--sample-seed", type=int, default=None, help="per-request sampling seed")
    EngineArgs.add_cli_args(parser)
    parser.set_defaults(handler=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    from ponder.engine.sampling_params import SamplingParams
    from ponder.llm import LLM

    params = SamplingParams(
        n=args.n,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        max_tokens=args.max_tokens,
        seed=args.sample_seed,
    )
    llm = LLM.from_engine_args(EngineArgs.from_cli_args(args))
    if args.chat:
        output = llm.chat([{"role": "user", "content": args.prompt}], params)[0]
    else:
        output = llm.generate([args.prompt], params)[0]
    for completion in output.outputs:
        if len(output.outputs) > 1:
            print(f"--- sample {completion.index} ({completion.finish_reason})")
        print(completion.text)
    return 0
