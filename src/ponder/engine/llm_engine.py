"""LLMEngine.step(): schedule -> run the model -> sample -> update sequences -> emit outputs."""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass

import torch

from ponder.config import EngineConfig
from ponder.engine.detokenizer import IncrementalDetokenizer
from ponder.engine.inflight import InflightStep, PromptLogprobsCopy
from ponder.engine.kv.manager import KVCacheManager
from ponder.engine.kv_transfer.coordinator import KVTransfers, make_connector
from ponder.engine.kv_transfer.spec import TransferSpec
from ponder.engine.logprobs import prompt_logprob_tensors
from ponder.engine.output_builder import build_output
from ponder.engine.output_text import OutputText
from ponder.engine.outputs import RequestMetrics, RequestOutput
from ponder.engine.prompt_input import PromptInput, tokenize_prompt
from ponder.engine.request import Request, Sequence, SequenceStatus
from ponder.engine.sampler import DeviceSamples, Sampler, SamplingRow
from ponder.engine.sampling_params import SamplingParams
from ponder.engine.scheduler import ScheduledBatch, Scheduler
from ponder.engine.sequence_updater import SequenceUpdater, stops_apply
from ponder.engine.spec.factory import create_speculator
from ponder.engine.spec.speculator import SpecStep, SpeculationStats
from ponder.engine.structured.compiler import GrammarCache
from ponder.engine.structured.state import StructuredState
from ponder.engine.thinking import ThinkMarkers, ThoughtState
from ponder.engine.tokenizer import Tokenizer
from ponder.engine.tp_runner import create_model_runner
from ponder.engine.transfers import HostCopy, to_device
from ponder.errors import InvalidRequestError, PromptTooLongError, RequestNotFoundError
from ponder.models.hf_config import read_arch_config
from ponder.models.loader import resolve_dtype

logger = logging.getLogger("ponder.engine")


@dataclass
class EngineStats:
    num_requests: int  # unfinished requests
    num_running: int  # sequences
    num_waiting: int
    spare_seats: int  # sequences that could still start at once (Scheduler.spare_seats)
    kv_blocks_used: int
    kv_blocks_total: int
    kv_cache_usage: float
    prefix_cache_queries: int  # prompt tokens looked up in the prefix cache
    prefix_cache_hits: int  # of which found
    num_preemptions: int
    prompt_tokens_computed: int  # tokens run through the model as prefill (incl. recompute)
    generation_tokens: int  # tokens sampled
    # Speculative decoding (engine/spec/); all zero without it.
    spec_draft_tokens: int = 0  # drafts verified
    spec_accepted_tokens: int = 0  # of which accepted
    spec_verifications: int = 0  # sequence-steps that verified drafts
    spec_emitted_tokens: int = 0  # tokens those steps appended


class LLMEngine:
    def __init__(self, config: EngineConfig):
        self.config = config
        model_dir = config.model.model
        self.arch = read_arch_config(model_dir)
        self.device = torch.device(config.model.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = resolve_dtype(self.arch, config.model.dtype, self.device)
        self.max_model_len = _resolve_max_model_len(config.model.max_model_len, self.arch)
        self.tokenizer = Tokenizer.from_dir(model_dir)
        self.eos_token_ids = frozenset(self.arch.eos_token_ids) | _tokenizer_eos(self.tokenizer)
        self.think_markers = ThinkMarkers.from_tokenizer(self.tokenizer)
        torch.manual_seed(config.model.seed)
        block_size = config.cache.block_size
        # tensor_parallel_size > 1 starts a worker process per other rank (engine/tp_runner.py).
        rank = create_model_runner(config, self.arch, self.dtype, self.device, self.max_model_len)
        self.kv_layout, num_blocks, self.runner = rank.layout, rank.num_blocks, rank.runner
        self.kv = KVCacheManager(num_blocks, block_size, config.cache.enable_prefix_caching)
        self.scheduler = Scheduler(config.scheduler, self.kv)
        self.sampler = Sampler(seed=config.model.seed)
        self.grammars = GrammarCache(self.tokenizer, self.arch.vocab_size, self.eos_token_ids)
        # Launch step N+1 before handling step N's tokens, so the GPU never waits for the host.
        # On CPU nothing would overlap, so it is off there unless asked for.
        async_scheduling = config.scheduler.async_scheduling
        self.async_scheduling = self.device.type == "cuda" if async_scheduling is None else async_scheduling
        self._async_min_batch_size = config.scheduler.async_min_batch_size
        self.speculator = create_speculator(
            config, self.arch, self.tokenizer, self.dtype, self.device, self.max_model_len, self.kv
        )
        self._inflight: InflightStep | None = None
        self.device_wait_seconds = 0.0  # time step() spent blocked until sampled tokens arrived
        self.requests: dict[str, Request] = {}
        self._failed: list[RequestOutput] = []  # final outputs of requests that failed alone
        self._seq_ids = itertools.count()
        self._prompt_tokens_computed = 0
        self.updater = SequenceUpdater(
            self.tokenizer, self.eos_token_ids, self.max_model_len, self.think_markers
        )
        self.kv_transfer = self._kv_transfers(config)  # disaggregated prefill/decode, or None
        logger.info(
            "ponder engine: %s on %s (%s), KV cache %d blocks x %d = %d tokens, max_model_len %d, "
            "async scheduling %s",
            model_dir,
            self.device,
            self.dtype,
            num_blocks,
            block_size,
            num_blocks * block_size,
            self.max_model_len,
            "on" if self.async_scheduling else "off",
        )

    # ---- requests in and out -------------------------------------------------------------

    def make_request(
        self,
        request_id: str,
        prompt: PromptInput,
        params: SamplingParams,
        *,
        priority: int = 0,
        arrival_time: float | None = None,
        ahead: bool = False,
        prefix_of: tuple[str, int] | None = None,
    ) -> Request:
        """Validate and tokenize; touches no engine state, so any thread may call it.

        `ahead`: admit it before every waiting request of its priority (a probe of a running
        thought). `prefix_of` = (request id, sample index) of a running sample whose
        tokens the prompt starts with: the request reuses that sample's KV, its partly filled
        last block included. It is a hint: a sample that is gone by then is ignored (the prefix
        cache still serves its full blocks)."""
        if not isinstance(params, SamplingParams):
            raise InvalidRequestError("sampling params must be a SamplingParams", param="params")
        if params.thinking_budget is not None and self.think_markers is None:
            raise InvalidRequestError(
                "thinking_budget needs a reasoning model with <think> and </think> tokens",
                param="thinking_budget",
            )
        max_num_seqs = self.scheduler.config.max_num_seqs
        if params.n > max_num_seqs:  # its n samples start together: it could never be admitted
            raise InvalidRequestError(
                f"n={params.n} samples cannot run at once: this engine runs at most "
                f"max_num_seqs={max_num_seqs} sequences",
                param="n",
            )
        text, token_ids = tokenize_prompt(prompt, self.tokenizer, self.arch.vocab_size)
        if len(token_ids) >= self.max_model_len:
            raise PromptTooLongError(
                f"the prompt has {len(token_ids)} tokens, but max_model_len is {self.max_model_len}"
                " and at least one token must be generated; shorten the prompt",
                param="prompt",
            )
        if params.kv_transfer is not None:
            self._check_kv_transfer(params)
        arrival = time.monotonic() if arrival_time is None else arrival_time
        structured = params.structured_outputs
        grammar = self.grammars.get(structured) if structured is not None else None
        return Request(
            request_id=request_id,
            prompt=text,
            prompt_token_ids=token_ids,
            params=params,
            metrics=RequestMetrics(arrival_time=arrival),
            priority=priority,
            ahead=ahead,
            prompt_logprobs=[None] if params.prompt_logprobs is not None else None,
            prefix_of=prefix_of,
            grammar=grammar,
        )

    def add(self, request: Request) -> None:
        if request.request_id in self.requests:
            raise InvalidRequestError(
                f"request id {request.request_id!r} is already in use", param="request_id"
            )
        self.requests[request.request_id] = request
        request.prefix_source = self._live_sample(request.prefix_of)
        seq = self._new_sequence(request, index=0, token_ids=list(request.prompt_token_ids))
        request.sequences.append(seq)
        if self.kv_transfer is not None and self.kv_transfer.take(request, seq):
            return  # a decode hand-off: it waits for its prompt's KV (engine/kv_transfer/)
        self.scheduler.add_waiting(seq)

    def add_request(
        self, request_id: str, prompt: PromptInput, params: SamplingParams, *, priority: int = 0
    ) -> Request:
        request = self.make_request(request_id, prompt, params, priority=priority)
        self.add(request)
        return request

    def abort_request(self, request_id: str) -> RequestOutput | None:
        """Stop a request at once and free its KV blocks; returns its final output."""
        request = self.requests.pop(request_id, None)
        if request is None:
            raise RequestNotFoundError(f"no running request with id {request_id!r}")
        request.aborted = True
        for seq in request.sequences:
            if not seq.is_finished:
                seq.status = SequenceStatus.FINISHED
                seq.finish_reason = "abort"
            self.scheduler.remove(seq)
        return build_output(request, set(request.sequences))

    def stop_sequence(self, request_id: str, index: int) -> RequestOutput | None:
        """End one sample (branch) of a request early and free its KV blocks; the other samples
        go on. Returns the request's output for this change (None if the branch had finished)."""
        request = self.requests.get(request_id)
        if request is None:
            raise RequestNotFoundError(f"no running request with id {request_id!r}")
        if not 0 <= index < len(request.sequences):
            raise InvalidRequestError(
                f"request {request_id!r} has no running sample {index} (it has "
                f"{len(request.sequences)} so far; samples start once the prompt is prefilled)",
                param="index",
            )
        seq = request.sequences[index]
        if seq.is_finished:
            return None
        seq.status = SequenceStatus.FINISHED
        seq.finish_reason = "abort"
        self.scheduler.remove(seq)
        outputs = self._collect_outputs({seq})
        return outputs[0] if outputs else None  # FINAL_ONLY: nothing until the request ends

    def has_unfinished_requests(self) -> bool:
        """Also true while a launched step is left to drain (its tokens may all be discarded)."""
        return bool(self.requests) or self._inflight is not None

    # ---- one step ----------------------------------------------------------------------

    def step(self) -> list[RequestOutput]:
        """Launch the next step on the device and return the outputs of the step before it.

        Synchronous scheduling handles the step it launched at once. Asynchronous scheduling
        keeps it in flight: the outputs of step N come back from the call that launched N + 1,
        after N + 1 was queued behind N, so the device runs N + 1 while the host handles N."""
        previous, self._inflight = self._inflight, None
        outputs: list[RequestOutput] = [] if self.kv_transfer is None else self.kv_transfer.poll()
        if previous is not None and previous.needs_tokens_on_host:
            outputs += self._finish(previous)
            previous = None
        batch = self.scheduler.schedule()
        if batch.is_empty and previous is None and self.kv_transfer is not None:
            self.kv_transfer.idle_wait()
        launched = None if batch.is_empty else self._launch(batch, previous)
        if previous is not None:
            outputs += self._finish(previous)
        if launched is not None:
            if self.async_scheduling and self._keep_in_flight(launched):
                self._inflight = launched
            else:
                outputs += self._finish(launched)
        if self._failed:
            outputs, self._failed = self._failed + outputs, []
        return outputs

    def _keep_in_flight(self, step: InflightStep) -> bool:
        # Only a CUDA launch behaviour makes small steps lose (SchedulerConfig); on the CPU the
        # bookkeeping runs the same either way, so tests cover it at every batch size.
        return self.device.type != "cuda" or len(step.batch.seqs) >= self._async_min_batch_size

    def stats(self) -> EngineStats:
        pool = self.kv.pool
        return EngineStats(
            num_requests=len(self.requests),
            num_running=len(self.scheduler.running),
            num_waiting=len(self.scheduler.waiting),
            spare_seats=self.scheduler.spare_seats(),
            kv_blocks_used=pool.num_used_blocks,
            kv_blocks_total=pool.num_blocks,
            kv_cache_usage=self.kv.usage,
            prefix_cache_queries=self.kv.prefix_stats.queries,
            prefix_cache_hits=self.kv.prefix_stats.hits,
            num_preemptions=self.scheduler.num_preemptions,
            prompt_tokens_computed=self._prompt_tokens_computed,
            generation_tokens=self.updater.generation_tokens,
            **_speculation_fields(self.speculator.stats if self.speculator is not None else None),
        )

    def reset_prefix_cache(self) -> None:
        self.kv.reset_prefix_cache()

    def shutdown(self) -> None:
        """Stop the tensor-parallel workers, if any (idempotent)."""
        self.runner.shutdown()
        if self.kv_transfer is not None:
            self.kv_transfer.connector.close()

    # ---- internals ---------------------------------------------------------------------

    def _check_kv_transfer(self, params: SamplingParams) -> None:
        if self.kv_transfer is None:
            raise InvalidRequestError(
                "kv_transfer_params need a worker started with --kv-connector shm|torch",
                param="kv_transfer_params",
            )
        TransferSpec.parse(params.kv_transfer)
        if params.n != 1:
            raise InvalidRequestError("kv_transfer_params take n=1", param="kv_transfer_params")

    def _kv_transfers(self, config: EngineConfig) -> KVTransfers | None:
        if not config.kv_transfer.enabled:
            return None
        total_heads = self.arch.num_key_value_heads  # the wire carries all; each rank keeps its own
        connector = make_connector(config.kv_transfer, self.kv_layout, total_heads)
        return KVTransfers(
            connector,
            config.parallel.tensor_parallel_size,
            self.runner.kv_caches,
            self.kv,
            self.scheduler,
            self.updater,
            self._collect_outputs,
            self._fail_request,
        )

    def _new_sequence(self, request: Request, index: int, token_ids: list[int]) -> Sequence:
        params = request.params
        markers = self.think_markers
        thought = ThoughtState.after_prompt(request.prompt_token_ids, markers) if markers else None
        detokenizer = IncrementalDetokenizer(
            self.tokenizer,
            request.prompt_token_ids,
            skip_special_tokens=params.skip_special_tokens,
            stop=params.stop_list,
            include_stop_str_in_output=params.include_stop_str_in_output,
        )
        text = OutputText(detokenizer, markers, in_thought=thought is not None and thought.in_thought)
        text.enable_stops(stops_apply(thought, num_output_tokens=0, params=params))
        return Sequence(
            seq_id=next(self._seq_ids),
            request=request,
            index=index,
            token_ids=token_ids,
            num_prompt_tokens=len(request.prompt_token_ids),
            generator=self._generator(params.seed, index),
            text=text,
            thought=thought,
            logprobs=[] if params.logprobs is not None else None,
            confidences=[] if params.confidence_top_k > 0 else None,
            structured=(
                StructuredState(request.grammar, request.prompt_token_ids, markers)
                if request.grammar is not None
                else None
            ),
        )

    def _live_sample(self, ids: tuple[str, int] | None) -> Sequence | None:
        if ids is None:
            return None
        request_id, index = ids
        source = self.requests.get(request_id)
        if source is None or not 0 <= index < len(source.sequences):
            return None
        sample = source.sequences[index]
        return None if sample.is_finished else sample

    def _generator(self, seed: int | None, index: int) -> torch.Generator | None:
        if seed is None:
            return None
        # Sample i of a seeded request draws from its own stream: output is the same in any batch.
        mixed = (seed * 0x9E3779B97F4A7C15 + index) % (1 << 63) if index else seed
        return torch.Generator(device=self.device).manual_seed(mixed)

    def _with_forks(self, seq: Sequence) -> list[Sequence]:
        """A request with n > 1 forks when its prompt is prefilled: n samples share its blocks."""
        request = seq.request
        if len(request.sequences) >= request.params.n:
            return [seq]
        children = []
        for index in range(len(request.sequences), request.params.n):
            child = self._new_sequence(request, index, list(seq.token_ids))
            self.kv.fork(seq, child)
            self.scheduler.add_running(child)
            request.sequences.append(child)
            children.append(child)
        return [seq, *children]

    def _launch(self, batch: ScheduledBatch, previous: InflightStep | None) -> InflightStep:
        """Queue the forward and the sampling of a batch; nothing here waits for the device.
        Sequences whose last token is still on the device (sampled by `previous`) read it there."""
        now = time.monotonic()
        pending = previous.pending_inputs(batch) if previous is not None else None
        if self.kv_transfer is not None:
            self.kv_transfer.before_forward(batch)
        spec = self.speculator.propose(batch) if self.speculator is not None else None
        result = self.runner.execute(batch, pending)
        prompt_logprobs = [
            self._prompt_logprobs_copy(batch.seqs[batch_index], logits)
            for batch_index, logits in result.prompt_logits.items()
        ]
        for seq, num_new in zip(batch.seqs, batch.num_new_tokens):
            num_tokens = seq.num_tokens
            if num_tokens - seq.num_computed_tokens > 1 or num_tokens == seq.num_prompt_tokens:
                self._prompt_tokens_computed += num_new
                metrics = seq.request.metrics
                if metrics.first_scheduled_time is None:
                    metrics.first_scheduled_time = now
                    metrics.num_cached_prompt_tokens = seq.num_computed_tokens
            seq.num_computed_tokens += num_new
            self.kv.cache_computed_blocks(seq)
        if self.kv_transfer is not None:
            self.kv_transfer.after_forward(batch)
        sampling_seqs: list[Sequence] = []
        rows: list[int] = []
        for row, batch_index in enumerate(result.sample_seq_indices):
            for seq in self._with_forks(batch.seqs[batch_index]):
                sampling_seqs.append(seq)
                rows.append(row)
        step = InflightStep(batch, sampling_seqs, positions=[], samples=None, prompt_logprobs=prompt_logprobs)
        if spec is not None:
            spec.sample(self.sampler, result.spec_logits, self._draft_sampling_row)
            step.spec = spec
        if not sampling_seqs:
            return step
        logits = result.sample_logits
        if len(rows) != logits.shape[0]:  # forks share their parent's row
            logits = logits.index_select(0, to_device(rows, torch.int64, logits.device))
        step.samples, sampling_seqs = self._sample(logits, sampling_seqs)
        step.sampling_seqs = sampling_seqs
        for seq in sampling_seqs:
            step.positions.append(len(seq.token_ids) + seq.num_pending_tokens)
            seq.num_pending_tokens += 1
            seq.wait_for_pending = self.updater.may_end_or_redirect(seq)
            # A constraint's mask follows every token, so it needs them on the host too.
            step.needs_tokens_on_host |= seq.params.needs_penalties or seq.structured is not None
        if self.speculator is not None:
            # Drafts are read from the tokens before them: a step after which some sequence may
            # draft is finished before the next is scheduled; one after which none would stays
            # in flight like any plain step (speculation switched off costs no pipelining).
            step.needs_tokens_on_host |= self.speculator.wants_host_tokens
        return step

    def _finish(self, step: InflightStep) -> list[RequestOutput]:
        """Wait for a launched step's tokens; append them, check stops, build the outputs."""
        for entry in step.prompt_logprobs:
            self.updater.append_prompt_logprobs(entry)
        if step.samples is None:
            return []
        wait_start = time.perf_counter()
        step.samples.wait()
        self.device_wait_seconds += time.perf_counter() - wait_start
        sampled = step.samples.to_host()
        now = time.monotonic()  # the tokens exist for the host from here on
        updated: set[Sequence] = set()
        for row, seq in enumerate(step.sampling_seqs):
            if seq.is_finished or len(seq.token_ids) != step.positions[row]:
                continue  # aborted or ended meanwhile, or the engine forced other tokens first
            seq.num_pending_tokens -= 1
            try:
                self.updater.append_sampled(seq, sampled, row, now)
                if step.spec is not None:
                    self._append_verified(step.spec, seq, step.positions[row], now)
            except Exception as error:  # this request's detokenizing or stop check: fail it alone
                self._fail_request(seq.request, error)
                continue
            if seq.is_finished:
                self.scheduler.remove(seq)
            else:
                self.kv.cache_computed_blocks(seq)  # a block completed by this token
            updated.add(seq)
        return self._collect_outputs({seq for seq in updated if seq.request.error is None})

    def _sample(
        self, logits: torch.Tensor, seqs: list[Sequence]
    ) -> tuple[DeviceSamples | None, list[Sequence]]:
        """Sample one token per row. If the batch raises, each row is tried alone: the requests
        whose rows raise fail alone (no token) and the others are sampled again without them; an
        error no single row explains is the engine's, and propagates."""
        try:
            return self.sampler.sample(logits, [self._sampling_row(seq) for seq in seqs]), seqs
        except Exception:
            failing = self._rows_that_fail(logits, seqs)
            if not failing:
                raise
        for row, row_error in failing.items():
            self._fail_request(seqs[row].request, row_error)
        keep = [row for row, seq in enumerate(seqs) if seq.request.error is None]
        if not keep:
            return None, []
        rows = to_device(keep, torch.int64, logits.device)
        kept = [seqs[row] for row in keep]
        return self.sampler.sample(logits.index_select(0, rows), [self._sampling_row(s) for s in kept]), kept

    def _rows_that_fail(self, logits: torch.Tensor, seqs: list[Sequence]) -> dict[int, Exception]:
        failing: dict[int, Exception] = {}
        for row, seq in enumerate(seqs):
            generator = seq.generator
            state = generator.get_state() if generator is not None else None
            try:  # a trial: a seeded row must draw the same token when sampled for real
                self.sampler.sample(logits[row : row + 1], [self._sampling_row(seq)]).wait()
            except Exception as error:
                failing[row] = error
            if generator is not None and state is not None:
                generator.set_state(state)
        return failing

    def _fail_request(self, request: Request, error: Exception) -> None:
        """End `request` at once with finish_reason "error" and free its KV blocks; its final
        output (with the error) goes out with this step's outputs."""
        if request.error is not None:
            return
        logger.error("request %s failed; the engine goes on", request.request_id, exc_info=error)
        request.error = f"{type(error).__name__}: {error}"
        self.requests.pop(request.request_id, None)
        for seq in request.sequences:
            if not seq.is_finished:
                seq.status = SequenceStatus.FINISHED
                seq.finish_reason = "error"
                seq.num_pending_tokens = 0
            self.scheduler.remove(seq)
        output = build_output(request, set(request.sequences))
        if output is not None:
            request.metrics.finished_time = time.monotonic()
            self._failed.append(output)

    def _sampling_row(self, seq: Sequence) -> SamplingRow:
        return SamplingRow(
            params=seq.params,
            token_ids=seq.token_ids,
            num_prompt_tokens=seq.num_prompt_tokens,
            generator=seq.generator,
            eos_token_ids=self.eos_token_ids,
            num_pending_tokens=seq.num_pending_tokens,
            constraint=seq.structured,
        )

    def _draft_sampling_row(self, seq: Sequence, token_ids: list[int]) -> SamplingRow:
        """The sampling row of a position after seq's drafts: `token_ids` includes them."""
        return SamplingRow(
            params=seq.params,
            token_ids=token_ids,
            num_prompt_tokens=seq.num_prompt_tokens,
            generator=seq.generator,
            eos_token_ids=self.eos_token_ids,
        )

    def _append_verified(self, spec: SpecStep, seq: Sequence, base: int, now: float) -> None:
        spec.accept(seq, base, lambda samples, row: self.updater.append_sampled(seq, samples, row, now))

    def _prompt_logprobs_copy(self, seq: Sequence, logits: torch.Tensor) -> PromptLogprobsCopy:
        """Start the logprobs of the prompt chunk seq computes now (from its next token on)."""
        request = seq.request
        start = seq.num_computed_tokens  # prompt position whose logits come first
        next_tokens = request.prompt_token_ids[start + 1 : start + 1 + logits.shape[0]]
        top_k = request.params.prompt_logprobs
        assert top_k is not None  # the runner returns prompt logits only for prompt_logprobs requests
        return PromptLogprobsCopy(seq, HostCopy(prompt_logprob_tensors(logits, next_tokens, top_k)), top_k)

    def _collect_outputs(self, updated: set[Sequence]) -> list[RequestOutput]:
        outputs = []
        now = time.monotonic()
        for request in {seq.request.request_id: seq.request for seq in updated}.values():
            output = build_output(request, updated)  # never None once the request finished
            if output is None:
                continue
            if output.finished:
                request.metrics.finished_time = now  # output.metrics is this object
                self.requests.pop(request.request_id, None)
            outputs.append(output)
        return outputs


def _resolve_max_model_len(requested: int | None, arch) -> int:
    limit = arch.max_position_embeddings
    if requested is None:
        return limit
    if not isinstance(requested, int) or requested < 2:
        raise InvalidRequestError(
            f"max_model_len must be an integer >= 2, got {requested!r}", param="max_model_len"
        )
    if requested > limit:
        raise InvalidRequestError(
            f"max_model_len {requested} exceeds the model's max_position_embeddings {limit}",
            param="max_model_len",
        )
    return requested


def _speculation_fields(stats: SpeculationStats | None) -> dict[str, int]:
    if stats is None:
        return {}
    return {
        "spec_draft_tokens": stats.num_draft_tokens,
        "spec_accepted_tokens": stats.num_accepted_tokens,
        "spec_verifications": stats.num_verifications,
        "spec_emitted_tokens": stats.num_emitted_tokens,
    }


def _tokenizer_eos(tokenizer: Tokenizer) -> frozenset[int]:
    eos = tokenizer.eos_token_id
    return frozenset() if eos is None else frozenset([eos])
