"""Votes over extracted answers: majority, equivalent forms pooled, ties, no answer, weights."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ponder.reasoning.voting import lead_probability, vote, vote_decided
from ponder.tasks.answers import normalize_answer


def test_majority_pools_equivalent_answers():
    result = vote(["12", "7", "12.0", " 12 ", "7"])
    assert normalize_answer(result.answer) == "12"
    assert result.answer == "12"  # written as its first voter wrote it
    assert result.weight == 3 and result.share == pytest.approx(3 / 5)
    assert result.winner_index == 0 and not result.tie


def test_tie_goes_to_the_answer_whose_first_voter_came_first():
    result = vote(["5", "9", "9", "5"])
    assert result.answer == "5" and result.tie
    assert vote(["9", "5", "5", "9"]).answer == "9"


def test_missing_answers_cast_no_vote():
    result = vote([None, "3", None])
    assert result.answer == "3" and result.share == 1.0 and result.winner_index == 1
    assert result.num_votes == 1


def test_no_answer_at_all():
    for answers in ([], [None, None]):
        result = vote(answers)
        assert result.answer is None and result.share == 0.0 and result.winner_index is None


def test_weights_can_outvote_a_majority():
    answers = ["A=figs, B=pears", "b = Pears; a = Figs", "A=pears, B=figs"]
    assert vote(answers).answer == answers[0]
    weighted = vote(answers, [1.0, 1.0, 2.5])
    assert weighted.answer == answers[2] and weighted.share == pytest.approx(2.5 / 4.5)


def test_bad_weights_are_rejected():
    with pytest.raises(ValueError):
        vote(["1", "2"], [1.0])
    with pytest.raises(ValueError):
        vote(["1"], [-1.0])


@given(
    st.lists(st.one_of(st.none(), st.sampled_from(["1", "2", "3", "1.0"])), max_size=12),
    st.data(),
)
def test_the_winner_has_the_most_weight(answers, data):
    weights = data.draw(st.lists(st.floats(0, 10), min_size=len(answers), max_size=len(answers)))
    result = vote(answers, weights)
    if result.answer is None:
        assert all(a is None for a in answers)
        return
    assert all(result.weight >= other for other in result.tallies.values())
    assert result.tallies[normalize_answer(result.answer)] == result.weight


def test_tie_goes_to_the_surer_answer_before_the_earlier_one():
    answers = ["5", "7", "7", "5"]
    result = vote(answers, tie_scores=[-0.9, -0.2, -0.3, -0.8])
    assert result.answer == "7" and result.tie and result.winner_index == 1
    # Equal mean scores fall back to the earliest voter.
    assert vote(answers, tie_scores=[-0.5] * 4).answer == "5"
    # Scores never override weight: a clear majority wins however unsure it is.
    assert vote(["5", "5", "7"], tie_scores=[-3.0, -3.0, -0.1]).answer == "5"


def test_tie_scores_must_match_the_answers():
    with pytest.raises(ValueError, match="tie scores"):
        vote(["5", "7"], tie_scores=[0.0])


def test_lead_probability_is_the_beta_posterior_mass_above_one_half():
    assert lead_probability(0, 0) == 0.5
    assert lead_probability(4, 0) == pytest.approx(31 / 32)  # Beta(5, 1): 1 - 0.5**5
    assert lead_probability(6, 1) == pytest.approx(1 - 9 / 256)
    assert lead_probability(3, 3) == 0.5
    with pytest.raises(ValueError):
        lead_probability(-1, 2)


@given(st.integers(0, 40), st.integers(0, 40))
def test_lead_probability_is_symmetric_and_grows_with_the_lead(leader, runner_up):
    assert lead_probability(leader, runner_up) + lead_probability(runner_up, leader) == pytest.approx(1.0)
    assert lead_probability(leader + 1, runner_up) > lead_probability(leader, runner_up)


def test_a_vote_counts_the_voters_of_the_winner_and_the_runner_up():
    result = vote(["4", "5", "5", None, "4.0", "4"], weights=[1.0, 5.0, 5.0, 9.0, 1.0, 1.0])
    assert result.answer == "5" and (result.votes, result.runner_up_votes) == (2, 3)
    assert result.lead_probability == pytest.approx(lead_probability(2, 3)) and result.lead_probability < 0.5
    assert vote(["3"]).lead_probability == pytest.approx(0.75)
    assert vote([None]).lead_probability == 0.0


def test_vote_decided_by_share_or_by_the_leads_probability():
    three_nil = vote(["7", "7", "7"])
    assert vote_decided(three_nil, 3, "beta", 0.9, 2)  # 15/16 of the posterior above one half
    two_nil = vote(["7", "7"])
    assert not vote_decided(two_nil, 2, "beta", 0.9, 2)  # 7/8
    assert vote_decided(two_nil, 2, "share", 0.95, 2)  # unanimous is share 1
    assert not vote_decided(two_nil, 2, "share", 0.95, 3)  # too few answers yet
    five_one = vote(["7"] * 5 + ["8"])
    assert not vote_decided(five_one, 6, "share", 0.95, 2) and vote_decided(five_one, 6, "beta", 0.9, 2)
    assert not vote_decided(vote([None, None]), 2, "share", 0.5, 1)  # nothing answered
