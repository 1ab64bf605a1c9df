"""Balancer: the replicas' state and the policy; assigns a request (counting its load at once)
and releases it when its response ends. No HTTP here, so policies are testable on their own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ponder.errors import PonderError
from ponder.router.policies import Policy, ReplicaState, RoutedRequest


class NoReplicaError(PonderError):
    """No healthy replica can take the request (all dead, draining or already tried)."""


@dataclass
class Assignment:
    replica: ReplicaState
    request: RoutedRequest
    cached_blocks: int  # the router's estimate at pick time
    # What it adds to the replica's load: its blocks less the cached prefix it shares there (a
    # prefix hit is neither recomputed nor stored twice), so a conversation's short next turn does
    # not weigh like a fresh long prompt and push the conversation off the replica holding its KV.
    added_blocks: int = 0
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.replica.in_flight -= 1
            self.replica.outstanding_tokens -= self.request.tokens
            self.replica.active_blocks -= self.added_blocks


class Balancer:
    def __init__(self, replicas: Sequence[ReplicaState], policy: Policy):
        self.replicas = list(replicas)
        self.policy = policy

    def assign(
        self, request: RoutedRequest, exclude: frozenset[int] = frozenset(), role: str = "colocated"
    ) -> Assignment:
        candidates = [r for r in self.replicas if r.available and r.index not in exclude and r.role == role]
        if not candidates:
            raise NoReplicaError("no healthy replica is available")
        replica = self.policy.pick(candidates, request)
        cached = replica.prefix.cached_blocks(request.block_hashes)
        replica.in_flight += 1
        replica.outstanding_tokens += request.tokens
        added = request.blocks - cached
        replica.active_blocks += added
        replica.routed += 1
        replica.prefix.predict(request.block_hashes)
        return Assignment(replica, request, cached, added)

    @property
    def in_flight(self) -> int:
        return sum(r.in_flight for r in self.replicas)
