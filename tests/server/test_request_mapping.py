"""Request fields -> SamplingParams and reasoning budgets; validation errors -> OpenAI errors."""

import pytest
from pydantic import ValidationError

from ponder.engine.sampling_params import RequestOutputKind
from ponder.errors import InvalidRequestError
from ponder.openai.errors import from_validation_errors
from ponder.openai.protocol import ChatCompletionRequest, CompletionRequest
from ponder.openai.sampling import build_sampling_params, plan_reasoning
from ponder.openai.settings import DEFAULT_EFFORT_BUDGETS, ServerSettings, parse_effort_budgets

SETTINGS = ServerSettings(("m",))


def chat(**fields) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    )


def test_openai_defaults_and_extensions_map_to_sampling_params():
    params = build_sampling_params(chat(), plan_reasoning(chat(), SETTINGS, True))
    assert (params.temperature, params.top_p, params.top_k, params.max_tokens) == (
        1.0,
        1.0,
        -1,
        None,
    )
    assert params.output_kind is RequestOutputKind.DELTA and params.logprobs is None
    request = chat(
        temperature=0.3,
        top_p=0.9,
        top_k=5,
        min_p=0.1,
        seed=3,
        stop="x",
        n=2,
        max_tokens=9,
        max_completion_tokens=7,
        logprobs=True,
        top_logprobs=4,
        presence_penalty=0.5,
        repetition_penalty=1.2,
        ignore_eos=True,
    )
    params = build_sampling_params(request, plan_reasoning(request, SETTINGS, True))
    assert (params.temperature, params.top_p, params.top_k, params.min_p) == (0.3, 0.9, 5, 0.1)
    assert (params.seed, params.stop_list, params.n, params.max_tokens) == (3, ["x"], 2, 7)
    assert (params.logprobs, params.presence_penalty, params.repetition_penalty) == (4, 0.5, 1.2)
    assert params.ignore_eos


def test_top_p_zero_means_greedy_and_completions_default_to_16_tokens():
    request = chat(top_p=0)
    assert build_sampling_params(request, plan_reasoning(request, SETTINGS, True)).greedy
    completion = CompletionRequest.model_validate({"model": "m", "prompt": "x", "echo": True, "logprobs": 2})
    params = build_sampling_params(completion, plan_reasoning(completion, SETTINGS, True))
    assert params.max_tokens == 16 and params.prompt_logprobs == 2 and params.logprobs == 2


def test_reasoning_controls_resolve_in_order():
    settings = ServerSettings(("m",), default_thinking_budget=99)
    assert plan_reasoning(chat(), settings, True).thinking_budget == 99
    assert plan_reasoning(chat(), settings, False).thinking_budget is None
    assert plan_reasoning(chat(reasoning_effort="medium"), settings, True).thinking_budget == 2048
    assert plan_reasoning(chat(reasoning_effort="max"), settings, True).thinking_budget is None
    plan = plan_reasoning(chat(reasoning_effort="none", thinking_budget=4), settings, True)
    assert plan.thinking_budget == 4 and plan.template_kwargs == {"enable_thinking": False}
    with pytest.raises(InvalidRequestError) as info:
        plan_reasoning(chat(reasoning_effort="low"), settings, False)
    assert info.value.param == "reasoning_effort"


def test_parse_effort_budgets():
    assert parse_effort_budgets("") == DEFAULT_EFFORT_BUDGETS
    budgets = parse_effort_budgets("low=10, high=none,turbo=3")
    assert (budgets["low"], budgets["high"], budgets["turbo"]) == (10, None, 3)
    for bad in ("low", "low=0", "low=-3", "=5", "low=many"):
        with pytest.raises(InvalidRequestError):
            parse_effort_budgets(bad)


@pytest.mark.parametrize(
    ("fields", "param", "message"),
    [
        ({"temperature": "1"}, "temperature", "Invalid value for 'temperature'"),
        ({"bogus": 1}, "bogus", "Unrecognized request argument supplied: bogus"),
        ({"stop": 5}, "stop", "valid string, or"),
        ({"n": 1.5, "top_p": 9}, "n", "(and 1 more problem)"),
    ],
)
def test_validation_errors_name_the_field(fields, param, message):
    with pytest.raises(ValidationError) as info:
        chat(**fields)
    error = from_validation_errors(list(info.value.errors()))
    assert error.status_code == 400 and error.param == param
    assert message in error.message


def test_extra_keys_in_messages_are_ignored_but_roles_are_checked():
    request = chat(
        messages=[
            {
                "role": "assistant",
                "content": "a",
                "refusal": None,
                "annotations": [],
                "reasoning": "r",
            },
            {"role": "user", "content": "b"},
        ]
    )
    assert request.messages[0].reasoning == "r"
    with pytest.raises(ValidationError):
        chat(messages=[{"role": "robot", "content": "x"}])
