"""Host <-> device copies that never stall the host: pinned staging buffers, events, non_blocking.

A plain `torch.tensor(list, device="cuda")` or `cuda_tensor.tolist()` waits until the GPU has
drained its queue. With asynchronous scheduling the host runs a step ahead of the GPU, so every
copy on the launch path goes through here instead; on CPU these are ordinary copies.
"""

from __future__ import annotations

import numpy as np
import torch


class HostUploader:
    """Packs host arrays into a pinned buffer and sends them to the device in one copy.

    Two buffers take turns: while the copy out of one may still be queued behind the step in
    flight, the host fills the other, so an upload never waits for the GPU."""

    def __init__(self, dtype: torch.dtype, device: torch.device) -> None:
        self.dtype, self.device = dtype, device
        self._buffers: list[torch.Tensor | None] = [None, None]
        self._copied: list[torch.cuda.Event | None] = [None, None]
        self._turn = 0

    def upload(self, arrays: list[np.ndarray], out: torch.Tensor | None = None) -> torch.Tensor:
        """The arrays, flattened and concatenated, on the device (in out[:total] if given)."""
        total = sum(array.size for array in arrays)
        if self.device.type != "cuda":
            packed = torch.from_numpy(np.concatenate([a.ravel() for a in arrays])).to(self.dtype)
            return packed if out is None else out[:total].copy_(packed)
        turn = self._turn
        self._turn = 1 - turn
        copied = self._copied[turn]
        if copied is not None:
            copied.synchronize()  # the copy before last must have left this buffer
        buffer = self._buffers[turn]
        if buffer is None or buffer.numel() < total:
            size = max(total, 2 * (0 if buffer is None else buffer.numel()))
            buffer = self._buffers[turn] = torch.empty(size, dtype=self.dtype, pin_memory=True)
        staged = buffer[:total]
        np.concatenate([a.ravel() for a in arrays], out=staged.numpy(), casting="same_kind")
        destination = torch.empty(total, dtype=self.dtype, device=self.device) if out is None else out
        destination[:total].copy_(staged, non_blocking=True)
        event = self._copied[turn] = torch.cuda.Event()
        event.record()
        return destination[:total]


def to_device(values, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A small host list/array as a device tensor, without waiting for the device's queue."""
    tensor = torch.as_tensor(values, dtype=dtype)
    if device.type != "cuda":
        return tensor
    # The caching host allocator keeps the pinned block alive until the copy has run.
    return tensor.pin_memory().to(device, non_blocking=True)


class HostCopy:
    """Device tensors copied to the host in the background; `get` waits for them only then."""

    def __init__(self, tensors: list[torch.Tensor]) -> None:
        self._event: torch.cuda.Event | None = None
        if tensors and tensors[0].device.type == "cuda":
            # non_blocking device-to-host copies land in pinned memory; the event marks their end.
            self._tensors = [tensor.to("cpu", non_blocking=True) for tensor in tensors]
            self._event = torch.cuda.Event()
            self._event.record()
        else:
            self._tensors = list(tensors)

    def wait(self) -> None:
        if self._event is not None:
            self._event.synchronize()
            self._event = None

    def get(self) -> list[torch.Tensor]:
        self.wait()
        return self._tensors
