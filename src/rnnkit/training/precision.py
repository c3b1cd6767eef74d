"""Device and precision: bf16 autocast (or fp16 + GradScaler) on CUDA, fp32 on CPU.

On the CPUs this project measured, bf16 matmul ran ~100x slower than fp32 and bf16 autocast
around nn.LSTM failed or crawled, so `auto` keeps fp32 on CPU; an explicit bf16/fp16 request on
CPU is honoured with a warning.
"""

from __future__ import annotations

import contextlib
import warnings

import torch

from rnnkit.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name!r} but CUDA is not available here; use --set train.device=cpu.")
    return dev


class Precision:
    """Autocast context, loss scaling and the optimizer step for one precision."""

    def __init__(self, name: str, device: torch.device):
        self.name = name
        self.device = device
        self.dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[name]
        self.scaler = torch.amp.GradScaler(device.type) if name == "fp16" else None
        # With a GradScaler, inf/NaN gradients are expected now and then: the scaler skips the step.
        self.skips_nonfinite = self.scaler is not None

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def unscale(self, optimizer) -> None:
        if self.scaler:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer) -> None:
        if self.scaler:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()

    def state_dict(self):
        return self.scaler.state_dict() if self.scaler else None

    def load_state_dict(self, state) -> None:
        if self.scaler and state:
            self.scaler.load_state_dict(state)


def resolve_precision(name: str, device: torch.device) -> Precision:
    if name == "auto":
        if device.type == "cuda":
            name = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            name = "fp32"
    elif name != "fp32" and device.type == "cpu":
        warnings.warn(f"precision {name} on CPU: measured here ~100x slower than fp32 for matmuls; "
                      "use fp32 unless you measured otherwise", stacklevel=2)
    return Precision(name, device)
