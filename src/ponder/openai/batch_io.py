"""OpenAI Batch API lines: parse the input, find what an earlier run already wrote, format output.

Input line:  {"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions", "body": {...}}
Output line: {"id": "batch_req_…", "custom_id": "r1", "response": {"status_code": 200,
              "request_id": "…", "body": {...}}, "error": null}
A line that is not a request at all gets `response: null` and an `error` with its line number.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class BatchItem:
    line_number: int  # 1-based
    custom_id: str
    url: str
    body: dict[str, Any]


@dataclass
class BadLine:
    line_number: int
    custom_id: str | None
    message: str


def parse_line(text: str, line_number: int) -> BatchItem | BadLine:
    try:
        data = json.loads(text)
    except ValueError as error:
        return BadLine(line_number, None, f"line {line_number} is not valid JSON: {error}")
    if not isinstance(data, dict):
        return BadLine(line_number, None, f"line {line_number} must be a JSON object")
    custom_id = data.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return BadLine(line_number, None, f"line {line_number} needs a non-empty string custom_id")
    method = data.get("method", "POST")
    if method != "POST":
        return BadLine(line_number, custom_id, f"line {line_number}: method must be POST")
    url, body = data.get("url"), data.get("body")
    if not isinstance(url, str):
        return BadLine(line_number, custom_id, f"line {line_number} needs a string url")
    if not isinstance(body, dict):
        return BadLine(line_number, custom_id, f"line {line_number} needs a JSON object body")
    return BatchItem(line_number, custom_id, url, body)


@dataclass
class Progress:
    """What an output file already holds: custom_ids answered, bad lines reported."""

    custom_ids: set[str]
    line_numbers: set[int]

    def covers(self, item: BatchItem | BadLine) -> bool:
        if item.custom_id is not None and item.custom_id in self.custom_ids:
            return True
        return item.line_number in self.line_numbers


def load_progress(path: Path) -> Progress:
    """Read an earlier run's output; a torn last line (the run was killed mid-write) is cut off."""
    progress = Progress(set(), set())
    if not path.exists():
        return progress
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        with path.open("r+b") as file:
            file.truncate(len(complete))
    for line in complete.decode("utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        if isinstance(record.get("custom_id"), str):
            progress.custom_ids.add(record["custom_id"])
        error = record.get("error")
        if isinstance(error, dict) and isinstance(error.get("line"), int):
            progress.line_numbers.add(error["line"])
    return progress


def result_line(custom_id: str, status_code: int, body: dict) -> dict:
    return {
        "id": f"batch_req_{uuid.uuid4().hex}",
        "custom_id": custom_id,
        "response": {
            "status_code": status_code,
            "request_id": body.get("id") if status_code == 200 else None,
            "body": body,
        },
        "error": None,
    }


def bad_line(line: BadLine) -> dict:
    return {
        "id": f"batch_req_{uuid.uuid4().hex}",
        "custom_id": line.custom_id,
        "response": None,
        "error": {"code": "invalid_request", "message": line.message, "line": line.line_number},
    }
