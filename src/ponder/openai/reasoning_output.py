"""Where a chat reply's thought goes: its own field (separate), inline in `content` (content), or
both — so clients that read only `content` (guidellm, many UIs) see and count the real text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ponder.engine.output_text import TextSplit
from ponder.engine.thinking import THINK_END, THINK_START

ReasoningOutput = Literal["separate", "content", "both"]
REASONING_OUTPUTS: tuple[ReasoningOutput, ...] = ("separate", "content", "both")
OPEN, CLOSE = f"{THINK_START}\n", f"\n{THINK_END}\n\n"


@dataclass
class ReplyShape:
    """One choice's message or deltas. Inline, a thought is wrapped in the think markers; the
    close marker goes out with the first answer text, so a reply cut off while thinking still
    shows (and counts) its thought. Streamed deltas join to the whole message."""

    mode: ReasoningOutput = "separate"
    include_reasoning: bool = True
    _opened: bool = False
    _closed: bool = False

    @property
    def reasoning_field(self) -> bool:
        return self.include_reasoning and self.mode != "content"

    def delta(self, split: TextSplit) -> dict:
        delta: dict = {}
        if split.reasoning and self.reasoning_field:
            delta["reasoning"] = delta["reasoning_content"] = split.reasoning
        content = self._inline(split) if self.mode != "separate" else split.content
        if content:
            delta["content"] = content
        return delta

    def message(self, split: TextSplit) -> dict:
        content = self._inline(split) if self.mode != "separate" else split.content
        message: dict = {"role": "assistant", "content": content}
        if self.reasoning_field:
            message["reasoning"] = message["reasoning_content"] = split.reasoning or None
        message["tool_calls"] = []
        return message

    def _inline(self, split: TextSplit) -> str:
        text = ""
        if split.reasoning and self.include_reasoning:
            if not self._opened:
                text, self._opened = OPEN, True
            text += split.reasoning
        if split.content:
            if self._opened and not self._closed:
                text += CLOSE
            self._closed = True
            text += split.content
        return text
