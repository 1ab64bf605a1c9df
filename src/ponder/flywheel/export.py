"""SFT JSONL in chat format: one conversation a line, the assistant turn with its reasoning in
`reasoning_content` (what Qwen3-style templates and TRL-style trainers read)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from ponder.errors import InvalidRequestError
from ponder.flywheel.curate import CuratedRow


def sft_example(row: CuratedRow) -> dict:
    record = row.record
    assistant = {"role": "assistant", "content": record.answer, "reasoning_content": record.reasoning or ""}
    return {
        "messages": [*row.messages, assistant],
        "metadata": {
            "response_id": record.response_id,
            "workload_id": record.workload_id,
            "model_version": record.model_version,
            "answer": row.answer,
            "verified": row.verified,
            "agreement": record.agreement,
            "confidence": record.confidence,
        },
    }


def write_jsonl(path: str | Path, rows: Iterable[CuratedRow]) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w") as out:
        for row in rows:
            out.write(json.dumps(sft_example(row), ensure_ascii=False) + "\n")
            count += 1
    return count


def read_jsonl(path: str | Path) -> Iterator[dict]:
    """The examples of an SFT file; a line that is not a conversation is an error naming it."""
    with Path(path).open() as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                example = json.loads(line)
            except json.JSONDecodeError as error:
                raise InvalidRequestError(f"{path}:{number}: not JSON ({error})") from None
            messages = example.get("messages") if isinstance(example, dict) else None
            if not isinstance(messages, list) or not messages or messages[-1].get("role") != "assistant":
                raise InvalidRequestError(f"{path}:{number}: expected {{'messages': [..., assistant turn]}}")
            yield example
