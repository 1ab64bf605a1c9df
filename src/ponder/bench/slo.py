"""Service-level objectives (`--slo ttft=200ms,tpot=50ms,e2e=10s`) and the test a request passes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ponder.bench.errors import BenchConfigError

# Names accepted by --slo; `e2el` is vLLM's spelling of the same target.
_SLO_ALIASES = {
    "ttft": "ttft",
    "tpot": "tpot",
    "e2e": "e2e",
    "e2el": "e2e",
    "tta": "time_to_answer",
    "time_to_answer": "time_to_answer",
}
_VALUE_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s)?\s*$")


@dataclass(frozen=True)
class SLO:
    """Latency targets in seconds; None means no target on that metric."""

    ttft: float | None = None
    tpot: float | None = None
    e2e: float | None = None
    time_to_answer: float | None = None

    @property
    def is_empty(self) -> bool:
        return all(v is None for v in (self.ttft, self.tpot, self.e2e, self.time_to_answer))

    def is_met(self, ttft: float, tpot: float, e2e: float, time_to_answer: float | None) -> bool:
        """True when every given target holds (`<=`, as vLLM); a request that never answered
        misses a time-to-answer target."""
        if self.time_to_answer is not None and time_to_answer is None:
            return False
        checks = [
            (self.ttft, ttft),
            (self.tpot, tpot),
            (self.e2e, e2e),
            (self.time_to_answer, time_to_answer),
        ]
        return all(target is None or (value or 0.0) <= target for target, value in checks)

    def as_ms_dict(self) -> dict[str, float]:
        values = {
            "ttft": self.ttft,
            "tpot": self.tpot,
            "e2e": self.e2e,
            "time_to_answer": self.time_to_answer,
        }
        return {name: v * 1000.0 for name, v in values.items() if v is not None}


def parse_seconds(text: str, flag: str) -> float:
    """'200ms' -> 0.2, '10s' -> 10.0; a bare number is milliseconds, as in vLLM's --goodput."""
    match = _VALUE_PATTERN.match(text)
    if match is None:
        raise BenchConfigError(f"{flag}: cannot read {text!r} as a duration; write e.g. 200ms or 1.5s", flag)
    value = float(match.group(1))
    return value if match.group(2) == "s" else value / 1000.0


def parse_slo(text: str | None) -> SLO:
    """Parse 'ttft=200ms,tpot=50ms,e2e=10s' (names: ttft, tpot, e2e/e2el, tta/time_to_answer)."""
    if not text:
        return SLO()
    targets: dict[str, float] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        field_name = _SLO_ALIASES.get(name.strip().lower())
        if not sep or field_name is None:
            allowed = ", ".join(sorted(_SLO_ALIASES))
            raise BenchConfigError(
                f"--slo: cannot read {item.strip()!r}; write NAME=VALUE with NAME one of "
                f"{allowed} (e.g. ttft=200ms,tpot=50ms,e2e=10s)",
                "--slo",
            )
        seconds = parse_seconds(value, "--slo")
        if seconds <= 0:
            raise BenchConfigError(f"--slo: {name.strip()} must be positive", "--slo")
        targets[field_name] = seconds
    return SLO(**targets)
