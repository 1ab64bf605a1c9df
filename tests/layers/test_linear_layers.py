"""Tensor-parallel linear layers: each rank's weight_loader takes exactly its shard."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ponder.layers.linear import (
    ColumnParallelLinear,
    MergedColumnParallelLinear,
    QKVParallelLinear,
    RowParallelLinear,
)


def load(layer, name, tensor, shard_id=None):
    param = getattr(layer, name)
    param.weight_loader(param, tensor, shard_id)


@pytest.mark.parametrize("tp_size", [1, 2])
def test_column_parallel_outputs_concatenate_to_the_full_layer(tp_size):
    weight, bias, x = torch.randn(6, 5), torch.randn(6), torch.randn(3, 5)
    outputs = []
    for rank in range(tp_size):
        layer = ColumnParallelLinear(5, 6, bias=True, tp_rank=rank, tp_size=tp_size)
        load(layer, "weight", weight)
        load(layer, "bias", bias)
        outputs.append(layer(x))
    torch.testing.assert_close(torch.cat(outputs, dim=-1), F.linear(x, weight, bias))


@pytest.mark.parametrize("tp_size", [1, 2])
def test_row_parallel_rank_weights_split_the_input_features(tp_size):
    weight, bias, x = torch.randn(4, 6), torch.randn(4), torch.randn(3, 6)
    partial_sums = torch.zeros(3, 4)
    for rank in range(tp_size):
        layer = RowParallelLinear(6, 4, bias=True, tp_rank=rank, tp_size=tp_size)
        load(layer, "weight", weight)
        load(layer, "bias", bias)
        cols = slice(rank * 6 // tp_size, (rank + 1) * 6 // tp_size)
        # forward() would all-reduce; here the sum of each rank's local product stands in for it.
        partial_sums += F.linear(x[:, cols], layer.weight, layer.bias if rank == 0 else None)
    torch.testing.assert_close(partial_sums, F.linear(x, weight, bias))


def test_row_parallel_single_rank_forward():
    layer = RowParallelLinear(6, 4, bias=True)
    weight, bias, x = torch.randn(4, 6), torch.randn(4), torch.randn(2, 6)
    load(layer, "weight", weight)
    load(layer, "bias", bias)
    torch.testing.assert_close(layer(x), F.linear(x, weight, bias))


@pytest.mark.parametrize("tp_size", [1, 2])
def test_merged_column_parallel_stacks_gate_and_up(tp_size):
    gate, up, x = torch.randn(8, 5), torch.randn(8, 5), torch.randn(2, 5)
    for rank in range(tp_size):
        layer = MergedColumnParallelLinear(5, [8, 8], tp_rank=rank, tp_size=tp_size)
        load(layer, "weight", up, 1)
        load(layer, "weight", gate, 0)
        rows = slice(rank * 8 // tp_size, (rank + 1) * 8 // tp_size)
        expected = torch.cat([F.linear(x, gate[rows]), F.linear(x, up[rows])], dim=-1)
        torch.testing.assert_close(layer(x), expected)


@pytest.mark.parametrize(("tp_size", "num_kv_heads"), [(1, 2), (2, 2), (2, 1), (4, 2)])
def test_qkv_parallel_takes_this_ranks_heads(tp_size, num_kv_heads):
    head_dim, num_heads, hidden = 3, 4, 5
    q_w = torch.randn(num_heads * head_dim, hidden)
    k_w, v_w = torch.randn(2, num_kv_heads * head_dim, hidden)
    q_b = torch.randn(num_heads * head_dim)
    k_b, v_b = torch.randn(2, num_kv_heads * head_dim)
    x = torch.randn(2, hidden)
    for rank in range(tp_size):
        layer = QKVParallelLinear(
            hidden, head_dim, num_heads, num_kv_heads, bias=True, tp_rank=rank, tp_size=tp_size
        )
        for shard, weight, bias in (("q", q_w, q_b), ("k", k_w, k_b), ("v", v_w, v_b)):
            load(layer, "weight", weight, shard)
            load(layer, "bias", bias, shard)
        q_heads = num_heads // tp_size
        q_rows = slice(rank * q_heads * head_dim, (rank + 1) * q_heads * head_dim)
        kv_head = rank * num_kv_heads // tp_size  # first KV head this rank serves
        kv_rows = slice(kv_head * head_dim, (kv_head + layer.num_kv_heads) * head_dim)
        expected = torch.cat(
            [
                F.linear(x, q_w[q_rows], q_b[q_rows]),
                F.linear(x, k_w[kv_rows], k_b[kv_rows]),
                F.linear(x, v_w[kv_rows], v_b[kv_rows]),
            ],
            dim=-1,
        )
        torch.testing.assert_close(layer(x), expected)


def test_loader_rejects_a_checkpoint_tensor_of_the_wrong_shape():
    layer = QKVParallelLinear(5, 3, 4, 2)
    with pytest.raises(ValueError, match=r"k projection.*\(7, 5\)"):
        load(layer, "weight", torch.randn(7, 5), "k")
    with pytest.raises(ValueError, match="column-parallel"):
        load(ColumnParallelLinear(5, 6), "weight", torch.randn(6, 4))
    with pytest.raises(ValueError, match="shard_id"):
        load(layer, "weight", torch.randn(6, 5), "x")


def test_uneven_split_is_refused_with_the_sizes():
    with pytest.raises(ValueError, match=r"\(6\) is not divisible by tensor parallel size 4"):
        ColumnParallelLinear(5, 6, tp_size=4)
