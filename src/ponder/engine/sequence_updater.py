"""SequenceUpdater: applies sampled tokens to their sequences (thought and thinking budget,
detokenizing, stop checks, logprob texts), and tells which in-flight tokens may end a sequence."""

from __future__ import annotations

from ponder.engine.inflight import PromptLogprobsCopy
from ponder.engine.logprobs import position_logprob_entries
from ponder.engine.outputs import PositionLogprobs
from ponder.engine.request import Sequence, SequenceStatus
from ponder.engine.sampler import SamplerOutput
from ponder.engine.sampling_params import SamplingParams
from ponder.engine.stop_checker import Finish, text_or_length_finish, token_finish
from ponder.engine.thinking import ThinkMarkers, ThoughtState
from ponder.engine.tokenizer import Tokenizer


class SequenceUpdater:
    def __init__(
        self,
        tokenizer: Tokenizer,
        eos_token_ids: frozenset[int],
        max_model_len: int,
        think_markers: ThinkMarkers | None,
    ):
        self.tokenizer = tokenizer
        self.eos_token_ids = eos_token_ids
        self.max_model_len = max_model_len
        self.think_markers = think_markers
        self.generation_tokens = 0  # tokens appended, forced ones included

    def append_sampled(self, seq: Sequence, sampled: SamplerOutput, row: int, now: float) -> None:
        """Append row `row` of a step's samples to seq; marks seq FINISHED when it ends."""
        token_id = sampled.token_ids[row]
        seq.cumulative_logprob += sampled.logprobs[row]
        if seq.logprobs is not None:
            top = sampled.top_logprobs[row]
            assert top is not None  # the sampler fills the row of every request with logprobs
            seq.logprobs.append(self.decorate(top))
        if seq.confidences is not None:
            seq.confidences.append(sampled.confidences[row])
        self._apply(seq, token_id, now)

    def append_known(self, seq: Sequence, token_id: int, now: float) -> None:
        """Append a token sampled elsewhere (a disaggregated request's first token, sampled by the
        prefill worker): thought, text and stop checks as for a sampled one, no logprobs."""
        if seq.logprobs is not None:
            seq.logprobs.append({})
        if seq.confidences is not None:
            seq.confidences.append(None)
        self._apply(seq, token_id, now)

    def _apply(self, seq: Sequence, token_id: int, now: float) -> None:
        metrics = seq.request.metrics
        if metrics.first_token_time is None:
            metrics.first_token_time = now
        was_in_thought = seq.thought is not None and seq.thought.in_thought
        forced = self._observe_thought(seq, token_id)
        # The token that spends the budget is still thought; the forced close comes after it.
        self._append_token(seq, token_id, in_thought=was_in_thought if forced else None)
        if forced:  # the budget closed the thought: answer next
            seq.num_pending_tokens = 0  # a token sampled meanwhile for seq no longer applies
        # A model's own close text may say something before the marker ("Answer now."): thought.
        before_marker = True
        for forced_id in forced:
            if seq.finish_reason is not None:
                break
            if seq.logprobs is not None:
                seq.logprobs.append({})
            if seq.confidences is not None:
                seq.confidences.append(None)
            before_marker = before_marker and forced_id != self._end_id()
            self._append_token(seq, forced_id, in_thought=before_marker)
        # Updated only after the closing marker's own text is decoded: stops match the answer.
        seq.text.enable_stops(stops_apply(seq.thought, seq.num_output_tokens, seq.params))
        if seq.structured is not None and seq.finish_reason is None:
            seq.structured.sync(seq.token_ids, seq.thought)
        if seq.finish_reason is not None:
            seq.status = SequenceStatus.FINISHED
            seq.num_pending_tokens = 0

    def may_end_or_redirect(self, seq: Sequence) -> bool:
        """Whether a token seq sampled on the device may end it by length, or make the engine
        force other tokens after it (a thinking budget): then seq waits for it before running
        again, so no step is spent on a token that would be thrown away."""
        params = seq.params
        limit = self.max_model_len
        if params.max_tokens is not None:
            limit = min(limit, seq.num_prompt_tokens + params.max_tokens)
        if seq.num_tokens >= limit:
            return True
        thought, budget = seq.thought, params.thinking_budget
        return (
            budget is not None
            and thought is not None
            and not thought.closed
            and thought.num_reasoning_tokens + seq.num_pending_tokens >= budget
        )

    def append_prompt_logprobs(self, entry: PromptLogprobsCopy) -> None:
        request = entry.seq.request
        if request.aborted or request.prompt_logprobs is None:  # None: not asked for (never copied)
            return
        tensors = entry.tensors.get()
        if not tensors:
            return
        for position in position_logprob_entries(tensors, [entry.top_k] * len(tensors[0])):
            request.prompt_logprobs.append(self.decorate(position))

    def decorate(self, position: PositionLogprobs) -> PositionLogprobs:
        for token_id, logprob in position.items():
            logprob.decoded_token = self.tokenizer.decode([token_id], skip_special_tokens=False)
        return position

    def _append_token(self, seq: Sequence, token_id: int, in_thought: bool | None = None) -> None:
        """`in_thought`: whether the token's text is thought; by default the thought state."""
        seq.token_ids.append(token_id)
        self.generation_tokens += 1
        finish = token_finish(seq.params, token_id, self.eos_token_ids)
        if finish is None:
            if in_thought is None:
                in_thought = seq.thought is not None and seq.thought.in_thought
            seq.text.append(token_id, in_thought=in_thought)
            finish = text_or_length_finish(seq, self.max_model_len)
        if finish is not None:
            self._finish(seq, finish)

    def _finish(self, seq: Sequence, finish: Finish) -> None:
        seq.finish_reason, seq.stop_reason = finish
        seq.text.finish()  # text held back for a possible stop string is final now
        # A stop string hidden behind an incomplete character only shows up at the flush.
        if seq.finish_reason == "length" and seq.text.stop_matched is not None:
            seq.finish_reason, seq.stop_reason = "stop", seq.text.stop_matched

    def _end_id(self) -> int | None:
        return self.think_markers.end_id if self.think_markers is not None else None

    def _observe_thought(self, seq: Sequence, token_id: int) -> tuple[int, ...]:
        if seq.thought is None or self.think_markers is None:  # thought is None without markers
            return ()
        return seq.thought.observe(token_id, self.think_markers, seq.params.thinking_budget)


def stops_apply(thought: ThoughtState | None, num_output_tokens: int, params: SamplingParams) -> bool:
    """Stop strings are matched in the answer, and only once min_tokens are out (as in vLLM)."""
    in_thought = thought is not None and thought.in_thought
    return not in_thought and num_output_tokens >= params.min_tokens
