"""The acceptance rule of speculative sampling (Leviathan et al. 2023, Chen et al. 2023).

Draft token x with draft probability q(x) is accepted with probability min(1, p(x) / q(x)),
where p is the target's distribution at that position; on rejection a token is drawn from
norm(max(0, p - q)), and after k accepted drafts one more (bonus) token comes from p. The
emitted tokens then follow p exactly, whatever q is.

Both proposers in ponder propose a point guess (q = delta at x). Then the rule is
"accept x with probability p(x); on rejection draw from p without x", which is the same as
drawing y ~ p and accepting iff y == x (y is then the correction). The engine uses that form
(`accepted_prefix`): each verified position is sampled by the ordinary Sampler — so greedy,
top-k/top-p, penalties, seeds and logprobs all behave as without speculation — and greedy
verification is argmax matching, identical to decoding without speculation.
`rejection_sample` is the general rule (any q), kept for a sampled draft and for the tests
that check the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def accepted_prefix(sampled: Sequence[int], drafts: Sequence[int]) -> int:
    """How many leading drafts the target's own samples at those positions agree with."""
    count = 0
    for target, draft in zip(sampled, drafts):
        if target != draft:
            break
        count += 1
    return count


def rejection_sample(
    target_probs: torch.Tensor,
    draft_tokens: Sequence[int],
    draft_probs: torch.Tensor | None,
    generator: torch.Generator | None = None,
) -> list[int]:
    """target_probs [k + 1, V] (row i: p after the first i drafts), draft_probs [k, V] or None
    for point drafts. Returns the accepted drafts followed by one correction or bonus token."""
    k = len(draft_tokens)
    if target_probs.shape[0] != k + 1:
        raise ValueError(f"target_probs needs {k + 1} rows for {k} drafts, got {target_probs.shape[0]}")
    out: list[int] = []
    for i, token in enumerate(draft_tokens):
        p = target_probs[i]
        if draft_probs is None:
            q = torch.zeros_like(p)
            q[token] = 1.0
        else:
            q = draft_probs[i]
        ratio = (p[token] / q[token]).clamp(max=1.0) if q[token] > 0 else p.new_tensor(0.0)
        if torch.rand((), generator=generator, device=p.device) < ratio:
            out.append(token)
            continue
        residual = (p - q).clamp_min(0.0)
        total = residual.sum()
        residual = residual / total if total > 0 else p  # p == q: any draw from p is right
        out.append(int(torch.multinomial(residual, 1, generator=generator)))
        return out
    out.append(int(torch.multinomial(target_probs[k], 1, generator=generator)))
    return out
