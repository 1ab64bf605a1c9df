"""What each test-time scaling strategy can be asked to do: one frozen dataclass per strategy.

Field metadata carries the allowed range or choices; `ponder.reasoning.spec_parser` validates a
JSON-like dict against these classes, so the server, `LLM.reason` and `ponder eval` accept the
same fields with the same errors.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ponder.errors import InvalidRequestError

AUTO_WAVE = 2  # wave="auto" under load: waves of 2 settled the most tokens on the H200
MAX_BRANCHES = 256  # the engine's default max_num_seqs: more could not run at once
PARAM_PREFIX = "reasoning_strategy"


@dataclass(frozen=True)
class ProbePlan:
    """How thoughts are probed for their current answer (ponder.reasoning.strategies.probing)."""

    probe_every: int  # thinking tokens between probes
    agree: int  # this many probes in a row giving one answer settle the thought
    min_thinking: int = 0  # the first probe not before this many thinking tokens
    probe_text: str | None = None  # None: the model's closing of a thought, then "\\boxed{"
    probe_max_tokens: int = 32


def _range(low: float, high: float | None = None) -> dict[str, Any]:
    return {"min": low, "max": high}


def _choices(*choices: str) -> dict[str, Any]:
    return {"choices": choices}


def _fail(name: str, message: str) -> None:
    raise InvalidRequestError(message, param=f"{PARAM_PREFIX}.{name}")


@dataclass(frozen=True)
class StrategySpec:
    type: ClassVar[str] = ""
    samples_many: ClassVar[bool] = False  # several samples of one prompt: needs temperature > 0

    def validate(self) -> None:
        """Checks across fields; single fields are checked by the parser."""

    @property
    def max_sequences(self) -> int:
        """The most sequences a run keeps in one engine at once (the server admits by it)."""
        return getattr(self, "n", 1)

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {"type": self.type, **{k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}}


@dataclass(frozen=True)
class GreedySpec(StrategySpec):
    """One thought at temperature 0: the baseline."""

    type: ClassVar[str] = "greedy"


@dataclass(frozen=True)
class SingleSpec(StrategySpec):
    """One thought with the request's own sampling parameters."""

    type: ClassVar[str] = "single"


@dataclass(frozen=True)
class SelfConsistencySpec(StrategySpec):
    """n branches forked from one prefill; the most common answer wins."""

    type: ClassVar[str] = "self_consistency"
    samples_many: ClassVar[bool] = True
    n: int = field(default=16, metadata=_range(1, MAX_BRANCHES))
    vote: str = field(default="majority", metadata=_choices("majority", "confidence"))
    # DeepConf offline: only the most confident `keep_top` share of branches vote (at least one)
    keep_top: float = field(default=1.0, metadata=_range(0.0, 1.0))
    window: int = field(default=64, metadata=_range(1))  # tokens per confidence group
    confidence_top_k: int = field(default=20, metadata=_range(1, 100))


@dataclass(frozen=True)
class BestOfNSpec(StrategySpec):
    """n branches; the one with the best score wins."""

    type: ClassVar[str] = "best_of_n"
    samples_many: ClassVar[bool] = True
    n: int = field(default=8, metadata=_range(1, MAX_BRANCHES))
    scorer: str = field(
        default="mean_logprob",
        metadata=_choices("mean_logprob", "confidence", "verifier", "reward_model"),
    )
    reward_model: str | None = None  # a name the host registered, or (offline) a checkpoint dir
    window: int = field(default=64, metadata=_range(1))
    confidence_top_k: int = field(default=20, metadata=_range(1, 100))

    def validate(self) -> None:
        if self.scorer == "reward_model" and not self.reward_model:
            _fail("reward_model", "scorer 'reward_model' needs reward_model: a model name or path")


@dataclass(frozen=True)
class ConfidenceSpec(StrategySpec):
    """DeepConf online: warm-up branches set a confidence threshold; later branches whose sliding
    group confidence falls below it are stopped; all stop once the vote reaches consensus."""

    type: ClassVar[str] = "confidence"
    samples_many: ClassVar[bool] = True
    n: int = field(default=16, metadata=_range(2, MAX_BRANCHES))  # budget of branches in all
    warmup: int = field(default=4, metadata=_range(1, MAX_BRANCHES))
    # After the warm-up: None: all other branches at once; a number: waves of that many, each
    # started only if the vote is still open (fewer tokens, more latency); "auto": all at once
    # while the engine has seats to spare for them, else waves of AUTO_WAVE (what the GPU
    # measurements favour at low and at high load; on the CPU all at once was faster at both
    # loads measured; docs/reasoning.md)
    wave: int | str | None = field(default=None, metadata={**_range(1, MAX_BRANCHES), **_choices("auto")})
    # With a numeric `wave`: keep `wave` branches running and start the next the moment one
    # ends, rather than waiting for the whole wave (each branch its own request)
    rolling: bool = False
    window: int = field(default=64, metadata=_range(1))
    keep_top: float = field(default=0.9, metadata=_range(0.0, 1.0))  # warm-up share above threshold
    # Stop every branch once the vote is decided: "share": the leader holds `consensus` of the
    # vote weight (DeepConf); "beta": the leader is ahead of the runner-up with probability
    # `consensus` (Adaptive-Consistency), which stops sooner on clear but not unanimous votes.
    stop_rule: str = field(default="share", metadata=_choices("share", "beta"))
    consensus: float = field(default=0.95, metadata=_range(0.0, 1.0))
    min_votes: int = field(default=2, metadata=_range(1, MAX_BRANCHES))
    confidence_top_k: int = field(default=20, metadata=_range(1, 100))
    # Also settle each branch by answer probes (as answer_stability does): None: no probes.
    probe_every: int | None = field(default=None, metadata=_range(1))
    agree: int = field(default=2, metadata=_range(1, 64))

    @property
    def max_sequences(self) -> int:
        return self.n if self.probe_every is None else 2 * self.n

    def probe_plan(self) -> ProbePlan | None:
        return None if self.probe_every is None else ProbePlan(self.probe_every, self.agree)

    def validate(self) -> None:
        if self.warmup >= self.n:
            _fail("warmup", f"warmup ({self.warmup}) must be smaller than n ({self.n})")
        if self.rolling and not isinstance(self.wave, int):
            _fail("rolling", "rolling keeps `wave` branches running: set wave to a number")


@dataclass(frozen=True)
class AnswerStabilitySpec(StrategySpec):
    """Dynasor: every probe_every thinking tokens a short probe forked from the live thought reads
    its current answer; once `agree` probes in a row agree, the thought is closed and answered."""

    type: ClassVar[str] = "answer_stability"
    n: int = field(default=1, metadata=_range(1, MAX_BRANCHES))  # thoughts; >1 votes over them
    probe_every: int = field(default=64, metadata=_range(1))
    agree: int = field(default=3, metadata=_range(1, 64))
    min_thinking: int = field(default=0, metadata=_range(0))  # first probe not before this
    # What a probe appends to the thought (None: the model's own closing marker, then "\\boxed{")
    probe_text: str | None = None
    probe_max_tokens: int = field(default=32, metadata=_range(1, 1024))

    @property
    def max_sequences(self) -> int:
        return 2 * self.n  # each thought may have one probe in flight

    def probe_plan(self) -> ProbePlan:
        return ProbePlan(
            self.probe_every, self.agree, self.min_thinking, self.probe_text, self.probe_max_tokens
        )

    def validate(self) -> None:
        if self.probe_text is not None and not self.probe_text:
            _fail("probe_text", "probe_text must not be empty (null: the default probe)")


@dataclass(frozen=True)
class BudgetSpec(StrategySpec):
    """Thinking budget and budget forcing: close the thought at thinking_budget tokens; reopen a
    thought that closed before min_thinking tokens by appending the continuation cue."""

    type: ClassVar[str] = "budget"
    thinking_budget: int | None = field(default=None, metadata=_range(1))
    min_thinking: int = field(default=0, metadata=_range(0))
    continuation: str = "Wait"
    max_extensions: int = field(default=2, metadata=_range(0, 64))

    def validate(self) -> None:
        if self.thinking_budget is not None and self.min_thinking > self.thinking_budget:
            _fail(
                "min_thinking",
                f"min_thinking ({self.min_thinking}) must not exceed thinking_budget "
                f"({self.thinking_budget})",
            )
        if self.min_thinking and not self.continuation:
            _fail("continuation", "continuation must not be empty when min_thinking is set")


@dataclass(frozen=True)
class RefineSpec(StrategySpec):
    """Multi-pass refinement: an attempt and a check of it go back into the context as memory."""

    type: ClassVar[str] = "refine"
    passes: int = field(default=3, metadata=_range(1, 16))
    check: str = field(default="confidence", metadata=_choices("verifier", "confidence"))
    min_confidence: float = field(default=0.0, metadata=_range(0.0))  # accept at or above
    window: int = field(default=64, metadata=_range(1))
    confidence_top_k: int = field(default=20, metadata=_range(1, 100))


@dataclass(frozen=True)
class EnsembleSpec(StrategySpec):
    """n branches on each model; one vote over all of them."""

    type: ClassVar[str] = "ensemble"
    samples_many: ClassVar[bool] = True
    models: tuple[str, ...] = field(default=(), metadata={"min_items": 1})
    n: int = field(default=4, metadata=_range(1, MAX_BRANCHES))
    vote: str = field(default="majority", metadata=_choices("majority", "confidence"))
    window: int = field(default=64, metadata=_range(1))
    confidence_top_k: int = field(default=20, metadata=_range(1, 100))


@dataclass(frozen=True)
class CascadeSpec(StrategySpec):
    """Models in order (small first): the next one runs only when the vote's share is too low."""

    type: ClassVar[str] = "cascade"
    samples_many: ClassVar[bool] = True
    models: tuple[str, ...] = field(default=(), metadata={"min_items": 2})
    n: int = field(default=4, metadata=_range(1, MAX_BRANCHES))
    accept_share: float = field(default=0.75, metadata=_range(0.0, 1.0))
    vote: str = field(default="majority", metadata=_choices("majority", "confidence"))
    window: int = field(default=64, metadata=_range(1))
    confidence_top_k: int = field(default=20, metadata=_range(1, 100))


SPEC_TYPES: dict[str, type[StrategySpec]] = {
    spec.type: spec
    for spec in (
        GreedySpec,
        SingleSpec,
        SelfConsistencySpec,
        BestOfNSpec,
        ConfidenceSpec,
        AnswerStabilitySpec,
        BudgetSpec,
        RefineSpec,
        EnsembleSpec,
        CascadeSpec,
    )
}
