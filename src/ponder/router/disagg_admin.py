"""The disaggregated router's side of the admin API (router/admin.py): the same GET / POST /
DELETE /admin/workers as the colocated router, over DisaggService's role-aware registry, so that
`ponder planner --mode disagg` scales the prefill and decode pools of `ponder serve --disagg XPYD`
(or of a router over workers given by URL) the way it scales replicas."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ponder.errors import InvalidRequestError
from ponder.router.disagg import ROLES, DisaggService, Worker
from ponder.router.registry import WorkerInfo, WorkerNotFoundError, WorkerStartError, check_add_request
from ponder.router.replicas import ExternalWorker, LocalReplica, ReplicaHandle


class DisaggWorkerAdmin:
    def __init__(self, service: DisaggService, base_argv: Sequence[str] | None, connector: str = "shm"):
        self.service = service
        # Every started worker's `ponder serve` options; None: a router over URLs starts nothing.
        self.base_argv = list(base_argv) if base_argv is not None else None
        self.connector = connector
        self._removed: dict[str, WorkerInfo] = {}
        self._removals: dict[str, asyncio.Task] = {}

    def list(self, include_removed: bool = False) -> list[WorkerInfo]:
        infos = [_info(worker) for worker in self.service.registry.workers.values()]
        return infos + list(self._removed.values()) if include_removed else infos

    async def add(
        self,
        role: str = "decode",
        url: str | None = None,
        args: Sequence[str] = (),
        ready_timeout_s: float = 300.0,
    ) -> WorkerInfo:
        """Start (or register) a prefill or decode worker; it takes requests once healthy."""
        check_add_request(role, ROLES, url, args, ready_timeout_s, can_spawn=self.base_argv is not None)
        name = self._new_name(role)
        handle: ReplicaHandle
        if url is not None:
            handle = ExternalWorker(name, url)
        else:
            assert self.base_argv is not None
            identity = ["--role", role, "--kv-connector", self.connector, "--kv-worker-name", name]
            handle = LocalReplica(name, [*self.base_argv, *identity, *args])
        try:
            worker = await self.service.add_worker(role, handle, ready_timeout_s)
        except RuntimeError as error:  # exited or never healthy: leave nothing registered
            if name in self.service.registry.workers:
                await self.service.remove_worker(name, 0.0)
            raise WorkerStartError(f"worker {name} ({role}): {error}") from error
        return _info(worker)

    async def remove(self, worker_id: str, drain_timeout_s: float = 60.0) -> WorkerInfo:
        """Drain (nothing new goes there; what it runs finishes, up to the timeout), then stop.
        The last worker of a role stays: without it no request could be served."""
        if drain_timeout_s < 0:
            raise InvalidRequestError("drain timeout must be >= 0", param="timeout")
        if worker_id in self._removed:
            return self._removed[worker_id]
        task = self._removals.get(worker_id)
        if task is None:
            worker = self.service.registry.workers.get(worker_id)
            if worker is None:
                raise WorkerNotFoundError(f"no worker {worker_id!r}")
            if len(self.service.registry.of_role(worker.role)) == 1:
                raise InvalidRequestError(f"{worker_id} is the last {worker.role} worker", param="worker_id")
            task = asyncio.ensure_future(self._drain(worker, drain_timeout_s))
            self._removals[worker_id] = task
        await asyncio.shield(task)
        return self._removed[worker_id]

    async def _drain(self, worker: Worker, timeout_s: float) -> None:
        await self.service.remove_worker(worker.name, timeout_s)
        self._removed[worker.name] = _info(worker, state="removed")

    def _new_name(self, role: str) -> str:
        # Never reuse a removed worker's name: it names its shared-memory segments and epochs.
        taken = set(self.service.registry.workers) | set(self._removed)
        index = 0
        while f"{role}-{index}" in taken:
            index += 1
        return f"{role}-{index}"


def _info(worker: Worker, state: str | None = None) -> WorkerInfo:
    routing = worker.state
    if state is None:
        state = "draining" if routing.draining else "healthy" if routing.healthy else "unhealthy"
    return WorkerInfo(
        id=worker.name,
        index=routing.index,
        role=worker.role,
        url=worker.url,
        state=state,
        healthy=routing.healthy and state != "removed",
        draining=routing.draining,
        in_flight=routing.in_flight,
        routed=routing.routed,
        restarts=worker.restarts,
        managed=not isinstance(worker.handle, ExternalWorker),
    )
