"""Vocab-parallel embedding and LM head: row sharding and padding of the last rank."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ponder.layers.embedding import ParallelLMHead, VocabParallelEmbedding


def test_single_rank_embedding_and_head_match_plain_ops():
    table, ids, hidden = torch.randn(11, 4), torch.tensor([0, 10, 3]), torch.randn(2, 4)
    embedding, head = VocabParallelEmbedding(11, 4), ParallelLMHead(11, 4)
    for layer in (embedding, head):
        layer.weight.weight_loader(layer.weight, table)
    torch.testing.assert_close(embedding(ids), F.embedding(ids, table))
    torch.testing.assert_close(head(hidden), hidden @ table.T)


def test_ranks_hold_contiguous_row_slices_and_the_last_is_zero_padded():
    table = torch.randn(11, 4)
    rank0, rank1 = (VocabParallelEmbedding(11, 4, tp_rank=r, tp_size=2) for r in (0, 1))
    for layer in (rank0, rank1):
        layer.weight.weight_loader(layer.weight, table)
    assert rank0.weight.shape == rank1.weight.shape == (6, 4)
    torch.testing.assert_close(rank0.weight, table[:6])
    torch.testing.assert_close(rank1.weight[:5], table[6:])
    assert not rank1.weight[5].any()


def test_embedding_loader_rejects_wrong_vocab_size():
    layer = VocabParallelEmbedding(11, 4)
    with pytest.raises(ValueError, match="embedding"):
        layer.weight.weight_loader(layer.weight, torch.randn(12, 4))
