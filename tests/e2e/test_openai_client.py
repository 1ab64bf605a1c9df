"""The official openai client (sync, async, streaming) against a real tiny model; greedy outputs
equal offline LLM.generate, also for 32 concurrent streams batched by one engine loop."""

import asyncio

import httpx
import pytest
from openai import AsyncOpenAI, OpenAI

from ponder import LLM, SamplingParams
from tests.server.harness import MODEL

GREEDY = {"temperature": 0, "extra_body": {"ignore_eos": True}}
ENGINE_KNOBS = {"block_size": 4, "kv_cache_memory": 1 << 24, "max_model_len": 256}


@pytest.fixture(scope="module")
def offline(qwen3_ckpt):
    return LLM(str(qwen3_ckpt), **ENGINE_KNOBS)


def client(server) -> OpenAI:
    return OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def test_models_health_version(server):
    models = client(server).models.list()
    assert [m.id for m in models.data] == [MODEL]
    assert client(server).models.retrieve(MODEL).id == MODEL
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/version").json()["version"]


def test_32_concurrent_streams_match_offline_generate(server, offline):
    questions = [f"Question {i}: what is {i} plus {i * 7}?" for i in range(32)]
    params = SamplingParams(temperature=0, max_tokens=12, ignore_eos=True)
    expected = [
        (out.outputs[0].reasoning, out.outputs[0].content)
        for out in offline.chat([[{"role": "user", "content": q}] for q in questions], params)
    ]

    async def one(api: AsyncOpenAI, question: str):
        stream = await api.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": question}],
            max_tokens=12,
            stream=True,
            stream_options={"include_usage": True},
            **GREEDY,
        )
        reasoning, content, usage = "", "", None
        async for chunk in stream:
            usage = chunk.usage or usage
            for choice in chunk.choices:
                content += choice.delta.content or ""
                reasoning += getattr(choice.delta, "reasoning", None) or ""
        return reasoning, content, usage

    async def run_all():
        api = AsyncOpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        async with api:
            return await asyncio.gather(*(one(api, q) for q in questions))

    results = asyncio.run(run_all())
    for (reasoning, content, usage), want in zip(results, expected, strict=True):
        assert (reasoning, content) == want
        assert usage.completion_tokens == 12
    assert server.engine.stats().num_requests == 0


def test_completions_match_offline_generate(server, offline):
    prompts = ["The quick brown fox", "Numbers like 0 1 2", "Hello, how are"]
    params = SamplingParams(temperature=0, max_tokens=10, ignore_eos=True)
    expected = [o.outputs[0].text for o in offline.generate(prompts, params)]
    response = client(server).completions.create(model=MODEL, prompt=prompts, max_tokens=10, **GREEDY)
    assert [c.text for c in sorted(response.choices, key=lambda c: c.index)] == expected
    assert response.usage.completion_tokens == 30
    token_prompt = offline.get_tokenizer().encode(prompts[0])
    by_ids = client(server).completions.create(model=MODEL, prompt=token_prompt, max_tokens=10, **GREEDY)
    assert by_ids.choices[0].text == expected[0]
    streamed = client(server).completions.create(
        model=MODEL, prompt=prompts[1], max_tokens=10, stream=True, **GREEDY
    )
    assert "".join(chunk.choices[0].text for chunk in streamed if chunk.choices) == expected[1]


def test_chat_logprobs_n_seed_and_max_completion_tokens(server):
    api = client(server)
    messages = [{"role": "user", "content": "Pick a number"}]
    result = api.chat.completions.create(
        model=MODEL,
        messages=messages,
        max_completion_tokens=6,
        logprobs=True,
        top_logprobs=3,
        **GREEDY,
    )
    entries = result.choices[0].logprobs.content
    assert result.usage.completion_tokens == 6 == len(entries)
    assert all(e.logprob <= 0 and len(e.top_logprobs) == 3 for e in entries)
    assert all(e.top_logprobs[0].logprob >= e.logprob for e in entries)  # greedy: top choice
    sampled = [
        api.chat.completions.create(
            model=MODEL,
            messages=messages,
            max_tokens=8,
            n=3,
            seed=7,
            temperature=1.0,
            extra_body={"ignore_eos": True},
        )
        for _ in range(2)
    ]
    texts = [[c.message.content for c in s.choices] for s in sampled]
    assert texts[0] == texts[1]
    assert [c.index for c in sampled[0].choices] == [0, 1, 2]
    assert sampled[0].usage.completion_tokens == 24


def test_stop_string_ends_the_text(server):
    api = client(server)
    full = api.completions.create(model=MODEL, prompt="Let me think", max_tokens=24, **GREEDY)
    text = full.choices[0].text
    stop = next(
        (text[i : i + 2] for i in range(3, len(text) - 2) if text[i : i + 2].strip() == text[i : i + 2]),
        None,
    )
    assert stop is not None, text
    cut = api.completions.create(model=MODEL, prompt="Let me think", max_tokens=24, stop=[stop], **GREEDY)
    assert cut.choices[0].text == text[: text.find(stop)]
    assert cut.choices[0].finish_reason == "stop"
