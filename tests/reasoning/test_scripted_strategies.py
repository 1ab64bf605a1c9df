"""Strategy mechanics against a scripted engine session: which branches run, which are stopped and
when, what is probed, what goes back into the context, and what wins the vote."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest

from ponder.engine.detokenizer import IncrementalDetokenizer
from ponder.engine.output_text import OutputText
from ponder.engine.outputs import CompletionOutput, RequestOutput
from ponder.engine.sampling_params import SamplingParams
from ponder.engine.thinking import CLOSE_TEXT, ThoughtState
from ponder.errors import InvalidRequestError
from ponder.reasoning.confidence import percentile
from ponder.reasoning.controller import run_on_sessions
from ponder.reasoning.progress import StrategyProgress
from ponder.reasoning.session import EngineSession
from ponder.reasoning.spec_parser import parse_strategy_spec
from ponder.reasoning.strategies import ReasoningPrompt
from ponder.reasoning.voting import lead_probability
from ponder.tasks.answers import ANSWER_OPENER

DEFAULT_PROBE_TEXT = CLOSE_TEXT + ANSWER_OPENER  # what a probe appends by default

MARKERS = ("<think>", "</think>")
_PIECES = re.compile("|".join(re.escape(m) for m in MARKERS) + r"|\\boxed\{|.", re.DOTALL)


class FakeTokenizer:
    """One token per character, per think marker and per "\\boxed{"."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.ids: dict[str, int] = {}
        for marker in MARKERS:
            self.id(marker)

    def id(self, piece: str) -> int:
        if piece not in self.ids:
            self.ids[piece] = len(self.pieces)
            self.pieces.append(piece)
        return self.ids[piece]

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [self.id(piece) for piece in _PIECES.findall(text)]

    def decode(self, token_ids, skip_special_tokens: bool = True) -> str:
        return "".join(self.pieces[i] for i in token_ids)

    def token_to_id(self, token: str) -> int | None:
        return self.ids.get(token)

    def apply_chat_template(self, messages, add_generation_prompt=True, **kwargs) -> str:
        turns = "".join(f"[{m['role']}] {m['content']}\n" for m in messages)
        return turns + ("[assistant] " if add_generation_prompt else "")


# A script gives each branch of a request its pieces: (text piece, confidence) per token.
Script = Callable[[list[int], SamplingParams, int], list[tuple[str, float]]]


def pieces(text: str, confidence: float = 10.0) -> list[tuple[str, float]]:
    return [(piece, confidence) for piece in _PIECES.findall(text)]


class ScriptedSession(EngineSession):
    """Every branch emits one scripted token per step, like a decode step of the engine."""

    def __init__(self, script: Script, name: str = "default", tokenizer: FakeTokenizer | None = None):
        super().__init__(tokenizer or FakeTokenizer(), name)
        self.script = script
        self.requests: dict[str, dict] = {}
        self.submitted: list[tuple[str, list[int], SamplingParams]] = []
        self.pending: list[RequestOutput] = []
        self.stopped: list[tuple[str, int, int]] = []  # request, branch, tokens when stopped
        self.prefix_of: dict[str, tuple[str, int] | None] = {}  # request -> the sample it extends
        self.spare = 256  # what the engine would report as spare seats

    def _start(self, submission) -> None:
        request_id, prompt_token_ids, params = (
            submission.request_id,
            submission.prompt_token_ids,
            submission.params,
        )
        self.submitted.append((request_id, prompt_token_ids, params))
        self.prefix_of[request_id] = submission.prefix_of
        markers = self.markers
        thoughts = [ThoughtState.after_prompt(prompt_token_ids, markers) for _ in range(params.n)]
        self.requests[request_id] = {
            "params": params,
            "prompt": prompt_token_ids,
            "scripts": [self.script(prompt_token_ids, params, i) for i in range(params.n)],
            "emitted": [0] * params.n,
            "finished": [None] * params.n,
            "thoughts": thoughts,
            # the engine's own text split, so strategies read what a real engine would give them
            "texts": [
                OutputText(IncrementalDetokenizer(self.tokenizer, prompt_token_ids), markers, t.in_thought)
                for t in thoughts
            ],
            "sent": [(0, 0, 0)] * params.n,
            "logprob": [0.0] * params.n,
        }

    def _stop(self, request_id, index) -> None:
        request = self.requests.get(request_id)
        if request is None or request["finished"][index]:
            return
        request["finished"][index] = "abort"
        self.stopped.append((request_id, index, request["emitted"][index]))
        self.pending.append(self._output(request_id, [self._completion(request, index, [])]))

    def _abort(self, request_id) -> None:
        self.requests.pop(request_id, None)

    def spare_seats(self) -> int:
        return self.spare

    async def _next_outputs(self) -> list[RequestOutput]:
        await asyncio.sleep(0)
        if self.pending:
            outputs, self.pending = self.pending, []
            return outputs
        outputs = []
        for request_id, request in list(self.requests.items()):
            completions = [
                self._advance(request, index)
                for index in range(len(request["scripts"]))
                if request["finished"][index] is None
            ]
            if completions:
                outputs.append(self._output(request_id, completions))
        return outputs

    def _advance(self, request: dict, index: int) -> CompletionOutput:
        params, tokenizer = request["params"], self.tokenizer
        piece, confidence = request["scripts"][index][request["emitted"][index]]
        token_id = tokenizer.id(piece)
        request["emitted"][index] += 1
        thought, text = request["thoughts"][index], request["texts"][index]
        thought.observe(token_id, self.markers, budget=None)
        request["logprob"][index] -= 1.0 / confidence
        if token_id in params.stop_token_ids:
            request["finished"][index] = "stop"
        else:
            text.append(token_id, thought.in_thought)
            if request["emitted"][index] == len(request["scripts"][index]):
                request["finished"][index] = "stop"
            elif params.max_tokens is not None and request["emitted"][index] >= params.max_tokens:
                request["finished"][index] = "length"
        if request["finished"][index]:
            text.finish()
        completion = self._completion(request, index, [token_id])
        completion.confidences = [confidence] if params.confidence_top_k else None
        return completion

    def _completion(self, request, index, token_ids) -> CompletionOutput:
        text = request["texts"][index]
        sent_raw, sent_reasoning, sent_content = request["sent"][index]
        request["sent"][index] = (len(text.raw), len(text.reasoning), len(text.content))
        return CompletionOutput(
            index=index,
            text=text.raw[sent_raw:],
            token_ids=token_ids,
            cumulative_logprob=request["logprob"][index],
            reasoning=text.reasoning[sent_reasoning:],
            content=text.content[sent_content:],
            num_reasoning_tokens=request["thoughts"][index].num_reasoning_tokens,
            finish_reason=request["finished"][index],
        )

    def _output(self, request_id, completions) -> RequestOutput:
        request = self.requests[request_id]
        finished = all(request["finished"])
        if finished:
            del self.requests[request_id]
        return RequestOutput(request_id, None, request["prompt"], completions, finished)


def answers_script(
    answers: list[str], confidences: list[float] | None = None, thought: str = "<think>ok</think>"
) -> Script:
    def script(prompt, params, index):
        confidence = confidences[index] if confidences else 10.0
        return pieces(f"{thought}\\boxed{{{answers[index]}}}", confidence)

    return script


SAMPLED = SamplingParams(temperature=0.7, max_tokens=500, seed=0)


QUESTION = ReasoningPrompt(messages=({"role": "user", "content": "What is 6 * 7?"},))


def run(session, spec, params=SAMPLED, **kwargs):
    return asyncio.run(run_on_sessions(session, QUESTION, params, parse_strategy_spec(spec), **kwargs))


def test_self_consistency_forks_one_request_and_takes_the_majority():
    session = ScriptedSession(answers_script(["4", "5", "5", "4.0", "5"]))
    result = run(session, {"type": "self_consistency", "n": 5})
    assert len(session.submitted) == 1 and session.submitted[0][2].n == 5
    assert result.answer == "5" and result.vote.share == pytest.approx(3 / 5)
    assert result.content == "\\boxed{5}" and result.reasoning == "ok"
    assert result.usage.num_branches == 5
    answers = ["4", "5", "5", "4.0", "5"]
    assert result.usage.generated_tokens == sum(
        len(pieces(f"<think>ok</think>\\boxed{{{a}}}")) for a in answers
    )
    assert result.usage.reasoning_tokens == 5 * len(pieces("<think>ok</think>"))


def test_confidence_weighted_vote_lets_a_sure_minority_win():
    script = answers_script(["4", "5", "5"], confidences=[30.0, 5.0, 5.0])
    majority = run(ScriptedSession(script), {"type": "self_consistency", "n": 3})
    weighted = run(ScriptedSession(script), {"type": "self_consistency", "n": 3, "vote": "confidence"})
    assert majority.answer == "5" and weighted.answer == "4"


def test_keep_top_lets_only_the_most_confident_branches_vote():
    script = answers_script(["4", "5", "5", "4", "5"], confidences=[30.0, 5.0, 6.0, 20.0, 1.0])
    spec = {"type": "self_consistency", "n": 5, "keep_top": 0.4}  # ceil(0.4 * 5) = 2 vote
    result = run(ScriptedSession(script), spec)
    assert result.answer == "4" and result.vote.tallies == {"4": 2.0}
    assert [b.discarded for b in result.branches] == [False, True, True, False, True]
    assert run(ScriptedSession(script), {**spec, "keep_top": 1.0}).answer == "5"
    only_one = run(ScriptedSession(script), {**spec, "keep_top": 0.0})
    assert [b.discarded for b in only_one.branches].count(False) == 1 and only_one.answer == "4"


def test_no_answer_anywhere_gives_none():
    script = lambda prompt, params, index: pieces("<think>hmm</think>no idea")  # noqa: E731
    result = run(ScriptedSession(script), {"type": "self_consistency", "n": 3})
    assert result.answer is None and result.vote.share == 0.0


def test_best_of_n_by_verifier_and_by_logprob():
    script = answers_script(["1", "2", "3"], confidences=[2.0, 8.0, 4.0])
    by_verifier = run(
        ScriptedSession(script),
        {"type": "best_of_n", "n": 3, "scorer": "verifier"},
        verifier=lambda text: text.endswith("{3}"),
    )
    assert by_verifier.answer == "3" and [b.score for b in by_verifier.branches] == [0.0, 0.0, 1.0]
    by_logprob = run(ScriptedSession(script), {"type": "best_of_n", "n": 3})
    assert by_logprob.answer == "2"  # highest confidence = highest mean logprob in the script


def test_best_of_n_without_a_verifier_fails_before_generating():
    session = ScriptedSession(answers_script(["1"] * 3))
    with pytest.raises(InvalidRequestError) as caught:
        run(session, {"type": "best_of_n", "n": 3, "scorer": "verifier"})
    assert caught.value.param == "reasoning_strategy.scorer" and session.submitted == []


@pytest.mark.parametrize("waves", [{}, {"wave": 2, "rolling": True}])
def test_confidence_stops_unanimous_warmup_early(waves):
    session = ScriptedSession(answers_script(["7"] * 16))
    result = run(session, {"type": "confidence", "n": 16, "warmup": 4, **waves})
    assert len(session.submitted) == 1 and result.answer == "7"
    assert result.details["consensus_reached"] and result.usage.num_branches == 4


@pytest.mark.parametrize(("stop_rule", "consensus", "requests"), [("share", 0.95, 4), ("beta", 0.95, 2)])
def test_the_beta_stop_rule_ends_a_clear_vote_that_is_not_unanimous(stop_rule, consensus, requests):
    def script(prompt, params, index):  # warm-up 7, 7, 7, 8; then 7 every time
        dissent = params.seed == SAMPLED.seed and index == 3
        return pieces(f"<think>ok</think>\\boxed{{{8 if dissent else 7}}}")

    session = ScriptedSession(script)
    spec = {"type": "confidence", "n": 16, "warmup": 4, "wave": 4, "stop_rule": stop_rule}
    result = run(session, {**spec, "consensus": consensus})
    # share: 15 of 16 is 0.94 < 0.95, so all four requests run; beta: 6 to 1 in the first wave
    # puts the leader ahead with probability 0.965
    assert len(session.submitted) == requests and result.answer == "7"
    assert result.details["consensus_reached"] == (stop_rule == "beta")
    votes = (7, 1) if stop_rule == "beta" else (15, 1)  # the fourth branch of the wave votes too
    assert result.details["lead_probability"] == pytest.approx(lead_probability(*votes))


@pytest.mark.parametrize("rolling", [False, True])
def test_rolling_waves_start_a_branch_as_soon_as_one_ends(rolling):
    long_thought = "<think>" + "x" * 40 + "</think>"
    started_beside_long = []

    def script(prompt, params, index):
        request = len(session.submitted)  # this one included
        if request == 1:  # warm-up: two sure branches that disagree, so there is no consensus
            return pieces(f"<think>ab</think>\\boxed{{{7 + index}}}")
        if request == 2 and index == 0:  # the first branch after the warm-up thinks long
            return pieces(f"{long_thought}\\boxed{{9}}")
        long_id = session.submitted[1][0]
        started_beside_long.append(long_id in session.requests)  # still running?
        return pieces("<think>ab</think>\\boxed{7}")

    session = ScriptedSession(script)
    spec = {"type": "confidence", "n": 6, "warmup": 2, "wave": 2, "rolling": rolling, "consensus": 1.0}
    result = run(session, spec)
    sizes = [params.n for _, _, params in session.submitted]
    assert sizes == ([2, 1, 1, 1, 1] if rolling else [2, 2, 2])
    assert result.usage.num_branches == 6 and result.answer == "7"
    # rolling: both later branches start while the long one still thinks; waves wait for it
    assert started_beside_long[-2:] == ([True, True] if rolling else [False, False])


@pytest.mark.parametrize(
    ("spare", "probes", "sizes"),
    [(256, False, [2, 8]), (0, False, [2, 2, 2, 2, 2]), (5, False, [2, 5, 3]), (9, True, [2, 4, 4])],
)
def test_auto_waves_start_what_the_engine_has_seats_for(spare, probes, sizes):
    def script(prompt, params, index):  # the warm-up disagrees and later branches split: no consensus
        return pieces(f"<think>ab</think>\\boxed{{{7 + (index + len(session.submitted)) % 2}}}")

    session = ScriptedSession(script)
    session.spare = spare
    spec = {"type": "confidence", "n": 10, "warmup": 2, "wave": "auto", "consensus": 1.0}
    if probes:
        spec |= {"probe_every": 1000}  # probed branches need a seat for their probe too
    result = run(session, spec)
    assert [params.n for _, _, params in session.submitted] == sizes
    assert result.usage.num_branches == 10


def test_confidence_stops_weak_branches_and_ends_at_consensus():
    window = 4
    long_thought = "<think>" + "x" * 40 + "</think>"

    def script(prompt, params, index):
        if params.n == 2:  # warm-up: two sure branches that disagree
            return pieces(f"<think>abcdef</think>\\boxed{{{7 + index}}}", 10.0)
        if index in (0, 1):  # unsure: stopped once a full window shows it
            return pieces(f"{long_thought}\\boxed{{8}}", 1.0)
        if index == 2:  # sure and long: still running when consensus is reached
            return pieces(f"{long_thought}\\boxed{{9}}", 10.0)
        return pieces("<think>ab</think>\\boxed{7}", 10.0)

    session = ScriptedSession(script)
    result = run(
        session,
        {"type": "confidence", "n": 6, "warmup": 2, "window": window, "consensus": 0.6, "min_votes": 3},
    )
    wave_id = session.submitted[1][0]
    assert [(r, i, t) for r, i, t in session.stopped] == [(wave_id, 0, window), (wave_id, 1, window)]
    assert result.details["threshold"] == pytest.approx(percentile([10.0, 10.0], 10.0))
    assert result.answer == "7" and result.details["consensus_reached"]
    stopped = [b for b in result.branches if b.stopped]
    assert len(stopped) == 3 and all(b.discarded for b in stopped)  # 2 weak + 1 cancelled
    assert result.usage.num_stopped_branches == 3
    assert result.vote.tallies == {"7": 20.0, "8": 10.0}
    assert result.usage.generated_tokens < 2 * 12 + 4 * len(pieces(long_thought))


def test_progress_snapshot_counts_branches_and_tracks_the_leading_answer():
    def script(prompt, params, index):
        if params.n == 2:  # warm-up: two sure branches that disagree
            return pieces(f"<think>abcdef</think>\\boxed{{{7 + index}}}", 10.0)
        if index in (0, 1):  # unsure: stopped early
            return pieces("<think>" + "x" * 40 + "</think>\\boxed{8}", 1.0)
        if index == 2:  # still running at consensus: cancelled
            return pieces("<think>" + "x" * 40 + "</think>\\boxed{9}", 10.0)
        return pieces("<think>ab</think>\\boxed{7}", 10.0)

    progress = StrategyProgress()
    assert progress.snapshot().to_dict() == {
        "branches_running": 0,
        "branches_finished": 0,
        "branches_stopped": 0,
        "generated_tokens": 0,
        "leading_answer": None,
        "leading_share": None,
    }
    spec = {"type": "confidence", "n": 6, "warmup": 2, "window": 4, "consensus": 0.6, "min_votes": 3}
    result = run(ScriptedSession(script), spec, progress=progress)
    snapshot = progress.snapshot()
    assert (snapshot.branches_running, snapshot.branches_finished, snapshot.branches_stopped) == (0, 3, 3)
    assert snapshot.leading_answer == "7" and snapshot.leading_share == pytest.approx(2 / 3)
    assert snapshot.usage == result.usage


def answer_stability_script(probe_ids: list[int], base_len: int) -> Script:
    def script(prompt, params, index):
        if prompt[-len(probe_ids) :] == probe_ids:  # a probe: answer from the thought's length
            thought_len = len(prompt) - base_len - len(probe_ids)
            return pieces(("42" if thought_len >= 12 else str(thought_len)) + "}")
        return pieces("<think>" + "y" * 40 + "</think>\\boxed{41}")

    return script


def probed_session() -> tuple[ScriptedSession, list[int], list[int]]:
    """A session whose thoughts are probed: (session, prompt ids, probe ids)."""
    tokenizer = FakeTokenizer()
    probe_ids = tokenizer.encode(DEFAULT_PROBE_TEXT)
    prompt_ids = tokenizer.encode(
        tokenizer.apply_chat_template([{"role": "user", "content": "What is 6 * 7?"}])
    )
    session = ScriptedSession(answer_stability_script(probe_ids, len(prompt_ids)), tokenizer=tokenizer)
    return session, prompt_ids, probe_ids


def test_answer_stability_probes_the_live_thought_and_stops_once_stable():
    session, prompt_ids, probe_ids = probed_session()
    result = run(
        session,
        {"type": "answer_stability", "probe_every": 4, "agree": 2},
        SamplingParams(temperature=0, max_tokens=500),
    )
    thought_id = session.submitted[0][0]
    thought = [b for b in session.handles[0].branches][0]
    probes = session.submitted[1:]
    assert result.answer == "42" and result.details["settled"] == 1
    assert thought.stopped and thought.num_tokens < len(pieces("<think>" + "y" * 40 + "</think>"))
    for probe_id, probe_prompt, params in probes:  # forked from the live thought, reusing its KV
        assert session.prefix_of[probe_id] == (thought_id, 0)
        assert probe_prompt[: len(prompt_ids)] == prompt_ids and probe_prompt[-len(probe_ids) :] == probe_ids
        assert (
            thought.token_ids[: len(probe_prompt) - len(prompt_ids) - len(probe_ids)]
            == (probe_prompt[len(prompt_ids) : -len(probe_ids)])
        )
        assert params.temperature == 0 and params.n == 1
    assert result.usage.num_probes == len(probes) >= 3
    assert result.usage.probe_tokens == sum(b.num_tokens for h in session.handles[1:] for b in h.branches)
    # the thought up to the probe, then the probe's answer, split as the engine splits
    assert result.content == "\\boxed{42}" and set(result.reasoning) == {"y"}
    assert session.stopped[0][0] == thought_id


def test_confidence_with_probes_settles_every_branch_by_its_answer():
    session, _, _ = probed_session()
    spec = {
        "type": "confidence",
        "n": 6,
        "warmup": 2,
        "window": 4,
        "probe_every": 4,
        "agree": 2,
        "min_votes": 6,
    }
    result = run(session, spec, SamplingParams(temperature=0.8, max_tokens=500))
    thought_len = len(pieces("<think>" + "y" * 40 + "</think>\\boxed{41}"))
    assert result.answer == "42" and result.details["settled"] == 6 == len(result.branches)
    assert all(not b.stopped and not b.discarded and b.answer == "42" for b in result.branches)
    assert result.usage.num_probes == result.details["probes"] >= 12
    assert result.usage.reasoning_tokens + result.usage.answer_tokens < 6 * thought_len / 2
    assert not session.requests  # no branch or probe left running


def test_progress_counts_a_settled_branch_as_finished_with_its_probe_answer():
    session, _, _ = probed_session()
    progress = StrategyProgress()
    spec = {"type": "answer_stability", "n": 2, "probe_every": 4, "agree": 2}
    result = run(session, spec, SamplingParams(temperature=0.8, max_tokens=500), progress=progress)
    snapshot = progress.snapshot()
    assert result.details["settled"] == 2 and result.usage.num_stopped_branches == 2
    assert (snapshot.branches_running, snapshot.branches_finished, snapshot.branches_stopped) == (0, 2, 0)
    assert snapshot.leading_answer == "42" and snapshot.leading_share == 1.0


def test_probes_with_an_empty_box_never_count_as_agreeing():
    tokenizer = FakeTokenizer()
    probe_ids = tokenizer.encode(DEFAULT_PROBE_TEXT)

    def script(prompt, params, index):
        if prompt[-len(probe_ids) :] == probe_ids:
            return pieces("}")  # the model has no result yet
        return pieces("<think>" + "y" * 40 + "</think>\\boxed{41}")

    session = ScriptedSession(script, tokenizer=tokenizer)
    result = run(
        session,
        {"type": "answer_stability", "probe_every": 4, "agree": 2},
        SamplingParams(temperature=0, max_tokens=500),
    )
    assert result.answer == "41" and result.details["settled"] == 0 and result.usage.num_probes >= 3


def test_the_default_probe_is_what_the_builtin_model_learned():
    from ponder.assets import default_model_dir
    from ponder.engine.tokenizer import Tokenizer
    from ponder.reasoning.specs import ProbePlan
    from ponder.reasoning.strategies.probing import probe_token_ids
    from ponder.train.chat_format import PROBE_TEXT

    tokenizer = Tokenizer.from_dir(default_model_dir())
    session = ScriptedSession(answers_script([]), tokenizer=tokenizer)
    learned = tokenizer.encode(PROBE_TEXT, add_special_tokens=False)
    assert probe_token_ids(session, ProbePlan(probe_every=8, agree=2)) == learned
    assert DEFAULT_PROBE_TEXT == PROBE_TEXT


def test_a_thought_that_closes_first_keeps_its_own_answer():
    tokenizer = FakeTokenizer()
    probe_ids = tokenizer.encode(DEFAULT_PROBE_TEXT)
    session = ScriptedSession(answer_stability_script(probe_ids, 10**6), tokenizer=tokenizer)  # never stable
    result = run(
        session,
        {"type": "answer_stability", "probe_every": 8, "agree": 3},
        SamplingParams(temperature=0, max_tokens=500),
    )
    assert result.answer == "41" and result.details["settled"] == 0
    assert not session.handles[0].branches[0].stopped and not session.requests  # nothing left running


def test_budget_forcing_extends_a_short_thought_with_the_cue():
    tokenizer = FakeTokenizer()
    cue = "\nWait"
    cue_ids = tokenizer.encode(cue)

    end_id = tokenizer.token_to_id("</think>")

    def script(prompt, params, index):
        if prompt[-len(cue_ids) :] == cue_ids:
            return pieces("cdef</think>\\boxed{9}")
        if prompt[-1] == end_id:
            return pieces("\\boxed{2}")
        return pieces("<think>ab</think>\\boxed{1}")

    session = ScriptedSession(script, tokenizer=tokenizer)
    result = run(session, {"type": "budget", "min_thinking": 5, "continuation": cue, "thinking_budget": 50})
    first, second, third = session.submitted
    assert end_id in first[2].stop_token_ids and first[2].thinking_budget == 50
    assert second[1] == first[1] + tokenizer.encode("<think>ab") + cue_ids  # the close dropped
    assert second[2].thinking_budget == 50 - 4
    assert third[1] == second[1] + tokenizer.encode("cdef</think>")  # long enough: answer now
    assert end_id not in third[2].stop_token_ids
    assert result.details["extensions"] == 1 and result.answer == "2"
    assert (result.reasoning, result.content) == ("ab" + cue + "cdef", "\\boxed{2}")


def test_refine_puts_the_checked_attempt_back_into_the_context():
    tokenizer = FakeTokenizer()

    def scripted(prompt, params, index):
        text = tokenizer.decode(prompt)
        return pieces("<think>t</think>\\boxed{2}" if "is wrong" in text else "<think>t</think>\\boxed{1}")

    session = ScriptedSession(scripted, tokenizer=tokenizer)
    result = run(
        session,
        {"type": "refine", "passes": 3, "check": "verifier"},
        verifier=lambda text: text.endswith("{2}"),
    )
    assert len(session.submitted) == 2 and result.answer == "2" and result.details["accepted"]
    second_prompt = tokenizer.decode(session.submitted[1][1])
    assert "[assistant] \\boxed{1}" in second_prompt and "Check: the answer 1 is wrong." in second_prompt
    assert session.submitted[0][2].seed != session.submitted[1][2].seed


def test_cascade_asks_the_large_model_only_when_the_small_one_is_unsure():
    unsure_small = ScriptedSession(answers_script(["1", "2", "1", "2"]), name="small")
    big = ScriptedSession(answers_script(["3"] * 4), name="big")
    spec = {"type": "cascade", "models": ["small", "big"], "n": 4}
    result = run(unsure_small, spec, models={"small": unsure_small, "big": big})
    assert result.answer == "3" and result.details["answered_by"] == "big"
    assert result.usage.num_branches == 8

    sure_small = ScriptedSession(answers_script(["1"] * 4), name="small")
    idle_big = ScriptedSession(answers_script(["3"] * 4), name="big")
    result = run(sure_small, spec, models={"small": sure_small, "big": idle_big})
    assert result.answer == "1" and idle_big.submitted == []


def test_ensemble_pools_votes_across_models():
    small = ScriptedSession(answers_script(["1", "1", "2"]), name="small")
    big = ScriptedSession(answers_script(["2", "2", "2"]), name="big")
    result = run(small, {"type": "ensemble", "models": ["small", "big"], "n": 3}, models={"big": big})
    assert result.answer == "2" and result.vote.share == pytest.approx(4 / 6)
    assert {b.model for b in result.branches} == {"small", "big"}


def test_unknown_model_and_repeated_model_are_request_errors():
    session = ScriptedSession(answers_script(["1"] * 4))
    with pytest.raises(InvalidRequestError, match="not served here"):
        run(session, {"type": "ensemble", "models": ["default", "nope"], "n": 2})
    with pytest.raises(InvalidRequestError, match="twice"):
        run(session, {"type": "ensemble", "models": ["default", "default"], "n": 2})


def test_a_failing_run_cancels_what_it_started():
    session = ScriptedSession(answers_script(["1"] * 3))

    def broken(text: str) -> bool:
        raise RuntimeError("verifier crashed")

    with pytest.raises(RuntimeError, match="verifier crashed"):
        run(session, {"type": "refine", "check": "verifier"}, verifier=broken)
    assert not session.in_flight


def test_waiting_with_nothing_in_flight_is_an_error():
    with pytest.raises(RuntimeError, match="no request in flight"):
        asyncio.run(ScriptedSession(answers_script(["1"])).wait())
