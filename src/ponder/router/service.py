"""RouterService: starts the replicas, watches them (health, KV events), and forwards each request
to the replica the balancer picks, retrying elsewhere while nothing has reached the client yet."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import httpx

from ponder.router.balancer import Assignment, Balancer, NoReplicaError
from ponder.router.health import HealthPolicy, ReplicaHealth, ReplicaLostError
from ponder.router.metrics import RouterMetrics
from ponder.router.policies import Policy, ReplicaState
from ponder.router.prompts import PromptReader
from ponder.router.replicas import ReplicaHandle
from ponder.router.supervisor import Supervisor

logger = logging.getLogger("ponder.router")
T = TypeVar("T")
EVENTS_INTERVAL_S = 0.2
# Hop-by-hop and length headers httpx and the server set again themselves.
_DROPPED_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "accept-encoding"}
# refused, reset, closed mid-body, or declared hung/dead by the health watch: the replica failed
_REPLICA_ERRORS = (httpx.TransportError, ReplicaLostError)


@dataclass
class Upstream:
    """The answer a replica started giving: status, headers and its first body chunk."""

    assignment: Assignment
    status_code: int
    headers: dict[str, str]
    first_chunk: bytes
    response: httpx.Response
    chunks: AsyncIterator[bytes]  # the rest of the body (an httpx stream is iterated once)
    # The replica's watch, for RouterService.relay (the disaggregated router relays without one).
    health: ReplicaHealth | None = None
    incarnation: int = 0
    streaming: bool = False


class RouterService:
    def __init__(
        self,
        handles: Sequence[ReplicaHandle],
        policy: Policy,
        reader: PromptReader,
        *,
        max_attempts: int | None = None,
        health_policy: HealthPolicy | None = None,
    ):
        self.handles: list[ReplicaHandle] = []
        self.health: list[ReplicaHealth] = []
        self.balancer = Balancer([], policy)
        self.reader = reader
        self.metrics = RouterMetrics(lambda: self.balancer.replicas, lambda: self.health)
        self._max_attempts = max_attempts
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(None, connect=5.0), trust_env=False)
        self.draining = False
        self.health_policy = health_policy or HealthPolicy()
        self.supervisor = Supervisor(self)
        self._cursors: list[int] = []
        self._tasks: list[asyncio.Task] = []
        for handle in handles:
            self.add_handle(handle)

    def add_handle(self, handle: ReplicaHandle, role: str = "colocated") -> int:
        """A new replica slot (not started here); returns its index. Slots are never reused."""
        index = len(self.handles)
        self.handles.append(handle)
        self.health.append(ReplicaHealth())
        self.balancer.replicas.append(ReplicaState(index, handle.name, healthy=False, role=role))
        self._cursors.append(0)
        return index

    @property
    def max_attempts(self) -> int:
        return self._max_attempts or max(1, sum(not h.retired for h in self.health))

    @property
    def replicas(self) -> list[ReplicaState]:
        return self.balancer.replicas

    # ---- lifecycle ---------------------------------------------------------------------

    async def start(self, ready_timeout_s: float = 300.0) -> None:
        """Start every replica (in parallel) and wait until all answer /health."""
        await asyncio.gather(*(asyncio.to_thread(h.start) for h in self.handles))
        deadline = time.monotonic() + ready_timeout_s
        while not all(r.healthy for r in self.replicas):
            await self.check_health(restart=False)
            dead = [h.name for h, health in zip(self.handles, self.health) if health.dead]
            if dead:
                raise RuntimeError(f"replica(s) {', '.join(dead)} exited during startup")
            if time.monotonic() > deadline:
                raise RuntimeError(f"replicas not ready after {ready_timeout_s:.0f} s")
            await asyncio.sleep(0.2)
        self._tasks = [asyncio.create_task(self._watch_health()), asyncio.create_task(self._watch_kv())]

    @property
    def in_flight(self) -> int:
        return self.balancer.in_flight

    def drain(self) -> None:
        """Refuse new requests (503); in-flight ones go on."""
        self.draining = True

    async def drain_and_wait(self, timeout_s: float) -> None:
        """Refuse new requests and wait for those in flight (none is aborted within the timeout)."""
        self.drain()
        deadline = time.monotonic() + timeout_s
        while self.balancer.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def drain_replica(self, index: int, timeout_s: float) -> None:
        """Scale down: send no new request to replica `index`, wait for its own, then stop it."""
        replica, health = self.replicas[index], self.health[index]
        replica.draining = True
        health.retired = True  # never restarted, whatever happens to it now
        health.state = "draining"
        deadline = time.monotonic() + timeout_s
        while replica.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        replica.healthy = False
        # SIGTERM: the replica drains what it still runs itself (nothing is aborted)
        await asyncio.to_thread(self._stop_one, self.handles[index], timeout_s)
        health.state = "removed"

    async def shutdown(self, timeout_s: float = 30.0) -> None:
        for task in self._tasks:
            task.cancel()
        await self.supervisor.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(asyncio.to_thread(self._stop_one, h, timeout_s) for h in self.handles))
        await self.client.aclose()

    @staticmethod
    def _stop_one(handle: ReplicaHandle, timeout_s: float) -> None:
        handle.stop(graceful=True)
        handle.join(timeout_s)

    # ---- watching ----------------------------------------------------------------------

    async def _watch_health(self) -> None:
        while True:
            await asyncio.sleep(self.health_policy.probe_interval_s)
            await self.check_health()

    async def check_health(self, restart: bool = True) -> None:
        await asyncio.gather(*(self._check_one(i) for i in range(len(self.handles))))
        if restart and self.health_policy.restart and not self.draining:
            self.supervisor.restart_lost()

    async def _check_one(self, index: int) -> None:
        replica, handle, health = self.replicas[index], self.handles[index], self.health[index]
        if health.retired or health.restarting or (health.dead and self.supervisor.can_restart(index)):
            return  # a replica that cannot be restarted (an external URL) is probed until it is back
        if not await asyncio.to_thread(handle.is_running):
            self.mark_dead(index, "its process exited")
            return
        if not handle.url:
            return
        if health.stalled(self.health_policy):
            stall = self.health_policy.stall_timeout_s
            self.mark_hung(index, f"{health.streams_in_flight} streams in flight, no byte in {stall:.0f} s")
            return
        try:
            timeout = self.health_policy.probe_timeout_s
            response = await self.client.get(handle.url + "/health", timeout=timeout)
        except httpx.HTTPError as error:
            if health.state == "starting":
                return  # not listening yet: only an exit (above) fails a start
            health.failed_probes += 1
            if health.failed_probes >= self.health_policy.failed_probes_to_hung:
                self.mark_hung(index, f"{health.failed_probes} health probes failed ({type(error).__name__})")
            elif replica.healthy:
                logger.warning("replica %s missed a health probe", replica.name)
            return
        health.failed_probes = 0
        ok = response.status_code == 200
        if ok and not replica.healthy:
            self._rejoin(index)
        replica.healthy = ok
        replica.draining = replica.draining or response.status_code == 503
        if not ok and health.state == "healthy":
            health.state = "unhealthy"

    def _rejoin(self, index: int) -> None:
        """Healthy again (started, restarted, or back from unhealthy): fresh state, nothing stale."""
        health = self.health[index]
        if health.lost.is_set():
            health.fresh_incarnation()
        if health.state != "starting":
            logger.warning("replica %s rejoins with fresh state", self.replicas[index].name)
        self.replicas[index].prefix.clear()
        self._cursors[index] = 0  # a new process numbers its KV events from 0
        health.state = "healthy"
        health.ever_healthy = True
        health.healthy_since = time.monotonic()

    def mark_dead(self, index: int, why: str) -> None:
        self._lose(index, "dead", why)

    def mark_hung(self, index: int, why: str) -> None:
        self._lose(index, "hung", why)

    def _lose(self, index: int, state: str, why: str) -> None:
        """Stop routing there, fail over what waits on it, forget what it cached."""
        replica, health = self.replicas[index], self.health[index]
        if not health.dead:
            logger.warning("replica %s is %s: %s", replica.name, state, why)
            self.metrics.lost.labels(replica.name, state).inc()
        if health.state not in ("restarting", "removed"):
            health.state = state
        replica.healthy = False
        replica.prefix.clear()
        health.lost.set()

    async def _watch_kv(self) -> None:
        while True:
            await asyncio.sleep(EVENTS_INTERVAL_S)
            await asyncio.gather(*(self.poll_kv_events(i) for i in range(len(self.handles))))

    async def poll_kv_events(self, index: int) -> None:
        if self.health[index].dead or self.health[index].retired or not self.handles[index].url:
            return
        try:
            response = await self.client.get(
                f"{self.handles[index].url}/kv_events", params={"after": self._cursors[index]}, timeout=2.0
            )
            if response.status_code != 200:
                return
            batch = response.json()
        except (httpx.HTTPError, ValueError):
            return
        self.reader.block_size = int(batch["block_size"])
        events = [(kind, int(block_hash, 16)) for kind, block_hash in batch["events"]]
        self.replicas[index].prefix.apply(events, lost=bool(batch["lost"]))
        self._cursors[index] = int(batch["next_seq"])

    # ---- forwarding --------------------------------------------------------------------

    async def open(self, path: str, body: bytes, headers: dict[str, str]) -> Upstream:
        """Send the request to a replica and read up to its first body chunk. A replica that fails
        before that (refused, reset, 503 draining, declared hung) costs nothing visible: the next
        one is tried."""
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        parsed = parsed if isinstance(parsed, dict) else {}
        routed = self.reader.read(path, parsed)
        streaming = parsed.get("stream") is True
        forward = {k: v for k, v in headers.items() if k.lower() not in _DROPPED_HEADERS}
        tried: set[int] = set()
        for attempt in range(self.max_attempts):
            try:
                assignment = self.balancer.assign(routed, frozenset(tried))
            except NoReplicaError:
                self.metrics.unavailable.inc()
                raise
            replica = assignment.replica
            health = self.health[replica.index]
            incarnation, lost = health.incarnation, health.lost
            tried.add(replica.index)
            if attempt:
                self.metrics.retries.inc()
            started = time.monotonic()
            if streaming:
                health.stream_started(started)
            response: httpx.Response | None = None
            try:
                request = self.client.build_request(
                    "POST", self.handles[replica.index].url + path, content=body, headers=forward
                )
                response = await _unless(lost, self.client.send(request, stream=True))
                chunks = response.aiter_raw()
                first = b""
                while not first:
                    first = await _unless(lost, anext(chunks))
            except StopAsyncIteration:
                first = b""
            except _REPLICA_ERRORS as error:
                assignment.release()
                if streaming:
                    health.stream_ended(incarnation)
                if response is not None:
                    await response.aclose()
                self.metrics.requests.labels(replica.name, "replica_failed").inc()
                if not lost.is_set() and not await asyncio.to_thread(self.handles[replica.index].is_running):
                    self.mark_dead(replica.index, f"{type(error).__name__}")
                continue
            except BaseException:
                assignment.release()
                if streaming:
                    health.stream_ended(incarnation)
                if response is not None:
                    await response.aclose()
                raise
            health.progress()
            if response.status_code == 503 and attempt + 1 < self.max_attempts:
                # draining or out of room: another replica may take it
                assignment.release()
                if streaming:
                    health.stream_ended(incarnation)
                await response.aclose()
                self.metrics.requests.labels(replica.name, "unavailable").inc()
                continue
            self.metrics.ttft.labels(replica.name).observe(time.monotonic() - started)
            self.metrics.prefix_blocks.labels(replica.name, "queried").inc(len(routed.block_hashes))
            self.metrics.prefix_blocks.labels(replica.name, "hit").inc(assignment.cached_blocks)
            kept = {k: v for k, v in response.headers.items() if k.lower() not in _DROPPED_HEADERS}
            kept.pop("content-encoding", None)
            status = response.status_code
            return Upstream(assignment, status, kept, first, response, chunks, health, incarnation, streaming)
        raise NoReplicaError(f"the request failed on {len(tried)} replica(s)")

    async def relay(self, upstream: Upstream, error_event: bytes) -> AsyncIterator[bytes]:
        """The rest of the body; if the replica dies (or is declared hung) now, bytes already
        reached the client, so the stream ends with `error_event` instead of hanging or being
        silently cut."""
        assignment, replica = upstream.assignment, upstream.assignment.replica
        health = upstream.health
        assert health is not None, "RouterService relays only its own replicas' answers"
        lost = health.lost
        outcome = "ok"
        try:
            if upstream.first_chunk:
                yield upstream.first_chunk
            try:
                while True:
                    try:
                        chunk = await _unless(lost, anext(upstream.chunks))
                    except StopAsyncIteration:
                        break
                    if upstream.incarnation == health.incarnation:
                        health.progress()
                    yield chunk
            except _REPLICA_ERRORS:
                outcome = "failed_mid_stream"
                self.metrics.stream_errors.inc()
                yield error_event
        except BaseException:
            outcome = "client_gone"
            raise
        finally:
            assignment.release()
            if upstream.streaming:
                health.stream_ended(upstream.incarnation)
            self.metrics.requests.labels(replica.name, outcome).inc()
            await upstream.response.aclose()


async def _unless(lost: asyncio.Event, awaitable: Awaitable[T]) -> T:
    """Await `awaitable` unless the replica is declared lost first (then ReplicaLostError): a
    hung replica never answers, so its requests must not wait for it."""
    if lost.is_set():
        if asyncio.iscoroutine(awaitable):
            awaitable.close()
        raise ReplicaLostError("the replica was declared hung or dead")
    task = asyncio.ensure_future(awaitable)
    waiter = asyncio.ensure_future(lost.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        raise
    finally:
        waiter.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    raise ReplicaLostError("the replica was declared hung or dead")
