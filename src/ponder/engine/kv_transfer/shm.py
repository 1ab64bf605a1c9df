"""SharedMemoryConnector: same-host KV hand-off through files in /dev/shm (RAM-backed).

The producer writes <root>/<its epoch>/<transfer id>.kv layer by layer, then the manifest
(.json, renamed into place last: its presence means the data is complete). The consumer polls
for the manifest until its deadline, reads the data and deletes both files. Keyed by the
producer's epoch, so a restarted producer neither serves nor is confused by an old transfer; it
deletes the directories its previous lives left on start: those of its name whose owner process
is gone. A live process of the same name (a second deployment on this host, whose workers are
named alike: prefill-0, ...) keeps its directory: deleting it made every save of that worker fail
and every load of its consumers time out (10 s) and recompute."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ponder.config import KVTransferConfig
from ponder.engine.kv.layout import KVLayout
from ponder.engine.kv_transfer.connector import KVConnector, TransferFailed
from ponder.engine.kv_transfer.payload import LayerKV, Manifest, as_bytes
from ponder.engine.kv_transfer.spec import TransferSpec

POLL_S = 0.002
ORPHAN_TTL_S = 300.0  # a transfer nobody loaded for this long is deleted by its producer
OWNER = "owner.pid"  # in each epoch directory: the pid of the process that writes it


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _stale(folder: Path) -> bool:
    """A previous life's directory: its owner process is gone (or it predates owner files)."""
    try:
        pid = int((folder / OWNER).read_text())
    except (OSError, ValueError):
        return True
    return pid != os.getpid() and not _alive(pid)


def default_root() -> Path:
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    return base / f"ponder-kv-{os.getuid()}"


class SharedMemoryConnector(KVConnector):
    def __init__(self, config: KVTransferConfig, layout: KVLayout, total_kv_heads: int):
        super().__init__(config, layout, total_kv_heads)
        self.root = Path(config.shm_dir) if config.shm_dir else default_root()
        self.root.mkdir(parents=True, exist_ok=True)
        mine = re.compile(re.escape(self.name) + r"-[0-9a-f]{8}")  # not "prefill-1" for "prefill-10"
        for folder in self.root.iterdir():
            if mine.fullmatch(folder.name) and _stale(folder):  # this worker's previous lives
                shutil.rmtree(folder, ignore_errors=True)
        self.own_dir = self.root / self.epoch
        self._make_own_dir(exist_ok=False)
        self._last_sweep = time.monotonic()

    def _make_own_dir(self, exist_ok: bool) -> None:
        self.own_dir.mkdir(parents=exist_ok, exist_ok=exist_ok)
        (self.own_dir / OWNER).write_text(str(os.getpid()))

    def _send(
        self, spec: TransferSpec, manifest: Manifest, layers: list[LayerKV], pause: Callable[[], None]
    ) -> None:
        if not self.own_dir.is_dir():  # never fail a save because the folder went
            self._make_own_dir(exist_ok=True)
        data = self.own_dir / f"{spec.transfer_id}.kv"
        with open(data, "wb") as out:
            for index, (k, v) in enumerate(layers):
                if index == len(layers) // 2:
                    out.flush()
                    pause()
                out.write(as_bytes(k))
                out.write(as_bytes(v))
        partial = self.own_dir / f"{spec.transfer_id}.json.partial"
        partial.write_text(manifest.to_json())
        partial.rename(self.own_dir / f"{spec.transfer_id}.json")
        self._sweep_orphans()

    def _receive(
        self, spec: TransferSpec, num_tokens: int, deadline: float
    ) -> tuple[Manifest, list[LayerKV]]:
        folder = self.root / spec.producer_epoch
        manifest_path = folder / f"{spec.transfer_id}.json"
        while not manifest_path.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no KV from {spec.producer_epoch} within {self.config.timeout_s:g} s")
            time.sleep(POLL_S)
        manifest = Manifest.from_json(manifest_path.read_text())
        dtype = getattr(torch, manifest.dtype)
        raw = (folder / f"{spec.transfer_id}.kv").read_bytes()
        shape = (manifest.num_tokens, manifest.num_kv_heads, manifest.head_dim)
        per_tensor = shape[0] * shape[1] * shape[2] * torch.empty((), dtype=dtype).element_size()
        if len(raw) != 2 * manifest.num_layers * per_tensor:
            raise TransferFailed(
                f"the KV file has {len(raw)} bytes, {2 * manifest.num_layers * per_tensor} expected"
            )
        flat = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
        tensors = [
            flat[i * per_tensor : (i + 1) * per_tensor].view(dtype).view(shape)
            for i in range(2 * manifest.num_layers)
        ]
        return manifest, [(tensors[2 * i], tensors[2 * i + 1]) for i in range(manifest.num_layers)]

    def _cleanup(self, spec: TransferSpec) -> None:
        folder = self.root / spec.producer_epoch
        for suffix in (".json", ".kv"):
            (folder / f"{spec.transfer_id}{suffix}").unlink(missing_ok=True)

    def _sweep_orphans(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < 30.0:
            return
        self._last_sweep = now
        cutoff = time.time() - ORPHAN_TTL_S
        for path in self.own_dir.iterdir():
            if path.name == OWNER:
                continue
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except FileNotFoundError:
                pass

    def close(self) -> None:
        super().close()
        shutil.rmtree(self.own_dir, ignore_errors=True)
