"""Routing policies: which replica takes a request. Load is the router's own count, updated at
pick time (Balancer.assign), so a burst never reads a stale load and piles onto one replica."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ponder.errors import InvalidRequestError
from ponder.router.prefix import PrefixIndex

POLICIES = ("round-robin", "least-load", "kv-aware")
# A prompt block not cached on a replica counts twice an active block there: computing it once is
# not the whole cost, as sending a conversation's turn elsewhere also gives up its cached KV for
# every later turn. At 1.0, one fresh prompt in flight on the replica holding a conversation
# (its blocks ~ the conversation's) was enough to move the next turn away and recompute it
# (benchmarks/replicas.py: hit rate 48-62% at 1.0, 71% = all kept at 2.0 and 3.0, of 71% possible).
DEFAULT_KV_AWARE_WEIGHT = 2.0


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass
class ReplicaState:
    index: int
    name: str
    healthy: bool = True
    role: str = "colocated"  # | "prefill" | "decode" (disaggregated serving)
    draining: bool = False
    in_flight: int = 0
    outstanding_tokens: int = 0  # prompt + max output tokens of the requests in flight
    active_blocks: int = 0  # KV blocks the requests in flight add (not counting cached prefixes)
    routed: int = 0
    prefix: PrefixIndex = field(default_factory=PrefixIndex)

    @property
    def available(self) -> bool:
        return self.healthy and not self.draining


@dataclass(frozen=True)
class RoutedRequest:
    prompt_tokens: int
    max_tokens: int
    block_size: int = 16
    block_hashes: tuple[int, ...] = ()  # of the prompt's full blocks (prompt_block_hashes)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.max_tokens

    @property
    def prompt_blocks(self) -> int:
        return cdiv(self.prompt_tokens, self.block_size)

    @property
    def blocks(self) -> int:
        return cdiv(self.tokens, self.block_size)


class Policy(Protocol):
    def pick(self, replicas: Sequence[ReplicaState], request: RoutedRequest) -> ReplicaState: ...


class _Rotating:
    """Ties go round the replicas instead of always to the first."""

    def __init__(self) -> None:
        self._turn = 0

    def _rotate(self, ties: Sequence[ReplicaState]) -> ReplicaState:
        choice = ties[self._turn % len(ties)]
        self._turn += 1
        return choice


class RoundRobin(_Rotating):
    def pick(self, replicas: Sequence[ReplicaState], request: RoutedRequest) -> ReplicaState:
        return self._rotate(replicas)


class LeastLoad(_Rotating):
    """Fewest outstanding tokens (prompt + max output of what is in flight there)."""

    def pick(self, replicas: Sequence[ReplicaState], request: RoutedRequest) -> ReplicaState:
        low = min(r.outstanding_tokens for r in replicas)
        return self._rotate([r for r in replicas if r.outstanding_tokens == low])


class KVAware(_Rotating):
    """cost = weight x prompt blocks not cached there + its active blocks (the blocks its requests
    in flight add: uncached prompt + output); lowest wins. A shared system prompt cached on one
    replica draws requests there only until that replica's extra load outweighs computing the
    prompt elsewhere."""

    def __init__(self, weight: float = DEFAULT_KV_AWARE_WEIGHT):
        super().__init__()
        if weight < 0:
            raise InvalidRequestError("--kv-aware-weight must be >= 0", param="kv_aware_weight")
        self.weight = weight

    def cost(self, replica: ReplicaState, request: RoutedRequest, now: float) -> float:
        uncached = request.prompt_blocks - replica.prefix.cached_blocks(request.block_hashes, now)
        return self.weight * uncached + replica.active_blocks

    def pick(self, replicas: Sequence[ReplicaState], request: RoutedRequest) -> ReplicaState:
        now = time.monotonic()
        costs = [self.cost(r, request, now) for r in replicas]
        low = min(costs)
        ties = [r for r, c in zip(replicas, costs) if c == low]
        fewest = min(r.in_flight for r in ties)
        return self._rotate([r for r in ties if r.in_flight == fewest])


def make_policy(name: str, kv_aware_weight: float = DEFAULT_KV_AWARE_WEIGHT) -> Policy:
    if name == "round-robin":
        return RoundRobin()
    if name == "least-load":
        return LeastLoad()
    if name == "kv-aware":
        return KVAware(kv_aware_weight)
    raise InvalidRequestError(f"--router-policy must be one of {', '.join(POLICIES)}", param="router_policy")
