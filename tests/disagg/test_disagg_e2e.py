"""Disaggregated prefill/decode with real processes (built-in model, CPU): a prefill worker
(block size 16) and a decode worker (block size 8) behind `ponder serve --role router`, plus a
slow prefill worker to kill mid-transfer and a decode worker whose failure policy is `fail`.
Every process starts at once (startup is most of the time)."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import httpx
import pytest

from tests.disagg._procs import Serve

SHM = ["--kv-connector", "shm", "--kv-transfer-checksum"]
PROMPT = "Count from one to twenty, slowly, and explain each number in a long sentence please."
THRESHOLD = 16


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    shm_dir = str(tmp_path_factory.mktemp("kv"))
    shm = [*SHM, "--kv-transfer-dir", shm_dir]
    prefill = Serve("--role", "prefill", *shm, "--kv-worker-name", "p1", "--block-size", "16")
    decode = Serve(
        "--role",
        "decode",
        *shm,
        "--kv-worker-name",
        "d1",
        "--block-size",
        "8",
        "--kv-transfer-timeout",
        "1.5",
    )
    slow = Serve("--role", "prefill", *shm, "--kv-worker-name", "p2", "--kv-transfer-debug-delay", "4")
    strict = Serve(
        "--role", "decode", *shm, "--kv-worker-name", "d2", "--kv-transfer-timeout", "1",
        "--kv-load-failure-policy", "fail",
    )  # fmt: skip
    for worker in (prefill, decode, slow, strict):
        worker.wait()
    router = Serve(
        "--role", "router", "--prefill-url", prefill.url, "--decode-url", decode.url,
        "--disagg-min-uncached-tokens", str(THRESHOLD),
    ).wait()  # fmt: skip
    yield {
        "prefill": prefill,
        "decode": decode,
        "slow": slow,
        "strict": strict,
        "router": router,
        "dir": shm_dir,
    }
    for process in (router, prefill, decode, slow, strict):
        process.close()


def chat(url: str, content: str, max_tokens: int = 24, **extra) -> dict:
    body = {"model": "ponder", "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens}
    answer = httpx.post(url + "/v1/chat/completions", json={**body, "temperature": 0, **extra}, timeout=120)
    return answer.json()


def text_of(answer: dict) -> str:
    message = answer["choices"][0]["message"]
    return (message.get("reasoning") or "") + "|" + (message.get("content") or "")


def test_disaggregated_greedy_output_is_the_colocated_one(cluster):
    router, decode, prefill = cluster["router"], cluster["decode"], cluster["prefill"]
    computed_before = decode.metric("ponder:prompt_tokens_computed")
    verified_before = decode.metric("ponder:kv_transfer_blocks_verified")
    for prompt in (PROMPT, "Name three prime numbers and say why each is prime, at some length."):
        colocated = chat(prefill.url, prompt)  # the prefill worker is a full server too
        disaggregated = chat(router.url, prompt)
        assert text_of(disaggregated) == text_of(colocated)
        assert disaggregated["usage"]["completion_tokens"] == colocated["usage"]["completion_tokens"]
    assert router.metric("ponder_router_disagg_requests_total") == 2
    assert (
        decode.metric("ponder:kv_transfer_loads") == 2 and decode.metric("ponder:kv_transfer_fallbacks") == 0
    )
    # The decode worker computed no prompt token: the prompts' KV came from the prefill worker.
    assert decode.metric("ponder:prompt_tokens_computed") == computed_before
    # Checksum mode: every block of both prompts (producer blocks of 16) verified after transfer.
    assert decode.metric("ponder:kv_transfer_blocks_verified") - verified_before >= 2 * 3
    assert 0 < decode.metric("ponder:kv_transfer_prefill_share")


def test_streaming_through_the_router_matches(cluster):
    router, prefill = cluster["router"], cluster["prefill"]
    prompt = "Stream me a story about a small robot that learns to count, please, slowly."
    expected = chat(prefill.url, prompt, max_tokens=12)
    body = {
        "model": "ponder",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 12,
        "temperature": 0,
    }
    pieces = []
    with httpx.stream(
        "POST", router.url + "/v1/chat/completions", json={**body, "stream": True}, timeout=60
    ) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                import json

                delta = json.loads(line[6:])["choices"][0]["delta"]
                pieces.append((delta.get("reasoning") or "", delta.get("content") or ""))
    reasoning = "".join(p[0] for p in pieces)
    content = "".join(p[1] for p in pieces)
    assert reasoning + "|" + content == text_of(expected)


def test_a_prompt_cached_on_the_decode_worker_skips_the_prefill_hop(cluster):
    router = cluster["router"]
    prompt = "Explain, in two long sentences, why the sky looks blue during the day."
    first = chat(router.url, prompt)
    hops = router.metric('ponder_router_disagg_requests_total{path="prefill_hop"')
    second = chat(router.url, prompt)  # the decode worker holds its prompt now: < 16 uncached
    assert text_of(second) == text_of(first)
    assert router.metric('ponder_router_disagg_requests_total{path="prefill_hop"') == hops
    assert router.metric('ponder_router_disagg_requests_total{path="skip_prefill"') >= 1


def hand_off(producer: Serve, prompt_ids: list[int], epoch: str) -> dict:
    spec = {"transfer_id": uuid.uuid4().hex, "producer_epoch": epoch}
    answer = httpx.post(
        producer.url + "/disagg/prefill",
        json={
            "token_ids": prompt_ids,
            "sampling": {"temperature": 0},
            "kv_transfer_params": {"role": "producer", **spec},
        },
        timeout=60,
    ).json()
    return {"role": "consumer", **spec, "first_token_id": answer["first_token_id"]}


def prompt_ids(worker: Serve, prompt: str) -> list[int]:
    from ponder.engine.tokenizer import Tokenizer
    from ponder.openai.prompts import render_chat
    from ponder.openai.protocol import ChatCompletionRequest
    from ponder.router.launch import load_tokenizer

    tokenizer = load_tokenizer(None)
    assert isinstance(tokenizer, Tokenizer)
    request = ChatCompletionRequest.model_validate(
        {"model": "ponder", "messages": [{"role": "user", "content": prompt}]}
    )
    return render_chat(tokenizer, request).token_ids


def test_killing_the_prefill_worker_mid_transfer_makes_decode_recompute_then_restart_rejoins(cluster):
    slow, decode, prefill = cluster["slow"], cluster["decode"], cluster["prefill"]
    prompt = "A prompt whose prefill worker dies while it is still sending the KV over."
    expected = chat(prefill.url, prompt)
    old_epoch = slow.info()["epoch"]
    params = hand_off(slow, prompt_ids(slow, prompt), old_epoch)  # its save now pauses half way
    slow.kill()
    assert (Path(cluster["dir"]) / old_epoch).is_dir()  # what the dead worker left
    recomputed = decode.metric('ponder:kv_transfer_fallbacks{action="recompute"')
    answer = chat(decode.url, prompt, kv_transfer_params=params)
    assert text_of(answer) == text_of(expected)
    assert decode.metric('ponder:kv_transfer_fallbacks{action="recompute"') == recomputed + 1
    # Restart: a new epoch; the previous life's files are gone; a transfer naming the old epoch
    # is never served from stale state (it times out and recomputes), the new one works.
    slow.flags = [f for f in slow.flags if f not in ("--kv-transfer-debug-delay", "4")]
    slow.start()
    slow.wait()
    new_epoch = slow.info()["epoch"]
    assert new_epoch != old_epoch and not (Path(cluster["dir"]) / old_epoch).exists()
    stale = {**params, "transfer_id": uuid.uuid4().hex}
    assert text_of(chat(decode.url, prompt, kv_transfer_params=stale)) == text_of(expected)
    assert decode.metric('ponder:kv_transfer_fallbacks{action="recompute"') == recomputed + 2
    loads = decode.metric('ponder:kv_transfer_loads{outcome="ok"')
    fresh = hand_off(slow, prompt_ids(slow, prompt), new_epoch)
    assert text_of(chat(decode.url, prompt, kv_transfer_params=fresh)) == text_of(expected)
    assert decode.metric('ponder:kv_transfer_loads{outcome="ok"') == loads + 1


def test_policy_fail_gives_a_clean_openai_error(cluster):
    strict = cluster["strict"]
    params = {
        "role": "consumer",
        "transfer_id": uuid.uuid4().hex,
        "producer_epoch": "gone-1234",
        "first_token_id": 5,
    }
    body = {"model": "ponder", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 8}
    answer = httpx.post(
        strict.url + "/v1/chat/completions", json={**body, "kv_transfer_params": params}, timeout=30
    )
    assert answer.status_code == 500
    error = answer.json()["error"]
    assert "KV" in error["message"] and error["type"] == "server_error"
    assert strict.metric('ponder:kv_transfer_fallbacks{action="fail"') == 1
    # a bad hand-off spec is the client's error
    bad = httpx.post(
        strict.url + "/v1/chat/completions", json={**body, "kv_transfer_params": {"role": "x"}}, timeout=30
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "kv_transfer_params"


def test_concurrent_requests_through_the_router(cluster):
    router, prefill = cluster["router"], cluster["prefill"]
    prompts = [f"Request number {i}: tell me about the number {i} in a long sentence." for i in range(4)]
    expected = {p: text_of(chat(prefill.url, p, max_tokens=10)) for p in prompts}
    results: dict[str, str] = {}

    def one(p: str) -> None:
        results[p] = text_of(chat(router.url, p, max_tokens=10))

    threads = [threading.Thread(target=one, args=(p,)) for p in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == expected
