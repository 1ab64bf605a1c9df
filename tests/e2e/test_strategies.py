"""reasoning_strategy over HTTP, on a server hosting two models (the built-in reasoner and a tiny
random one): voted answers equal offline LLM.reason, usage counts every branch, the prompt is
prefilled once, weak branches stop early, ensembles span both models, bad specs are 400s naming
the field, and a client that goes away aborts every branch."""

import asyncio
import functools
import io

import httpx
import openai
import pytest
from openai import OpenAI

from ponder import LLM, SamplingParams
from ponder.cli.chat import chat_loop
from ponder.engine.args import EngineArgs
from ponder.engine.async_engine import AsyncEngine
from ponder.engine.llm_engine import LLMEngine
from ponder.openai.hosting import HostedModel
from ponder.openai.service import CHAT_URL, OpenAIService
from ponder.openai.settings import ServerSettings
from ponder.server.app import build_app
from ponder.tasks.answers import extract_answer
from tests.e2e.test_robustness import metric, scrape, wait_until_idle
from tests.server.harness import ServerThread, real_engine

BUILTIN_KNOBS = {"kv_cache_memory": 1 << 26, "max_model_len": 1024}
QUESTION = "What is (4 + 5) * 2?"
LONG = {"max_tokens": 900, "ignore_eos": True}  # seconds of work for the built-in model


@pytest.fixture(scope="module")
def hosted(qwen3_ckpt):
    builtin = AsyncEngine(LLMEngine(EngineArgs.from_kwargs(None, **BUILTIN_KNOBS).create_engine_config()))
    tiny = real_engine(qwen3_ckpt)
    app = build_app(
        builtin,
        ServerSettings(served_model_names=("ponder",)),
        more_models=[HostedModel(tiny, ("tiny", "tiny-alias"), str(qwen3_ckpt))],
    )
    with ServerThread(app) as running:
        running.builtin, running.tiny = builtin, tiny
        yield running


def client(server) -> OpenAI:
    return OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def ask(server, strategy, model="ponder", **fields):
    return client(server).chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": QUESTION}],
        extra_body={"reasoning_strategy": strategy, **fields.pop("extra_body", {})},
        **fields,
    )


def test_self_consistency_votes_like_offline_and_counts_every_branch(hosted):
    before = hosted.builtin.stats()
    reply = ask(hosted, {"type": "self_consistency", "n": 4}, temperature=1.0, seed=7, max_tokens=300)
    after = wait_until_idle(hosted.builtin)
    strategy = reply.choices[0].strategy
    offline = LLM(**BUILTIN_KNOBS).reason(
        [QUESTION],
        {"type": "self_consistency", "n": 4},
        SamplingParams(temperature=1.0, seed=7, max_tokens=300),
    )[0]

    assert strategy["strategy"] == "self_consistency"
    assert strategy["answer"] == offline.answer is not None
    assert strategy["vote"]["tallies"] == offline.vote.tallies
    assert [b["num_tokens"] for b in strategy["branches"]] == [b.num_tokens for b in offline.branches]
    # The choice is the chosen branch, split into its thought and its answer.
    message = reply.choices[0].message
    assert extract_answer(message.content) == offline.answer
    assert message.reasoning and "</think>" not in message.reasoning + message.content
    # Usage: every token of every branch; the prompt prefilled once for all four.
    generated = sum(b["num_tokens"] for b in strategy["branches"])
    assert reply.usage.completion_tokens == generated == offline.usage.generated_tokens
    assert generated == after.generation_tokens - before.generation_tokens
    reasoning = sum(b["num_reasoning_tokens"] for b in strategy["branches"])
    assert reply.usage.completion_tokens_details.reasoning_tokens == reasoning > 0
    prompt_work = (after.prompt_tokens_computed - before.prompt_tokens_computed) + (
        after.prefix_cache_hits - before.prefix_cache_hits
    )
    assert prompt_work == reply.usage.prompt_tokens
    assert strategy["usage"]["num_branches"] == 4 and strategy["usage"]["num_stopped_branches"] == 0


def test_streamed_strategy_sends_the_decided_answer(hosted):
    whole = ask(hosted, "self_consistency", temperature=1.0, seed=3, max_tokens=300)
    stream = ask(
        hosted,
        "self_consistency",
        temperature=1.0,
        seed=3,
        max_tokens=300,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    progress = [getattr(c.choices[0], "strategy_progress", None) for c in chunks if c.choices]
    progress = [each for each in progress if each is not None]
    assert progress and progress[-1]["generated_tokens"] == whole.usage.completion_tokens
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert deltas[0].role == "assistant"
    assert "".join(d.content or "" for d in deltas) == whole.choices[0].message.content
    assert "".join(getattr(d, "reasoning", None) or "" for d in deltas) == whole.choices[0].message.reasoning
    last = [c for c in chunks if c.choices][-1].choices[0]
    assert last.finish_reason == whole.choices[0].finish_reason
    assert last.strategy["vote"] == whole.choices[0].strategy["vote"]
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_confidence_early_stop_stops_weak_branches_and_frees_their_kv(hosted):
    spec = {"type": "confidence", "n": 8, "warmup": 2, "window": 4, "keep_top": 0.0, "consensus": 1.0}
    before = hosted.tiny.stats()
    reply = ask(
        hosted, spec, model="tiny", temperature=1.0, seed=5, max_tokens=64, extra_body={"ignore_eos": True}
    )
    after = wait_until_idle(hosted.tiny)
    strategy = reply.choices[0].strategy
    stopped = [b for b in strategy["branches"] if b["stopped"]]
    assert stopped and all(b["num_tokens"] < 64 for b in stopped)
    assert strategy["usage"]["num_stopped_branches"] == len(stopped)
    # Stopped branches' tokens count too: usage is every token the engine generated.
    assert reply.usage.completion_tokens == after.generation_tokens - before.generation_tokens
    assert reply.usage.completion_tokens == sum(b["num_tokens"] for b in strategy["branches"])
    assert reply.model == "tiny"


def test_ensemble_spans_the_hosted_models(hosted):
    before = {name: getattr(hosted, name).stats() for name in ("builtin", "tiny")}
    spec = {"type": "ensemble", "n": 2, "models": ["default", "tiny-alias"]}
    reply = ask(hosted, spec, temperature=1.0, seed=11, max_tokens=120)
    strategy = reply.choices[0].strategy
    by_model = {}
    for branch in strategy["branches"]:
        by_model.setdefault(branch["model"], []).append(branch)
    assert sorted(by_model) == ["ponder", "tiny"] and all(len(b) == 2 for b in by_model.values())
    assert strategy["details"]["models"] == ["ponder", "tiny"]
    # Each model generated its own branches on its own engine.
    for name, model in (("builtin", "ponder"), ("tiny", "tiny")):
        stats = wait_until_idle(getattr(hosted, name))
        grown = stats.generation_tokens - before[name].generation_tokens
        assert grown == sum(b["num_tokens"] for b in by_model[model])
    assert reply.usage.completion_tokens == sum(b["num_tokens"] for b in strategy["branches"])
    # The vote pools every answer given (the random model gives none).
    answers = [b["answer"] for b in strategy["branches"] if b["answer"] is not None]
    assert sum(strategy["vote"]["tallies"].values()) == len(answers)
    assert extract_answer(reply.choices[0].message.content) == strategy["answer"]


def test_completions_run_one_strategy_per_prompt(hosted):
    response = httpx.post(
        f"{hosted.url}/v1/completions",
        json={
            "model": "tiny",
            "prompt": ["The answer is", "Let me think"],
            "max_tokens": 6,
            "seed": 1,
            "ignore_eos": True,
            "reasoning_strategy": {"type": "best_of_n", "n": 3},
        },
    ).json()
    assert [c["index"] for c in response["choices"]] == [0, 1]
    for choice in response["choices"]:
        scores = [b["score"] for b in choice["strategy"]["branches"]]
        assert len(scores) == 3 and choice["strategy"]["details"]["scorer"] == "mean_logprob"
    assert response["usage"]["completion_tokens"] == 2 * 3 * 6


@pytest.mark.parametrize(
    ("extra", "param", "hint"),
    [
        ({"reasoning_strategy": {"type": "majority"}}, "reasoning_strategy.type", "valid types"),
        (
            {"reasoning_strategy": {"type": "self_consistency", "branches": 4}},
            "reasoning_strategy.branches",
            "fields",
        ),
        ({"reasoning_strategy": {"type": "self_consistency", "n": 0}}, "reasoning_strategy.n", "[1, 256]"),
        ({"reasoning_strategy": {"type": "self_consistency", "n": "4"}}, "reasoning_strategy.n", "int"),
        (
            {"reasoning_strategy": {"type": "ensemble", "models": ["big"]}},
            "reasoning_strategy.models",
            "tiny-alias",
        ),
        (
            {"reasoning_strategy": {"type": "cascade", "models": ["tiny", "tiny-alias"]}},
            "reasoning_strategy.models",
            "twice",
        ),
        ({"reasoning_strategy": 7}, "reasoning_strategy", "dictionary"),
        ({"reasoning_strategy": "self_consistency", "n": 2}, "n", "n must be 1"),
        ({"reasoning_strategy": "self_consistency", "temperature": 0}, "temperature", "temperature > 0"),
        ({"reasoning_strategy": "single", "logprobs": True}, "logprobs", "logprobs"),
    ],
)
def test_invalid_strategy_requests_are_400_naming_the_field(hosted, extra, param, hint):
    body = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], **extra}
    response = httpx.post(f"{hosted.url}/v1/chat/completions", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert hint in error["message"], error["message"]


def test_the_openai_client_sees_a_bad_spec_as_a_bad_request(hosted):
    with pytest.raises(openai.BadRequestError) as caught:
        ask(hosted, {"type": "confidence", "n": 4, "warmup": 4})
    assert caught.value.body["param"] == "reasoning_strategy.warmup"
    completion = {"model": "tiny", "prompt": "Hi", "reasoning_strategy": {"type": "best_of_n", "scorer": "x"}}
    response = httpx.post(f"{hosted.url}/v1/completions", json=completion)
    assert response.status_code == 400 and response.json()["error"]["param"] == "reasoning_strategy.scorer"
    assert wait_until_idle(hosted.tiny).num_requests == 0


def test_unknown_model_is_404_listing_every_hosted_model(hosted):
    with pytest.raises(openai.NotFoundError) as caught:
        ask(hosted, "single", model="gpt-4o")
    error = caught.value.body
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert all(f"'{name}'" in error["message"] for name in ("ponder", "tiny", "tiny-alias"))
    assert [m.id for m in client(hosted).models.list().data] == ["ponder", "tiny", "tiny-alias"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_goes_away_aborts_every_branch(hosted, stream):
    body = {
        "model": "ponder",
        "messages": [{"role": "user", "content": QUESTION}],
        "reasoning_strategy": {"type": "self_consistency", "n": 4},
        "stream": stream,
        **LONG,
    }
    before = hosted.builtin.stats()
    aborted = metric(
        scrape(hosted), "ponder:request_success_total", finished_reason="abort", model_name="ponder"
    )
    if stream:  # progress arrives while the branches run: hang up at the first one
        with httpx.stream("POST", f"{hosted.url}/v1/chat/completions", json=body) as response:
            assert any("strategy_progress" in line for line in response.iter_lines())
    else:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{hosted.url}/v1/chat/completions", json=body, timeout=0.5)
    stats = wait_until_idle(hosted.builtin)
    assert 0 < stats.generation_tokens - before.generation_tokens < 4 * LONG["max_tokens"]
    after = metric(
        scrape(hosted), "ponder:request_success_total", finished_reason="abort", model_name="ponder"
    )
    assert after == aborted + 1


def test_chat_runs_a_strategy_in_process_with_progress(hosted):
    api = OpenAIService.for_engine(hosted.tiny, ServerSettings(served_model_names=("tiny",)))
    body = {
        "model": "tiny",
        "max_tokens": 8,
        "ignore_eos": True,
        "temperature": 0.8,
        "stream_options": {"include_usage": True},
        "reasoning_strategy": {"type": "self_consistency", "n": 3},
    }
    out = io.StringIO()
    lines = iter(["Hi"])
    history = asyncio.run(
        chat_loop(
            functools.partial(api.stream, CHAT_URL),
            body,
            lambda: next(lines, None),
            out,
            color=False,
            show_thinking=True,
        )
    )
    text = out.getvalue()
    assert "[0 running, 3 finished, 0 stopped, 24 tokens" in text
    assert "0 thinking + 24 answer tokens" in text  # the footer counts every branch
    assert history[-1]["role"] == "assistant" and history[-1]["content"]


def test_batch_lines_may_carry_a_strategy(hosted):
    api = OpenAIService.for_engine(hosted.tiny, ServerSettings(served_model_names=("tiny",)))
    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 8,
        "ignore_eos": True,
        "reasoning_strategy": {"type": "self_consistency", "n": 3},
    }
    status, reply = asyncio.run(api.call("/v1/chat/completions", body))
    assert status == 200 and reply["choices"][0]["strategy"]["usage"]["num_branches"] == 3
    assert reply["usage"]["completion_tokens"] == 3 * 8
    status, reply = asyncio.run(api.call("/v1/chat/completions", {**body, "reasoning_strategy": "vote"}))
    assert status == 400 and reply["error"]["param"] == "reasoning_strategy.type"
