"""KVTransfers: the engine's side of disaggregated serving, on top of a KVConnector.

Producer (prefill worker): when a request's prompt is computed, its KV is gathered layer by
layer and handed to the connector, which sends it in the background; the request itself ends
after its first token (the router asked for max_tokens=1).

Consumer (decode worker): the request arrives with the prefill's first token. It is appended at
once (and goes out in this step's outputs, before any forward), the KV load starts in the
background, and the sequence waits outside the scheduler. When the load ends, the sequence gets
blocks (reusing its locally cached prefix), the KV is written into them and it starts running at
prompt length + 1: the prompt is not computed again. A failed or late load falls back to
recompute (the sequence just goes to the scheduler's queue) or fails the request, by policy."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import torch

from ponder.config import KVTransferConfig
from ponder.engine.kv.layout import KVLayout
from ponder.engine.kv.manager import KVCacheManager
from ponder.engine.kv_transfer.connector import KVConnector, LoadPlan
from ponder.engine.kv_transfer.payload import Manifest, prompt_hash, scatter_layer, slots_of
from ponder.engine.kv_transfer.spec import CONSUMER, PRODUCER, TransferSpec
from ponder.engine.kv_transfer.tp import RankLoad, gather_all_heads, heads_of_rank
from ponder.engine.outputs import RequestOutput
from ponder.engine.request import Request, Sequence
from ponder.engine.scheduler import ScheduledBatch, Scheduler
from ponder.engine.sequence_updater import SequenceUpdater
from ponder.errors import KVTransferError

logger = logging.getLogger("ponder.kv_transfer")
IDLE_WAIT_S = 0.005


def make_connector(config: KVTransferConfig, layout: KVLayout, total_kv_heads: int) -> KVConnector:
    if config.connector == "shm":
        from ponder.engine.kv_transfer.shm import SharedMemoryConnector

        return SharedMemoryConnector(config, layout, total_kv_heads)
    from ponder.engine.kv_transfer.torch_dist import TorchDistributedConnector

    return TorchDistributedConnector(config, layout, total_kv_heads)


class KVTransfers:
    def __init__(
        self,
        connector: KVConnector,
        tp_size: int,
        kv_caches: list[tuple[torch.Tensor, torch.Tensor]],
        kv: KVCacheManager,
        scheduler: Scheduler,
        updater: SequenceUpdater,
        collect_outputs: Callable[[set[Sequence]], list[RequestOutput]],
        fail_request: Callable[[Request, Exception], None],
    ):
        self.connector = connector
        self.tp_size = tp_size
        self.total_heads = connector.total_kv_heads
        self._rank_loads: list[RankLoad] = []  # for the other TP ranks, sent with the next step
        self._step_saves: list[tuple[TransferSpec, Sequence, torch.Tensor]] = []
        self.kv_caches = kv_caches
        self.kv = kv
        self.scheduler = scheduler
        self.updater = updater
        self._collect_outputs = collect_outputs
        self._fail_request = fail_request
        self.policy = connector.config.failure_policy
        self._waiting: dict[str, Sequence] = {}  # transfer key -> consumer sequence
        self._ready: list[str] = []  # loads ended, not admitted yet (the pool was short)
        self._outputs: list[RequestOutput] = []
        self._saved: set[str] = set()

    @property
    def stats(self):
        return self.connector.stats

    # ---- requests in ---------------------------------------------------------------------

    def take(self, request: Request, seq: Sequence) -> bool:
        """True if the request is a consumer hand-off (then this owns `seq` until it can run)."""
        raw = request.params.kv_transfer
        if raw is None:
            return False
        spec = TransferSpec.parse(raw)  # checked in make_request already
        if spec.role == PRODUCER:
            return False
        assert spec.role == CONSUMER and spec.first_token_id is not None
        self.updater.append_known(seq, spec.first_token_id, time.monotonic())
        self._outputs += self._collect_outputs({seq})  # the first token goes out now
        # Loaded even if that token ended it (eos, max_tokens=1, a stop): the producer's sends
        # are then received and dropped, rather than left waiting.
        self._waiting[spec.key] = seq
        self.connector.start_load(spec, seq.num_prompt_tokens, prompt_hash(request.prompt_token_ids))
        return True

    # ---- each step -------------------------------------------------------------------------

    def poll(self) -> list[RequestOutput]:
        """Admit the sequences whose loads ended; returns the outputs to send with this step."""
        self._ready += self.connector.finished()
        still: list[str] = []
        for key in self._ready:
            seq = self._waiting.get(key)
            if seq is None or seq.request.aborted or seq.is_finished:
                self._waiting.pop(key, None)
                self.connector.release(key)
                continue
            if self.connector.num_remote_tokens(key) and not self._admit(key, seq):
                still.append(key)  # no room in the pool yet
                continue
            self._waiting.pop(key)
            if seq.num_computed_tokens == 0:
                self._fall_back(key, seq)
            self.connector.release(key)
        self._ready = still
        outputs, self._outputs = self._outputs, []
        return outputs

    def idle_wait(self) -> None:
        """Nothing to compute: wait briefly for a load to end instead of spinning."""
        if self._waiting:
            self.connector.wakeup.wait(IDLE_WAIT_S)
            self.connector.wakeup.clear()

    def before_forward(self, batch: ScheduledBatch) -> None:
        """Note the prompts this step completes (their KV is saved after the forward) and hand
        the other TP ranks the loads they still have to write (before the forward)."""
        self._step_saves = []
        for seq, num_new in zip(batch.seqs, batch.num_new_tokens):
            raw = seq.params.kv_transfer
            if raw is None or seq.num_computed_tokens + num_new < seq.num_prompt_tokens:
                continue
            spec = TransferSpec.parse(raw)
            if spec.role != PRODUCER or spec.key in self._saved:
                continue
            self._saved.add(spec.key)
            slots = slots_of(seq.block_table, self.kv.block_size, 0, seq.num_prompt_tokens)
            self._step_saves.append((spec, seq, slots))
        batch.kv_save_slots = [slots for _, _, slots in self._step_saves]
        batch.kv_loads, self._rank_loads = self._rank_loads, []

    def after_forward(self, batch: ScheduledBatch) -> None:
        """Producer: gather (all heads, a collective under TP) and send the KV of the prompts
        `before_forward` noted, before their blocks can be freed or reused."""
        for spec, seq, slots in self._step_saves:
            self._save(spec, seq, slots)
        self._step_saves = []

    # ---- internals -------------------------------------------------------------------------

    def _save(self, spec: TransferSpec, seq: Sequence, slots: torch.Tensor) -> None:
        request = seq.request
        num_tokens = seq.num_prompt_tokens
        for layer, kv in enumerate(gather_all_heads(self.kv_caches, slots, self.total_heads, self.tp_size)):
            self.connector.save_layer(spec.key, layer, kv)
        layout = self.connector.layout
        started = request.metrics.first_scheduled_time or request.metrics.arrival_time
        manifest = Manifest(
            transfer_id=spec.transfer_id,
            producer_epoch=spec.producer_epoch,
            num_tokens=num_tokens,
            num_layers=layout.num_layers,
            num_kv_heads=self.total_heads,
            head_dim=layout.head_dim,
            dtype=str(layout.dtype).removeprefix("torch."),
            block_size=self.kv.block_size,
            prompt_hash=prompt_hash(request.prompt_token_ids),
            prefill_s=time.monotonic() - started,
        )
        self.connector.finish_save(spec, manifest)
        if len(self._saved) > 4096:  # keys of long-finished requests
            self._saved.clear()

    def _admit(self, key: str, seq: Sequence) -> bool:
        """Blocks for the prompt (its local prefix reused), the loaded KV written into them."""
        num_local = self.kv.match_prefix(seq) if not seq.block_table else 0
        num_prompt = seq.num_prompt_tokens
        seq.num_computed_tokens = num_local
        if not self.kv.allocate_slots(seq, num_prompt - num_local):
            self.kv.free(seq)
            return False
        try:
            self._write(self.connector.load_plan(key, seq.block_table, self.kv.block_size, num_local))
        except Exception as error:  # treated as a failed load
            logger.warning("writing the loaded KV of %s failed: %s", key, error)
            self.kv.free(seq)
            return True
        seq.num_computed_tokens = num_prompt
        self.kv.record_prefix_lookup(num_prompt, num_local)
        self.kv.cache_computed_blocks(seq)
        metrics = seq.request.metrics
        metrics.first_scheduled_time = metrics.first_scheduled_time or time.monotonic()
        metrics.num_cached_prompt_tokens = num_local
        self.scheduler.add_running(seq)
        return True

    def _write(self, plan: LoadPlan) -> None:
        """The loaded KV into this rank's cache (its heads), layer by layer; the other ranks get
        theirs with the next step."""
        layers = []
        for layer, (k_cache, v_cache) in enumerate(self.kv_caches):
            k, v = self.connector.wait_for_layer(plan.key, layer)
            kv = (k[plan.start :], v[plan.start :])
            scatter_layer(k_cache, v_cache, plan.slots, heads_of_rank(kv, self.total_heads, 0, self.tp_size))
            layers.append(kv)
        if self.tp_size > 1:
            self._rank_loads.append((plan.slots, layers))
        self.connector.mark_loaded(plan)

    def _fall_back(self, key: str, seq: Sequence) -> None:
        reason = self.connector.count_failure(key)
        if self.policy == "fail":
            self.stats.failed_requests += 1
            logger.warning("KV load %s failed (%s); failing the request (policy fail)", key, reason)
            self._fail_request(seq.request, KVTransferError(f"the prompt's KV did not arrive: {reason}"))
            return
        self.stats.recomputed += 1
        logger.warning("KV load %s failed (%s); recomputing the prompt here", key, reason)
        self.scheduler.add_waiting(seq)
