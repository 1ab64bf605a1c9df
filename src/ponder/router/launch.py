"""`ponder serve --data-parallel-size N`: N replicas (local processes or Ray actors) behind the
router on --host/--port; SIGTERM drains (new requests refused, in-flight ones finish), then stops
the replicas, which drain too."""

from __future__ import annotations

import argparse
import logging
import sys

from ponder.engine.tokenizer import Tokenizer
from ponder.router.admin import install_admin_routes
from ponder.router.app import build_router_app
from ponder.router.argv import replica_argv
from ponder.router.health import HealthPolicy
from ponder.router.policies import make_policy
from ponder.router.prompts import PromptReader
from ponder.router.registry import LocalSpawner, RaySpawner, WorkerRegistry
from ponder.router.replicas import LocalReplica, ReplicaHandle
from ponder.router.service import RouterService
from ponder.server.launcher import build_server

logger = logging.getLogger("ponder.router")


def make_handles(args: argparse.Namespace, argv: list[str]) -> tuple[list[ReplicaHandle], object | None]:
    n = args.data_parallel_size
    if args.backend == "ray":
        from ponder.router.ray_backend import RayCluster

        gpus = float(getattr(args, "tensor_parallel_size", 1) or 1) if _wants_gpu(args) else 0.0
        cluster = RayCluster(args.ray_address, n, gpus=gpus)
        return list(cluster.replicas([argv] * n)), cluster
    return [LocalReplica(f"replica-{i}", argv) for i in range(n)], None


def health_policy(args: argparse.Namespace) -> HealthPolicy:
    return HealthPolicy(
        probe_timeout_s=getattr(args, "replica_health_timeout", 1.0),
        stall_timeout_s=getattr(args, "replica_stall_timeout", 30.0),
        restart=getattr(args, "replica_restart", True),
    )


def _wants_gpu(args: argparse.Namespace) -> bool:
    device = getattr(args, "device", None)
    if device:
        return str(device).startswith("cuda")
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def load_tokenizer(model: str | None) -> Tokenizer | None:
    from ponder.assets import default_model_dir

    try:
        return Tokenizer.from_dir(model or default_model_dir())
    except Exception as error:  # routing still works, on load alone
        logger.warning("router: no tokenizer for %s (%s); kv-aware routing sees no prefixes", model, error)
        return None


def run_router(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    argv = replica_argv(parser, args)
    handles, cluster = make_handles(args, argv)
    policy = make_policy(args.router_policy, args.kv_aware_weight)
    block_size = getattr(args, "block_size", None) or 16
    reader = PromptReader(load_tokenizer(args.model), block_size)
    service = RouterService(handles, policy, reader, health_policy=health_policy(args))
    app = build_router_app(service)
    spawner = RaySpawner(cluster) if cluster is not None else LocalSpawner()
    registry = WorkerRegistry(service, spawner, argv)
    install_admin_routes(app, registry, getattr(args, "api_key", None) or None)
    app.state.registry = registry
    print(
        f"ponder serve: router ({args.router_policy}) over {len(handles)} {args.backend} replicas "
        f"at http://{args.host}:{args.port}/v1",
        file=sys.stderr,
    )
    server = build_server(
        app,
        service,
        args.host,
        args.port,
        drain_timeout_s=getattr(args, "drain_timeout", 60.0),
        log_level=args.uvicorn_log_level,
    )
    try:
        server.run()
    finally:
        if cluster is not None:
            cluster.close()  # type: ignore[attr-defined]
    return 0
