"""The planner's loop: every interval, list the workers through the router's admin API, scrape
each one's /metrics, decide, log the decision (a JSON line with its reasons), export it as
Prometheus metrics, and scale through the router (POST /admin/workers to add, DELETE to drain
and remove: never an abort). --dry-run only prints the decisions."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import IO, Any

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge

from ponder.errors import PonderError
from ponder.planner.decide import Decision, Planner
from ponder.planner.signals import Window, WorkerSample, parse_metrics, window

logger = logging.getLogger("ponder.planner")


class RouterUnreachableError(PonderError):
    """The router's admin API did not answer (or refused) the planner."""


class RouterClient:
    """The planner's view of a router: its workers (GET /admin/workers), their metrics, and the
    two scaling calls."""

    def __init__(self, url: str, client: httpx.AsyncClient | None = None, api_key: str | None = None):
        self.url = url.rstrip("/")
        self.headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = client or httpx.AsyncClient(timeout=httpx.Timeout(10.0), trust_env=False)
        self.scrape_client = httpx.AsyncClient(timeout=httpx.Timeout(5.0), trust_env=False)

    async def workers(self) -> list[dict[str, Any]]:
        try:
            answer = await self.client.get(self.url + "/admin/workers", headers=self.headers)
        except httpx.HTTPError as error:
            raise RouterUnreachableError(f"router {self.url}: {error}") from error
        if answer.status_code != 200:
            raise RouterUnreachableError(f"router {self.url}: {answer.status_code} {answer.text[:200]}")
        return list(answer.json()["data"])

    async def scrape(self, url: str) -> WorkerSample | None:
        try:
            answer = await self.scrape_client.get(url + "/metrics", headers=self.headers)
            return parse_metrics(answer.text) if answer.status_code == 200 else None
        except (httpx.HTTPError, PonderError) as error:
            logger.warning("planner: could not scrape %s: %s", url, error)
            return None

    async def add(self, role: str) -> dict[str, Any]:
        answer = await self.client.post(
            self.url + "/admin/workers", json={"role": role}, headers=self.headers, timeout=600.0
        )
        if answer.status_code != 201:
            raise RouterUnreachableError(f"adding a {role} worker failed: {answer.text[:300]}")
        return dict(answer.json())

    async def remove(self, worker_id: str, drain_timeout_s: float) -> dict[str, Any]:
        answer = await self.client.delete(
            f"{self.url}/admin/workers/{worker_id}",
            params={"timeout": drain_timeout_s},
            headers=self.headers,
            timeout=drain_timeout_s + 120.0,
        )
        if answer.status_code != 200:
            raise RouterUnreachableError(f"removing {worker_id} failed: {answer.text[:300]}")
        return dict(answer.json())

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.scrape_client.aclose()


class PlannerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.workers = Gauge("ponder_planner_workers", "Workers per role", ["role", "kind"], registry=r)
        self.needed = Gauge("ponder_planner_needed_workers", "Workers the profile says", ["role"], registry=r)
        self.predicted = Gauge("ponder_planner_predicted", "Predicted load", ["signal"], registry=r)
        self.observed = Gauge("ponder_planner_observed", "Last window", ["signal"], registry=r)
        self.correction = Gauge("ponder_planner_correction", "Observed/expected", ["role"], registry=r)
        self.decisions = Counter(
            "ponder_planner_decisions", "Decisions by role and action", ["role", "action"], registry=r
        )

    def record(self, decision: Decision) -> None:
        for role, n in decision.target.items():
            self.workers.labels(role, "target").set(n)
            self.workers.labels(role, "current").set(decision.current[role])
            self.needed.labels(role).set(decision.needed[role])
            self.decisions.labels(role, decision.action(role)).inc()
        for key, value in decision.predicted.items():
            self.predicted.labels(key).set(value)
        for key, value in decision.observed.items():
            self.observed.labels(key).set(value)
        for role, value in decision.correction.items():
            self.correction.labels(role).set(value)


class PlannerLoop:
    def __init__(
        self,
        planner: Planner,
        router: RouterClient,
        *,
        dry_run: bool = False,
        log: IO[str] | None = None,
        drain_timeout_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.planner = planner
        self.router = router
        self.dry_run = dry_run
        self.log = log
        self.drain_timeout_s = drain_timeout_s
        self.metrics = PlannerMetrics()
        self.clock = clock
        self._samples: dict[str, WorkerSample] = {}
        self._last: float | None = None
        self._actions: dict[str, asyncio.Task] = {}
        self.decisions: list[Decision] = []

    async def _pool(self, workers: list[dict[str, Any]], role: str, seconds: float) -> tuple[Window, int]:
        live = [w for w in workers if w["role"] == role and w["state"] == "healthy" and not w["draining"]]
        scraped = await asyncio.gather(*(self.router.scrape(w["url"]) for w in live))
        before, after = [], []
        for worker, sample in zip(live, scraped):
            if sample is None:
                continue
            before.append(self._samples.get(worker["id"], sample if self._last is None else WorkerSample()))
            after.append(sample)
            self._samples[worker["id"]] = sample
        cfg = self.planner.config
        return window(before, after, seconds, cfg.ttft_slo_s, cfg.tpot_slo_s), len(live)

    async def step(self) -> Decision:
        now = self.clock()
        seconds = max(1e-3, now - self._last) if self._last is not None else 1e-3
        workers = await self.router.workers()
        roles = self.planner.roles()
        windows: dict[str, Window] = {}
        current: dict[str, int] = {}
        for role in roles:
            windows[role], current[role] = await self._pool(workers, role, seconds)
        first = self._last is None
        self._last = now
        if self.planner.config.mode == "disagg":
            decision = self.planner.decide(windows["prefill"], windows["decode"], current)
        else:
            decision = self.planner.decide(windows["colocated"], None, current)
        if first:  # no window yet: a baseline scrape, never an action
            decision.target = dict(decision.current)
            decision.reasons = {role: "first scrape: baseline only" for role in roles}
        self.decisions.append(decision)
        self.metrics.record(decision)
        line = json.dumps(decision.to_json() | {"dry_run": self.dry_run}, sort_keys=True)
        if self.log is not None:
            self.log.write(line + "\n")
            self.log.flush()
        logger.info("planner: %s", line)
        if not self.dry_run:
            for role in roles:
                self._apply(role, decision, workers)
        return decision

    def _apply(self, role: str, decision: Decision, workers: list[dict[str, Any]]) -> None:
        pending = self._actions.get(role)
        if pending is not None and not pending.done():
            return  # one scaling action per role at a time
        delta = decision.target[role] - decision.current[role]
        if delta > 0:
            self._actions[role] = asyncio.create_task(self._add(role, delta))
        elif delta < 0:
            live = [w for w in workers if w["role"] == role and w["state"] == "healthy" and not w["draining"]]
            victim = min(live, key=lambda w: (w["in_flight"], -w["index"]))
            self._actions[role] = asyncio.create_task(self._remove(victim["id"]))

    async def _add(self, role: str, count: int) -> None:
        for _ in range(count):
            try:
                await self.router.add(role)
            except PonderError as error:
                logger.error("planner: %s", error)
                return

    async def _remove(self, worker_id: str) -> None:
        try:
            await self.router.remove(worker_id, self.drain_timeout_s)
            self._samples.pop(worker_id, None)
        except (PonderError, httpx.HTTPError) as error:
            logger.error("planner: %s", error)

    async def settle(self) -> None:
        """Wait for the scaling actions under way (tests, shutdown)."""
        await asyncio.gather(*self._actions.values(), return_exceptions=True)

    async def run(self, interval_s: float, iterations: int | None = None) -> None:
        done = 0
        while iterations is None or done < iterations:
            started = self.clock()
            try:
                await self.step()
            except PonderError as error:
                logger.error("planner: %s", error)
            done += 1
            await asyncio.sleep(max(0.0, interval_s - (self.clock() - started)))
