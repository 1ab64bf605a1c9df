"""TorchDistributedConnector: KV hand-off over torch.distributed point-to-point (gloo), between
processes on one host or several.

Each producer hosts a TCPStore (its `address()`, published at /disagg/info). A consumer joins
it and the two form a 2-rank gloo group per (producer epoch, consumer epoch, generation): a
restarted worker has a new epoch, so it never meets a group or a message of its previous life,
and a consumer that saw a transfer fail moves to a new generation (the old group may hold
half-sent messages). Per transfer: a header (sizes, prompt hash, prefill time), the block
checksums, then one message per layer ([2, tokens, heads, dim]), each tagged by transfer id
and index, so transfers to one consumer may arrive in any order. The producer only posts
sends (a send whose consumer never receives is dropped after the timeout, never waited on by the
engine); the consumer waits for each message until the deadline."""

from __future__ import annotations

import datetime
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist

from ponder.config import KVTransferConfig
from ponder.engine.kv.layout import KVLayout
from ponder.engine.kv_transfer.connector import KVConnector, TransferFailed
from ponder.engine.kv_transfer.payload import LayerKV, Manifest
from ponder.engine.kv_transfer.spec import TransferSpec

DTYPES = ("float32", "bfloat16", "float16")
HEADER = 9  # num_tokens, num_layers, heads, head_dim, block_size, prompt_hash, prefill_us, sums, dtype
MAX_MESSAGES = 128
# A 2-rank gloo group; typed loosely because torch's stubs omit send/recv on ProcessGroupGloo.
_Group = Any


def _tag(transfer_id: str, index: int) -> int:
    return (zlib.crc32(transfer_id.encode()) & 0xFFFFFF) * MAX_MESSAGES + index


class TorchDistributedConnector(KVConnector):
    def __init__(
        self, config: KVTransferConfig, layout: KVLayout, total_kv_heads: int, host: str = "127.0.0.1"
    ):
        super().__init__(config, layout, total_kv_heads)
        if 2 * layout.num_layers + 2 > MAX_MESSAGES:
            raise TransferFailed(f"the torch connector handles up to {MAX_MESSAGES // 2 - 1} layers")
        self._timeout = datetime.timedelta(seconds=config.timeout_s)
        self.host = host
        self.store = dist.TCPStore(host, config.port or 0, None, True, self._timeout, wait_for_workers=False)
        self._lock = threading.Lock()
        self._producer_groups: dict[str, tuple[str, _Group]] = {}  # consumer epoch ->
        self._consumer_groups: dict[str, tuple[int, _Group]] = {}  # producer address ->
        self._stores: dict[str, dist.TCPStore] = {}
        self._generation: dict[str, int] = {}
        self._sends: list[tuple[float, dist.Work]] = []  # posted sends and when they give up

    def address(self) -> str:
        return f"{self.host}:{self.store.port}"

    # ---- producer (save thread) ----------------------------------------------------------

    def _group_to(self, consumer_epoch: str) -> _Group:
        # The consumer writes its current generation into our store before it joins.
        generation = self.store.get(f"gen/{consumer_epoch}").decode()
        known = self._producer_groups.get(consumer_epoch)
        if known is not None and known[0] == generation:
            return known[1]
        prefix = dist.PrefixStore(f"pair/{consumer_epoch}/{generation}", self.store)
        group = dist.ProcessGroupGloo(prefix, 0, 2, self._timeout)
        self._producer_groups[consumer_epoch] = (generation, group)
        return group

    def _send(
        self, spec: TransferSpec, manifest: Manifest, layers: list[LayerKV], pause: Callable[[], None]
    ) -> None:
        if not spec.consumer_epoch:
            raise TransferFailed("the torch connector needs the consumer's epoch in kv_transfer_params")
        group = self._group_to(spec.consumer_epoch)
        self._reap()
        header = torch.tensor(
            [
                manifest.num_tokens,
                manifest.num_layers,
                manifest.num_kv_heads,
                manifest.head_dim,
                manifest.block_size,
                manifest.prompt_hash,
                int(manifest.prefill_s * 1e6),
                len(manifest.checksums),
                DTYPES.index(manifest.dtype),
            ],
            dtype=torch.int64,
        )
        sums = torch.tensor(manifest.checksums or [0], dtype=torch.int64)
        give_up = time.monotonic() + self.config.timeout_s
        messages = [header, sums]
        for index, message in enumerate(messages):
            self._sends.append((give_up, group.send([message], 1, _tag(spec.transfer_id, index))))
        for layer, (k, v) in enumerate(layers):
            if layer == len(layers) // 2:
                pause()
            message = torch.stack([k, v]).contiguous()
            self._sends.append((give_up, group.send([message], 1, _tag(spec.transfer_id, 2 + layer))))

    def _reap(self) -> None:
        now = time.monotonic()
        self._sends = [(t, w) for t, w in self._sends if not w.is_completed() and t > now]

    # ---- consumer (load threads) -----------------------------------------------------------

    def _group_from(self, address: str, producer_epoch: str) -> tuple[int, _Group]:
        with self._lock:  # loads run in parallel threads; one group per producer
            known = self._consumer_groups.get(address)
            if known is not None:
                return known
            generation = self._generation.get(address, 0) + 1
            self._generation[address] = generation
            store = self._stores.get(address)
            if store is None:
                host, port = address.rsplit(":", 1)
                store = dist.TCPStore(host, int(port), None, False, self._timeout, wait_for_workers=False)
                self._stores[address] = store
            store.set(f"gen/{self.epoch}", str(generation))
            prefix = dist.PrefixStore(f"pair/{self.epoch}/{generation}", store)
            group = dist.ProcessGroupGloo(prefix, 1, 2, self._timeout)
            self._consumer_groups[address] = (generation, group)
            return generation, group

    def _receive(
        self, spec: TransferSpec, num_tokens: int, deadline: float
    ) -> tuple[Manifest, list[LayerKV]]:
        if not spec.producer_address:
            raise TransferFailed("the torch connector needs the producer's address in kv_transfer_params")
        generation, group = self._group_from(spec.producer_address, spec.producer_epoch)
        try:
            return self._receive_on(group, spec, deadline)
        except Exception:
            with self._lock:  # the group may hold half a message now: the next load starts a new one
                if self._consumer_groups.get(spec.producer_address, (None,))[0] == generation:
                    del self._consumer_groups[spec.producer_address]
            raise

    def _receive_on(
        self, group: _Group, spec: TransferSpec, deadline: float
    ) -> tuple[Manifest, list[LayerKV]]:
        def wait(work: dist.Work) -> None:
            left = deadline - time.monotonic()
            if left <= 0 or not work.wait(datetime.timedelta(seconds=left)):
                raise TimeoutError(f"no KV from {spec.producer_epoch} within {self.config.timeout_s:g} s")

        header = torch.empty(HEADER, dtype=torch.int64)
        wait(group.recv([header], 0, _tag(spec.transfer_id, 0)))
        tokens, num_layers, heads, head_dim, block_size, p_hash, prefill_us, num_sums, dtype = header.tolist()
        sums = torch.empty(max(num_sums, 1), dtype=torch.int64)
        receiving = [group.recv([sums], 0, _tag(spec.transfer_id, 1))]
        buffers = [
            torch.empty((2, tokens, heads, head_dim), dtype=getattr(torch, DTYPES[dtype]))
            for _ in range(num_layers)
        ]
        receiving += [group.recv([b], 0, _tag(spec.transfer_id, 2 + i)) for i, b in enumerate(buffers)]
        for work in receiving:  # layer by layer, as they arrive
            wait(work)
        manifest = Manifest(
            transfer_id=spec.transfer_id,
            producer_epoch=spec.producer_epoch,
            num_tokens=tokens,
            num_layers=num_layers,
            num_kv_heads=heads,
            head_dim=head_dim,
            dtype=DTYPES[dtype],
            block_size=block_size,
            prompt_hash=p_hash,
            prefill_s=prefill_us / 1e6,
            checksums=sums.tolist()[:num_sums],
        )
        return manifest, [(b[0], b[1]) for b in buffers]
