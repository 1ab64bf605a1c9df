"""The sublinear token term of the step model: fit finds a known exponent exactly (chosen by
held-out steps), stays linear on linear steps, and refuses bad input with a typed error."""

from __future__ import annotations

import math

import pytest

from ponder.errors import InvalidRequestError
from ponder.profiling.step_model import StepModel, fit

SUBLINEAR = StepModel(0.012, 8e-4, 6e-4, 0.0, 2e-4, token_exponent=0.7)


def steps(model: StepModel) -> list[tuple[int, int, float, int, float]]:
    """Decode batches of 1-20 and mixed steps with prompt chunks up to 256 tokens."""
    rows = []
    for seqs in range(1, 21):
        rows.append((seqs, seqs, 0.0, seqs, model.step_time(seqs, seqs, 0.0, seqs)))
        for chunk in (32, 96, 160, 256 - seqs):
            tokens = seqs + chunk
            rows.append((tokens, seqs + 1, 0.0, seqs, model.step_time(tokens, seqs + 1, 0.0, seqs)))
    return rows


def test_fits_a_known_sublinear_curve_exactly():
    fitted = fit(steps(SUBLINEAR))
    assert fitted.token_exponent == 0.7
    for name in ("overhead_s", "per_token_s", "per_seq_s", "per_sample_s"):
        assert getattr(fitted, name) == pytest.approx(getattr(SUBLINEAR, name), rel=1e-6), name
    assert fitted.step_time(256, 1, 0.0, 1) == pytest.approx(SUBLINEAR.step_time(256, 1, 0.0, 1), rel=1e-9)
    # A linear fit of the same steps overprices the largest batch (what the quiet-machine run saw).
    linear = fit(steps(SUBLINEAR), exponents=(1.0,))
    assert linear.token_exponent == 1.0
    assert linear.step_time(256, 20, 0.0, 20) > SUBLINEAR.step_time(256, 20, 0.0, 20)


def test_linear_steps_stay_linear():
    truth = StepModel(0.01, 2e-4, 1e-3, 0.0, 3e-4)
    fitted = fit(steps(truth))
    assert fitted.token_exponent == 1.0
    assert fitted.per_token_s == pytest.approx(truth.per_token_s, rel=1e-6)


def test_round_trip_keeps_the_exponent(tmp_path):
    SUBLINEAR.save(tmp_path / "p.json")
    assert StepModel.load(tmp_path / "p.json") == SUBLINEAR
    (tmp_path / "bad.json").write_text(
        '{"step_model": {"overhead_s": 0, "per_token_s": 0, '
        '"per_seq_s": 0, "per_attn_s": 0, "token_exponent": 1.5}}'
    )
    with pytest.raises(InvalidRequestError):
        StepModel.load(tmp_path / "bad.json")


@pytest.mark.parametrize("exponent", [0.0, -0.5, 1.2, math.nan])
def test_bad_exponent_raises(exponent):
    with pytest.raises(InvalidRequestError):
        StepModel(0.01, 1e-4, 0.0, 0.0, token_exponent=exponent)
    with pytest.raises(InvalidRequestError):
        fit(steps(SUBLINEAR), exponents=(1.0, exponent))


def test_bad_steps_raise():
    rows = steps(SUBLINEAR)
    with pytest.raises(InvalidRequestError):
        fit(rows[:3])
    with pytest.raises(InvalidRequestError):
        fit(rows + [(4, 4, 0.0, 4, math.nan)])
    with pytest.raises(InvalidRequestError):
        fit(rows + [(4, 4, 0.0, 4, -0.01)])
    with pytest.raises(InvalidRequestError):
        fit(rows, exponents=())
