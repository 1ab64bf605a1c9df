"""OutputText: a sequence's generated text, raw and split into reasoning and content.

The split is decided by token ids, never by matching text: the thought state (engine/thinking.py)
says whether each token is inside the thought, and the think markers are tokens whose own text
goes to the raw text only. So a marker written as ordinary text, a marker cut across chunks, or a
second `<think>` inside a thought can never leak into either part.

Whitespace at the seams is dropped, as readers expect: at the start of the thought, at its end,
and at the start of the answer, so "<think>\\nidea\\n</think>\\n\\nanswer" gives ("idea",
"answer") however the tokens fall.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from ponder.engine.detokenizer import IncrementalDetokenizer
from ponder.engine.thinking import ThinkMarkers, ThoughtState
from ponder.engine.tokenizer import Tokenizer


class TextSplit(NamedTuple):
    reasoning: str
    content: str


@dataclass
class _Part:
    """One side of the split; text only grows (DELTA outputs send what is new)."""

    hold_trailing_whitespace: bool
    text: str = ""
    _held: str = ""  # trailing whitespace that the end of the part would drop
    _at_seam: bool = True  # leading whitespace is dropped

    def add(self, chunk: str) -> None:
        if self._at_seam:
            chunk = chunk.lstrip()
            if not chunk:
                return
            self._at_seam = False
        if not self.hold_trailing_whitespace:
            self.text += chunk
            return
        chunk = self._held + chunk
        body = chunk.rstrip()
        self._held = chunk[len(body) :]
        self.text += body

    def end(self) -> None:
        self._held = ""
        self._at_seam = True


class OutputText:
    """Detokenizes a sequence's output; `raw` is all of it (markers included), `reasoning` and
    `content` the two sides of the thought."""

    def __init__(self, detokenizer: IncrementalDetokenizer, markers: ThinkMarkers | None, in_thought: bool):
        self.detokenizer = detokenizer
        self._marker_ids = (markers.start_id, markers.end_id) if markers is not None else ()
        self._reasoning = _Part(hold_trailing_whitespace=True)
        self._content = _Part(hold_trailing_whitespace=False)
        self._in_thought = in_thought

    @property
    def raw(self) -> str:
        return self.detokenizer.output_text

    @property
    def reasoning(self) -> str:
        return self._reasoning.text

    @property
    def content(self) -> str:
        return self._content.text

    @property
    def stop_matched(self) -> str | None:
        return self.detokenizer.stop_matched

    def enable_stops(self, enabled: bool) -> None:
        """Stop strings are matched in the answer only (the updater says when that is)."""
        self.detokenizer.stops_enabled = enabled

    def append(self, token_id: int, in_thought: bool) -> None:
        """One generated token. `in_thought`: whether its text is thought (for a marker: whether
        the thought is open after it)."""
        is_marker = token_id in self._marker_ids
        if is_marker or in_thought != self._in_thought:
            self.detokenizer.flush()  # text held back so far belongs to the side it was written on
            self._route(self.detokenizer.take_new_text())
        self._enter(in_thought)
        self.detokenizer.append(token_id)
        text = self.detokenizer.take_new_text()
        if not is_marker:  # a marker's own text stays in `raw` only
            self._route(text)

    def finish(self) -> None:
        """The sequence ended: release held-back text; the thought (if open) ends here."""
        self.detokenizer.flush()
        self._route(self.detokenizer.take_new_text())
        self._reasoning.end()

    def _enter(self, in_thought: bool) -> None:
        if self._in_thought and not in_thought:
            self._reasoning.end()
            self._content.end()  # the answer starts a new seam
        self._in_thought = in_thought

    def _route(self, text: str) -> None:
        if text:
            (self._reasoning if self._in_thought else self._content).add(text)


def split_token_ids(
    tokenizer: Tokenizer,
    markers: ThinkMarkers | None,
    prompt_token_ids: Sequence[int],
    output_token_ids: Sequence[int],
    *,
    skip_special_tokens: bool = True,
) -> TextSplit:
    """The reasoning and content of tokens generated after a prompt: the engine's own split, for
    strategies that join several requests into one answer (a probe's, a continued thought's)."""
    thought = ThoughtState.after_prompt(prompt_token_ids, markers) if markers is not None else None
    detokenizer = IncrementalDetokenizer(tokenizer, prompt_token_ids, skip_special_tokens=skip_special_tokens)
    text = OutputText(detokenizer, markers, in_thought=thought is not None and thought.in_thought)
    for token_id in output_token_ids:
        if thought is not None and markers is not None:  # thought is None without markers
            thought.observe(token_id, markers, budget=None)
        text.append(token_id, in_thought=thought is not None and thought.in_thought)
    text.finish()
    return TextSplit(text.reasoning, text.content)
