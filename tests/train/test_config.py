"""Train settings: presets, files and flags combine; bad settings fail with a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from ponder.errors import InvalidRequestError
from ponder.train.config import PRESETS, load_config


def test_presets_load_and_validate() -> None:
    assert load_config("tiny") == PRESETS["tiny"]
    builtin = load_config()
    assert builtin == PRESETS["builtin"]
    # Within the 15 GPU minutes at the rate measured alone on an H100 (~1.5M tokens/s).
    assert builtin.max_steps * builtin.tokens_per_step < 1.5e6 * 15 * 60
    # The classic boxes puzzle is learned last, so the builtin mix shows it more often.
    assert builtin.cell_weights["boxes/easy"] > 1


def test_file_then_flags_override_the_preset(tmp_path: Path) -> None:
    toml_file = tmp_path / "run.toml"
    toml_file.write_text("max_steps = 7\nlr = 0.01\n[family_weights]\narithmetic = 2.0\n")
    config = load_config("tiny", str(toml_file), lr=0.5, seed=None)
    assert (config.max_steps, config.lr, config.seed) == (7, 0.5, PRESETS["tiny"].seed)
    assert config.family_weights == {"arithmetic": 2.0}
    json_file = tmp_path / "run.json"
    json_file.write_text('{"batch_size": 3}')
    assert load_config("tiny", str(json_file)).batch_size == 3


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"family_weights": {"poetry": 1.0}}, "family_weights"),
        ({"difficulty_weights": {"extreme": 1.0}}, "difficulty_weights"),
        ({"cell_weights": {"poetry/hard": 1.0}}, "cell_weights"),
        ({"cell_weights": {"boxes": 1.0}}, "cell_weights"),
        ({"cell_weights": {"boxes/hard": -1.0}}, "cell_weights"),
        ({"snapshot_every": -1}, "snapshot_every"),
        ({"difficulty_weights": {"easy": 0.0}}, "difficulty_weights"),
        ({"num_heads": 6, "num_kv_heads": 4}, "num_kv_heads"),
        ({"seq_len": 4096}, "seq_len"),
        ({"batch_size": 0}, "batch_size"),
        ({"device": "tpu"}, "device"),
        ({"no_think_fraction": 2.0}, "no_think_fraction"),
        ({"probe_fraction": -0.1}, "probe_fraction"),
    ],
)
def test_bad_settings_are_rejected(overrides: dict, param: str) -> None:
    with pytest.raises(InvalidRequestError) as error:
        load_config("tiny", **overrides)
    assert error.value.param == param


def test_unknown_setting_and_preset_list_the_valid_ones(tmp_path: Path) -> None:
    bad_file = tmp_path / "bad.toml"
    bad_file.write_text("learning_rate = 1.0\n")
    with pytest.raises(InvalidRequestError, match="max_steps"):
        load_config("tiny", str(bad_file))
    with pytest.raises(InvalidRequestError, match="tiny, builtin"):
        load_config("huge")
    with pytest.raises(InvalidRequestError, match="does not exist"):
        load_config("tiny", str(tmp_path / "missing.toml"))
