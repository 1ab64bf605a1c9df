"""What every strategy takes (StrategyRun) and gives back (StrategyResult), and shared helpers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ponder.engine.sampling_params import SamplingParams
from ponder.errors import InvalidRequestError
from ponder.reasoning.confidence import lowest_group_confidence
from ponder.reasoning.session import PROBE, BranchState, EngineSession
from ponder.reasoning.specs import StrategySpec
from ponder.reasoning.voting import VoteResult, vote
from ponder.tasks.answers import answers_equal, extract_answer

# A verifier sees one candidate's answer (its text after the thought) and returns whether it is
# right (bool) or how good it is (float, higher is better).
Verifier = Callable[[str], bool | float]


class RewardScorer(Protocol):
    """Reward models by name (ponder.reasoning.reward_model.RewardModels)."""

    def check(self, name: str) -> None: ...

    def __call__(self, name: str, question: str, response: str) -> float: ...


@dataclass(frozen=True)
class ReasoningPrompt:
    """The problem, kept as messages or text so that each model can render it with its own
    tokenizer and chat template (ensembles), and refinement can add turns to it."""

    messages: tuple[Mapping[str, Any], ...] | None = None
    text: str | None = None
    token_ids: tuple[int, ...] | None = None
    template_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def token_ids_for(self, session: EngineSession, extra_messages: Sequence[Mapping] = ()) -> list[int]:
        tokenizer = session.tokenizer
        if self.messages is not None:
            rendered = tokenizer.apply_chat_template(
                [*self.messages, *extra_messages], add_generation_prompt=True, **self.template_kwargs
            )
            return tokenizer.encode(rendered, add_special_tokens=False)
        if extra_messages:  # a raw prompt: later turns follow as plain paragraphs
            base = self.text if self.text is not None else tokenizer.decode(list(self.token_ids or ()))
            turns = "".join(f"\n\n{message.get('content', '')}" for message in extra_messages)
            return tokenizer.encode(base + turns + "\n\n")
        if self.text is not None:
            return tokenizer.encode(self.text)
        if self.token_ids is None:
            raise InvalidRequestError("the prompt is empty", param="prompt")
        return list(self.token_ids)

    def question(self, session: EngineSession) -> str:
        """The problem as text, for verifiers and reward models."""
        if self.messages is not None:
            users = [m for m in self.messages if m.get("role") == "user"]
            content = (users or list(self.messages))[-1].get("content")
            return content if isinstance(content, str) else str(content)
        if self.text is not None:
            return self.text
        return session.tokenizer.decode(list(self.token_ids or ()))


@dataclass
class StrategyRun:
    """One problem for one strategy: the main model's session, the prompt and base parameters."""

    session: EngineSession
    prompt: ReasoningPrompt
    params: SamplingParams
    spec: StrategySpec
    models: Mapping[str, EngineSession] = field(default_factory=dict)  # ensembles, by name
    verifier: Verifier | None = None
    reward_scorer: RewardScorer | None = None
    _prompt_ids: dict[int, list[int]] = field(default_factory=dict, repr=False)

    def prompt_ids(self, session: EngineSession | None = None) -> list[int]:
        """The prompt in `session`'s tokens; the main model uses the caller's token ids if given."""
        session = session or self.session
        if id(session) not in self._prompt_ids:
            if session is self.session and self.prompt.token_ids is not None:
                ids = list(self.prompt.token_ids)
            else:
                ids = self.prompt.token_ids_for(session)
            self._prompt_ids[id(session)] = ids
        return self._prompt_ids[id(session)]

    def model(self, name: str) -> EngineSession:
        if name in ("default", self.session.name):
            return self.session
        if name not in self.models:
            known = ", ".join(["default", *self.models]) or "default"
            raise InvalidRequestError(
                f"model {name!r} is not served here; models: {known}",
                param="reasoning_strategy.models",
            )
        return self.models[name]

    @property
    def sessions(self) -> list[EngineSession]:
        return [self.session, *(s for s in self.models.values() if s is not self.session)]


@dataclass
class BranchRecord:
    """One sample as the caller sees it."""

    model: str
    index: int
    reasoning: str  # the thought
    content: str  # the answer as written (the final answer is extracted from it)
    answer: str | None
    token_ids: list[int]  # the output as generated (a probe's or joined requests' included)
    num_tokens: int
    num_reasoning_tokens: int
    finish_reason: str | None
    stopped: bool
    mean_logprob: float
    confidence: float | None = None  # lowest group confidence, when confidences were read
    score: float | None = None  # what the strategy ranked or weighted it by
    discarded: bool = False  # the strategy left it out of the vote (e.g. too little confidence)


@dataclass
class TokenUsage:
    reasoning_tokens: int = 0
    answer_tokens: int = 0
    probe_tokens: int = 0
    num_branches: int = 0
    num_stopped_branches: int = 0  # ended early by the strategy
    num_probes: int = 0
    # Prompt tokens of every request of the run (branches of one request share one prompt),
    # and how many of them the engine found in its prefix cache rather than computed.
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0

    @property
    def generated_tokens(self) -> int:
        return self.reasoning_tokens + self.answer_tokens + self.probe_tokens

    def to_dict(self) -> dict[str, int]:
        return {**dataclasses.asdict(self), "generated_tokens": self.generated_tokens}


@dataclass
class StrategyResult:
    strategy: str
    reasoning: str  # the chosen output's thought
    content: str  # and its answer as written
    answer: str | None
    token_ids: list[int]  # the chosen output's tokens
    branches: list[BranchRecord]
    usage: TokenUsage
    vote: VoteResult | None = None
    finish_reason: str = "stop"  # of the chosen output: "stop", "length" or "abort"
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "answer": self.answer,
            "reasoning": self.reasoning,
            "content": self.content,
            "finish_reason": self.finish_reason,
            "usage": self.usage.to_dict(),
            "vote": None
            if self.vote is None
            else {"share": self.vote.share, "tie": self.vote.tie, "tallies": self.vote.tallies},
            "branches": [_without_tokens(dataclasses.asdict(branch)) for branch in self.branches],
            "details": self.details,
        }


def _without_tokens(branch: dict[str, Any]) -> dict[str, Any]:
    del branch["token_ids"]  # the texts say it; the ids would only bloat a report
    return branch


def usage_of(sessions: Sequence[EngineSession]) -> TokenUsage:
    """Every token every request of the run generated, stopped branches and probes included."""
    usage = TokenUsage()
    for session in sessions:
        for handle in session.handles:
            usage.prompt_tokens += len(handle.branches[0].prompt_token_ids) if handle.branches else 0
            usage.cached_prompt_tokens += handle.num_cached_tokens
            for branch in handle.branches:
                if handle.kind == PROBE:
                    usage.num_probes += 1
                    usage.probe_tokens += branch.num_tokens
                    continue
                usage.num_branches += 1
                usage.num_stopped_branches += branch.stopped
                usage.reasoning_tokens += branch.num_reasoning_tokens
                usage.answer_tokens += branch.num_tokens - branch.num_reasoning_tokens
    return usage


def record(branch: BranchState, model: str, window: int, score: float | None = None) -> BranchRecord:
    """The branch as a caller sees it; one answered by a probe ends with the probe's answer."""
    confidence = lowest_group_confidence(branch.confidences, window) if branch.confidences else None
    settled = branch.settled is not None
    output = branch.output
    return BranchRecord(
        model=model,
        index=branch.index,
        reasoning=output.reasoning,
        content=output.content,
        answer=extract_answer(output.content, output.reasoning),
        token_ids=list(output.token_ids),
        num_tokens=branch.num_tokens,
        num_reasoning_tokens=branch.num_reasoning_tokens,
        finish_reason="stop" if settled else branch.finish_reason,
        stopped=branch.stopped and not settled,  # answered, not cut off
        mean_logprob=branch.mean_logprob,
        confidence=confidence,
        score=score,
    )


def branch_params(base: SamplingParams, **overrides: Any) -> SamplingParams:
    return dataclasses.replace(base, **overrides)


def check_sampling(spec: StrategySpec, params: SamplingParams) -> None:
    if spec.samples_many and params.greedy:
        raise InvalidRequestError(
            f"strategy {spec.type!r} draws several samples of one prompt, which are identical "
            "at temperature 0; set temperature > 0",
            param="temperature",
        )


def require_sampling(run: StrategyRun) -> None:
    check_sampling(run.spec, run.params)


def confidence_weight(branch: BranchRecord, how: str) -> float:
    return 1.0 if how == "majority" else max(0.0, branch.confidence or 0.0)


def vote_over(records: Sequence[BranchRecord], how: str) -> VoteResult:
    """Majority or confidence-weighted vote; discarded branches do not vote; ties go to the
    answer whose branches were surer (higher mean log-probability)."""
    voters = [r for r in records if not r.discarded]
    weights = [confidence_weight(r, how) for r in voters]
    result = vote([r.answer for r in voters], weights, [r.mean_logprob for r in voters])
    for r in voters:
        r.score = confidence_weight(r, how)
    return result


def chosen_by_vote(records: Sequence[BranchRecord], result: VoteResult) -> BranchRecord | None:
    """The strongest branch among those that gave the winning answer (earliest on ties)."""
    if result.answer is None:
        return None
    winners = [r for r in records if not r.discarded and answers_equal(r.answer, result.answer)]
    return max(winners, key=lambda r: r.score or 0.0) if winners else None


def best_scored(records: Sequence[BranchRecord]) -> BranchRecord | None:
    """Highest score; the earliest branch wins a tie (max keeps the first maximum)."""
    scored = [r for r in records if r.score is not None]
    return max(scored, key=lambda r: r.score) if scored else None


def result_from_vote(
    run: StrategyRun, records: list[BranchRecord], how: str, **details: Any
) -> StrategyResult:
    outcome = vote_over(records, how)
    chosen = chosen_by_vote(records, outcome)
    if chosen is None:  # nobody answered: return the longest attempt for inspection
        chosen = max(records, key=lambda r: r.num_tokens, default=None)
    return finish(run, chosen, records, answer=outcome.answer, vote=outcome, **details)


def finish(
    run: StrategyRun,
    chosen: BranchRecord | None,
    records: list[BranchRecord],
    *,
    answer: str | None = None,
    vote: VoteResult | None = None,
    **details: Any,
) -> StrategyResult:
    """The result of a run: its chosen output and the tokens of every request it made."""
    return StrategyResult(
        strategy=run.spec.type,
        reasoning=chosen.reasoning if chosen else "",
        content=chosen.content if chosen else "",
        token_ids=chosen.token_ids if chosen else [],
        answer=answer if answer is not None or vote is not None else (chosen.answer if chosen else None),
        branches=records,
        usage=usage_of(run.sessions),
        vote=vote,
        finish_reason=(chosen.finish_reason if chosen else None) or "stop",
        details=details,
    )
