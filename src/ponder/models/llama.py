"""One decoder for the Llama family: Llama, Qwen2 and Qwen3 differ only by biases and q/k norm."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from ponder.distributed.sharding import Weight
from ponder.errors import ModelLoadError
from ponder.layers.activation import SiluAndMul
from ponder.layers.attention import Attention
from ponder.layers.embedding import ParallelLMHead, VocabParallelEmbedding
from ponder.layers.linear import (
    MergedColumnParallelLinear,
    QKVParallelLinear,
    RowParallelLinear,
)
from ponder.layers.norm import RMSNorm
from ponder.layers.rotary import RotaryEmbedding
from ponder.layers.weight_loader import weight_loader_of
from ponder.models.hf_config import ArchConfig

# Checkpoint sub-names fused into one of our parameters: hf name part -> (our part, shard id).
PACKED_MODULES: dict[str, tuple[str, str | int]] = {
    "q_proj": ("qkv_proj", "q"),
    "k_proj": ("qkv_proj", "k"),
    "v_proj": ("qkv_proj", "v"),
    "gate_proj": ("gate_up_proj", 0),
    "up_proj": ("gate_up_proj", 1),
}


class DecoderAttention(nn.Module):
    def __init__(self, arch: ArchConfig, rotary: RotaryEmbedding, tp_rank: int, tp_size: int) -> None:
        super().__init__()
        self.head_dim = arch.head_dim
        self.qkv_proj = QKVParallelLinear(
            arch.hidden_size,
            arch.head_dim,
            arch.num_attention_heads,
            arch.num_key_value_heads,
            bias=arch.qkv_bias,
            tp_rank=tp_rank,
            tp_size=tp_size,
        )
        self.num_heads, self.num_kv_heads = self.qkv_proj.num_heads, self.qkv_proj.num_kv_heads
        self.o_proj = RowParallelLinear(
            arch.num_attention_heads * arch.head_dim,
            arch.hidden_size,
            bias=arch.o_proj_bias,
            tp_rank=tp_rank,
            tp_size=tp_size,
        )
        if arch.qk_norm:
            self.q_norm = RMSNorm(arch.head_dim, arch.rms_norm_eps)
            self.k_norm = RMSNorm(arch.head_dim, arch.rms_norm_eps)
        self.rotary = rotary  # one module shared by all layers: one cos/sin table
        self.attn = Attention(self.num_heads, self.num_kv_heads, arch.head_dim, arch.head_dim**-0.5)

    def forward(self, positions: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        qkv = self.qkv_proj(hidden)
        q_size, kv_size = self.num_heads * self.head_dim, self.num_kv_heads * self.head_dim
        q, k, v = qkv.split([q_size, kv_size, kv_size], dim=-1)
        q = q.view(-1, self.num_heads, self.head_dim)
        k = k.view(-1, self.num_kv_heads, self.head_dim)
        v = v.view(-1, self.num_kv_heads, self.head_dim)
        norms = (self.q_norm, self.k_norm) if hasattr(self, "q_norm") else None
        q, k = self.rotary(positions, q, k, norms)  # one fused kernel on GPU
        out = self.attn(q, k, v)
        return self.o_proj(out.reshape(-1, self.num_heads * self.head_dim))


class DecoderMLP(nn.Module):
    def __init__(self, arch: ArchConfig, tp_rank: int, tp_size: int) -> None:
        super().__init__()
        size = arch.intermediate_size
        self.gate_up_proj = MergedColumnParallelLinear(
            arch.hidden_size, [size, size], bias=arch.mlp_bias, tp_rank=tp_rank, tp_size=tp_size
        )
        self.down_proj = RowParallelLinear(
            size, arch.hidden_size, bias=arch.mlp_bias, tp_rank=tp_rank, tp_size=tp_size
        )
        self.act = SiluAndMul()

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act(self.gate_up_proj(hidden)))


class DecoderLayer(nn.Module):
    def __init__(self, arch: ArchConfig, rotary: RotaryEmbedding, tp_rank: int, tp_size: int) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(arch.hidden_size, arch.rms_norm_eps)
        self.self_attn = DecoderAttention(arch, rotary, tp_rank, tp_size)
        self.post_attention_layernorm = RMSNorm(arch.hidden_size, arch.rms_norm_eps)
        self.mlp = DecoderMLP(arch, tp_rank, tp_size)

    def forward(
        self, positions: torch.Tensor, hidden: torch.Tensor, residual: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if residual is None:
            residual, hidden = hidden, self.input_layernorm(hidden)
        else:
            hidden, residual = self.input_layernorm(hidden, residual)
        hidden = self.self_attn(positions, hidden)
        hidden, residual = self.post_attention_layernorm(hidden, residual)
        return self.mlp(hidden), residual


class DecoderModel(nn.Module):
    def __init__(self, arch: ArchConfig, tp_rank: int, tp_size: int) -> None:
        super().__init__()
        self.embed_tokens = VocabParallelEmbedding(arch.vocab_size, arch.hidden_size, tp_rank, tp_size)
        self.rotary = RotaryEmbedding(
            arch.head_dim, arch.max_position_embeddings, arch.rope_theta, arch.rope_scaling
        )
        self.layers = nn.ModuleList(
            DecoderLayer(arch, self.rotary, tp_rank, tp_size) for _ in range(arch.num_hidden_layers)
        )
        self.norm = RMSNorm(arch.hidden_size, arch.rms_norm_eps)

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        hidden, residual = self.embed_tokens(input_ids), None
        for layer in self.layers:
            hidden, residual = layer(positions, hidden, residual)
        hidden, _ = self.norm(hidden, residual)
        return hidden


class DecoderForCausalLM(nn.Module):
    """Causal LM over a flat ragged batch; attention metadata comes from forward_context()."""

    def __init__(self, arch: ArchConfig, tp_rank: int = 0, tp_size: int = 1) -> None:
        super().__init__()
        self.arch = arch
        self.model = DecoderModel(arch, tp_rank, tp_size)
        self.lm_head = ParallelLMHead(arch.vocab_size, arch.hidden_size, tp_rank, tp_size)
        if arch.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """input_ids, positions: int64 [T] -> hidden states [T, hidden_size]."""
        return self.model(input_ids, positions)

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden [N, hidden_size] -> float32 logits [N, vocab_size]."""
        return self.lm_head(hidden).float()

    def bind_kv_cache(self, kv_caches: Sequence[tuple[torch.Tensor | None, torch.Tensor | None]]) -> None:
        """One (k_cache, v_cache) per layer, each [num_blocks, block_size, Hkv_per_rank, D];
        (None, None) per layer unbinds them."""
        if len(kv_caches) != len(self.model.layers):
            raise ValueError(f"got {len(kv_caches)} KV caches for a model of {len(self.model.layers)} layers")
        for layer, (k_cache, v_cache) in zip(self.model.layers, kv_caches, strict=True):
            layer.self_attn.attn.k_cache, layer.self_attn.attn.v_cache = k_cache, v_cache

    def load_weights(self, weights: Iterable[tuple[str, Weight]]) -> None:
        """Load HF-named tensors through each parameter's weight_loader; all must be covered."""
        params = dict(self.named_parameters())
        loaded: set[tuple[str, str | int | None]] = set()
        for hf_name, tensor in weights:
            if "rotary_emb.inv_freq" in hf_name:
                continue  # some older checkpoints saved this recomputable buffer
            if hf_name == "lm_head.weight" and self.arch.tie_word_embeddings:
                continue  # the head is the embedding; loading both would be order-dependent
            name, shard_id = _our_name(hf_name)
            if name not in params:
                raise ModelLoadError(
                    f"checkpoint weight {hf_name!r} has no place in {self.arch.architecture}; "
                    "the checkpoint does not match its config.json"
                )
            param = params[name]
            try:
                weight_loader_of(param)(param, tensor, shard_id)
            except ValueError as error:
                raise ModelLoadError(f"checkpoint weight {hf_name!r}: {error}") from None
            loaded.add((name, shard_id))
        missing = sorted(f"{name}[{shard}]" for name, shard in _expected_shards(params) - loaded)
        if missing:
            raise ModelLoadError(f"checkpoint is missing weights: {', '.join(missing[:8])}")


def _expected_shards(params: Iterable[str]) -> set[tuple[str, str | int | None]]:
    shards_of_fused: dict[str, list[str | int]] = {}
    for fused, shard_id in PACKED_MODULES.values():
        shards_of_fused.setdefault(fused, []).append(shard_id)
    expected: set[tuple[str, str | int | None]] = set()
    for name in params:
        fused = next((part for part in name.split(".") if part in shards_of_fused), None)
        shard_ids: list[str | int | None] = [None] if fused is None else [*shards_of_fused[fused]]
        expected.update((name, shard_id) for shard_id in shard_ids)
    return expected


def _our_name(hf_name: str) -> tuple[str, str | int | None]:
    parts = hf_name.split(".")
    for index, part in enumerate(parts):
        if part in PACKED_MODULES:
            fused, shard_id = PACKED_MODULES[part]
            return ".".join([*parts[:index], fused, *parts[index + 1 :]]), shard_id
    return hf_name, None
