"""A live view of a running strategy, for callers that report progress (the server's SSE
stream): branch counts, tokens so far and the answer leading among the finished branches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ponder.reasoning.session import BRANCH, BranchState, EngineSession
from ponder.reasoning.strategies.base import TokenUsage, usage_of
from ponder.reasoning.voting import vote
from ponder.tasks.answers import extract_answer


@dataclass(frozen=True)
class ProgressSnapshot:
    branches_running: int  # queued or generating
    branches_finished: int  # ended on their own (stop or length), or answered by a probe
    branches_stopped: int  # ended early by the strategy without an answer, or aborted
    usage: TokenUsage  # every token so far, probes included
    leading_answer: str | None  # the majority answer among finished branches (not the final vote)
    leading_share: float | None  # its share of the finished branches that gave an answer

    def to_dict(self) -> dict[str, Any]:
        return {
            "branches_running": self.branches_running,
            "branches_finished": self.branches_finished,
            "branches_stopped": self.branches_stopped,
            "generated_tokens": self.usage.generated_tokens,
            "leading_answer": self.leading_answer,
            "leading_share": self.leading_share,
        }


class StrategyProgress:
    """Passed to run_strategy, which attaches the run's sessions; snapshot() may then be polled
    from the same event loop while the run goes on (and after it ends)."""

    def __init__(self) -> None:
        self._sessions: Sequence[EngineSession] = ()
        # A finished branch's text no longer changes: extract its answer once, not every poll.
        self._answers: dict[tuple[str, int], str | None] = {}

    def attach(self, sessions: Sequence[EngineSession]) -> None:
        self._sessions = tuple(sessions)

    def usage(self) -> TokenUsage:
        return usage_of(self._sessions)

    def snapshot(self) -> ProgressSnapshot:
        branches = [
            branch
            for session in self._sessions
            for handle in session.handles
            if handle.kind == BRANCH
            for branch in handle.branches
        ]
        finished = [
            b
            for b in branches
            if b.settled is not None or (b.finished and not b.stopped and b.finish_reason != "abort")
        ]
        stopped = sum((b.stopped or b.finish_reason == "abort") and b.settled is None for b in branches)
        leader = vote([self._answer(branch) for branch in finished])
        return ProgressSnapshot(
            branches_running=len(branches) - stopped - len(finished),
            branches_finished=len(finished),
            branches_stopped=stopped,
            usage=self.usage(),
            leading_answer=leader.answer,
            leading_share=leader.share if leader.answer is not None else None,
        )

    def _answer(self, branch: BranchState) -> str | None:
        key = (branch.request_id, branch.index)
        if key not in self._answers:
            output = branch.output
            self._answers[key] = extract_answer(output.content, output.reasoning)
        return self._answers[key]
