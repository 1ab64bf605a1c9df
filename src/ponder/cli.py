"""The `ponder` command: generate, serve, chat, batch, bench, eval, revote, train."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable

from ponder.errors import PonderError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {
    "": 1,
    "k": 10**3,
    "m": 10**6,
    "g": 10**9,
    "t": 10**12,
    "ki": 2**10,
    "mi": 2**20,
    "gi": 2**30,
    "ti": 2**40,
}


def parse_size(text: str) -> int:
    """'2GiB', '512MB', '1e9'-free plain bytes -> bytes."""
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (examples: 2GiB, 512MB, 1048576)")
    unit = (match.group(2) or "").lower().rstrip("b")
    return int(float(match.group(1)) * _UNITS[unit])


def add_engine_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("engine")
    group.add_argument(
        "--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"]
    )
    group.add_argument("--max-model-len", type=int, default=None)
    group.add_argument("--max-num-seqs", type=int, default=256)
    group.add_argument("--max-num-batched-tokens", type=int, default=2048)
    group.add_argument("--block-size", type=int, default=16)
    group.add_argument(
        "--no-enable-prefix-caching", dest="enable_prefix_caching", action="store_false"
    )
    group.add_argument(
        "--kv-cache-memory",
        type=parse_size,
        default=None,
        help="bytes for the KV cache, e.g. 2GiB (default: 1GiB on CPU)",
    )
    group.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    group.add_argument("--scheduling-policy", default="fcfs", choices=["fcfs", "priority"])
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    group.add_argument("--enforce-eager", action="store_true", help="no CUDA graphs (GPU)")
    group.add_argument(
        "--async-scheduling",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="prepare step N+1 while the GPU runs step N (default: on with CUDA, off on CPU)",
    )


def engine_kwargs(args: argparse.Namespace) -> dict:
    names = (
        "dtype",
        "max_model_len",
        "max_num_seqs",
        "max_num_batched_tokens",
        "block_size",
        "enable_prefix_caching",
        "kv_cache_memory",
        "gpu_memory_utilization",
        "scheduling_policy",
        "seed",
        "device",
        "enforce_eager",
        "async_scheduling",
    )
    return {name: getattr(args, name) for name in names}


def _add_generate(subparsers) -> None:
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
    add_engine_args(parser)
    parser.set_defaults(handler=_run_generate)


def _run_generate(args: argparse.Namespace) -> int:
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
    llm = LLM(args.model, **engine_kwargs(args))
    if args.chat:
        output = llm.chat([{"role": "user", "content": args.prompt}], params)[0]
    else:
        output = llm.generate([args.prompt], params)[0]
    for completion in output.outputs:
        if len(output.outputs) > 1:
            print(f"--- sample {completion.index} ({completion.finish_reason})")
        print(completion.text)
    return 0


def _add_server_commands(subparsers) -> None:
    from ponder.server.cli import add_batch_parser, add_chat_parser, add_serve_parser

    add_serve_parser(subparsers)
    add_chat_parser(subparsers)
    add_batch_parser(subparsers)


def _add_bench(subparsers) -> None:
    from ponder.bench.cli import add_bench_parser

    add_bench_parser(subparsers)


def _add_eval(subparsers) -> None:
    from ponder.eval.cli import add_eval_parser
    from ponder.eval.revote_cli import add_revote_parser

    add_eval_parser(subparsers)
    add_revote_parser(subparsers)


def _add_train(subparsers) -> None:
    from ponder.train.cli import add_train_parser

    add_train_parser(subparsers)


_SUBCOMMANDS: list[Callable] = [_add_generate, _add_server_commands, _add_bench, _add_eval, _add_train]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ponder", description="A reasoning-first LLM inference engine."
    )
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("--log-level", default="WARNING")
    subparsers = parser.add_subparsers(dest="command", required=True)
    unavailable = []
    for add in _SUBCOMMANDS:
        try:
            add(subparsers)
        except ImportError as error:  # an optional extra is missing: the other commands still work
            unavailable.append(f"{add.__name__.removeprefix('_add_')} ({error})")
    if unavailable:
        parser.epilog = "Not available here (install the extra): " + "; ".join(unavailable)
    return parser


def _version() -> str:
    from ponder import __version__

    return f"ponder {__version__}"


def main(argv: list[str] | None = None) -> int:
    import logging

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.handler(args)
    except PonderError as error:
        print(f"ponder {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
