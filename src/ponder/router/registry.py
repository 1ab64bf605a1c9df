"""The router's worker registry: add a worker (spawned by the router as a local process or Ray
actor, or an already running `ponder serve` given by URL) and remove one, always by draining it
first (it gets nothing new; what it runs finishes; then it is stopped). Each worker has a role
(colocated | prefill | decode) for disaggregated serving; the planner scales through this."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol
from urllib.parse import urlparse

from ponder.errors import InvalidRequestError, PonderError, RequestNotFoundError
from ponder.router.replicas import ExternalWorker, LocalReplica, ReplicaHandle
from ponder.router.service import RouterService

ROLES = ("colocated", "prefill", "decode")


class WorkerNotFoundError(RequestNotFoundError):
    """No worker with that id is registered."""


class WorkerStartError(PonderError):
    """A worker the registry started exited or did not become healthy in time."""


class Spawner(Protocol):
    def spawn(self, name: str, argv: list[str]) -> ReplicaHandle: ...


def role_argv(role: str) -> list[str]:
    """A prefill/decode worker is a `ponder serve --role ROLE` (disaggregated serving)."""
    return [] if role == "colocated" else ["--role", role]


class LocalSpawner:
    def spawn(self, name: str, argv: list[str]) -> ReplicaHandle:
        return LocalReplica(name, argv)


class RaySpawner:
    def __init__(self, cluster: Any):  # a ray_backend.RayCluster (Ray imported only there)
        self.cluster = cluster

    def spawn(self, name: str, argv: list[str]) -> ReplicaHandle:
        return self.cluster.spawn(name, argv)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    index: int
    role: str
    url: str
    state: str
    healthy: bool
    draining: bool
    in_flight: int
    routed: int
    restarts: int
    managed: bool  # started (and restarted) by the router, or an external URL

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class WorkerAdmin(Protocol):
    """What the admin routes (router/admin.py) drive: this module's WorkerRegistry for the
    colocated router, router/disagg_admin.py's for the disaggregated one."""

    def list(self, include_removed: bool = False) -> list[WorkerInfo]: ...

    async def add(
        self, role: str, url: str | None = None, args: Sequence[str] = (), ready_timeout_s: float = 300.0
    ) -> WorkerInfo: ...

    async def remove(self, worker_id: str, drain_timeout_s: float = 60.0) -> WorkerInfo: ...


def check_add_request(
    role: str,
    roles: Sequence[str],
    url: str | None,
    args: Sequence[str],
    ready_timeout_s: float,
    can_spawn: bool,
) -> None:
    """Refuse, before anything starts, an add that cannot work (an OpenAI-style 400)."""
    if role not in roles:
        raise InvalidRequestError(f"role must be one of {', '.join(roles)}, not {role!r}", param="role")
    if isinstance(args, str) or not all(isinstance(a, str) for a in args):
        raise InvalidRequestError("args must be a list of strings", param="args")
    if ready_timeout_s <= 0:
        raise InvalidRequestError("ready_timeout must be > 0", param="ready_timeout")
    if url is not None:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InvalidRequestError(f"url must be http(s)://host:port, not {url!r}", param="url")
        if args:
            raise InvalidRequestError("args are for workers the router starts, not a url", param="args")
    elif not can_spawn:
        raise InvalidRequestError("this router cannot start workers; register one by url", param="url")


class WorkerRegistry:
    def __init__(self, service: RouterService, spawner: Spawner | None = None, base_argv: Sequence[str] = ()):
        self.service = service
        self.spawner = spawner
        self.base_argv = list(base_argv)  # the `ponder serve` options every spawned worker gets
        self._removals: dict[int, asyncio.Task] = {}

    def list(self, include_removed: bool = False) -> list[WorkerInfo]:
        infos = [self.info(i) for i in range(len(self.service.handles))]
        return [w for w in infos if include_removed or w.state != "removed"]

    def info(self, index: int) -> WorkerInfo:
        handle, replica, health = (
            self.service.handles[index],
            self.service.replicas[index],
            self.service.health[index],
        )
        return WorkerInfo(
            id=handle.name,
            index=index,
            role=replica.role,
            url=handle.url,
            state=health.state,
            healthy=replica.healthy,
            draining=replica.draining,
            in_flight=replica.in_flight,
            routed=replica.routed,
            restarts=health.restarts,
            managed=not isinstance(handle, ExternalWorker),
        )

    def find(self, worker_id: str) -> int:
        for index, handle in enumerate(self.service.handles):
            if handle.name == worker_id:
                return index
        raise WorkerNotFoundError(f"no worker {worker_id!r}")

    async def add(
        self,
        role: str = "colocated",
        url: str | None = None,
        args: Sequence[str] = (),
        ready_timeout_s: float = 300.0,
    ) -> WorkerInfo:
        """Register a worker and wait until it answers /health (then it takes traffic)."""
        check_add_request(role, ROLES, url, args, ready_timeout_s, can_spawn=self.spawner is not None)
        name = f"worker-{len(self.service.handles)}"
        handle: ReplicaHandle
        if url is not None:
            handle = ExternalWorker(name, url)
        else:
            assert self.spawner is not None
            handle = self.spawner.spawn(name, [*self.base_argv, *role_argv(role), *args])
        index = self.service.add_handle(handle, role)
        await asyncio.to_thread(handle.start)
        deadline = time.monotonic() + ready_timeout_s
        health = self.service.health[index]
        while not self.service.replicas[index].healthy:
            if health.dead or time.monotonic() > deadline:
                why = "exited" if health.dead else f"was not healthy after {ready_timeout_s:.0f} s"
                await self.service.drain_replica(index, 0.0)
                raise WorkerStartError(f"worker {name} ({role}) {why}")
            await self.service._check_one(index)
            await asyncio.sleep(0.2)
        return self.info(index)

    async def remove(self, worker_id: str, drain_timeout_s: float = 60.0) -> WorkerInfo:
        """Drain, then stop: no new request goes there, its in-flight requests finish (the
        router waits up to drain_timeout_s, then stops it with SIGTERM, and the worker drains what
        is left itself). Never aborts. Removing the same worker twice waits for the same drain."""
        if drain_timeout_s < 0:
            raise InvalidRequestError("drain timeout must be >= 0", param="timeout")
        index = self.find(worker_id)
        if self.service.health[index].state == "removed":
            return self.info(index)
        task = self._removals.get(index)
        if task is None:
            task = asyncio.ensure_future(self.service.drain_replica(index, drain_timeout_s))
            self._removals[index] = task
        await asyncio.shield(task)
        return self.info(index)
