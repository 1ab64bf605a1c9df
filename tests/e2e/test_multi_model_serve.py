"""`ponder serve --model NAME=PATH`: two copies of the built-in model, each on its own engine
with the default KV budget, routed by name and voting together in an ensemble."""

import httpx
import pytest

from tests.e2e.test_robustness import metric
from tests.server.harness import ponder_serve


@pytest.fixture(scope="module")
def two_builtin_copies():
    with ponder_serve("--model", "copy=builtin") as url:  # default KV budgets
        yield url


def test_two_copies_of_the_builtin_model_serve_and_vote_together(two_builtin_copies):
    url = two_builtin_copies
    assert [m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]] == ["ponder", "copy"]
    body = {
        "model": "copy",
        "messages": [{"role": "user", "content": "What is 7 + 5?"}],
        "max_tokens": 200,
        "seed": 0,
        "reasoning_strategy": {"type": "ensemble", "n": 2, "models": ["default", "ponder"]},
    }
    reply = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60).json()
    strategy = reply["choices"][0]["strategy"]
    assert sorted(b["model"] for b in strategy["branches"]) == ["copy", "copy", "ponder", "ponder"]
    assert strategy["answer"] in reply["choices"][0]["message"]["content"]
    page = httpx.get(f"{url}/metrics").text
    for name in ("ponder", "copy"):
        assert metric(page, "ponder:num_requests_running", model_name=name) == 0
    assert metric(page, "ponder:strategy_runs_total", model_name="copy", strategy="ensemble") == 1
