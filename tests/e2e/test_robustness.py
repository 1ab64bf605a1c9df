"""Client disconnects abort and free KV; metrics move as requests run; SIGTERM drains."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.server.harness import MODEL, free_port

LONG = {"max_tokens": 220, "ignore_eos": True, "temperature": 0}


def chat(**fields) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": "Tell me more"}], **fields}


def wait_until_idle(engine, timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stats = engine.stats()
        if stats.num_requests == 0 and stats.kv_blocks_used == 0:
            return stats
        time.sleep(0.02)
    raise AssertionError(f"engine still busy: {engine.stats()}")


def metric(text: str, name: str, **labels) -> float:
    """The value of one sample in a Prometheus text page (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(r"^([\w:]+)(\{[^}]*\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(3))
    return total


def scrape(server) -> str:
    return httpx.get(f"{server.url}/metrics").text


def test_disconnected_stream_is_aborted_and_frees_its_blocks(server):
    before = scrape(server)
    with httpx.stream(
        "POST", f"{server.url}/v1/chat/completions", json=chat(stream=True, **LONG)
    ) as response:
        data = []
        for line in response.iter_lines():
            if line.startswith("data: "):
                data.append(line)
            if len(data) >= 3:
                break
        assert server.engine.stats().num_requests == 1
    stats = wait_until_idle(server.engine)
    assert stats.generation_tokens > 0
    after = scrape(server)
    aborted = metric(after, "ponder:request_success_total", finished_reason="abort")
    assert aborted == metric(before, "ponder:request_success_total", finished_reason="abort") + 1


def test_disconnected_non_streaming_request_is_aborted(server):
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{server.url}/v1/chat/completions", json=chat(**LONG), timeout=0.3)
    stats = wait_until_idle(server.engine)
    assert stats.num_running == 0


def test_metrics_move_with_a_request(server):
    before = scrape(server)
    response = httpx.post(
        f"{server.url}/v1/chat/completions", json=chat(max_tokens=7, ignore_eos=True)
    ).json()
    after = scrape(server)
    usage = response["usage"]

    def grew(name: str, **labels) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert grew("ponder:prompt_tokens_total") == usage["prompt_tokens"]
    assert grew("ponder:generation_tokens_total") == 7
    assert grew("ponder:request_success_total", finished_reason="length") == 1
    for histogram in (
        "time_to_first_token_seconds",
        "e2e_request_latency_seconds",
        "request_queue_time_seconds",
        "request_prefill_time_seconds",
        "request_decode_time_seconds",
        "time_per_output_token_seconds",
    ):
        assert grew(f"ponder:{histogram}_count") == 1, histogram
    assert grew("ponder:inter_token_latency_seconds_count") == 6
    assert grew("ponder:prefix_cache_queries_total") == usage["prompt_tokens"]
    assert grew("ponder:prefix_cache_hits_total") == usage["prompt_tokens_details"]["cached_tokens"]
    for gauge in ("num_requests_running", "num_requests_waiting", "kv_cache_usage_perc"):
        assert f"ponder:{gauge}{{" in after
    assert "ponder:num_preemptions_total" in after and "ponder:reasoning_tokens_total" in after


def test_sigterm_drains_in_flight_requests_then_exits(qwen3_ckpt):
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "ponder.cli",
        "serve",
        str(qwen3_ckpt),
        "--port",
        str(port),
        "--served-model-name",
        MODEL,
        "--block-size",
        "4",
        "--kv-cache-memory",
        "16MiB",
        "--uvicorn-log-level",
        "warning",
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, "server did not start"
            time.sleep(0.1)
        started = threading.Event()
        result = {}

        def stream():
            with httpx.stream(
                "POST",
                f"{url}/v1/completions",
                timeout=60,
                json={
                    "model": MODEL,
                    "prompt": "Hello",
                    "stream": True,
                    "max_tokens": 200,
                    "ignore_eos": True,
                },
            ) as response:
                for line in response.iter_lines():
                    if line.startswith("data: {"):
                        started.set()
                        chunk = json.loads(line[6:])
                        result["finish"] = chunk["choices"][0]["finish_reason"]
                    if line == "data: [DONE]":
                        result["done"] = True

        reader = threading.Thread(target=stream)
        reader.start()
        assert started.wait(30)
        assert reader.is_alive()  # the request is in flight when the signal comes
        process.send_signal(signal.SIGTERM)
        reader.join(60)
        assert result == {"finish": "length", "done": True}
        assert process.wait(30) == 0
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/health", timeout=2)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
