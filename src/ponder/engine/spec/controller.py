"""AcceptanceController: per-sequence acceptance estimates that pick how many tokens to propose
(zero when speculation would not pay: the adaptive off-switch)."""

from __future__ import annotations

from dataclasses import dataclass

DECAY = 0.8  # weight of the past in the acceptance estimate: about the last 5 verifications
PRIOR_TRIALS = 2.0  # a new sequence starts as if it had seen two drafts, PRIOR_ACCEPTANCE of them taken
PRIOR_ACCEPTANCE = 0.6
# Every this many steps, switched-off sequences propose one token, to notice a recovery. All
# probe in the same step: on some hardware the first draft in a batch is what costs.
PROBE_INTERVAL = 16


@dataclass
class _Estimate:
    accepted: float = PRIOR_ACCEPTANCE * PRIOR_TRIALS
    trials: float = PRIOR_TRIALS

    @property
    def acceptance(self) -> float:
        return self.accepted / self.trials


def expected_tokens(acceptance: float, k: int) -> float:
    """Tokens one verification yields with k drafts when each is accepted with `acceptance`
    (independently, the usual model): 1 + a + a^2 + ... + a^k."""
    return sum(acceptance**i for i in range(k + 1))


class AcceptanceController:
    def __init__(self, max_tokens: int):
        self.max_tokens = max_tokens
        self._estimates: dict[int, _Estimate] = {}

    def acceptance(self, seq_id: int) -> float:
        return self._estimates.get(seq_id, _Estimate()).acceptance

    def num_tokens(self, seq_id: int, cost_per_token: float, probe: bool) -> int:
        """How many drafts to ask for: the k in 0..max_tokens with the most tokens per cost, where
        one more draft costs cost_per_token decode steps; at least one in a probe step."""
        estimate = self._estimates.setdefault(seq_id, _Estimate())
        best = self.best_k(estimate.acceptance, cost_per_token)
        return max(best, 1) if probe else best

    def best_k(self, acceptance: float, cost_per_token: float) -> int:
        def gain(k: int) -> float:
            return expected_tokens(acceptance, k) / (1.0 + cost_per_token * k)

        return max(range(self.max_tokens + 1), key=lambda k: (gain(k), -k))

    def observe(self, seq_id: int, num_proposed: int, num_accepted: int) -> None:
        """One verification: the first num_accepted of num_proposed drafts were taken. Each
        accepted draft is a success; the rejected one (if any) is the only failure seen, since
        drafts after it were never judged."""
        estimate = self._estimates.setdefault(seq_id, _Estimate())
        failures = 1 if num_accepted < num_proposed else 0
        estimate.accepted = DECAY * estimate.accepted + num_accepted
        estimate.trials = DECAY * estimate.trials + num_accepted + failures

    def forget(self, seq_id: int) -> None:
        self._estimates.pop(seq_id, None)
