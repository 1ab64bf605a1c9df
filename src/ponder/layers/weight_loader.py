"""The default weight loader: copy a whole checkpoint tensor into a replicated parameter."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ponder.distributed.sharding import Weight, materialize


def check_shape(expected: tuple[int, ...], loaded: Weight, what: str) -> None:
    if tuple(expected) != tuple(loaded.shape):
        raise ValueError(
            f"{what}: checkpoint tensor shape {tuple(loaded.shape)} does not match the model's "
            f"{tuple(expected)}"
        )


def default_weight_loader(param: nn.Parameter, loaded_weight: Weight, shard_id: object = None) -> None:
    check_shape(param.shape, loaded_weight, "parameter")
    param.data.copy_(materialize(loaded_weight))


WeightLoader = Callable[[nn.Parameter, Weight, object], None]


def weight_loader_of(param: nn.Parameter) -> WeightLoader:
    """The parameter's own sharding-aware loader, or the whole-tensor copy."""
    return getattr(param, "weight_loader", default_weight_loader)
