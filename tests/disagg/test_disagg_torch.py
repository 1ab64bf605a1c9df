"""`ponder serve --disagg 1P1D --kv-connector torch`: the one-command deployment, KV over
torch.distributed (a gloo pair between the worker processes), checksums on; then a worker
restarted through the router rejoins under a new epoch (a new gloo group) and serves again."""

from __future__ import annotations

import httpx
import pytest

from tests.disagg._procs import Serve
from tests.disagg.test_disagg_e2e import chat, text_of

PROMPTS = [
    "Count from one to twenty, slowly, and explain each number in a long sentence please.",
    "Name three prime numbers and say why each is prime, at some length.",
]


@pytest.fixture(scope="module")
def deployment():
    router = Serve(
        "--disagg", "1P1D", "--kv-connector", "torch", "--kv-transfer-checksum",
        "--disagg-min-uncached-tokens", "8", "--kv-transfer-timeout", "5",
    ).wait()  # fmt: skip
    yield router
    router.close()


def workers(router: Serve) -> dict[str, dict]:
    return {w["role"]: w for w in httpx.get(router.url + "/disagg/workers", timeout=5).json()["data"]}


def decode_metric(router: Serve, name: str) -> float:
    decode = Serve.__new__(Serve)
    decode.url = workers(router)["decode"]["url"]
    return decode.metric(name)


def test_one_command_deployment_over_torch_distributed_matches_colocated(deployment):
    prefill_url = workers(deployment)["prefill"]["url"]
    for prompt in PROMPTS:
        assert text_of(chat(deployment.url, prompt)) == text_of(chat(prefill_url, prompt))
    assert deployment.metric('ponder_router_disagg_requests_total{path="prefill_hop"') == 2
    assert decode_metric(deployment, 'ponder:kv_transfer_loads{outcome="ok"') == 2
    assert decode_metric(deployment, "ponder:kv_transfer_blocks_verified") >= 6


def test_a_restarted_prefill_worker_rejoins_under_a_new_epoch(deployment):
    before = workers(deployment)["prefill"]
    answer = httpx.post(deployment.url + "/disagg/workers/prefill-0/restart", timeout=120).json()
    after = workers(deployment)["prefill"]
    assert answer["epoch"] == after["epoch"] != before["epoch"] and after["pid"] != before["pid"]
    prompt = "After the restart: describe a quiet lake at dawn in one long sentence."
    loads = decode_metric(deployment, 'ponder:kv_transfer_loads{outcome="ok"')
    assert text_of(chat(deployment.url, prompt)) == text_of(chat(after["url"], prompt))
    assert decode_metric(deployment, 'ponder:kv_transfer_loads{outcome="ok"') == loads + 1
    assert decode_metric(deployment, "ponder:kv_transfer_fallbacks") == 0
