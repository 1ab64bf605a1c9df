"""Strategy specs: defaults, every kind of invalid field named in the error, request checks."""

from __future__ import annotations

import pytest

from ponder.engine.sampling_params import SamplingParams
from ponder.errors import InvalidRequestError
from ponder.reasoning.controller import check_strategy_params
from ponder.reasoning.spec_parser import parse_strategy_spec
from ponder.reasoning.specs import SPEC_TYPES, ConfidenceSpec, EnsembleSpec, SelfConsistencySpec


def test_defaults_and_type_names():
    spec = parse_strategy_spec({"type": "self_consistency", "n": 16, "vote": "confidence"})
    assert spec == SelfConsistencySpec(n=16, vote="confidence")
    assert parse_strategy_spec("confidence") == ConfidenceSpec()
    assert parse_strategy_spec({"type": "ensemble", "models": ["a", "b"]}) == EnsembleSpec(models=("a", "b"))
    assert parse_strategy_spec({"type": "confidence", "keep_top": 1}).keep_top == 1.0
    assert parse_strategy_spec({"type": "confidence", "wave": "auto"}).wave == "auto"


def test_every_type_parses_from_its_own_dict():
    for name, spec_class in SPEC_TYPES.items():
        defaults = {"models": ["x", "y"]} if name in ("ensemble", "cascade") else {}
        spec = parse_strategy_spec({"type": name, **defaults})
        assert isinstance(spec, spec_class)
        assert parse_strategy_spec(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"n": 4}, "reasoning_strategy.type", "missing"),
        ({"type": "magic"}, "reasoning_strategy.type", "valid types"),
        ({"type": "self_consistency", "samples": 4}, "reasoning_strategy.samples", "not a field"),
        ({"type": "self_consistency", "n": 0}, "reasoning_strategy.n", "[1, 256]"),
        ({"type": "self_consistency", "n": 1000}, "reasoning_strategy.n", "[1, 256]"),
        ({"type": "self_consistency", "n": "16"}, "reasoning_strategy.n", "must be int"),
        ({"type": "self_consistency", "n": True}, "reasoning_strategy.n", "must be int"),
        ({"type": "self_consistency", "n": 2.5}, "reasoning_strategy.n", "must be int"),
        ({"type": "self_consistency", "n": None}, "reasoning_strategy.n", "null"),
        ({"type": "self_consistency", "vote": "loudest"}, "reasoning_strategy.vote", "majority"),
        ({"type": "self_consistency", "keep_top": 1.5}, "reasoning_strategy.keep_top", "[0.0, 1.0]"),
        ({"type": "confidence", "consensus": 1.5}, "reasoning_strategy.consensus", "[0.0, 1.0]"),
        ({"type": "confidence", "stop_rule": "median"}, "reasoning_strategy.stop_rule", "beta"),
        ({"type": "confidence", "rolling": True}, "reasoning_strategy.rolling", "set wave"),
        ({"type": "confidence", "wave": "auto", "rolling": True}, "reasoning_strategy.rolling", "a number"),
        ({"type": "confidence", "wave": "fast"}, "reasoning_strategy.wave", "[1, 256] or one of auto"),
        ({"type": "confidence", "wave": 0}, "reasoning_strategy.wave", "[1, 256]"),
        ({"type": "confidence", "wave": 2.5}, "reasoning_strategy.wave", "must be int or str"),
        ({"type": "confidence", "keep_top": float("nan")}, "reasoning_strategy.keep_top", "float"),
        ({"type": "confidence", "n": 4, "warmup": 4}, "reasoning_strategy.warmup", "smaller than n"),
        ({"type": "confidence", "probe_every": 0}, "reasoning_strategy.probe_every", ">= 1"),
        ({"type": "confidence", "agree": 0}, "reasoning_strategy.agree", "[1, 64]"),
        ({"type": "ensemble"}, "reasoning_strategy.models", "at least 1"),
        ({"type": "ensemble", "models": "small"}, "reasoning_strategy.models", "list of model names"),
        ({"type": "cascade", "models": ["small"]}, "reasoning_strategy.models", "at least 2"),
        ({"type": "best_of_n", "scorer": "reward_model"}, "reasoning_strategy.reward_model", "needs"),
        (
            {"type": "budget", "thinking_budget": 10, "min_thinking": 20},
            "reasoning_strategy.min_thinking",
            "exceed",
        ),
        ({"type": "answer_stability", "probe_text": ""}, "reasoning_strategy.probe_text", "empty"),
    ],
)
def test_invalid_fields_name_the_field(body, param, words):
    with pytest.raises(InvalidRequestError) as caught:
        parse_strategy_spec(body)
    assert caught.value.param == param
    assert words in caught.value.message


def test_not_an_object():
    with pytest.raises(InvalidRequestError) as caught:
        parse_strategy_spec([1, 2])
    assert caught.value.param == "reasoning_strategy"


def test_request_checks_need_sampling_and_n_of_one():
    sc = parse_strategy_spec("self_consistency")
    with pytest.raises(InvalidRequestError) as caught:
        check_strategy_params(sc, SamplingParams(temperature=0))
    assert caught.value.param == "temperature"
    with pytest.raises(InvalidRequestError) as caught:
        check_strategy_params(sc, SamplingParams(temperature=0.7, n=2))
    assert caught.value.param == "n"
    check_strategy_params(sc, SamplingParams(temperature=0.7))
    check_strategy_params(parse_strategy_spec("greedy"), SamplingParams(temperature=0))
