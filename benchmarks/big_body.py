"""One (or several) huge JSON bodies against `ponder serve`: the answer, the server's peak RSS and
the worst /health latency while they are in flight, with the body limit on (the default) and,
as the baseline in the same run, effectively off (`--max-request-bytes 4GiB`).

    python benchmarks/big_body.py --mib 50 --parallel 1 4
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from soak import free_port, rss_bytes, start_server  # noqa: E402


def huge_body(mib: int) -> bytes:
    text = "x " * (mib << 19)  # mib MiB of prompt text
    return json.dumps(
        {"model": "ponder", "messages": [{"role": "user", "content": text}], "max_tokens": 1}
    ).encode()


async def measure(url: str, pid: int, body: bytes, parallel: int) -> dict:
    peak = rss_bytes(pid)
    health_ms: list[float] = []
    done = asyncio.Event()
    died = False

    async def watch() -> None:
        nonlocal peak, died
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            while not done.is_set():
                start = time.perf_counter()
                # A stalled server times the probe out: that counts as its (long) latency.
                with contextlib.suppress(httpx.TimeoutException):
                    await client.get("/health")
                health_ms.append(1000 * (time.perf_counter() - start))
                try:
                    peak = max(peak, rss_bytes(pid))
                except RuntimeError:  # the server process is gone (the baseline can die)
                    died = True
                    return
                await asyncio.sleep(0.05)

    async def send() -> int | str:
        async with httpx.AsyncClient(base_url=url, timeout=600) as client:
            try:
                response = await client.post(
                    "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
                )
            except httpx.HTTPError as exc:  # the baseline may drop the connection: report, go on
                return type(exc).__name__
            return response.status_code

    watcher = asyncio.ensure_future(watch())
    start = time.perf_counter()
    statuses = await asyncio.gather(*(send() for _ in range(parallel)))
    seconds = time.perf_counter() - start
    done.set()
    await watcher
    return {
        "statuses": statuses,
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(peak / 2**20),
        "health_max_ms": round(max(health_ms), 1),
        "health_p50_ms": round(sorted(health_ms)[len(health_ms) // 2], 1),
        "server_died": died,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=50)
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    body = huge_body(args.mib)
    for label, serve_args in [
        ("limit on (default 16MiB)", []),
        ("limit off (baseline)", ["--max-request-bytes", "4GiB", "--request-body-budget", "16GiB"]),
    ]:
        port = free_port()
        server = start_server(serve_args, port)
        try:
            idle = rss_bytes(server.pid)
            for parallel in args.parallel:
                result = asyncio.run(measure(f"http://127.0.0.1:{port}", server.pid, body, parallel))
                if result["server_died"]:
                    print(json.dumps({"mode": label, "parallel": parallel, **result}))
                    break
                after = rss_bytes(server.pid)
                print(
                    json.dumps(
                        {
                            "mode": label,
                            "mib": args.mib,
                            "parallel": parallel,
                            "idle_rss_mib": round(idle / 2**20),
                            **result,
                            "rss_after_mib": round(after / 2**20),
                        }
                    )
                )
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=120)


if __name__ == "__main__":
    main()
