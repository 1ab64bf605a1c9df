"""SSE decoding and the thinking/answer timeline of one streamed response."""

from __future__ import annotations

import pytest

from ponder.bench.stream import SSEDecoder, TokenChunk, build_timeline


def decode(lines: list[str]) -> list[str]:
    decoder = SSEDecoder()
    events = [event for line in lines if (event := decoder.feed(line)) is not None]
    if (tail := decoder.flush()) is not None:
        events.append(tail)
    return events


def test_sse_decoder_joins_data_lines_and_skips_comments_and_other_fields():
    lines = [": ping", "event: message", 'data: {"a":', "data: 1}", "", "id: 7", "data:[DONE]"]
    assert decode(lines) == ['{"a":\n1}', "[DONE]"]


def test_sse_decoder_handles_crlf_and_empty_events():
    assert decode(["data: x\r", "\r", "", "data: y", ""]) == ["x", "y"]


def test_timeline_from_reasoning_field_chunks():
    chunks = [TokenChunk(0.1 + 0.02 * i, reasoning=f" r{i}") for i in range(3)]
    chunks += [TokenChunk(0.16 + 0.02 * i, content=f" a{i}") for i in range(2)]
    timeline = build_timeline(chunks)
    assert timeline.ttft == pytest.approx(0.1)
    assert timeline.e2e == pytest.approx(0.18)
    assert timeline.itl == pytest.approx([0.02] * 4)
    assert timeline.time_to_answer == pytest.approx(0.16)
    assert timeline.reasoning_text == " r0 r1 r2"
    assert timeline.answer_text == " a0 a1"
    assert (timeline.num_reasoning_chunks, timeline.num_answer_chunks) == (3, 2)


def test_timeline_splits_think_tags_that_span_chunks():
    pieces = ["<thi", "nk>plan", " more</th", "ink>", "\n\n", "Answer", " 42"]
    chunks = [TokenChunk(0.1 * (i + 1), content=p) for i, p in enumerate(pieces)]
    timeline = build_timeline(chunks)
    assert timeline.reasoning_text == "plan more"
    assert timeline.answer_text == "\n\nAnswer 42"
    # the blank chunk after </think> is not yet the answer a user sees
    assert timeline.time_to_answer == pytest.approx(0.6)
    assert timeline.num_answer_chunks == 2


def test_timeline_with_opening_tag_in_the_prompt():
    # Chat templates that open <think> themselves stream only the closing tag.
    chunks = [TokenChunk(0.1, content="thinking"), TokenChunk(0.2, content="</think>done")]
    timeline = build_timeline(chunks)
    assert timeline.reasoning_text == "thinking"
    assert timeline.answer_text == "done"
    assert timeline.time_to_answer == pytest.approx(0.2)


def test_timeline_of_a_plain_answer_and_of_unfinished_thinking():
    plain = build_timeline([TokenChunk(0.1, content="Hi"), TokenChunk(0.2, content=" there")])
    assert plain.time_to_answer == pytest.approx(0.1)
    assert plain.reasoning_text == ""
    assert plain.num_answer_chunks == 2
    cut = build_timeline([TokenChunk(0.1, content="<think>still"), TokenChunk(0.2, content=" going")])
    assert cut.time_to_answer is None
    assert cut.answer_text == ""
    assert cut.num_answer_chunks == 0


def test_timeline_needs_a_chunk():
    with pytest.raises(ValueError):
        build_timeline([])
