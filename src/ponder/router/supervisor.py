"""Restarts replicas the health watch declared dead or hung: kill what is left of the process,
start a new one (local process or Ray actor) after a backoff that doubles per restart in a row,
and let it rejoin only once it answers /health, with fresh state (no prefix index, KV events
from 0). A replica drained on purpose (retired) is never restarted."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx

logger = logging.getLogger("ponder.router")


class Supervisor:
    def __init__(self, service: Any):  # the RouterService that owns it (typed loosely: no cycle)
        self.service = service
        self._tasks: dict[int, asyncio.Task] = {}

    def can_restart(self, index: int) -> bool:
        return callable(getattr(self.service.handles[index], "restart", None))

    def restart_lost(self) -> None:
        """Start a restart for each lost replica that has none under way."""
        policy, now = self.service.health_policy, time.monotonic()
        for index, health in enumerate(self.service.health):
            if health.state == "healthy" and health.healthy_since is not None:
                if now - health.healthy_since > policy.stable_after_s:
                    health.restarts_in_a_row = 0
            if health.retired or health.restarting or not health.dead or not health.ever_healthy:
                continue
            if not self.can_restart(index):
                continue
            health.restarting = True
            self._tasks[index] = asyncio.create_task(self._restart(index, reason=health.state))

    async def _restart(self, index: int, reason: str) -> None:
        service = self.service
        handle, health, replica = service.handles[index], service.health[index], service.replicas[index]
        policy = service.health_policy
        try:
            delay = health.backoff_s(policy)
            health.state = "restarting"
            logger.warning("replica %s (%s): restarting in %.1f s", replica.name, reason, delay)
            await asyncio.sleep(delay)
            if health.retired or service.draining:
                return
            await asyncio.to_thread(handle.restart)  # type: ignore[attr-defined]
            health.restarts += 1
            health.restarts_in_a_row += 1
            service.metrics.restarts.labels(replica.name, reason).inc()
            health.fresh_incarnation()
            if await self._wait_ready(index, policy.ready_timeout_s):
                replica.healthy = True
                service._rejoin(index)
                logger.warning("replica %s restarted (%d so far)", replica.name, health.restarts)
            else:
                health.state = "dead"  # the next health round tries again, after a longer backoff
        finally:
            health.restarting = False
            self._tasks.pop(index, None)

    async def _wait_ready(self, index: int, timeout_s: float) -> bool:
        service, handle = self.service, self.service.handles[index]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not service.health[index].retired:
            if not await asyncio.to_thread(handle.is_running):
                return False
            if handle.url:
                try:
                    response = await service.client.get(handle.url + "/health", timeout=1.0)
                    if response.status_code == 200:
                        return True
                except httpx.HTTPError:
                    pass
            await asyncio.sleep(0.2)
        return False

    async def cancel(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
