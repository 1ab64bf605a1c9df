"""StructuredState: one sequence's constraint. It finds where the answer starts (after the thought,
if the model thinks) and runs a grammar matcher over the answer's tokens only.

The state is derived from the sequence's own token ids: `sync` feeds the matcher whatever answer
tokens it has not seen yet, and rolls it back if the ids got shorter. Preemption keeps a
sequence's tokens (only its KV is recomputed), so the matcher stays valid across it; tokens the
engine discards before they reach token_ids were never fed.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

import torch

from ponder.engine.thinking import ThinkMarkers, ThoughtState


class Phase(enum.Enum):
    # The prompt leaves the choice to the model: its first token may open a thought (`<think>`)
    # or be the answer's first token. Masked to the grammar's first tokens plus `<think>`.
    MAY_THINK = "may_think"
    THINKING = "thinking"  # inside <think>…</think>: no mask at all
    ANSWER = "answer"  # every token follows the grammar; at its end only eos is allowed


class StructuredState:
    def __init__(
        self,
        compiled_grammar: Any,
        prompt_token_ids: Sequence[int],
        markers: ThinkMarkers | None,
    ):
        import xgrammar

        self._matcher = xgrammar.GrammarMatcher(compiled_grammar)
        self._num_prompt_tokens = len(prompt_token_ids)
        self._think_start_id = markers.start_id if markers is not None else None
        self.phase = _phase_after_prompt(prompt_token_ids, markers)
        self.answer_start: int | None = self._num_prompt_tokens if self.phase is Phase.ANSWER else None
        self._num_fed = self._num_prompt_tokens  # token_ids[:_num_fed] are accounted for

    @property
    def active(self) -> bool:
        """Whether the next token is masked."""
        return self.phase is not Phase.THINKING

    @property
    def is_complete(self) -> bool:
        """The answer so far is a full match of the grammar (a stop token may end it)."""
        return self._matcher.is_completed()

    def fill_bitmask(self, bitmask: torch.Tensor, row: int) -> None:
        """Write the allowed next tokens into bitmask[row] (int32 words, bit i of word w = id
        32 w + i)."""
        self._matcher.fill_next_token_bitmask(bitmask, row)
        if self.phase is Phase.MAY_THINK and self._think_start_id is not None:
            word, bit = divmod(self._think_start_id, 32)
            if word < bitmask.shape[1]:
                value = int(bitmask[row, word]) | (1 << bit)
                bitmask[row, word] = value - (1 << 32) if value >= 1 << 31 else value

    def sync(self, token_ids: Sequence[int], thought: ThoughtState | None) -> None:
        """Account for the tokens appended since the last call; raises ValueError if one breaks
        the grammar (the request then fails alone)."""
        if len(token_ids) < self._num_fed:  # tokens taken back (speculation): undo them
            start = self.answer_start if self.answer_start is not None else len(token_ids)
            num_back = self._num_fed - max(len(token_ids), start)
            if num_back > 0:
                self._matcher.rollback(num_back)
            self._num_fed = len(token_ids)
            if self.answer_start is not None and self.answer_start > len(token_ids):
                self.answer_start = None
        self._update_phase(token_ids, thought)
        if self.answer_start is None:
            self._num_fed = len(token_ids)
            return
        for position in range(max(self._num_fed, self.answer_start), len(token_ids)):
            token_id = token_ids[position]
            if not self._matcher.accept_token(token_id):
                raise ValueError(
                    f"token {token_id} at output position {position - self._num_prompt_tokens} "
                    "breaks the structured-output grammar"
                )
        self._num_fed = len(token_ids)

    def _update_phase(self, token_ids: Sequence[int], thought: ThoughtState | None) -> None:
        if self.answer_start is not None:
            return
        if thought is not None and thought.closed:
            # The thought ended with the last appended token (its `</think>`, or the closing
            # tokens a spent thinking budget forced): the answer starts after it.
            self.phase, self.answer_start = Phase.ANSWER, len(token_ids)
        elif thought is not None and thought.in_thought:
            self.phase = Phase.THINKING
        elif self.phase is Phase.MAY_THINK and len(token_ids) > self._num_prompt_tokens:
            self.phase, self.answer_start = Phase.ANSWER, self._num_prompt_tokens


def _phase_after_prompt(prompt_token_ids: Sequence[int], markers: ThinkMarkers | None) -> Phase:
    """The prompt's last think marker decides: `<think>` -> thinking, `</think>` (thinking
    switched off by the template) -> answer; none -> the model may think first."""
    if markers is None:
        return Phase.ANSWER
    for token_id in reversed(prompt_token_ids):
        if token_id == markers.end_id:
            return Phase.ANSWER
        if token_id == markers.start_id:
            return Phase.THINKING
    return Phase.MAY_THINK
