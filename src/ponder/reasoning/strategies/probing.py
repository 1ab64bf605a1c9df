"""Answer probes on live thoughts (Dynasor / Certaindex), for any strategy that runs thoughts.

Every `probe_every` thinking tokens a probe is forked from a live thought: a new request whose
prompt is the thought so far plus `probe_text` (by default "\\n</think>\\n\\n\\boxed{", so the model
writes its current answer at once). The probe reuses the live thought's KV, its partly written
last block included (`EngineSession.submit(prefix_of=...)`), so a probe computes only its own
text. When the last `agree` probes give the same answer (an empty box is no answer), the thought
is stopped and answered with the probe's text; a thought that closes on its own first keeps its
own answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ponder.engine.sampling_params import SamplingParams
from ponder.reasoning.answers import answers_equal, extract_answer
from ponder.reasoning.session import PROBE, BranchState, EngineSession, RequestHandle
from ponder.reasoning.specs import ProbePlan


@dataclass
class _Thought:
    branch: BranchState
    next_probe_at: int
    probe: RequestHandle | None = None
    probe_prefix: str = ""  # the thought's text when the probe in flight was forked
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
        self.probe_ids = [] if plan is None else session.tokenizer.encode(
            plan.probe_text, add_special_tokens=False
        )
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
            if thought.branch.settled_text is None and thought.probe is None:
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
        return sum(thought.branch.settled_text is not None for thought in self._thoughts.values())

    def _maybe_probe(self, thought: _Thought) -> None:
        branch = thought.branch
        if branch.num_reasoning_tokens < thought.next_probe_at or branch.finished:
            return
        if self.session.think_end_id in branch.token_ids:  # answering already: nothing to probe
            return
        thought.probe_prefix = branch.text
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
        probe_text = self.plan.probe_text + probe.branches[0].text
        thought.answers.append(extract_answer(probe_text))
        recent = thought.answers[-self.plan.agree :]
        stable = len(recent) == self.plan.agree and all(
            answer is not None and answers_equal(answer, recent[0]) for answer in recent
        )
        if stable:
            thought.branch.settled_text = thought.probe_prefix + probe_text
            self.session.stop_branch(thought.branch)
