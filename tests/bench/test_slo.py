"""Parsing --slo and the per-request SLO test."""

from __future__ import annotations

import pytest

from ponder.bench.errors import BenchConfigError
from ponder.bench.slo import SLO, parse_seconds, parse_slo


def test_parse_slo_units_and_aliases():
    slo = parse_slo("ttft=200ms, tpot=50, e2el=10s,tta=1.5s")
    assert slo == SLO(ttft=0.2, tpot=0.05, e2e=10.0, time_to_answer=1.5)
    assert slo.as_ms_dict() == {
        "ttft": 200.0,
        "tpot": 50.0,
        "e2e": 10000.0,
        "time_to_answer": 1500.0,
    }
    assert parse_slo(None).is_empty and parse_slo("").is_empty


@pytest.mark.parametrize("text", ["ttft", "latency=1s", "ttft=fast", "ttft=-1ms", "ttft=0"])
def test_parse_slo_rejects_with_a_message_naming_the_flag(text):
    with pytest.raises(BenchConfigError) as info:
        parse_slo(text)
    assert info.value.flag == "--slo"
    assert "--slo" in str(info.value)


def test_parse_seconds_bare_number_is_milliseconds():
    assert parse_seconds("250", "--x") == pytest.approx(0.25)
    assert parse_seconds("2s", "--x") == pytest.approx(2.0)


def test_is_met_is_inclusive_and_needs_an_answer_for_a_tta_target():
    slo = SLO(ttft=0.2, tpot=0.05)
    assert slo.is_met(ttft=0.2, tpot=0.05, e2e=99.0, time_to_answer=None)
    assert not slo.is_met(ttft=0.2001, tpot=0.01, e2e=1.0, time_to_answer=0.3)
    assert not slo.is_met(ttft=0.1, tpot=0.0501, e2e=1.0, time_to_answer=0.3)
    tta = SLO(time_to_answer=1.0)
    assert tta.is_met(ttft=5.0, tpot=5.0, e2e=9.0, time_to_answer=0.9)
    assert not tta.is_met(ttft=0.1, tpot=0.01, e2e=0.2, time_to_answer=None)
