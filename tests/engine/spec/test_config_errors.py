"""Bad speculative settings fail up front with SpeculativeConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest

from ponder import LLM
from ponder.engine.args import EngineArgs
from ponder.errors import InvalidRequestError, SpeculativeConfigError
from tests.fixtures.checkpoints import make_checkpoint


@pytest.mark.parametrize(
    ("knobs", "param"),
    [
        ({"speculative_method": "medusa"}, "speculative_method"),
        ({"speculative_method": "ngram", "num_speculative_tokens": 0}, "num_speculative_tokens"),
        ({"speculative_method": "ngram", "ngram_min": 3, "ngram_max": 2}, "ngram_min"),
        ({"speculative_method": "draft", "speculative_draft_layers": 99}, "speculative_draft_layers"),
        ({"speculative_method": "draft", "speculative_model": "/nonexistent"}, "speculative_model"),
    ],
)
def test_bad_settings(knobs: dict, param: str) -> None:
    with pytest.raises(SpeculativeConfigError) as error:
        LLM(num_kv_blocks=16, max_model_len=128, **knobs)
    assert error.value.param == param
    assert isinstance(error.value, InvalidRequestError)  # the server answers 400


def test_draft_with_another_vocabulary(qwen3_ckpt: Path, tmp_path: Path) -> None:
    other = make_checkpoint(tmp_path / "other-vocab", "qwen3", num_layers=1, vocab_size=400)
    with pytest.raises(SpeculativeConfigError, match="vocabulary"):
        LLM(str(qwen3_ckpt), num_kv_blocks=64, speculative_method="draft", speculative_model=str(other))


def test_cli_flags() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    EngineArgs.add_cli_args(parser)
    args = parser.parse_args(["--speculative-method", "ngram", "--num-speculative-tokens", "3"])
    config = EngineArgs.from_cli_args(args).create_engine_config()
    assert config.speculative is not None
    assert (config.speculative.method, config.speculative.num_speculative_tokens) == ("ngram", 3)
    assert EngineArgs().create_engine_config().speculative is None
    with pytest.raises(SystemExit):
        parser.parse_args(["--speculative-method", "medusa"])
