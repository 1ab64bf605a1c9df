"""Rebuild a replica's `ponder serve` command line from the router's parsed arguments: every
option the user set, less the router's own and the listening address (each replica has its own)."""

from __future__ import annotations

import argparse

ROUTER_ONLY = frozenset(
    {"data_parallel_size", "router_policy", "kv_aware_weight", "backend", "ray_address", "host", "port"}
    | {"replica_health_timeout", "replica_stall_timeout", "replica_restart"}
    # disaggregated serving (router/disagg_launch.py)
    | {"role", "disagg", "prefill_workers", "decode_workers", "prefill_url", "decode_url"}
    | {"disagg_min_uncached_tokens"}
)


def replica_argv(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    argv: list[str] = []
    positionals: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.dest in ROUTER_ONLY:
            continue
        if action.dest == "handler" or not hasattr(args, action.dest):
            continue
        value = getattr(args, action.dest)
        if value == action.default or value is None:
            continue
        if not action.option_strings:
            positionals.extend(value if isinstance(value, list) else [str(value)])
            continue
        flag = (
            action.option_strings[-1]
            if action.option_strings[-1].startswith("--")
            else action.option_strings[0]
        )
        if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
            argv.append(flag)
        elif isinstance(action, argparse.BooleanOptionalAction):
            argv.append(flag if value else "--no-" + flag.removeprefix("--"))
        elif isinstance(action, argparse._AppendAction):
            for item in value:
                argv += [flag, str(item)]
        elif isinstance(value, list | tuple):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, str(value)]
    return positionals + argv
