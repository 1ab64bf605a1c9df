"""Attention kernels: torch reference ops (Triton versions share their signatures)."""

from ponder.kernels.attention_metadata import AttentionMetadata
from ponder.kernels.paged_attention import paged_attention, store_kv

__all__ = ["AttentionMetadata", "paged_attention", "store_kv"]
