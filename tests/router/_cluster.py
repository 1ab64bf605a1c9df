"""A real `ponder serve --data-parallel-size N` router process over the built-in model."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RouterProcess:
    def __init__(self, *flags: str, replicas: int = 2):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "ponder", "serve", "--data-parallel-size", str(replicas)]
        command += ["--port", str(self.port), "--kv-cache-memory", "32MiB", "--uvicorn-log-level", "warning"]
        self.process = subprocess.Popen([*command, *flags], env=dict(os.environ, PYTHONUNBUFFERED="1"))
        deadline = time.monotonic() + 120
        while True:
            assert self.process.poll() is None, "the router exited during startup"
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "router not ready in 120 s"
            time.sleep(0.3)

    def replicas(self) -> list[dict]:
        return httpx.get(self.url + "/replicas", timeout=5).json()["data"]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
