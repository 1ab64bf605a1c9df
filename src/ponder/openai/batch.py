"""`ponder batch in.jsonl -o out.jsonl`: OpenAI Batch API files, run offline with full batching.

Every pending request is in the engine at once (up to --max-concurrency), so they are batched
like a busy server's. Results are appended as they finish, one whole line per write, so a run
that is killed can be resumed: requests whose custom_id is already in the output are skipped.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import IO

from tqdm.auto import tqdm

from ponder.openai.batch_io import (
    BadLine,
    BatchItem,
    bad_line,
    load_progress,
    parse_line,
    result_line,
)
from ponder.openai.encoding import dumps
from ponder.openai.service import OpenAIService


async def process_file(
    api: OpenAIService, input_path: Path, output_path: Path, *, concurrency: int, show_progress: bool
) -> tuple[int, int]:
    """Run every line of `input_path` not yet in `output_path`; returns (written, failed)."""
    progress = load_progress(output_path)
    pending = [item for item in read_items(input_path) if not progress.covers(item)]
    written = failed = 0
    with (
        output_path.open("ab") as output,
        tqdm(total=len(pending), disable=not show_progress, desc="batch", unit="req") as bar,
    ):

        def write(record: dict) -> None:
            nonlocal written, failed
            _write_line(output, record)
            written += 1
            failed += record["error"] is not None or record["response"]["status_code"] != 200
            bar.update(1)

        requests = []
        for item in pending:
            if isinstance(item, BadLine):
                write(bad_line(item))
            else:
                requests.append(item)
        limit = asyncio.Semaphore(max(1, concurrency))

        async def run(item: BatchItem) -> None:
            async with limit:
                status, body = await api.call(item.url, item.body)
            write(result_line(item.custom_id, status, body))

        await asyncio.gather(*(run(item) for item in requests))
    return written, failed


def read_items(path: Path) -> list[BatchItem | BadLine]:
    """Parsed input lines (blank ones skipped); a repeated custom_id is a bad line."""
    items: list[BatchItem | BadLine] = []
    first_line: dict[str, int] = {}
    with path.open(encoding="utf-8", errors="replace") as file:
        for line_number, text in enumerate(file, start=1):
            if not text.strip():
                continue
            item = parse_line(text, line_number)
            if item.custom_id is not None and item.custom_id in first_line:
                item = BadLine(
                    line_number,
                    None,
                    f"line {line_number} repeats custom_id {item.custom_id!r} "
                    f"(first on line {first_line[item.custom_id]})",
                )
            elif item.custom_id is not None:
                first_line[item.custom_id] = line_number
            items.append(item)
    return items


def _write_line(output: IO[bytes], record: dict) -> None:
    # One write per line, then flush: a kill leaves at most one torn line, cut on resume.
    output.write(dumps(record) + b"\n")
    output.flush()
