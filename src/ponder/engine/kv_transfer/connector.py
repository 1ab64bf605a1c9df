"""KVConnector: the small interface every KV transfer path implements, and the bookkeeping they
share (one background thread per load, an ordered save thread, timeouts, checksums, stats).

Scheduler side: `num_remote_tokens` (how many prompt tokens a finished load holds) and
`load_plan` (after block allocation: which slots of which blocks to fill). Worker side:
`start_load`, `wait_for_layer`, `save_layer`, `finish_save` and `finished` (the loads that ended
since the last call). A subclass moves bytes only: `_send` and `_receive`."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ponder.config import KVTransferConfig
from ponder.engine.kv.layout import KVLayout
from ponder.engine.kv_transfer.payload import LayerKV, Manifest, block_checksums, slots_of
from ponder.engine.kv_transfer.spec import TransferSpec

logger = logging.getLogger("ponder.kv_transfer")


class TransferFailed(RuntimeError):
    """A load that cannot be used: missing, late, malformed or corrupt."""


@dataclass
class TransferStats:
    loads_ok: int = 0
    loads_failed: int = 0  # each then recomputed or failed, by the policy
    recomputed: int = 0
    failed_requests: int = 0
    saves: int = 0
    save_errors: int = 0
    blocks_verified: int = 0  # checksum mode: blocks whose checksum matched after transfer
    bytes_loaded: int = 0
    transfer_seconds: float = 0.0  # consumer: load start -> KV in this engine's cache
    prefill_seconds: float = 0.0  # the producers' prefill time of the same requests
    failures: dict[str, int] = field(default_factory=dict)  # by reason


@dataclass
class _Load:
    spec: TransferSpec
    num_tokens: int
    prompt_hash: int
    started: float
    deadline: float
    manifest: Manifest | None = None
    layers: list[LayerKV] = field(default_factory=list)
    error: str | None = None
    ended: float = 0.0


@dataclass(frozen=True)
class LoadPlan:
    key: str
    slots: torch.Tensor  # this engine's cache slots of tokens [start, num_tokens)
    start: int  # tokens below it were already cached here (prefix cache): not written


class KVConnector(ABC):
    def __init__(self, config: KVTransferConfig, layout: KVLayout, total_kv_heads: int):
        self.config = config
        self.layout = layout  # this rank's pool
        self.total_kv_heads = total_kv_heads  # what the wire carries (all heads, any TP size)
        name = config.worker_name or f"worker{os.getpid()}"
        # A new epoch per process: whatever a previous life of this worker left is never used.
        self.name, self.epoch = name, f"{name}-{uuid.uuid4().hex[:8]}"
        self.stats = TransferStats()
        self.wakeup = threading.Event()  # set when a load ends
        self._loads: dict[str, _Load] = {}
        self._ended: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._pending_saves: dict[str, list[LayerKV]] = {}
        self._saves: queue.SimpleQueue[tuple[TransferSpec, Manifest, list[LayerKV]] | None] = (
            queue.SimpleQueue()
        )
        self._saver = threading.Thread(target=self._save_loop, name="ponder-kv-save", daemon=True)
        self._saver.start()

    def address(self) -> str | None:
        """What a consumer needs to reach this worker (torch connector: its store)."""
        return None

    # ---- worker side: producer ---------------------------------------------------------

    def save_layer(self, key: str, layer: int, kv: LayerKV) -> None:
        """One layer's K/V of the prompt (token-major, on the host), in layer order."""
        layers = self._pending_saves.setdefault(key, [])
        assert len(layers) == layer, "layers are saved in order"
        layers.append(kv)

    def finish_save(self, spec: TransferSpec, manifest: Manifest) -> None:
        """Hand the saved layers to the save thread; the engine goes on at once."""
        layers = self._pending_saves.pop(spec.key)
        if self.config.checksum:
            manifest.checksums = block_checksums(layers, manifest.block_size)
        self._saves.put((spec, manifest, layers))

    def _save_loop(self) -> None:
        while True:
            item = self._saves.get()
            if item is None:
                return
            spec, manifest, layers = item
            try:
                self._send(spec, manifest, layers, self._debug_pause)
                self.stats.saves += 1
            except Exception as error:  # the consumer times out and recomputes
                self.stats.save_errors += 1
                logger.warning("KV save of %s failed: %s", spec.key, error)

    def _debug_pause(self) -> None:
        if self.config.debug_save_delay_s:
            time.sleep(self.config.debug_save_delay_s)

    # ---- worker side: consumer ---------------------------------------------------------

    def start_load(self, spec: TransferSpec, num_tokens: int, prompt_hash: int) -> None:
        """Start fetching the prompt KV of `spec` in the background; `finished` reports its end."""
        now = time.monotonic()
        load = _Load(spec, num_tokens, prompt_hash, now, now + self.config.timeout_s)
        self._loads[spec.key] = load
        threading.Thread(target=self._run_load, args=(load,), name="ponder-kv-load", daemon=True).start()

    def _run_load(self, load: _Load) -> None:
        try:
            manifest, layers = self._receive(load.spec, load.num_tokens, load.deadline)
            self._check(load, manifest, layers)
            load.manifest, load.layers = manifest, layers
        except Exception as error:
            load.error = f"{type(error).__name__}: {error}"
        finally:
            load.ended = time.monotonic()
            self._ended.put(load.spec.key)
            self.wakeup.set()

    def _check(self, load: _Load, manifest: Manifest, layers: list[LayerKV]) -> None:
        layout = self.layout
        expected = (
            load.num_tokens,
            load.prompt_hash,
            layout.num_layers,
            self.total_kv_heads,
            layout.head_dim,
        )
        got = (
            manifest.num_tokens,
            manifest.prompt_hash,
            manifest.num_layers,
            manifest.num_kv_heads,
            manifest.head_dim,
        )
        if expected != got:
            raise TransferFailed(f"the transfer does not match this prompt/model: {got} != {expected}")
        if manifest.producer_epoch != load.spec.producer_epoch:
            raise TransferFailed("the transfer comes from another epoch of the producer")
        if len(layers) != layout.num_layers:
            raise TransferFailed(f"{len(layers)} layers arrived, {layout.num_layers} expected")
        if self.config.checksum:
            if not manifest.checksums:
                raise TransferFailed("checksum mode: the producer sent no checksums")
            sums = block_checksums(layers, manifest.block_size)
            bad = [i for i, (a, b) in enumerate(zip(sums, manifest.checksums)) if a != b]
            if bad or len(sums) != len(manifest.checksums):
                raise TransferFailed(f"checksum mismatch in block(s) {bad[:8]}")
            self.stats.blocks_verified += len(sums)

    def finished(self) -> list[str]:
        """Keys of the loads that ended (complete or failed) since the last call."""
        keys = []
        while True:
            try:
                keys.append(self._ended.get_nowait())
            except queue.Empty:
                return keys

    def error(self, key: str) -> str | None:
        load = self._loads.get(key)
        return "unknown transfer" if load is None else load.error

    # ---- scheduler side ----------------------------------------------------------------

    def num_remote_tokens(self, key: str) -> int:
        """Prompt tokens a finished load holds (0 if it failed)."""
        load = self._loads.get(key)
        return 0 if load is None or load.manifest is None else load.manifest.num_tokens

    def load_plan(self, key: str, block_table: list[int], block_size: int, num_local_tokens: int) -> LoadPlan:
        """After allocation: the slots the remote tokens not cached here go to."""
        end = self.num_remote_tokens(key)
        return LoadPlan(key, slots_of(block_table, block_size, num_local_tokens, end), num_local_tokens)

    def wait_for_layer(self, key: str, layer: int) -> LayerKV:
        load = self._loads[key]
        if load.manifest is None:
            raise TransferFailed(load.error or "the load has not finished")
        return load.layers[layer]

    def mark_loaded(self, plan: LoadPlan) -> None:
        """The engine wrote the load into its cache: count it."""
        load = self._loads[plan.key]
        assert load.manifest is not None
        self.stats.loads_ok += 1
        self.stats.bytes_loaded += sum(2 * k[plan.start :].numel() * k.element_size() for k, _ in load.layers)
        self.stats.transfer_seconds += time.monotonic() - load.started
        self.stats.prefill_seconds += load.manifest.prefill_s

    def release(self, key: str) -> None:
        load = self._loads.pop(key, None)
        if load is not None:
            self._cleanup(load.spec)

    def count_failure(self, key: str) -> str:
        reason = self.error(key) or "unknown"
        kind = reason.split(":", 1)[0]
        self.stats.loads_failed += 1
        self.stats.failures[kind] = self.stats.failures.get(kind, 0) + 1
        return reason

    def close(self) -> None:
        self._saves.put(None)

    # ---- bytes ---------------------------------------------------------------------------

    @abstractmethod
    def _send(
        self, spec: TransferSpec, manifest: Manifest, layers: list[LayerKV], pause: Callable[[], None]
    ) -> None:
        """Deliver the manifest and layers to the consumer (call `pause` half way: test hook)."""

    @abstractmethod
    def _receive(
        self, spec: TransferSpec, num_tokens: int, deadline: float
    ) -> tuple[Manifest, list[LayerKV]]:
        """Fetch what `_send` delivered, raising if it is not complete by `deadline`."""

    def _cleanup(self, spec: TransferSpec) -> None:
        """Drop what a finished (or abandoned) load left behind (nothing, by default)."""
        del spec
