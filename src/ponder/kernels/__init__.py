"""Attention kernels: torch reference ops, Triton versions with the same signatures, a dispatch."""

from ponder.kernels.attention_metadata import AttentionMetadata
from ponder.kernels.dispatch import paged_attention, store_kv

__all__ = ["AttentionMetadata", "paged_attention", "store_kv"]
