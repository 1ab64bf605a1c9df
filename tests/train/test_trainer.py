"""A tiny CPU training run: the loss falls, the export loads in transformers, resume continues."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer

from ponder.cli.train import main
from ponder.errors import ModelLoadError
from ponder.train.config import load_config
from ponder.train.trainer import lr_multiplier, run_progress, train


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory):
    out_dir = tmp_path_factory.mktemp("tiny_run")
    config = load_config("tiny", out_dir=str(out_dir), progress_bar=False)
    config = load_config(
        "tiny", out_dir=str(out_dir), progress_bar=False, snapshot_every=config.max_steps // 2
    )
    return config, train(config, log=lambda message: None)


def test_tiny_run_lowers_the_loss(tiny_run) -> None:
    config, result = tiny_run
    assert result.steps == config.max_steps and result.finished
    assert result.final_loss < result.first_loss - 1.0
    history = [json.loads(line) for line in (Path(config.out_dir) / "train_log.jsonl").open()]
    assert any("held_out_loss" in record for record in history)


def test_export_is_a_loadable_hf_checkpoint(tiny_run) -> None:
    _, result = tiny_run
    names = {path.name for path in result.model_dir.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    } <= names
    generation = json.loads((result.model_dir / "generation_config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(str(result.model_dir))
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in generation["eos_token_id"]
    model = AutoModelForCausalLM.from_pretrained(str(result.model_dir))
    assert type(model).__name__ == "Qwen3ForCausalLM"
    with safe_open(str(result.model_dir / "model.safetensors"), "pt") as weights:
        assert "lm_head.weight" not in weights.keys()  # tied: stored once
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 2 + 3?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    output = model.generate(**prompt, max_new_tokens=5, do_sample=False)
    assert output.shape[1] > prompt["input_ids"].shape[1]


def test_snapshots_are_loadable_models_along_the_way(tiny_run) -> None:
    config, result = tiny_run
    assert config.max_steps == 2 * config.snapshot_every
    snapshots = sorted((Path(config.out_dir) / "snapshots").iterdir())
    # The last step's model is model/, not exported a second time as a snapshot.
    assert [path.name for path in snapshots] == [f"step-{config.snapshot_every:06d}"]
    middle = AutoModelForCausalLM.from_pretrained(snapshots[0])
    exported = AutoModelForCausalLM.from_pretrained(result.model_dir)
    weight = "model.layers.0.mlp.up_proj.weight"
    assert not middle.state_dict()[weight].equal(exported.state_dict()[weight])


def test_resume_continues_from_the_checkpoint(tiny_run) -> None:
    config, result = tiny_run
    more = load_config("tiny", out_dir=config.out_dir, max_steps=config.max_steps + 4, progress_bar=False)
    resumed = train(more, resume=True, log=lambda message: None)
    assert resumed.steps == config.max_steps + 4


def test_resume_refuses_a_different_model_shape(tiny_run) -> None:
    config, _ = tiny_run
    wider = load_config("tiny", out_dir=config.out_dir, hidden_size=96, progress_bar=False)
    with pytest.raises(ModelLoadError, match="hidden_size"):
        train(wider, resume=True, log=lambda message: None)


def test_resume_without_checkpoint_is_a_clear_error(tmp_path: Path, capsys) -> None:
    status = main(["--preset", "tiny", "--out-dir", str(tmp_path), "--resume", "--no-progress"])
    assert status == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_schedule_warms_up_then_decays() -> None:
    config = load_config("tiny", warmup_steps=10, max_steps=100)
    assert lr_multiplier(0, 0.0, config) == pytest.approx(0.1)
    assert lr_multiplier(9, 0.09, config) == pytest.approx(
        config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * 0.09))
    )
    assert lr_multiplier(99, 1.0, config) == pytest.approx(config.min_lr_ratio)
    budgeted = load_config("tiny", max_steps=1000, time_budget_minutes=1.0)
    assert run_progress(10, 30.0, budgeted) == pytest.approx(0.5)  # time is further along
    assert run_progress(900, 1.0, budgeted) == pytest.approx(0.9)
