"""AcceptanceController: per-sequence acceptance estimates that pick how many tokens to propose
(zero when speculation would not pay: the adaptive off-switch)."""

from __future__ import annotations

from dataclasses import dataclass

DECAY = 0.8  # weight of the past in the acceptance estimate: about the last 5 verifications
PRIOR_TRIALS = 2.0  # a new sequence starts as if it had seen two drafts, PRIOR_ACCEPTANCE of them taken
PRIOR_ACCEPTANCE = 0.6
PROBE_INTERVAL = 8  # a switched-off sequence proposes one token this often, to notice recovery


@dataclass
class _Estimate:
    accepted: float = PRIOR_ACCEPTANCE * PRIOR_TRIALS
    trials: float = PRIOR_TRIALS
    steps_off: int = 0

    @property
    def acceptance(self) -> float:
        return self.accepted / self.trials


def expected_tokens(acceptance: float, k: int) -> float:
    """Tokens one verification yields with k drafts when each is accepted with `acceptance`
    (independently, the usual model): 1 + a + a^2 + ... + a^k."""
    return sum(acceptance**i for i in range(k + 1))


class AcceptanceController:
    def __init__(self, max_tokens: int, token_cost: float, proposer_cost: float):
        self.max_tokens = max_tokens
        # Cost of one more draft token in target decode steps: verifying it, plus proposing it.
        self.cost_per_token = token_cost + proposer_cost
        self._estimates: dict[int, _Estimate] = {}

    def acceptance(self, seq_id: int) -> float:
        return self._estimates.get(seq_id, _Estimate()).acceptance

    def num_tokens(self, seq_id: int) -> int:
        """How many drafts to ask for: the k in 0..max_tokens with the best tokens per cost."""
        estimate = self._estimates.setdefault(seq_id, _Estimate())
        best = self.best_k(estimate.acceptance)
        if best == 0:
            estimate.steps_off += 1
            if estimate.steps_off < PROBE_INTERVAL:
                return 0
            best = 1
        estimate.steps_off = 0
        return best

    def best_k(self, acceptance: float) -> int:
        def gain(k: int) -> float:
            return expected_tokens(acceptance, k) / (1.0 + self.cost_per_token * k)

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
