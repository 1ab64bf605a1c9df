"""GET /kv_events?after=SEQ: the primary engine's KV block events, polled by a KV-aware router."""

from __future__ import annotations

from starlette.responses import Response

from ponder.engine.kv.events import BlockStored
from ponder.openai import errors
from ponder.server.http import JSONBody, error_response


def kv_events_response(engine: object, after: int) -> Response:
    read = getattr(engine, "kv_events", None)
    if read is None:  # a scripted engine in tests has no KV pool
        return error_response(errors.APIError(404, "this engine publishes no KV events"))
    batch = read(max(after, 0))
    return JSONBody(
        {
            "block_size": engine.kv_block_size,  # type: ignore[attr-defined]
            "next_seq": batch.next_seq,
            "lost": batch.lost,
            # hashes are 128-bit: hex strings survive any JSON reader
            "events": [
                ["stored" if isinstance(event, BlockStored) else "removed", format(event.block_hash, "x")]
                for event in batch.events
            ],
        }
    )
