"""`ponder serve`, `ponder chat` and `ponder batch`: argument parsers and their handlers."""

from __future__ import annotations

import argparse
import os

from ponder.cli import add_engine_args, engine_kwargs
from ponder.server.settings import ServerSettings, parse_effort_budgets

BUILTIN_MODEL_NAME = "ponder"


def add_serve_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "serve", help="run the OpenAI-compatible HTTP server", description=_SERVE_HELP
    )
    _add_model_arg(parser)
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to listen on all interfaces")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--api-key",
        default=os.environ.get("PONDER_API_KEY"),
        help="require 'Authorization: Bearer KEY' on /v1 routes (default: $PONDER_API_KEY)",
    )
    parser.add_argument(
        "--served-model-name",
        nargs="+",
        default=None,
        help="names clients use in 'model' (default: the model path, or 'ponder')",
    )
    add_reasoning_args(parser)
    parser.add_argument(
        "--max-queue-len",
        type=int,
        default=1024,
        help="sequences that may wait beyond --max-num-seqs; more get 429 + Retry-After",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=60.0,
        help="seconds SIGTERM waits for in-flight requests before cancelling them",
    )
    parser.add_argument("--uvicorn-log-level", default="info")
    add_engine_args(parser)
    parser.set_defaults(handler=run_serve)
    return parser


def add_chat_parser(subparsers) -> argparse.ArgumentParser:
    from ponder.server.chat_cli import add_chat_args, run_chat

    parser = subparsers.add_parser(
        "chat", help="chat with a model in the terminal (thinking shown dimmed)"
    )
    _add_model_arg(parser)
    add_chat_args(parser)
    add_reasoning_args(parser)
    add_engine_args(parser)
    parser.set_defaults(handler=run_chat)
    return parser


def add_batch_parser(subparsers) -> argparse.ArgumentParser:
    from ponder.server.batch import add_batch_args, run_batch

    parser = subparsers.add_parser(
        "batch", help="run an OpenAI Batch API .jsonl file offline (resumable)"
    )
    add_batch_args(parser)
    add_reasoning_args(parser)
    add_engine_args(parser)
    parser.set_defaults(handler=run_batch)
    return parser


def add_reasoning_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reasoning")
    group.add_argument(
        "--reasoning-effort-budgets",
        default="",
        help="thinking budgets per reasoning_effort, e.g. 'low=256,medium=1024,high=none' "
        "(defaults: none=1 minimal=128 low=512 medium=2048 high=8192 xhigh=16384 max=none)",
    )
    group.add_argument(
        "--default-thinking-budget",
        type=int,
        default=None,
        help="thinking budget for requests that set neither thinking_budget nor reasoning_effort",
    )


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    names = getattr(args, "served_model_name", None) or [args.model or BUILTIN_MODEL_NAME]
    return ServerSettings(
        served_model_names=tuple(names),
        model_path=args.model or BUILTIN_MODEL_NAME,
        api_key=getattr(args, "api_key", None) or None,
        max_num_seqs=args.max_num_seqs,
        max_queue_len=getattr(args, "max_queue_len", 1024),
        effort_budgets=parse_effort_budgets(args.reasoning_effort_budgets),
        default_thinking_budget=args.default_thinking_budget,
        drain_timeout_s=getattr(args, "drain_timeout", 60.0),
    )


def run_serve(args: argparse.Namespace) -> int:
    from ponder.engine.async_engine import AsyncEngine
    from ponder.server.app import build_app
    from ponder.server.launcher import build_server

    settings = settings_from_args(args)
    engine = AsyncEngine.from_model(args.model, **engine_kwargs(args))
    app = build_app(engine, settings)
    server = build_server(
        app,
        args.host,
        args.port,
        drain_timeout_s=settings.drain_timeout_s,
        log_level=args.uvicorn_log_level,
    )
    server.run()
    return 0


def _add_model_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model", nargs="?", default=None, help="HF checkpoint dir (default: the built-in model)"
    )


_SERVE_HELP = (
    "Serve MODEL over an OpenAI-compatible API (/v1/chat/completions, /v1/completions, "
    "/v1/models, /health, /version, /metrics). Reasoning models get their thinking in "
    "message.reasoning; see docs/server.md."
)
