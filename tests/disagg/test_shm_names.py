"""Two deployments on one host name their workers alike (prefill-0, ...): a shm connector that
starts must delete only its dead previous lives, never a live worker's directory of that name."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from ponder.config import KVTransferConfig
from ponder.engine.kv.layout import KVLayout
from ponder.engine.kv_transfer.shm import SharedMemoryConnector

OWNER = "owner.pid"  # shm.OWNER

LAYOUT = KVLayout(num_layers=1, num_kv_heads=1, head_dim=4, block_size=16, dtype=torch.float32)


def connector(root, name: str) -> SharedMemoryConnector:
    return SharedMemoryConnector(
        KVTransferConfig(connector="shm", worker_name=name, shm_dir=str(root)), LAYOUT, 1
    )


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_live_namesake_keeps_its_directory_and_dead_lives_go(tmp_path):
    dead = tmp_path / "prefill-0-0badc0de"
    dead.mkdir()
    (dead / OWNER).write_text(str(dead_pid()))
    legacy = tmp_path / "prefill-0-12345678"  # from before owner files: stale
    legacy.mkdir()
    other_worker = tmp_path / "prefill-0-1-abcdef01"  # not a life of prefill-0 (of "prefill-0-1")
    other_worker.mkdir()
    first = connector(tmp_path, "prefill-0")
    second = connector(tmp_path, "prefill-0")  # the other deployment's prefill-0
    try:
        assert first.own_dir.is_dir() and second.own_dir.is_dir()
        assert (first.own_dir / OWNER).read_text() == str(os.getpid())
        assert not dead.exists() and not legacy.exists()
        assert other_worker.exists()
    finally:
        first.close()
        second.close()
    assert not first.own_dir.exists() and not second.own_dir.exists()
