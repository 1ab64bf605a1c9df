"""Real `ponder serve` worker and router processes over the built-in model, for the tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx

COMMON = ["--kv-cache-memory", "32MiB", "--uvicorn-log-level", "warning", "--max-num-seqs", "16"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Serve:
    """One `ponder serve ...` process; `wait()` until /health answers 200."""

    def __init__(self, *flags: str):
        self.flags = list(flags)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.start()

    def start(self) -> None:
        command = [sys.executable, "-m", "ponder", "serve", *COMMON, *self.flags, "--port", str(self.port)]
        self.process = subprocess.Popen(command, env=dict(os.environ, PYTHONUNBUFFERED="1"))

    def wait(self, timeout_s: float = 150.0) -> Serve:
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.process.poll() is None, f"{self.flags} exited during startup"
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{self.flags} not ready"
            time.sleep(0.3)

    def info(self) -> dict:
        return httpx.get(self.url + "/disagg/info", timeout=5).json()

    def metric(self, name: str) -> float:
        """Sum of every sample of `name` (any labels) on /metrics."""
        text = httpx.get(self.url + "/metrics", timeout=5).text
        base, brace, labels = name.partition("{")
        names = [name] if base.endswith("_total") else [name, base + "_total" + brace + labels]
        total = 0.0
        for line in text.splitlines():
            for each in names:
                if line.startswith(each) and line[len(each) : len(each) + 1] in ("{", " ", ",", "}"):
                    total += float(line.rsplit(" ", 1)[1])
        return total

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
