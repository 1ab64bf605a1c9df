"""Tensor-parallel process groups and shard arithmetic (between layers and kernels)."""
