"""Soak: mixed load on a real `ponder serve` for a while, the server's RSS sampled throughout.

The load mixes what a real server sees: streamed and whole chat replies, completions, n=2,
a self-consistency strategy, clients that hang up mid-stream (aborts) and bad requests (400s).
RSS is read from /proc every second; the growth is the mean of the last tenth of the run over
the mean of the tenth after warm-up. A leak grows it steadily; a healthy server levels off.

    python benchmarks/soak.py --minutes 30 --concurrency 8 --json-out soak.json
    python benchmarks/soak.py --seconds 40 --max-growth 0.05     # what CI runs (exit 1 above)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ABORT, BAD = "abort", "bad"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def start_server(serve_args: list[str], port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "ponder.cli", "serve", *serve_args, "--port", str(port)]
    # The log goes to a file, not a pipe: an undrained pipe fills and blocks the server's logging.
    log = tempfile.NamedTemporaryFile("w+", prefix="ponder-serve-", suffix=".log", delete=False)
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            break
        time.sleep(0.2)
    server.kill()
    log.seek(0)
    raise RuntimeError(f"ponder serve did not come up: {log.read()[-2000:]}")


def pick_request(rng: random.Random) -> tuple[str, str, dict]:
    """(kind, path, body) for one request of the mix."""
    question = f"What is {rng.randint(1, 99)} + {rng.randint(1, 99)}?"
    chat = {"model": "ponder", "messages": [{"role": "user", "content": question}], "max_tokens": 96}
    roll = rng.random()
    if roll < 0.30:
        return "chat_stream", "/v1/chat/completions", {**chat, "stream": True}
    if roll < 0.50:
        return "chat", "/v1/chat/completions", {**chat, "temperature": 0.8, "n": 2}
    if roll < 0.65:
        return "completion", "/v1/completions", {"model": "ponder", "prompt": question, "max_tokens": 48}
    if roll < 0.72:
        strategy = {"type": "self_consistency", "n": 4}
        return (
            "strategy",
            "/v1/chat/completions",
            {**chat, "temperature": 0.8, "reasoning_strategy": strategy},
        )
    if roll < 0.90:
        return ABORT, "/v1/chat/completions", {**chat, "stream": True, "max_tokens": 400}
    bad = rng.choice([{"model": "ponder"}, {**chat, "temperature": "hot"}, {**chat, "stop": ["x"] * 100}])
    return BAD, "/v1/chat/completions", bad


async def client_loop(url: str, seed: int, until: float, counts: dict[str, int], failures: list[str]) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        while time.monotonic() < until:
            kind, path, body = pick_request(rng)
            try:
                if body.get("stream"):
                    async with client.stream("POST", path, json=body) as response:
                        status = response.status_code
                        async for i, _ in _enumerate(response.aiter_lines()):
                            if kind == ABORT and i >= rng.randint(2, 20):
                                break  # hang up mid-stream: the server must abort and free the KV
                else:
                    status = (await client.post(path, json=body)).status_code
            except httpx.HTTPError as error:
                failures.append(f"{kind}: {error!r}")
                continue
            expected = 400 if kind == BAD else 200
            if status != expected:
                failures.append(f"{kind}: status {status}")
            counts[kind] = counts.get(kind, 0) + 1


async def _enumerate(lines):
    i = 0
    async for line in lines:
        yield i, line
        i += 1


async def sample_rss(pid: int, until: float, samples: list[tuple[float, int]]) -> None:
    start = time.monotonic()
    while time.monotonic() < until:
        samples.append((time.monotonic() - start, rss_bytes(pid)))
        await asyncio.sleep(1.0)


def growth(samples: list[tuple[float, int]], warmup: float) -> dict:
    rss = [value for _, value in samples]
    start = int(len(rss) * warmup)
    window = max(1, len(rss) // 10)
    settled = statistics.mean(rss[start : start + window])
    last = statistics.mean(rss[-window:])
    return {
        "rss_after_warmup_mib": settled / 2**20,
        "rss_end_mib": last / 2**20,
        "rss_max_mib": max(rss) / 2**20,
        "growth": last / settled - 1,
    }


async def soak(url: str, pid: int, seconds: float, concurrency: int, seed: int) -> dict:
    until = time.monotonic() + seconds
    counts: dict[str, int] = {}
    failures: list[str] = []
    samples: list[tuple[float, int]] = []
    clients = [client_loop(url, seed + i, until, counts, failures) for i in range(concurrency)]
    await asyncio.gather(sample_rss(pid, until, samples), *clients)
    async with httpx.AsyncClient(base_url=url) as client:
        stats = (await client.get("/metrics")).text
    return {
        "counts": counts,
        "failures": failures[:20],
        "num_failures": len(failures),
        "samples": samples,
        "running_after": _gauge(stats, "ponder:num_requests_running"),
    }


def _gauge(metrics: str, name: str) -> float | None:
    for line in metrics.splitlines():
        if line.startswith(name):
            return float(line.rsplit(" ", 1)[1])
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=float)
    length.add_argument("--seconds", type=float)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=0.2, help="share of the run before RSS is compared")
    parser.add_argument(
        "--max-growth", type=float, default=None, help="exit 1 when RSS grows more (0.05 = 5%%)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("serve_args", nargs="*", help="passed to ponder serve (after --)")
    args = parser.parse_args()
    seconds = args.seconds or 60 * (args.minutes or 1)
    port = free_port()
    server = start_server(args.serve_args, port)
    try:
        result = asyncio.run(
            soak(f"http://127.0.0.1:{port}", server.pid, seconds, args.concurrency, args.seed)
        )
    finally:
        server.send_signal(signal.SIGTERM)
        exit_code = server.wait(timeout=120)
    result.update(growth(result["samples"], args.warmup), seconds=seconds, server_exit=exit_code)
    summary = {key: value for key, value in result.items() if key != "samples"}
    print(json.dumps(summary, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(result))
    ok = result["num_failures"] == 0 and exit_code == 0 and result["running_after"] in (0.0, None)
    if args.max_growth is not None and result["growth"] > args.max_growth:
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
