"""LLM: the offline API (vLLM-compatible): generate and chat over a batch of prompts."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from typing import Any

from tqdm.auto import tqdm

from ponder.engine.args import EngineArgs
from ponder.engine.llm_engine import LLMEngine
from ponder.engine.outputs import RequestOutput
from ponder.engine.prompt_input import PromptInput
from ponder.engine.sampling_params import RequestOutputKind, SamplingParams
from ponder.errors import InvalidRequestError

Message = dict[str, object]


class LLM:
    """Offline batched inference: every prompt given at once is scheduled together."""

    def __init__(self, model: str | None = None, **engine_kwargs: Any):
        """`engine_kwargs`: the fields of EngineArgs (dtype, max_model_len, block_size …)."""
        self.engine = LLMEngine(EngineArgs.from_kwargs(model, **engine_kwargs).create_engine_config())
        self._request_ids = itertools.count()

    @classmethod
    def from_engine_args(cls, args: EngineArgs) -> LLM:
        return cls(**dataclasses.asdict(args))

    def get_tokenizer(self):
        return self.engine.tokenizer

    def shutdown(self) -> None:
        """Stop the engine's tensor-parallel workers (tensor_parallel_size > 1); idempotent."""
        self.engine.shutdown()

    def __enter__(self) -> LLM:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def generate(
        self,
        prompts: PromptInput | Sequence[PromptInput],
        sampling_params: SamplingParams | Sequence[SamplingParams] | None = None,
        *,
        use_tqdm: bool = False,
        priority: Sequence[int] | None = None,
    ) -> list[RequestOutput]:
        """Outputs come back in the order of the prompts."""
        prompt_list = _as_prompt_list(prompts)
        params_list = _final_only(
            _broadcast(sampling_params or SamplingParams(), len(prompt_list), "sampling_params")
        )
        priorities = _broadcast(priority if priority is not None else 0, len(prompt_list), "priority")
        # Validate everything before queueing anything: a bad prompt must not leave others behind.
        requests = [
            self.engine.make_request(str(next(self._request_ids)), prompt, params, priority=prio)
            for prompt, params, prio in zip(prompt_list, params_list, priorities)
        ]
        for request in requests:
            self.engine.add(request)
        return self._run([r.request_id for r in requests], use_tqdm)

    def chat(
        self,
        messages: list[Message] | list[list[Message]],
        sampling_params: SamplingParams | Sequence[SamplingParams] | None = None,
        *,
        use_tqdm: bool = False,
        add_generation_prompt: bool = True,
        chat_template_kwargs: dict | None = None,
    ) -> list[RequestOutput]:
        """One conversation (a list of messages) or several; applies the model's chat template."""
        conversations = messages if messages and isinstance(messages[0], list) else [messages]
        tokenizer = self.engine.tokenizer
        prompts = []
        for conversation in conversations:
            text = tokenizer.apply_chat_template(
                conversation,
                add_generation_prompt=add_generation_prompt,
                **(chat_template_kwargs or {}),
            )
            # The template already holds any BOS token; encode() must not add a second one.
            token_ids = tokenizer.encode(text, add_special_tokens=False)
            prompts.append({"prompt": text, "prompt_token_ids": token_ids})
        return self.generate(prompts, sampling_params, use_tqdm=use_tqdm)

    def reason(
        self,
        prompts,
        strategy="self_consistency",
        sampling_params: SamplingParams | None = None,
        *,
        chat: bool = True,
        verifier=None,
        models: dict[str, LLM] | None = None,
        concurrency: int = 64,
    ) -> list:
        """Run a test-time scaling strategy per prompt (see docs/reasoning.md); returns one
        StrategyResult per prompt. A string prompt is a user message when chat=True."""
        from ponder.reasoning.controller import OfflineReasoner

        reasoner = OfflineReasoner(
            self.engine, models={name: llm.engine for name, llm in (models or {}).items()}
        )
        prompt_list = [prompts] if isinstance(prompts, str | dict) else list(prompts)
        params = sampling_params or SamplingParams(temperature=0.8, max_tokens=None)
        return reasoner.run_all(
            prompt_list, params, strategy, verifier=verifier, chat=chat, concurrency=concurrency
        )

    def _run(self, request_ids: list[str], use_tqdm: bool) -> list[RequestOutput]:
        pending = set(request_ids)
        finished: dict[str, RequestOutput] = {}
        with tqdm(total=len(request_ids), disable=not use_tqdm, desc="generating") as progress:
            while pending:
                for output in self.engine.step():
                    if output.finished and output.request_id in pending:
                        pending.discard(output.request_id)
                        finished[output.request_id] = output
                        progress.update(1)
        return [finished[request_id] for request_id in request_ids]


def _as_prompt_list(prompts: PromptInput | Sequence[PromptInput]) -> list[PromptInput]:
    if isinstance(prompts, str | dict):
        return [prompts]
    if isinstance(prompts, Sequence) and prompts and all(isinstance(t, int) for t in prompts):
        return [prompts]  # a single list of token ids
    if not isinstance(prompts, Sequence) or not prompts:
        raise InvalidRequestError("prompts must be a non-empty list", param="prompts")
    return list(prompts)


def _final_only(params_list: list[SamplingParams]) -> list[SamplingParams]:
    """generate returns each request's last output only, and a cumulative request's last output
    is its final one: don't make the engine build the cumulative ones every step."""
    replaced: dict[int, SamplingParams] = {}
    result = []
    for params in params_list:
        if isinstance(params, SamplingParams) and params.output_kind is RequestOutputKind.CUMULATIVE:
            if id(params) not in replaced:
                replaced[id(params)] = dataclasses.replace(params, output_kind=RequestOutputKind.FINAL_ONLY)
            params = replaced[id(params)]
        result.append(params)
    return result


def _broadcast(value, count: int, name: str) -> list:
    if isinstance(value, list | tuple):
        if len(value) != count:
            raise InvalidRequestError(f"{name} has {len(value)} entries for {count} prompts", param=name)
        return list(value)
    return [value] * count
