"""Best-of-N with a reward model: any sequence-classification checkpoint scores the branches."""

from __future__ import annotations

import pytest
from tests.fixtures.checkpoints import write_tokenizer

from ponder import SamplingParams
from ponder.engine.args import EngineArgs
from ponder.engine.llm_engine import LLMEngine
from ponder.errors import InvalidRequestError
from ponder.reasoning.controller import OfflineReasoner
from ponder.reasoning.reward_model import RewardModel, RewardModels


@pytest.fixture(scope="module")
def reward_ckpt(tmp_path_factory):
    from transformers import Qwen3Config, Qwen3ForSequenceClassification

    path = tmp_path_factory.mktemp("reward")
    ids = write_tokenizer(path)
    config = Qwen3Config(
        vocab_size=331,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        num_labels=1,
        pad_token_id=ids["<|endoftext|>"],
        max_position_embeddings=512,
    )
    Qwen3ForSequenceClassification(config).save_pretrained(path)
    return path


def test_best_of_n_picks_the_branch_the_reward_model_likes(qwen3_ckpt, reward_ckpt):
    engine = LLMEngine(
        EngineArgs.from_kwargs(str(qwen3_ckpt), block_size=4, kv_cache_memory=1 << 24).create_engine_config()
    )
    params = SamplingParams(temperature=1.0, max_tokens=10, seed=3)
    spec = {"type": "best_of_n", "n": 4, "scorer": "reward_model", "reward_model": str(reward_ckpt)}
    [result] = OfflineReasoner(engine).run_all(["What is 6 * 7?"], params, spec)
    scorer = RewardModel(reward_ckpt)
    expected = [scorer.score("What is 6 * 7?", b.content) for b in result.branches]
    assert [b.score for b in result.branches] == pytest.approx(expected, abs=1e-5)
    assert result.content == result.branches[expected.index(max(expected))].content
    assert len(set(expected)) > 1  # the branches differ, so the choice means something


def test_reward_models_by_name_and_no_paths_for_the_server(reward_ckpt):
    registered = RewardModels({"rm": str(reward_ckpt)})
    assert isinstance(registered("rm", "q", "a"), float)
    with pytest.raises(InvalidRequestError) as caught:
        registered.check(str(reward_ckpt))  # a path from a request is never loaded
    assert caught.value.param == "reasoning_strategy.reward_model"
    RewardModels(allow_paths=True).check(str(reward_ckpt))
