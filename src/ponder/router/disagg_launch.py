"""`ponder serve --disagg XPYD` (or --prefill-workers N --decode-workers M): X prefill and Y decode
workers as local processes behind the disaggregated router; `ponder serve --role router
--prefill-url URL --decode-url URL`: the router alone, over workers started elsewhere."""

from __future__ import annotations

import argparse
import re
import sys

from ponder.errors import InvalidRequestError
from ponder.router.admin import install_admin_routes
from ponder.router.argv import replica_argv
from ponder.router.disagg import DisaggService, WorkerRegistry
from ponder.router.disagg_admin import DisaggWorkerAdmin
from ponder.router.disagg_app import build_disagg_app
from ponder.router.launch import load_tokenizer
from ponder.router.policies import make_policy
from ponder.router.prompts import PromptReader
from ponder.router.replicas import ExternalWorker, LocalReplica
from ponder.server.launcher import build_server

_XPYD = re.compile(r"^(\d+)P(\d+)D$", re.IGNORECASE)


def worker_counts(args: argparse.Namespace) -> tuple[int, int] | None:
    """(prefill, decode) workers to start here, or None when this is not a disaggregated launch."""
    spec = getattr(args, "disagg", None)
    prefill, decode = getattr(args, "prefill_workers", None), getattr(args, "decode_workers", None)
    if spec is None and prefill is None and decode is None:
        return None
    if spec is not None:
        match = _XPYD.match(spec)
        if not match or (prefill is not None or decode is not None):
            raise InvalidRequestError(
                f"--disagg expects XPYD such as 1P1D or 2P1D (without --prefill/--decode-workers), "
                f"got {spec!r}",
                param="disagg",
            )
        prefill, decode = int(match.group(1)), int(match.group(2))
    if prefill is None or decode is None or prefill < 1 or decode < 1:
        raise InvalidRequestError(
            "a disaggregated deployment needs --prefill-workers N and --decode-workers M, both >= 1",
            param="prefill_workers",
        )
    return prefill, decode


def check_disagg_args(args: argparse.Namespace) -> None:
    """Flag combinations that cannot work, refused before anything starts."""
    if getattr(args, "data_parallel_size", 1) > 1:
        raise InvalidRequestError(
            "--data-parallel-size and --disagg do not combine; use XPYD", param="disagg"
        )
    if getattr(args, "backend", "local") != "local":
        raise InvalidRequestError(
            "--disagg runs local worker processes only (--backend local)", param="backend"
        )
    if args.disagg_min_uncached_tokens < 0:
        raise InvalidRequestError(
            "--disagg-min-uncached-tokens must be >= 0", param="disagg_min_uncached_tokens"
        )


def run_disagg_router(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    check_disagg_args(args)
    registry = WorkerRegistry()
    counts = worker_counts(args)
    connector = args.kv_connector if args.kv_connector != "none" else "shm"
    argv: list[str] | None = None  # what a worker the router starts gets; None: URLs only
    if counts is not None:
        argv = replica_argv(parser, args)
        argv = _without(argv, "--kv-connector", "--kv-worker-name")
        for role, count in zip(("prefill", "decode"), counts):
            for i in range(count):
                name = f"{role}-{i}"
                extra = ["--role", role, "--kv-connector", connector, "--kv-worker-name", name]
                registry.add(role, LocalReplica(name, argv + extra))
    else:
        if not args.prefill_url or not args.decode_url:
            raise InvalidRequestError(
                "--role router needs --prefill-url and --decode-url (repeat each per worker)", param="role"
            )
        for role, urls in (("prefill", args.prefill_url), ("decode", args.decode_url)):
            for i, url in enumerate(urls):
                registry.add(role, ExternalWorker(f"{role}-{i}", url))
    block_size = getattr(args, "block_size", None) or 16
    service = DisaggService(
        registry,
        make_policy("least-load"),
        make_policy(args.router_policy, args.kv_aware_weight),
        PromptReader(load_tokenizer(args.model), block_size),
        min_uncached_tokens=args.disagg_min_uncached_tokens,
        failure_policy=args.kv_load_failure_policy,
    )
    app = build_disagg_app(service)
    admin = DisaggWorkerAdmin(service, argv, connector)
    install_admin_routes(app, admin, getattr(args, "api_key", None) or None, default_role="decode")
    num_prefill, num_decode = len(registry.of_role("prefill")), len(registry.of_role("decode"))
    print(
        f"ponder serve: disaggregated router ({num_prefill}P{num_decode}D, decode policy "
        f"{args.router_policy}) at http://{args.host}:{args.port}/v1",
        file=sys.stderr,
    )
    server = build_server(
        app,
        service,
        args.host,
        args.port,
        drain_timeout_s=args.drain_timeout,
        log_level=args.uvicorn_log_level,
    )
    server.run()
    return 0


def _without(argv: list[str], *flags: str) -> list[str]:
    out: list[str] = []
    skip = False
    for item in argv:
        if skip:
            skip = False
            continue
        if item in flags:
            skip = True
            continue
        out.append(item)
    return out
