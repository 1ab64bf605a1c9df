"""Reading a streamed response: SSE events, and the timeline of thinking and answer chunks."""

from __future__ import annotations

from dataclasses import dataclass

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


class SSEDecoder:
    """Turns the lines of a `text/event-stream` body into event data strings."""

    def __init__(self) -> None:
        self._data_lines: list[str] = []

    def feed(self, line: str) -> str | None:
        """Returns the event's data when `line` ends an event (a blank line), else None."""
        line = line.rstrip("\r")
        if not line:
            return self.flush()
        if line.startswith(":"):  # comment, used by servers as keep-alive pings
            return None
        name, _, value = line.partition(":")
        if name == "data":
            self._data_lines.append(value.removeprefix(" "))
        return None

    def flush(self) -> str | None:
        """The pending event, for streams that end without a final blank line."""
        if not self._data_lines:
            return None
        data = "\n".join(self._data_lines)
        self._data_lines = []
        return data


@dataclass(frozen=True)
class TokenChunk:
    """One streamed chunk that carried text: when it arrived and what it said."""

    arrival_s: float  # seconds since the request was sent
    reasoning: str = ""
    content: str = ""


@dataclass(frozen=True)
class StreamTimeline:
    """Latencies and texts of one response, in seconds from the request being sent."""

    ttft: float
    e2e: float
    itl: list[float]
    time_to_answer: float | None  # None: no answer text after the thinking
    reasoning_text: str
    answer_text: str
    num_reasoning_chunks: int
    num_answer_chunks: int


def build_timeline(chunks: list[TokenChunk]) -> StreamTimeline:
    """TTFT at the first chunk with text, ITL between text chunks, E2E at the last (as vLLM).

    The answer starts at the first chunk with visible answer text. Servers without a reasoning
    parser stream `<think>…</think>` inside `content`; that thinking is split off here, after the
    stream, because the closing tag may span chunks and an opening tag may sit in the prompt.
    """
    if not chunks:
        raise ValueError("a timeline needs at least one chunk")
    arrivals = [c.arrival_s for c in chunks]
    content = "".join(c.content for c in chunks)
    answer_start = _answer_offset(content)
    reasoning_text = "".join(c.reasoning for c in chunks) + _strip_think_tags(content[:answer_start])
    answer_text = content[answer_start:]

    time_to_answer = None
    num_answer_chunks = 0
    content_end = 0
    for chunk in chunks:
        content_start, content_end = content_end, content_end + len(chunk.content)
        past_thinking = content[max(content_start, answer_start) : content_end]
        if time_to_answer is None and past_thinking.strip():
            time_to_answer = chunk.arrival_s
        if time_to_answer is not None and past_thinking:
            num_answer_chunks += 1
    return StreamTimeline(
        ttft=arrivals[0],
        e2e=arrivals[-1],
        itl=[later - earlier for earlier, later in zip(arrivals, arrivals[1:], strict=False)],
        time_to_answer=time_to_answer,
        reasoning_text=reasoning_text,
        answer_text=answer_text,
        num_reasoning_chunks=len(chunks) - num_answer_chunks,
        num_answer_chunks=num_answer_chunks,
    )


def _answer_offset(content: str) -> int:
    """Where the answer begins in `content`: after `</think>` if there is one, else at 0."""
    close = content.find(THINK_CLOSE)
    if close >= 0:
        return close + len(THINK_CLOSE)
    if content.lstrip().startswith(THINK_OPEN):  # thinking never closed: no answer yet
        return len(content)
    return 0


def _strip_think_tags(thinking: str) -> str:
    thinking = thinking.removesuffix(THINK_CLOSE)
    stripped = thinking.lstrip()
    return stripped.removeprefix(THINK_OPEN) if stripped.startswith(THINK_OPEN) else thinking
