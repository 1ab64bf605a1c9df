"""The built-in model outside its task format: plain questions get right answers when it thinks,
and a real (non-empty) answer at reasoning effort none or a small thinking budget."""

import pytest

from ponder import LLM, SamplingParams
from ponder.tasks.answers import answers_equal, extract_answer

PLAIN = {
    "What is 2+3?": "5",
    "What is 7*8?": "56",
    "What is 12 - 5?": "7",
    "Compute 47+38.": "85",
    "Ann is taller than Bob. Bob is taller than Cal. Who is the shortest one?": "Cal",
    "Eve has 5 figs. Eve buys 3 more figs. How many figs does Eve have now?": "8",
}


@pytest.fixture(scope="module")
def llm():
    return LLM(max_num_seqs=8)


def answers(llm, *, budget=None, thinking=True) -> list[str | None]:
    outs = llm.chat(
        [[{"role": "user", "content": question}] for question in PLAIN],
        SamplingParams(temperature=0, max_tokens=400, thinking_budget=budget),
        chat_template_kwargs=None if thinking else {"enable_thinking": False},
    )
    return [extract_answer(out.outputs[0].content, out.outputs[0].reasoning) for out in outs]


@pytest.mark.parametrize("budget", [None, 64])
def test_plain_questions_are_answered_right_when_it_thinks(llm, budget):
    got = answers(llm, budget=budget)
    assert all(a is not None and answers_equal(a, gold) for a, gold in zip(got, PLAIN.values())), got


@pytest.mark.parametrize(("budget", "thinking"), [(16, True), (None, False)])
def test_a_small_budget_or_no_thinking_still_answers(llm, budget, thinking):
    # (right only sometimes: docs/flywheel.md, "Robustness"; never the empty box of a probe)
    assert all(answers(llm, budget=budget, thinking=thinking))
