"""Replica health with real `ponder serve` processes: a SIGSTOPped replica (alive, answering
nothing) is declared hung from its health-probe timeouts; requests waiting on it move to the
other replica, a stream it already started ends with an error event, and it is restarted (a new
process) that rejoins with fresh state. Plus the watchdog and backoff rules on their own."""

import asyncio
import json
import os
import signal
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ponder.router.app import error_event
from ponder.router.health import HealthPolicy, ReplicaHealth
from ponder.router.policies import RoundRobin
from ponder.router.prompts import PromptReader
from ponder.router.replicas import LocalReplica
from ponder.router.service import RouterService

JSON = {"content-type": "application/json"}
FAST = HealthPolicy(
    probe_interval_s=0.3,
    probe_timeout_s=0.5,
    failed_probes_to_hung=3,
    restart_backoff_s=0.2,
    ready_timeout_s=120,
)


def test_stall_watchdog_and_backoff_rules():
    policy = HealthPolicy(stall_timeout_s=10.0, restart_backoff_s=1.0, restart_backoff_max_s=5.0)
    health = ReplicaHealth()
    assert not health.stalled(policy, now=health.last_progress + 100)  # idle is not stalled
    health.stream_started(now=1000.0)
    assert not health.stalled(policy, now=1009.0) and health.stalled(policy, now=1011.0)
    health.progress(now=1011.0)
    assert not health.stalled(policy, now=1020.0)
    old = health.incarnation
    health.fresh_incarnation()
    health.stream_ended(old)  # a request of the old process does not count against the new one
    assert health.streams_in_flight == 0 and not health.lost.is_set()
    health.stream_started()
    health.stream_ended(old)
    assert health.streams_in_flight == 1
    assert [ReplicaHealth(restarts_in_a_row=n).backoff_s(policy) for n in range(5)] == [1, 2, 4, 5, 5]


def sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


async def _complete(service: RouterService, prompt: str, max_tokens: int = 8) -> dict:
    body = json.dumps({"model": "ponder", "prompt": prompt, "max_tokens": max_tokens}).encode()
    upstream = await service.open("/v1/completions", body, JSON)
    data = b"".join([chunk async for chunk in service.relay(upstream, b"")])
    assert upstream.status_code == 200, data
    return json.loads(data)


@pytest.mark.timeout(240)
def test_sigstopped_replica_is_declared_hung_failed_over_and_restarted_fresh():
    handles = [LocalReplica(f"replica-{i}", ["--kv-cache-memory", "32MiB"]) for i in range(2)]
    service = RouterService(handles, RoundRobin(), PromptReader(None), health_policy=FAST)

    async def run() -> None:
        await service.start(ready_timeout_s=120)
        try:
            victim = handles[0]
            # a stream on the victim that has sent tokens already (round-robin: replica 0 first)
            body = {
                "model": "ponder",
                "prompt": "Tell a long story. " * 20,
                "max_tokens": 200,
                "stream": True,
            }
            body |= {"ignore_eos": True}
            stream = await service.open("/v1/completions", json.dumps(body).encode(), JSON)
            assert stream.assignment.replica.index == 0
            await _complete(service, "warm up replica 1")
            for _ in range(50):  # its prompt's blocks are published once prefilled
                await service.poll_kv_events(0)
                if service.replicas[0].prefix.stored:
                    break
                await asyncio.sleep(0.1)
            assert service.replicas[0].prefix.stored  # it cached something: must be forgotten
            old_pid = victim.pid
            assert old_pid is not None
            os.kill(old_pid, signal.SIGSTOP)
            started = time.monotonic()
            # four requests: two are routed to the frozen replica first and must move over
            answers = await asyncio.wait_for(
                asyncio.gather(*(_complete(service, f"question {i}") for i in range(4))), 60
            )
            assert all(a["choices"][0]["text"] is not None for a in answers)
            assert time.monotonic() - started < 30
            text = service.metrics.render().decode()
            assert sample(text, "ponder_router_replica_lost_total", replica="replica-0", kind="hung") == 1
            assert sample(text, "ponder_router_retries_total") == 2
            # the stream it had started ends with the error event, never hangs
            tail = b"".join([c async for c in service.relay(stream, error_event("/v1/completions"))])
            assert b"replica_failed" in tail and tail.endswith(b"data: [DONE]\n\n")
            # restarted: a new process, healthy again, nothing of the old state kept
            deadline = time.monotonic() + 90
            while not (service.replicas[0].healthy and service.health[0].state == "healthy"):
                assert time.monotonic() < deadline, service.health[0]
                await asyncio.sleep(0.2)
            assert victim.pid != old_pid and service.health[0].restarts == 1
            assert not service.replicas[0].prefix.stored and service._cursors[0] == 0
            text = service.metrics.render().decode()
            assert (
                sample(text, "ponder_router_replica_restarts_total", replica="replica-0", reason="hung") == 1
            )
            state = {"replica": "replica-0", "role": "colocated"}
            assert sample(text, "ponder_router_replica_state", **state, state="healthy") == 1
            routed_before = service.replicas[0].routed
            for i in range(2):
                await _complete(service, f"after restart {i}")
            assert service.replicas[0].routed == routed_before + 1  # it takes traffic again
        finally:
            await service.shutdown()
            for handle in handles:  # the frozen process, if the test failed before its restart
                if handle.pid is not None:
                    try:
                        os.kill(handle.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass

    asyncio.run(run())
