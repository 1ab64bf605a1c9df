"""Vocabulary-parallel token embedding and LM head: each rank holds a contiguous slice of rows."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ponder.distributed.parallel_state import all_gather, all_reduce
from ponder.distributed.sharding import Weight, vocab_shard
from ponder.layers.weight_loader import check_shape


class VocabParallelEmbedding(nn.Module):
    """Embedding table split by vocabulary rows across tensor-parallel ranks."""

    def __init__(self, num_embeddings: int, embedding_dim: int, tp_rank: int = 0, tp_size: int = 1) -> None:
        super().__init__()
        self.num_embeddings = num_embeddings
        self.tp_rank, self.tp_size = tp_rank, tp_size
        # A vocabulary not divisible by the ranks: every rank pads to the same row count, so the
        # LM head's all-gather concatenates equal shards (the padding is cut off after).
        shard = vocab_shard(num_embeddings, tp_rank, tp_size)
        self.rows_per_rank, self.vocab_start, self.vocab_end = shard.rows_per_rank, shard.start, shard.end
        self.weight = nn.Parameter(torch.empty(self.rows_per_rank, embedding_dim), requires_grad=False)
        self.weight.weight_loader = self.weight_loader

    def weight_loader(self, param: nn.Parameter, loaded_weight: Weight, shard_id: object = None) -> None:
        check_shape((self.num_embeddings, param.shape[1]), loaded_weight, "embedding")
        rows = self.vocab_end - self.vocab_start
        param.data.zero_()
        if rows:
            param.data[:rows].copy_(loaded_weight.narrow(0, self.vocab_start, rows))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        if self.tp_size == 1:
            return F.embedding(input_ids, self.weight)
        in_shard = (input_ids >= self.vocab_start) & (input_ids < self.vocab_end)
        local_ids = torch.where(in_shard, input_ids - self.vocab_start, 0)
        embedded = F.embedding(local_ids, self.weight) * in_shard.unsqueeze(-1)
        return all_reduce(embedded)  # each token's row lives on exactly one rank


class ParallelLMHead(VocabParallelEmbedding):
    """Projects hidden states to vocabulary logits; may share its weight with the embedding."""

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        logits = F.linear(hidden, self.weight)
        if self.tp_size > 1:
            logits = all_gather(logits, self.tp_size)
        return logits[..., : self.num_embeddings]
