"""Replica handles: one `ponder serve` each, as a local subprocess on its own port (the default)
or inside a Ray actor (ray_backend). The router talks to every replica over HTTP either way."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
from typing import Protocol

PR_SET_PDEATHSIG = 1


class ReplicaHandle(Protocol):
    name: str

    @property
    def url(self) -> str: ...

    def start(self) -> None: ...

    def is_running(self) -> bool: ...

    def stop(self, graceful: bool = True) -> None:
        """graceful: SIGTERM, the replica drains its in-flight requests; else SIGKILL."""
        ...

    def join(self, timeout_s: float) -> None: ...


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> None:
    """Runs in the child before exec: the kernel kills it when its parent dies (Linux), so a
    replica never outlives a crashed router."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def serve_command(argv: list[str], host: str, port: int) -> list[str]:
    # Replicas log warnings only unless told otherwise: the router logs each request once.
    quiet = [] if "--uvicorn-log-level" in argv else ["--uvicorn-log-level", "warning"]
    return [sys.executable, "-m", "ponder", "serve", *argv, *quiet, "--host", host, "--port", str(port)]


class LocalReplica:
    def __init__(self, name: str, argv: list[str], host: str = "127.0.0.1", port: int | None = None):
        self.name = name
        self.argv = argv
        self.host = host
        self.port = port or free_port(host)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            serve_command(self.argv, self.host, self.port), env=env, preexec_fn=die_with_parent
        )

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, graceful: bool = True) -> None:
        if self.is_running():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)

    def join(self, timeout_s: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        """Kill what is left (SIGKILL also ends a SIGSTOPped process) and start afresh on a new
        port, so nothing still connected to the old one reaches the new process."""
        self.stop(graceful=False)
        self.join(10.0)
        self.port = free_port(self.host)
        self.start()


class ExternalWorker:
    """A `ponder serve` the router did not start (registered by URL): probed and routed to like
    the others, never started, stopped or restarted by the router."""

    def __init__(self, name: str, url: str):
        self.name = name
        self._url = url.rstrip("/")

    @property
    def url(self) -> str:
        return self._url

    def start(self) -> None:
        pass

    def is_running(self) -> bool:
        return True  # unknown: the health probes decide

    def stop(self, graceful: bool = True) -> None:
        pass

    def join(self, timeout_s: float) -> None:
        pass
