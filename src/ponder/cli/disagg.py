"""`ponder serve` flags of disaggregated prefill/decode (docs/disaggregated.md) and the choice of
what `serve` runs: a colocated server, a prefill or decode worker, or the disaggregated router."""

from __future__ import annotations

import argparse

from ponder.errors import InvalidRequestError

ROLES = ("colocated", "prefill", "decode", "router")


def add_disagg_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("disaggregated prefill/decode (docs/disaggregated.md)")
    group.add_argument(
        "--role",
        choices=ROLES,
        default="colocated",
        help="prefill / decode: a worker of a disaggregated deployment (needs --kv-connector); "
        "router: the router over --prefill-url / --decode-url workers",
    )
    group.add_argument(
        "--disagg",
        default=None,
        metavar="XPYD",
        help="start X prefill + Y decode workers and the router, e.g. 1P1D",
    )
    group.add_argument("--prefill-workers", type=int, default=None, help="like --disagg: prefill workers")
    group.add_argument("--decode-workers", type=int, default=None, help="like --disagg: decode workers")
    group.add_argument("--prefill-url", action="append", default=[], help="--role router: a prefill worker")
    group.add_argument("--decode-url", action="append", default=[], help="--role router: a decode worker")
    group.add_argument(
        "--disagg-min-uncached-tokens",
        type=int,
        default=64,
        help="skip the prefill hop when fewer prompt tokens than this are not cached on the decode worker",
    )


def runs_disagg_router(args: argparse.Namespace) -> bool:
    """True for `--role router` and `--disagg` / `--prefill-workers`; checks a worker's flags."""
    from ponder.router.disagg_launch import worker_counts

    role = getattr(args, "role", "colocated")
    if role in ("prefill", "decode"):
        if getattr(args, "kv_connector", "none") == "none":
            raise InvalidRequestError(
                f"--role {role} needs --kv-connector shm or torch", param="kv_connector"
            )
        if worker_counts(args) is not None or args.prefill_url or args.decode_url:
            raise InvalidRequestError(
                f"--role {role} is one worker: --disagg, --prefill-url and --decode-url belong to the router",
                param="role",
            )
        return False
    if role == "router":
        return True
    return worker_counts(args) is not None
