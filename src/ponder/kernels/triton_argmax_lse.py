"""Triton argmax and logsumexp of each row of logits in one pass.

The sampler needs, for every row, the chosen token's raw logprob (logit - logsumexp) and, for
greedy rows, the argmax. A full-vocabulary log_softmax writes a [rows, vocab] float32 tensor
and reads it back; this reads the logits once and writes two numbers per row.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK = 4096


@triton.jit
def _argmax_lse_kernel(logits_ptr, argmax_ptr, lse_ptr, vocab_size, stride_row, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    base = logits_ptr + row.to(tl.int64) * stride_row
    offsets = tl.arange(0, BLOCK)
    run_max = -float("inf")
    run_sum = 0.0
    run_index = 0
    for start in range(0, vocab_size, BLOCK):
        cols = start + offsets
        x = tl.load(base + cols, mask=cols < vocab_size, other=-float("inf")).to(tl.float32)
        # Ties go to the lowest index, as torch.argmax does: left within a block, and a later
        # block wins only with a strictly larger value.
        block_max, block_index = tl.max(x, 0, return_indices=True, return_indices_tie_break_left=True)
        new_max = tl.maximum(run_max, block_max)
        # A block of -inf only (a masked tail) must not turn the sum into nan.
        safe_max = tl.where(new_max == -float("inf"), 0.0, new_max)
        run_sum = run_sum * tl.exp(run_max - safe_max) + tl.sum(tl.exp(x - safe_max), 0)
        run_index = tl.where(block_max > run_max, start + block_index, run_index)
        run_max = new_max
    tl.store(argmax_ptr + row, run_index.to(tl.int64))
    tl.store(lse_ptr + row, run_max + tl.log(run_sum))


def argmax_logsumexp(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """logits [rows, vocab] -> (argmax int64 [rows], logsumexp float32 [rows])."""
    if logits.stride(-1) != 1:
        logits = logits.contiguous()
    rows, vocab_size = logits.shape
    argmax = torch.empty(rows, dtype=torch.int64, device=logits.device)
    lse = torch.empty(rows, dtype=torch.float32, device=logits.device)
    if rows:
        block = min(BLOCK, triton.next_power_of_2(vocab_size))
        _argmax_lse_kernel[(rows,)](
            logits, argmax, lse, vocab_size, logits.stride(0), BLOCK=block, num_warps=8
        )
    return argmax, lse
