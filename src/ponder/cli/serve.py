"""`ponder serve`: the OpenAI-compatible HTTP server; also the serving flags `chat` and `batch` share."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import TYPE_CHECKING

from ponder.cli.disagg import add_disagg_args, runs_disagg_router
from ponder.cli.flywheel import add_request_log_args, request_log_from_args
from ponder.engine.args import EngineArgs, parse_size
from ponder.errors import InvalidRequestError
from ponder.openai.reasoning_output import REASONING_OUTPUTS
from ponder.openai.settings import ServerSettings, parse_effort_budgets

if TYPE_CHECKING:
    from ponder.engine.async_engine import AsyncEngine
    from ponder.openai.hosting import HostedModel

BUILTIN_MODEL_NAME = "ponder"
BUILTIN_PATH = "builtin"  # what --model NAME=builtin calls the built-in model


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help="run the OpenAI-compatible HTTP server", description=_SERVE_HELP
    )
    add_model_arg(parser)
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to listen on all interfaces")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--api-key",
        default=os.environ.get("PONDER_API_KEY"),
        help="require 'Authorization: Bearer KEY' on /v1 routes (default: $PONDER_API_KEY)",
    )
    parser.add_argument(
        "--metrics-need-api-key",
        action="store_true",
        help="require the API key on /metrics too (it shows model names, load and token counts)",
    )
    parser.add_argument(
        "--served-model-name",
        nargs="+",
        default=None,
        help="names clients use in 'model' for MODEL (default: the model path, or 'ponder')",
    )
    parser.add_argument(
        "--model",
        dest="more_models",
        action="append",
        default=[],
        metavar="[NAME=]PATH",
        help="host another model beside MODEL, on its own engine, served as NAME (default: "
        "PATH); PATH 'builtin' is the built-in model. Repeat for more models",
    )
    parser.add_argument(
        "--reward-model",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a reward model (HF sequence-classification checkpoint) that best_of_n strategies "
        "may name; repeat for more",
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
    parser.add_argument(
        "--max-request-bytes",
        type=parse_size,
        default=ServerSettings.max_request_bytes,
        help="largest request body (e.g. 16MiB); larger ones get 413 before they are parsed",
    )
    parser.add_argument(
        "--request-body-budget",
        type=parse_size,
        default=ServerSettings.request_body_budget_bytes,
        help="request bodies held at once, in bytes (e.g. 256MiB); beyond it: 503 + Retry-After",
    )
    parser.add_argument("--uvicorn-log-level", default="info")
    add_router_args(parser)
    add_disagg_args(parser)  # ponder.cli.disagg
    add_request_log_args(parser)  # ponder.cli.flywheel
    EngineArgs.add_cli_args(parser)
    parser.set_defaults(handler=run_serve, serve_parser=parser)


def add_router_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("replicas and router (docs/distributed.md)")
    group.add_argument(
        "--data-parallel-size",
        type=int,
        default=1,
        help="run N replicas behind a router on --host/--port (each on its own port)",
    )
    group.add_argument(
        "--router-policy", choices=("round-robin", "least-load", "kv-aware"), default="kv-aware"
    )
    group.add_argument(
        "--kv-aware-weight",
        type=float,
        default=2.0,  # ponder.router.policies.DEFAULT_KV_AWARE_WEIGHT
        help="kv-aware cost = W x uncached prompt blocks + the replica's active blocks",
    )
    group.add_argument(
        "--backend", choices=("local", "ray"), default="local", help="replicas as processes or Ray actors"
    )
    group.add_argument("--ray-address", default=None, help="join this Ray cluster (default: start one)")
    group.add_argument(
        "--replica-health-timeout", type=float, default=1.0, help="s; 3 probes in a row timing out = hung"
    )
    group.add_argument(
        "--replica-stall-timeout",
        type=float,
        default=30.0,
        help="s without a byte from a replica with streams in flight = hung",
    )
    group.add_argument(
        "--replica-restart",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="restart dead or hung replicas (with backoff)",
    )


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
    group.add_argument(
        "--reasoning-output",
        choices=REASONING_OUTPUTS,
        default="separate",
        help="where a chat reply's thought goes unless the request sets reasoning_output: "
        "'separate' (the reasoning_content field), 'content' (inline between think markers, for "
        "clients and benchmarks that read only content) or 'both'",
    )


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    names = getattr(args, "served_model_name", None) or [args.model or BUILTIN_MODEL_NAME]
    return ServerSettings(
        served_model_names=tuple(names),
        model_path=args.model or BUILTIN_MODEL_NAME,
        api_key=getattr(args, "api_key", None) or None,
        protect_metrics=getattr(args, "metrics_need_api_key", False),
        max_num_seqs=args.max_num_seqs,
        max_queue_len=getattr(args, "max_queue_len", 1024),
        effort_budgets=parse_effort_budgets(args.reasoning_effort_budgets),
        default_thinking_budget=args.default_thinking_budget,
        reasoning_output=getattr(args, "reasoning_output", "separate"),
        role=getattr(args, "role", "colocated"),
        drain_timeout_s=getattr(args, "drain_timeout", 60.0),
        max_request_bytes=getattr(args, "max_request_bytes", ServerSettings.max_request_bytes),
        request_body_budget_bytes=getattr(
            args, "request_body_budget", ServerSettings.request_body_budget_bytes
        ),
        reward_models=dict(_named_paths(getattr(args, "reward_model", []), "--reward-model")),
    )


def more_models_from_args(args: argparse.Namespace, settings: ServerSettings) -> list[tuple[str, str]]:
    """(name, path) of each --model, checked before anything loads."""
    taken = set(settings.served_model_names)
    models = []
    for text in args.more_models:
        name, path = _split_named(text)
        name = name or (BUILTIN_MODEL_NAME if path == BUILTIN_PATH else path)
        if name in taken or name == "default":
            why = "means the requested model in ensembles" if name == "default" else "is taken"
            raise InvalidRequestError(
                f"--model {text!r}: the name {name!r} {why}; give it another as NAME=PATH",
                param="model",
            )
        taken.add(name)
        models.append((name, path))
    return models


def run_serve(args: argparse.Namespace) -> int:
    if runs_disagg_router(args):
        from ponder.router.disagg_launch import run_disagg_router

        return run_disagg_router(args, args.serve_parser)
    if getattr(args, "data_parallel_size", 1) > 1 or getattr(args, "backend", "local") == "ray":
        from ponder.router.launch import run_router

        return run_router(args, args.serve_parser)
    from ponder.server.app import build_app
    from ponder.server.launcher import build_server

    settings = settings_from_args(args)
    request_log = request_log_from_args(args)  # a bad --log-* flag fails before models load
    engine, more = load_engines(args, settings)
    app = build_app(
        engine, settings, more_models=more, request_log=request_log, load_engine=engine_loader(args)
    )
    hosted = [(settings.model_name, settings.model_path, engine)]
    hosted += [(model.names[0], model.path, model.engine) for model in more]
    for name, path, each in hosted:
        print(startup_line(name, path, each), file=sys.stderr)
    print(f"ponder serve: OpenAI API at http://{args.host}:{args.port}/v1 (--host, --port)", file=sys.stderr)
    server = build_server(
        app,
        app.state.router,
        args.host,
        args.port,
        drain_timeout_s=settings.drain_timeout_s,
        log_level=args.uvicorn_log_level,
    )
    server.run()
    return 0


def engine_loader(args: argparse.Namespace):
    """checkpoint path -> AsyncEngine with this server's engine flags (what a promotion loads)."""
    from ponder.engine.async_engine import AsyncEngine

    engine_args = EngineArgs.from_cli_args(args)
    return lambda path: AsyncEngine.from_engine_args(dataclasses.replace(engine_args, model=path))


def startup_line(name: str, path: str, engine: AsyncEngine) -> str:
    """What a server hosts, said once at startup: the model and where its memory went."""
    core = engine.engine
    blocks = core.stats().kv_blocks_total
    block_size = core.kv_layout.block_size
    dtype = str(core.dtype).removeprefix("torch.")
    return (
        f"ponder serve: model {name!r} ({path}) on {core.device.type}, {dtype}, "
        f"max model len {core.max_model_len}, KV cache {blocks} blocks x {block_size} = "
        f"{blocks * block_size} tokens ({blocks * core.kv_layout.bytes_per_block / 2**20:.0f} MiB)"
    )


def load_engines(args: argparse.Namespace, settings: ServerSettings) -> tuple[AsyncEngine, list[HostedModel]]:
    """MODEL's engine and a HostedModel per --model (names are checked before any loads)."""
    from ponder.engine.async_engine import AsyncEngine
    from ponder.openai.hosting import HostedModel

    more = more_models_from_args(args, settings)
    engine_args = EngineArgs.from_cli_args(args)

    def load(path: str | None, position: int) -> AsyncEngine:
        # Every engine sizes its own KV pool: --kv-cache-memory each on CPU. On a GPU the pool
        # is what is left under gpu_memory_utilization when it loads, so engine k of n may fill
        # up to k/n of it, and the models share the GPU evenly instead of the first taking it.
        fill = min(1.0, engine_args.gpu_memory_utilization * position / (1 + len(more)))
        return AsyncEngine.from_engine_args(
            dataclasses.replace(engine_args, model=path, gpu_memory_utilization=fill)
        )

    engine = load(args.model, 1)
    from ponder.profiling.step_log import attach_from_env

    # PONDER_STEP_LOG set: log step timings (docs/disaggregated.md)
    attach_from_env(engine.engine, getattr(args, "role", "colocated"))
    hosted = [
        HostedModel(load(None if path == BUILTIN_PATH else path, 2 + index), (name,), path)
        for index, (name, path) in enumerate(more)
    ]
    return engine, hosted


def _named_paths(pairs: list[str], option: str) -> list[tuple[str, str]]:
    named = []
    for text in pairs:
        name, path = _split_named(text)
        if not name:
            raise InvalidRequestError(f"{option} expects NAME=PATH, got {text!r}", param=option)
        named.append((name, path))
    return named


def _split_named(text: str) -> tuple[str | None, str]:
    """'NAME=PATH' -> (NAME, PATH); 'PATH' -> (None, PATH)."""
    name, equals, path = text.partition("=")
    if not equals:
        return None, text
    if not name or not path:
        raise InvalidRequestError(f"expected NAME=PATH, got {text!r}", param="model")
    return name, path


def add_model_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model", nargs="?", default=None, help="HF checkpoint dir (default: the built-in model)"
    )


_SERVE_HELP = (
    "Serve MODEL (and every --model) over an OpenAI-compatible API (/v1/chat/completions, "
    "/v1/completions, /v1/models, /health, /version, /metrics); requests pick a model by name. "
    "Reasoning models get their thinking in message.reasoning, and reasoning_strategy runs "
    "test-time scaling strategies; see docs/server.md."
)
