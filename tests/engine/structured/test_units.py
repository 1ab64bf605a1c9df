"""Structured-output building blocks: parameter checks, the grammar cache, the bitmask -> logits
mask, and the per-sequence answer start (thought left free)."""

import math

import pytest
import torch

from ponder import SamplingParams
from ponder.engine.structured.compiler import GrammarCache
from ponder.engine.structured.mask import apply_token_constraints, unpack_bitmask
from ponder.engine.structured.params import StructuredOutputParams
from ponder.engine.structured.state import Phase, StructuredState
from ponder.engine.thinking import ThinkMarkers, ThoughtState
from ponder.engine.tokenizer import Tokenizer
from ponder.errors import InvalidRequestError, StructuredOutputError

SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "exactly one"),
        ({"regex": "a+", "choice": ["a"]}, "exactly one"),
        ({"json": "{not json"}, "not valid JSON"),
        ({"json": [1, 2]}, "must be an object"),
        ({"regex": ""}, "non-empty string"),
        ({"choice": []}, "list of 1 to"),
        ({"choice": ["a", ""]}, "non-empty string"),
    ],
)
def test_bad_params_raise_a_typed_error_naming_the_field(kwargs, message):
    with pytest.raises(StructuredOutputError, match=message) as info:
        StructuredOutputParams(**kwargs, param="response_format")
    assert info.value.param == "response_format"


def test_sampling_params_refuse_ignore_eos_with_a_constraint():
    with pytest.raises(InvalidRequestError, match="ignore_eos") as info:
        SamplingParams(ignore_eos=True, structured_outputs=StructuredOutputParams(regex="a"))
    assert info.value.param == "structured_outputs"


def test_equal_schemas_share_a_cache_key_and_key_order_is_kept():
    one = StructuredOutputParams(json={"type": "object", "required": ["a"]})
    assert one.cache_key() == StructuredOutputParams(json={"type": "object", "required": ["a"]}).cache_key()
    # Property order is part of the constraint (the answer follows it), so it is not sorted away.
    assert one.schema_text == '{"type":"object","required":["a"]}'
    assert one.cache_key() != StructuredOutputParams(json_object=True).cache_key()


@pytest.fixture(scope="module")
def tokenizer(qwen3_ckpt) -> Tokenizer:
    return Tokenizer.from_dir(qwen3_ckpt)


def test_grammar_cache_is_lru_and_reports_bad_specs(tokenizer):
    eos = tokenizer.eos_token_id
    cache = GrammarCache(tokenizer, 331, frozenset([eos]), capacity=2)
    first = cache.get(StructuredOutputParams(regex="a+"))
    assert cache.get(StructuredOutputParams(regex="a+")) is first and cache.hits == 1
    cache.get(StructuredOutputParams(choice=("yes", "no")))
    cache.get(StructuredOutputParams(json=SCHEMA))
    assert len(cache) == 2 and cache.get(StructuredOutputParams(regex="a+")) is not first
    with pytest.raises(StructuredOutputError, match="cannot be compiled") as info:
        cache.get(StructuredOutputParams(regex="(unclosed", param="guided_regex"))
    assert info.value.param == "guided_regex"
    with pytest.raises(StructuredOutputError, match="cannot be compiled"):
        cache.get(StructuredOutputParams(json={"type": "no-such-type"}))


def test_unpack_bitmask_and_mask_only_active_rows():
    bitmask = torch.tensor([[0b101, 0], [-1, 1]], dtype=torch.int32)
    allowed = unpack_bitmask(bitmask, 40)
    assert allowed[0].nonzero().flatten().tolist() == [0, 2]
    assert allowed[1].nonzero().flatten().tolist() == [*range(33)]

    class Only:
        active = True

        def __init__(self, token: int):
            self.token = token

        def fill_bitmask(self, mask: torch.Tensor, row: int) -> None:
            mask[row] = 0
            mask[row, self.token // 32] = 1 << (self.token % 32)

    class Idle(Only):
        active = False

    logits = torch.zeros(3, 40)
    apply_token_constraints(logits, [Only(7), None, Idle(3)])
    assert (logits[0] == 0).nonzero().flatten().tolist() == [7]
    assert logits[0, 0] == -math.inf
    assert (logits[1:] == 0).all()


def test_state_leaves_the_thought_free_and_starts_the_answer_after_it(tokenizer):
    markers = ThinkMarkers.from_tokenizer(tokenizer)
    assert markers is not None
    grammar = GrammarCache(tokenizer, 331, frozenset([tokenizer.eos_token_id])).get(
        StructuredOutputParams(choice=("yes", "no"))
    )
    prompt = tokenizer.encode("hi", add_special_tokens=False)
    state = StructuredState(grammar, prompt, markers)
    assert state.phase is Phase.MAY_THINK and state.active  # <think> or the answer
    bitmask = torch.zeros(1, (331 + 31) // 32, dtype=torch.int32)
    state.fill_bitmask(bitmask, 0)
    assert unpack_bitmask(bitmask, 331)[0, markers.start_id]
    thought = ThoughtState.after_prompt(prompt, markers)
    tokens = list(prompt)
    for token in [markers.start_id, *tokenizer.encode("{not json!", add_special_tokens=False)]:
        tokens.append(token)
        thought.observe(token, markers, budget=None)
        state.sync(tokens, thought)
        assert state.phase is Phase.THINKING and not state.active
    tokens.append(markers.end_id)
    thought.observe(markers.end_id, markers, budget=None)
    state.sync(tokens, thought)
    assert state.phase is Phase.ANSWER and state.answer_start == len(tokens)
    for token in tokenizer.encode("no", add_special_tokens=False):
        tokens.append(token)
        state.sync(tokens, thought)
    assert state.is_complete
    state.fill_bitmask(bitmask, 0)  # the grammar's end: only eos may follow
    assert unpack_bitmask(bitmask, 331)[0].nonzero().flatten().tolist() == [tokenizer.eos_token_id]
    with pytest.raises(ValueError, match="breaks the structured-output grammar"):
        state.sync([*tokens, *tokenizer.encode("x", add_special_tokens=False)], thought)


def test_prompt_that_closed_the_thought_constrains_from_the_first_token(tokenizer):
    markers = ThinkMarkers.from_tokenizer(tokenizer)
    assert markers is not None
    grammar = GrammarCache(tokenizer, 331, frozenset([tokenizer.eos_token_id])).get(
        StructuredOutputParams(regex="[0-9]+")
    )
    state = StructuredState(grammar, [5, markers.start_id, markers.end_id], markers)
    assert state.phase is Phase.ANSWER
    bitmask = torch.zeros(1, (331 + 31) // 32, dtype=torch.int32)
    state.fill_bitmask(bitmask, 0)
    assert not unpack_bitmask(bitmask, 331)[0, markers.start_id]
