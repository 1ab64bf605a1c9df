"""Answer probes on live thoughts (Dynasor / Certaindex), for any strategy that runs thoughts.

Every `probe_every` thinking tokens a probe is forked from a live thought: a new request whose
prompt is the thought so far plus the probe text (by default the model's own closing of a thought,
then "\\boxed{", so the model writes its current answer at once). The probe reuses the live
thought's KV, its partly written last block included (`EngineSession.submit(prefix_of=...)`), so a
probe computes only its own text. When the last `agree` probes give the same answer (an empty box
is no answer), the thought is stopped and answered with the probe's text; a thought that closes on
its own first keeps its own answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ponder.engine.sampling_params import SamplingParams
from ponder.reasoning.session import PROBE, BranchState, EngineSession, RequestHandle
from ponder.reasoning.specs import ProbePlan
from ponder.tasks.answers import ANSWER_OPENER, answers_equal, extract_answer


@dataclass
class _Thought:
    branch: BranchState
    next_probe_at: int
    probe: RequestHandle | None = None
    probe_prefix: list[int] = field(default_factory=list)  # the thought's tokens at the fork
    answers: list[str | None] = field(default_factory=list)


class AnswerProbes:
    """Probes the thoughts it watches; call `update()` after every `session.wait()`. Without a
    plan it probes nothing (so a strategy with optional probing needs no second code path)."""

    def __init__(
        self,
        session: EngineSession,
        prompt_ids: list[int],
        plan: ProbePlan | None,
        *,
        skip_special_tokens: bool = True,
    ):
        self.session = session
        self.prompt_ids = prompt_ids
        self.plan = plan
        self.probe_ids = [] if plan is None else probe_token_ids(session, plan)
        self.params = SamplingParams(
            temperature=0.0,
            max_tokens=1 if plan is None else plan.probe_max_tokens,
            skip_special_tokens=skip_special_tokens,
        )
        self._thoughts: dict[int, _Thought] = {}

    def watch(self, handle: RequestHandle) -> None:
        """Probe every branch of this request from now on."""
        if self.plan is None:
            return
        first = max(self.plan.min_thinking, self.plan.probe_every)
        for branch in handle.branches:
            self._thoughts[id(branch)] = _Thought(branch, first)

    def update(self) -> None:
        """Read finished probes (stopping thoughts whose answer settled), fork due ones."""
        for thought in self._thoughts.values():
            self._read(thought)
            if thought.branch.settled is None and thought.probe is None:
                self._maybe_probe(thought)

    def cancel(self) -> None:
        """Cancel every probe still in flight (the strategy is done with their thoughts)."""
        for thought in self._thoughts.values():
            if thought.probe is not None:
                self.session.cancel(thought.probe)
                thought.probe = None

    def details(self) -> dict[str, int]:
        """What a strategy reports about its probing (nothing without a plan)."""
        if self.plan is None:
            return {}
        return {"probes": self.num_probes, "settled": self.num_settled}

    @property
    def num_probes(self) -> int:
        return sum(len(thought.answers) for thought in self._thoughts.values())

    @property
    def num_settled(self) -> int:
        return sum(thought.branch.settled is not None for thought in self._thoughts.values())

    def _maybe_probe(self, thought: _Thought) -> None:
        branch = thought.branch
        if branch.num_reasoning_tokens < thought.next_probe_at or branch.finished:
            return
        markers = self.session.markers
        if markers is not None and markers.end_id in branch.token_ids:  # answering already
            return
        thought.probe_prefix = list(branch.token_ids)
        # Ahead of waiting requests: behind them, on a full engine, a probe would come back too
        # late to stop anything.
        thought.probe = self.session.submit(
            self.prompt_ids + branch.token_ids + self.probe_ids,
            self.params,
            kind=PROBE,
            ahead=True,
            prefix_of=branch,
        )
        every = self.plan.probe_every
        thought.next_probe_at = (branch.num_reasoning_tokens // every + 1) * every

    def _read(self, thought: _Thought) -> None:
        probe = thought.probe
        if probe is None:
            return
        if thought.branch.finished or thought.branch.stopped:
            self.session.cancel(probe)  # the thought ended on its own (or was cut): probe is moot
            thought.probe = None
            return
        if not probe.finished:
            return
        thought.probe = None
        # Split as the engine splits the thought's own tokens: the probe text may close the
        # thought (the default) or write the answer inside it.
        probed = self.probe_ids + probe.branches[0].token_ids
        probe_output = self.session.split(self.prompt_ids + thought.probe_prefix, probed)
        thought.answers.append(extract_answer(probe_output.content, probe_output.reasoning))
        recent = thought.answers[-self.plan.agree :]
        stable = len(recent) == self.plan.agree and all(
            answer is not None and answers_equal(answer, recent[0]) for answer in recent
        )
        if stable:
            thought.branch.settled = self.session.split(self.prompt_ids, thought.probe_prefix + probed)
            self.session.stop_branch(thought.branch)


def probe_token_ids(session: EngineSession, plan: ProbePlan) -> list[int]:
    """The plan's probe text, or by default the model's closing of a thought (the tokens a
    thinking budget forces) and the opening of the answer box."""
    if plan.probe_text is not None:
        return session.tokenizer.encode(plan.probe_text, add_special_tokens=False)
    close = list(session.markers.close_ids) if session.markers is not None else []
    return close + session.tokenizer.encode(ANSWER_OPENER, add_special_tokens=False)
