"""Hosting several models: `ponder serve` model options, routing by name, metrics per model."""

import pytest

from ponder.cli.serve import more_models_from_args, settings_from_args
from ponder.engine.tokenizer import Tokenizer
from ponder.errors import InvalidRequestError
from ponder.openai.errors import APIError
from ponder.openai.hosting import HostedModel, ModelRouter
from ponder.openai.metrics import ServerMetrics
from ponder.openai.settings import ServerSettings
from tests.server.harness import ScriptedEngine, ScriptedStats


def serve_args(*argv: str):
    from ponder.cli import build_parser

    args = build_parser().parse_args(["serve", *argv])
    return args, settings_from_args(args)


def test_each_model_is_named_by_its_name_or_path():
    args, settings = serve_args("/m/a", "--model", "b=/m/b", "--model", "/m/c", "--model", "copy=builtin")
    assert settings.served_model_names == ("/m/a",)
    assert more_models_from_args(args, settings) == [("b", "/m/b"), ("/m/c", "/m/c"), ("copy", "builtin")]


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["--model", "builtin"], "'ponder' is taken"),  # the built-in model is MODEL already
        (["/m/a", "--model", "/m/a"], "is taken"),
        (["--model", "x=/m/x", "--model", "x=/m/y"], "is taken"),
        (["--model", "default=/m/x"], "means the requested model"),
        (["--model", "=/m/x"], "NAME=PATH"),
    ],
)
def test_model_names_must_be_unique(argv, hint):
    args, settings = serve_args(*argv)
    with pytest.raises(InvalidRequestError, match=hint):
        more_models_from_args(args, settings)


def test_reward_models_are_named():
    _, settings = serve_args("--reward-model", "rm=/m/rm")
    assert settings.reward_models == {"rm": "/m/rm"}
    with pytest.raises(InvalidRequestError, match="NAME=PATH"):
        serve_args("--reward-model", "/m/rm")


@pytest.fixture
def two_engines(qwen3_ckpt):
    tokenizer = Tokenizer.from_dir(qwen3_ckpt)
    return ScriptedEngine(tokenizer, []), ScriptedEngine(tokenizer, [])


def test_requests_route_by_any_served_name(two_engines):
    first, second = two_engines
    router = ModelRouter(
        [HostedModel(first, ("a", "a2")), HostedModel(second, ("b",))], ServerSettings(("a", "a2"))
    )
    assert router.route("a2") is router.route("a") is router.primary
    assert router.route("b").engine is second and router.route("b").name == "b"
    with pytest.raises(APIError) as caught:
        router.route("c")
    assert caught.value.status_code == 404 and caught.value.code == "model_not_found"
    assert all(f"'{name}'" in caught.value.message for name in ("a", "a2", "b"))
    with pytest.raises(ValueError, match="served twice"):
        ModelRouter([HostedModel(first, ("a",)), HostedModel(second, ("a",))], ServerSettings(("a",)))


def test_engine_metrics_are_labelled_by_model():
    busy = ScriptedStats(num_running=3, spare_seats=7, kv_cache_usage=0.5)
    text = ServerMetrics({"a": ScriptedStats, "b": lambda: busy}).render().decode()
    assert 'ponder:num_requests_running{model_name="a"} 0.0' in text
    assert 'ponder:num_requests_running{model_name="b"} 3.0' in text
    assert 'ponder:kv_cache_usage_perc{model_name="b"} 0.5' in text
    assert 'ponder:num_spare_seats{model_name="b"} 7.0' in text


def test_reasoning_output_flag_sets_the_server_default(capsys):
    assert serve_args()[1].reasoning_output == "separate"
    assert serve_args("--reasoning-output", "content")[1].reasoning_output == "content"
    with pytest.raises(SystemExit):
        serve_args("--reasoning-output", "inline")
    assert "invalid choice: 'inline'" in capsys.readouterr().err
