"""Splits a reasoning model's text into its thought and its answer, one streamed chunk at a time.

A reasoning model writes `<think> … </think>` and then the answer. Chunks may cut a marker in
half ("…</th" + "ink>…"), so text that could still be the start of a marker is held back until
the next chunk decides it. The split follows the engine's thought tracking: the thought opens at
the first `<think>` (or in the prompt, when the chat template opened it), closes at the first
`</think>`, and everything after that is answer, even another `<think>`.

Whitespace at the seams is dropped: right after `<think>`, right before `</think>` and right
after `</think>`, so `"<think>\\nidea\\n</think>\\n\\nanswer"` gives ("idea", "answer"). Feeding
the same text in any chunking gives the same two strings.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

THINK_START = "<think>"
THINK_END = "</think>"


class ThoughtPhase(enum.Enum):
    BEFORE = "before"  # no thought yet: text is answer, and a `<think>` may still open one
    THINKING = "thinking"
    ANSWER = "answer"  # the thought closed: everything is answer


@dataclass
class ThinkSplit:
    reasoning: str = ""
    content: str = ""

    def __bool__(self) -> bool:
        return bool(self.reasoning or self.content)

    def __iadd__(self, other: ThinkSplit) -> ThinkSplit:
        self.reasoning += other.reasoning
        self.content += other.content
        return self


def prompt_opens_thought(prompt_text: str | None) -> bool:
    """True when the prompt ends inside a thought (a template that writes `<think>` itself)."""
    if not prompt_text:
        return False
    return prompt_text.rfind(THINK_START) > prompt_text.rfind(THINK_END)


class ThinkParser:
    """Streaming splitter for one output sequence: feed() every chunk, then finish()."""

    def __init__(self, in_thought: bool = False):
        self.phase = ThoughtPhase.THINKING if in_thought else ThoughtPhase.BEFORE
        self._pending = ""  # text not yet decided: part of a marker, or whitespace at a seam
        self._at_seam = True  # leading whitespace of the current part is dropped

    @classmethod
    def for_prompt(cls, prompt_text: str | None) -> ThinkParser:
        return cls(in_thought=prompt_opens_thought(prompt_text))

    @property
    def in_thought(self) -> bool:
        return self.phase is ThoughtPhase.THINKING

    def feed(self, text: str) -> ThinkSplit:
        split = ThinkSplit()
        self._pending += text
        while self._pending:
            if not self._step(split):
                break
        return split

    def finish(self) -> ThinkSplit:
        """Release what was held back: the stream ended, so no marker can complete any more."""
        split = ThinkSplit()
        pending, self._pending = self._pending, ""
        if self.phase is ThoughtPhase.THINKING:
            split.reasoning = _drop_seam(pending, self._at_seam).rstrip()
        else:
            self._emit_content(split, pending)
        return split

    def _step(self, split: ThinkSplit) -> bool:
        """Consume what can be decided now; False when the rest must wait for more text."""
        if self.phase is ThoughtPhase.ANSWER:
            self._emit_content(split, self._take(len(self._pending)))
            return False
        if self.phase is ThoughtPhase.BEFORE:
            return self._step_before(split)
        return self._step_thinking(split)

    def _step_before(self, split: ThinkSplit) -> bool:
        start = self._pending.find(THINK_START)
        if start >= 0:
            self._emit_content(split, self._take(start))
            self._take(len(THINK_START))
            self.phase, self._at_seam = ThoughtPhase.THINKING, True
            return True
        keep = _partial_marker_length(self._pending, THINK_START)
        self._emit_content(split, self._take(len(self._pending) - keep))
        return False

    def _step_thinking(self, split: ThinkSplit) -> bool:
        end = self._pending.find(THINK_END)
        if end >= 0:
            thought = self._take(end)
            split.reasoning += _drop_seam(thought, self._at_seam).rstrip()
            self._take(len(THINK_END))
            self.phase, self._at_seam = ThoughtPhase.ANSWER, True
            return True
        keep = _partial_marker_length(self._pending, THINK_END)
        decided = self._pending[: len(self._pending) - keep]
        # Trailing whitespace waits: it is dropped if `</think>` follows it.
        body = decided.rstrip()
        if not body:
            return False
        self._take(len(body))
        split.reasoning += _drop_seam(body, self._at_seam)
        self._at_seam = False
        return False

    def _emit_content(self, split: ThinkSplit, text: str) -> None:
        text = _drop_seam(text, self._at_seam)
        if text:
            self._at_seam = False
            split.content += text

    def _take(self, length: int) -> str:
        taken, self._pending = self._pending[:length], self._pending[length:]
        return taken


def split_reasoning(text: str, in_thought: bool = False) -> ThinkSplit:
    """The whole text at once; the same result as streaming it in any chunks."""
    parser = ThinkParser(in_thought=in_thought)
    split = parser.feed(text)
    split += parser.finish()
    return split


def _drop_seam(text: str, at_seam: bool) -> str:
    return text.lstrip() if at_seam else text


def _partial_marker_length(text: str, marker: str) -> int:
    """Length of the longest end of `text` that is a proper prefix of `marker`."""
    for length in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:length]):
            return length
    return 0
