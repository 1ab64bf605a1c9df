"""IncrementalDetokenizer: token ids -> streamable text, UTF-8 safe, with stop-string detection."""

from __future__ import annotations

from collections.abc import Sequence

from ponder.engine.tokenizer import Tokenizer

# Prompt tokens decoded in front of the first output token, so decoders that treat the start of
# a text specially (SentencePiece drops a leading space) see the output mid-sequence.
PROMPT_CONTEXT_TOKENS = 5
# Tokens before the decode window are dropped once this many have piled up.
TRIM_THRESHOLD = 64
REPLACEMENT_CHAR = "\ufffd"


class IncrementalDetokenizer:
    """Decodes one request's output a token at a time and finds its stop strings.

    Each `append` decodes only a small window of recent tokens twice (vLLM's prefix/read
    offsets): `prefix_offset..read_offset` is text already emitted and `read_offset..` is new.
    New text is emitted only when it does not end in U+FFFD, i.e. no character is cut in half.
    Text that could still be the start of a stop string is held back, so a stop string never
    streams out before it is recognised.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        prompt_token_ids: Sequence[int],
        *,
        skip_special_tokens: bool = True,
        stop: Sequence[str] = (),
        include_stop_str_in_output: bool = False,
    ):
        self._tokenizer = tokenizer
        self._skip_special_tokens = skip_special_tokens
        self._stops = tuple(stop)
        self._include_stop = include_stop_str_in_output
        context_start = max(0, len(prompt_token_ids) - PROMPT_CONTEXT_TOKENS)
        self._window_ids = list(prompt_token_ids[context_start:])
        self._prefix_offset = 0
        self._read_offset = len(self._window_ids)
        self._held_text = ""  # decoded, but possibly the start of a stop string
        self._visible_chunks: list[str] = []
        self._unread_chunks: list[str] = []
        self._stop_matched: str | None = None
        # Off while a reasoning model is inside its thought: stop strings apply to the answer.
        self.stops_enabled = True

    @property
    def stop_matched(self) -> str | None:
        """The stop string that ended the text, once one has appeared."""
        return self._stop_matched

    @property
    def output_text(self) -> str:
        """All text that is safe to show now (never any part of a stop string)."""
        if len(self._visible_chunks) > 1:
            self._visible_chunks = ["".join(self._visible_chunks)]
        return self._visible_chunks[0] if self._visible_chunks else ""

    def take_new_text(self) -> str:
        """The visible text added since the previous call (for delta streaming)."""
        new_text = "".join(self._unread_chunks)
        self._unread_chunks.clear()
        return new_text

    def append(self, token_id: int) -> None:
        """Add one generated token; a no-op once a stop string has matched."""
        if self._stop_matched is not None:
            return
        self._window_ids.append(token_id)
        prefix_text, window_text = self._decode_window()
        if len(window_text) <= len(prefix_text) or window_text.endswith(REPLACEMENT_CHAR):
            return  # nothing new yet, or a multi-byte character is still incomplete
        self._advance_window()
        self._receive(window_text[len(prefix_text) :])

    def flush(self) -> None:
        """Release everything held back; call when the request ends for a reason other than a
        stop string. A stop string hidden behind an incomplete character may still match here,
        so check `stop_matched` afterwards."""
        if self._stop_matched is not None:
            return
        prefix_text, window_text = self._decode_window()
        self._advance_window()
        if len(window_text) > len(prefix_text):
            self._receive(window_text[len(prefix_text) :])
        if self._stop_matched is None and self._held_text:
            self._show(self._held_text)
            self._held_text = ""

    def _decode_window(self) -> tuple[str, str]:
        ids = self._window_ids
        decode = self._tokenizer.decode
        skip = self._skip_special_tokens
        prefix_text = decode(ids[self._prefix_offset : self._read_offset], skip_special_tokens=skip)
        window_text = decode(ids[self._prefix_offset :], skip_special_tokens=skip)
        return prefix_text, window_text

    def _advance_window(self) -> None:
        self._prefix_offset = self._read_offset
        self._read_offset = len(self._window_ids)
        if self._prefix_offset >= TRIM_THRESHOLD:
            del self._window_ids[: self._prefix_offset]
            self._read_offset -= self._prefix_offset
            self._prefix_offset = 0

    def _receive(self, text: str) -> None:
        if not self._stops or not self.stops_enabled:
            self._show(self._held_text + text)
            self._held_text = ""
            return
        # A stop string can only start inside the held text or the new text (see _held_length).
        candidate = self._held_text + text
        match = earliest_stop(candidate, self._stops)
        if match is not None:
            stop, start = match
            self._show(candidate[: start + len(stop)] if self._include_stop else candidate[:start])
            self._held_text = ""
            self._stop_matched = stop
            return
        held = longest_stop_prefix_at_end(candidate, self._stops)
        self._show(candidate[: len(candidate) - held])
        self._held_text = candidate[len(candidate) - held :]

    def _show(self, text: str) -> None:
        if text:
            self._visible_chunks.append(text)
            self._unread_chunks.append(text)


def earliest_stop(text: str, stops: Sequence[str]) -> tuple[str, int] | None:
    """The stop string that completes first in `text` (ties: the one starting first), and where
    it starts. Completing first is what a character-by-character stream would stop at, so the
    result does not depend on how the text was split into tokens."""
    best: tuple[int, int, str] | None = None  # (end, start, stop)
    for stop in stops:
        start = text.find(stop)
        if start >= 0 and (best is None or (start + len(stop), start) < best[:2]):
            best = (start + len(stop), start, stop)
    return None if best is None else (best[2], best[1])


def longest_stop_prefix_at_end(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of `text` that is a proper prefix of some stop string."""
    longest = 0
    for stop in stops:
        for length in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:length]):
                longest = length
                break
    return longest
