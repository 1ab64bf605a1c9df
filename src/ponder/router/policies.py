"""Routing policies: which replica takes a request. Load is the router's own count, updated at
pick time (Balancer.assign), so a burst never reads a stale load and piles onto one replica."""

from __future__ import annotations

import time
from collections import OrderedDict
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
# Costs within this fraction of what the request adds on the cheapest replica are ties: a smaller
# load difference says little, as load is counted whole from pick to completion.
TIE_FRACTION = 0.5
# A request that a replica would compute most of makes that replica the owner of whatever comes
# back for it (a conversation's later turns stick to their KV). Each conversation it owns beyond
# the least-owning replica (or, for a turn that would move, beyond the replica holding its KV)
# costs this many times the request's blocks (tests/router/test_balance_sim.py: 2.0 keeps
# max/min requests at the 15-over-4 optimum with hit rate kept; 1.0 does not).
DEFAULT_OWNERSHIP_WEIGHT = 2.0
OWNERSHIP_WINDOW = 64  # placements: the owned counts decay by 1/64 per placement (old ones end)


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


class _LeastRecent:
    """Ties go to the replica picked longest ago. Not a shared turn counter: with one, picks
    that had a single candidate advance the turn too, and ties can fall on the same replica every
    time (a conversation's turns to replica 0 interleaved with fresh prompts sent every fresh one
    to replica 2 of 3). Longest ago is also the best guess at whose requests are furthest along:
    equal counted load (counted at pick time, whole until completion) hides how much is left."""

    def __init__(self) -> None:
        self._picks = 0
        self._last: dict[int, int] = {}  # replica index -> the pick number that chose it last

    def _least_recent(self, ties: Sequence[ReplicaState]) -> ReplicaState:
        choice = min(ties, key=lambda r: self._last.get(r.index, -1))
        self._picks += 1
        self._last[choice.index] = self._picks
        return choice


class RoundRobin:
    def __init__(self) -> None:
        self._turn = 0

    def pick(self, replicas: Sequence[ReplicaState], request: RoutedRequest) -> ReplicaState:
        choice = replicas[self._turn % len(replicas)]
        self._turn += 1
        return choice


class LeastLoad(_LeastRecent):
    """Fewest outstanding tokens (prompt + max output of what is in flight there); loads within
    half this request's tokens of the lowest count as ties."""

    def pick(self, replicas: Sequence[ReplicaState], request: RoutedRequest) -> ReplicaState:
        low = min(r.outstanding_tokens for r in replicas) + TIE_FRACTION * request.tokens
        return self._least_recent(_fewest_in_flight([r for r in replicas if r.outstanding_tokens <= low]))


class KVAware(_LeastRecent):
    """cost = weight x prompt blocks not cached there + its active blocks (the blocks its requests
    in flight add: uncached prompt + output) + an ownership term; lowest wins, costs within
    TIE_FRACTION of the request's blocks tie (then fewest in flight, then least recently picked).
    A shared system prompt cached on one replica draws requests there only until that replica's
    extra load outweighs computing the prompt elsewhere.

    Ownership: requests routed to a replica that computes most of their prompt are placements
    (a new conversation, or one that moves); each replica's placements, decayed, are the
    conversations it owns, which will come back to it. A placement pays ownership_weight x its
    blocks per conversation the replica owns beyond the least-owning candidate, or, for a turn
    whose KV one replica holds, beyond that holder: balanced by what will come back, not only by
    the load of the moment (with that alone, sticky conversations stayed where a momentary dip
    put them: max/min 1.90 in one 4-replica run). Turns that stay with their KV pay nothing, so
    the hit rate is not traded for it."""

    def __init__(
        self, weight: float = DEFAULT_KV_AWARE_WEIGHT, ownership_weight: float = DEFAULT_OWNERSHIP_WEIGHT
    ):
        super().__init__()
        if weight < 0:
            raise InvalidRequestError("--kv-aware-weight must be >= 0", param="kv_aware_weight")
        if ownership_weight < 0:
            raise InvalidRequestError("ownership weight must be >= 0", param="ownership_weight")
        self.weight = weight
        self.ownership_weight = ownership_weight
        self.owned: dict[int, float] = {}  # replica index -> conversations placed there, decayed
        self.prefixes = Branches()

    def pick(self, replicas: Sequence[ReplicaState], request: RoutedRequest) -> ReplicaState:
        now = time.monotonic()
        cached = [r.prefix.cached_blocks(request.block_hashes, now) for r in replicas]
        uncached = [request.prompt_blocks - c for c in cached]
        costs = [self.weight * u + r.active_blocks for r, u in zip(replicas, uncached)]
        owned = [self.owned.get(r.index, 0.0) for r in replicas]
        holder = max(range(len(replicas)), key=cached.__getitem__)
        common = min(cached)  # a prefix every candidate holds (a system prompt) decides nothing
        own = request.prompt_blocks - common  # the part that is this request's own
        # takes over: computes most of its own part there, where the best-placed replica would not
        # (and more than a tie's worth: one block more is no conversation's history)
        band = TIE_FRACTION * (request.blocks - cached[holder])
        takes_over = [2 * (cached[holder] - c) >= own and cached[holder] - c > band for c in cached]
        new = not any(takes_over) or self.prefixes.shared(request.block_hashes, cached[holder])
        if new:  # nobody holds it, or only a prefix other prompts share: a new conversation
            takes_over, floor = [True] * len(replicas), min(owned)
        else:  # a turn that may move: only to a taker that would not then own more than the holder
            floor = owned[holder] - 1.0
        costs = [
            c + (self.ownership_weight * request.blocks * max(0.0, o - floor) if t else 0.0)
            for c, o, t in zip(costs, owned, takes_over)
        ]
        best = min(range(len(replicas)), key=costs.__getitem__)
        # a load difference under half of what the request adds on the best replica is noise;
        # a cached prefix is not: a conversation's turn (adds little there) keeps a tight band
        low = costs[best] + TIE_FRACTION * (request.blocks - cached[best])
        choice = self._least_recent(_fewest_in_flight([r for r, c in zip(replicas, costs) if c <= low]))
        if new or 2 * (cached[replicas.index(choice)] - common) < own:
            self._place(choice)
        self.prefixes.record(request.block_hashes)
        return choice

    def _place(self, choice: ReplicaState) -> None:
        keep = 1.0 - 1.0 / OWNERSHIP_WINDOW
        for index in self.owned:
            self.owned[index] *= keep
        self.owned[choice.index] = self.owned.get(choice.index, 0.0) + 1.0


class Branches:
    """Which prompt blocks other prompts continued differently: a prefix several prompts share (a
    system prompt) is no conversation's own, so moving off it gives nothing up for later turns.
    Per block hash, the next block of the first prompt seen through it (or SHARED); bounded."""

    SHARED = -1

    def __init__(self, capacity: int = 200_000):
        self.capacity = capacity
        self._next: OrderedDict[int, int] = OrderedDict()

    def shared(self, block_hashes: Sequence[int], length: int) -> bool:
        """Did another prompt go on differently after this prompt's first `length` blocks?"""
        if length == 0:
            return False
        seen = self._next.get(block_hashes[length - 1])
        following = block_hashes[length] if length < len(block_hashes) else None
        return seen is not None and seen != following

    def record(self, block_hashes: Sequence[int]) -> None:
        for parent, child in zip(block_hashes, block_hashes[1:]):
            seen = self._next.get(parent)
            self._next[parent] = child if seen is None or seen == child else self.SHARED
            self._next.move_to_end(parent)
        while len(self._next) > self.capacity:
            self._next.popitem(last=False)


def _fewest_in_flight(ties: Sequence[ReplicaState]) -> list[ReplicaState]:
    fewest = min(r.in_flight for r in ties)
    return [r for r in ties if r.in_flight == fewest]


def make_policy(name: str, kv_aware_weight: float = DEFAULT_KV_AWARE_WEIGHT) -> Policy:
    if name == "round-robin":
        return RoundRobin()
    if name == "least-load":
        return LeastLoad()
    if name == "kv-aware":
        return KVAware(kv_aware_weight)
    raise InvalidRequestError(f"--router-policy must be one of {', '.join(POLICIES)}", param="router_policy")
