"""Per-replica health as the router sees it: health probes with a timeout, a step-progress
watchdog (streams in flight but no bytes for a while), and the restart backoff. A SIGSTOPped or
wedged replica is alive as a process but answers nothing: only a timeout tells it from a slow one."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

STATES = ("starting", "healthy", "unhealthy", "hung", "dead", "restarting", "draining", "removed")


@dataclass(frozen=True)
class HealthPolicy:
    probe_interval_s: float = 0.5
    probe_timeout_s: float = 1.0
    failed_probes_to_hung: int = 3  # consecutive timeouts/errors while the process runs
    stall_timeout_s: float = 30.0  # streams in flight, no byte from the replica for this long
    restart: bool = True
    restart_backoff_s: float = 1.0  # doubles per restart in a row, up to the max
    restart_backoff_max_s: float = 30.0
    stable_after_s: float = 60.0  # healthy this long: the backoff starts over
    ready_timeout_s: float = 300.0  # a restarted replica must answer /health within this


@dataclass(eq=False)
class ReplicaHealth:
    """Mutable health record of one replica slot (its process may be restarted under it)."""

    state: str = "starting"
    failed_probes: int = 0
    streams_in_flight: int = 0  # streaming requests routed there, not finished
    last_progress: float = field(default_factory=time.monotonic)
    healthy_since: float | None = None
    restarts: int = 0
    restarts_in_a_row: int = 0
    restarting: bool = False
    retired: bool = False  # drained and removed on purpose: never restarted
    ever_healthy: bool = False  # a replica that never came up is not restarted (a bad command)
    incarnation: int = 0  # bumped per restart/return; a request's bookkeeping names its own
    # Set when this incarnation is lost (hung or dead): requests waiting on it give up at once.
    lost: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def dead(self) -> bool:
        return self.state in ("dead", "hung", "restarting", "removed")

    def progress(self, now: float | None = None) -> None:
        self.last_progress = time.monotonic() if now is None else now

    def stream_started(self, now: float | None = None) -> None:
        if self.streams_in_flight == 0:
            self.progress(now)  # idle -> busy: the stall clock starts now, not at the last byte
        self.streams_in_flight += 1

    def stream_ended(self, incarnation: int) -> None:
        if incarnation == self.incarnation:  # a request of an earlier process counts no more
            self.streams_in_flight = max(0, self.streams_in_flight - 1)
            self.progress()

    def stalled(self, policy: HealthPolicy, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return self.streams_in_flight > 0 and now - self.last_progress > policy.stall_timeout_s

    def backoff_s(self, policy: HealthPolicy) -> float:
        return min(policy.restart_backoff_s * 2**self.restarts_in_a_row, policy.restart_backoff_max_s)

    def fresh_incarnation(self) -> None:
        """A new process (or the same one back from a stall): nothing carries over."""
        self.incarnation += 1
        self.failed_probes = 0
        self.streams_in_flight = 0
        self.lost = asyncio.Event()
        self.progress()


class ReplicaLostError(Exception):
    """The replica a request waited on was declared hung or dead (internal to the router)."""
