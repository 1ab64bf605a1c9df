"""The request log's cost: writer throughput (batched vs per-row commit) and serving with
logging on vs off (the same engine behind two apps, rounds interleaved). Prints a markdown table.

    python benchmarks/flywheel_log.py --rows 20000 --rounds 6 --requests 16
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from ponder.flywheel.records import LogRecord
from ponder.flywheel.store import RequestLogStore


def record(index: int) -> LogRecord:
    return LogRecord(
        f"chatcmpl-{index}", time.time(), "ponder", "v1", "bench", "chat",
        '[{"role": "user", "content": "What is 12 + 30?"}]', "12 plus 30 is 42. " * 8,
        "\\boxed{42}", "42", 20, 60, 50, 0.2, "self_consistency", 0.8, 0.9, "stop",
    )  # fmt: skip


def writer_throughput(rows: int, batch_size: int, directory: Path) -> tuple[float, float]:
    """(rows/s committed, µs per append on the caller's thread)."""
    store = RequestLogStore(directory / f"writer-{batch_size}.db", batch_size=batch_size)
    started = time.perf_counter()
    for index in range(rows):
        store.append(record(index))
    appended = time.perf_counter() - started
    store.flush()
    elapsed = time.perf_counter() - started
    store.close()
    return rows / elapsed, 1e6 * appended / rows


async def serving_rounds(
    rounds: int, requests: int, max_tokens: int, directory: Path
) -> dict[str, list[float]]:
    import httpx

    from ponder.engine.args import EngineArgs
    from ponder.engine.async_engine import AsyncEngine
    from ponder.openai.settings import ServerSettings
    from ponder.server.app import build_app

    engine = AsyncEngine.from_engine_args(EngineArgs.from_kwargs(None))
    settings = ServerSettings(served_model_names=("ponder",))
    store = RequestLogStore(directory / "serve.db")
    apps = {
        "off": build_app(engine, settings, shutdown_engine=False),
        "on": build_app(engine, settings, shutdown_engine=False, request_log=store),
    }
    body = {"model": "ponder", "messages": [{"role": "user", "content": "What is 17 + 25?"}],
            "max_tokens": max_tokens, "temperature": 0}  # fmt: skip
    times: dict[str, list[float]] = {"off": [], "on": []}
    for round_index in range(rounds + 1):  # round 0 warms up
        order = ["off", "on"] if round_index % 2 else ["on", "off"]
        for mode in order:
            transport = httpx.ASGITransport(app=apps[mode])
            async with httpx.AsyncClient(transport=transport, base_url="http://x", timeout=600) as client:
                started = time.perf_counter()
                answers = await asyncio.gather(
                    *(client.post("/v1/chat/completions", json=body) for _ in range(requests))
                )
                elapsed = time.perf_counter() - started
            assert all(answer.status_code == 200 for answer in answers)
            if round_index:
                times[mode].append(elapsed)
    store.close()
    assert store.count() == (rounds + 1) * requests
    await engine.shutdown()
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        print("| writer | rows/s committed | µs per append (caller) |\n|---|---|---|")
        for label, batch in (("per-row commit (batch 1)", 1), ("batched (up to 256)", 256)):
            rate, append_us = writer_throughput(args.rows if batch > 1 else args.rows // 4, batch, directory)
            print(f"| {label} | {rate:,.0f} | {append_us:.1f} |")
        times = asyncio.run(serving_rounds(args.rounds, args.requests, args.max_tokens, directory))
        print(f"\n| logging | median s per round of {args.requests} requests | rounds |\n|---|---|---|")
        for mode in ("off", "on"):
            rounds = ", ".join(f"{t:.2f}" for t in times[mode])
            print(f"| {mode} | {statistics.median(times[mode]):.3f} | {rounds} |")
        off, on = statistics.median(times["off"]), statistics.median(times["on"])
        print(f"\noverhead of logging: {100 * (on - off) / off:+.1f}% (median of interleaved rounds)")


if __name__ == "__main__":
    main()
