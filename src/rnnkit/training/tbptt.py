"""Truncated backprop through time: the recurrent state carried from chunk to chunk, and its checkpoint.

`CarriedState.forward` is what the training loop calls as its task's forward (`fit(..., carried=...)`): each
batch is the next chunk of every stream (`rnnkit.data.streams`), run from the state the previous chunk left,
*detached*, so the backward pass of a step stops at the chunk's first step (the truncation) while the forward
pass sees the whole sequence so far. Chunk 0 (the start of every epoch) starts from zeros.

Contract with the loop and the checkpoint (a resumed CPU run is bit-identical to an uninterrupted one):

1. After the forward of chunk j, `state` holds the state after chunk j, detached: a checkpoint written after
   that step saves it (`tensors()`, written to `carried.safetensors` beside the weights).
2. `load(tensors)` restores it exactly; the next batch (chunk j + 1) continues from it. A checkpoint at an
   epoch end saves the state too, but chunk 0 of the next epoch starts from zeros anyway.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from rnnkit.errors import CheckpointError


class CarriedState:
    """The state between the chunks of truncated BPTT.

    Args:
        forward: (model, batch, state) -> (outputs, new state dict of tensors): one chunk from `state`
            (None: zeros).
        layout: what to check a restored state against: {"streams": B, ...} (`StreamLayout.describe()`).
    """

    def __init__(self, forward: Callable, layout: dict):
        self._forward = forward
        self.layout = dict(layout)
        self.state: dict[str, torch.Tensor] | None = None

    def forward(self, model, batch, step=None):
        """The loop's task forward: run the chunk from the carried state and keep its end state (detached)."""
        state = None if int(batch.extra["chunk"]) == 0 else self.state
        if state is not None:
            device = batch.inputs.device
            state = {k: v.to(device) for k, v in state.items()}
        outputs, new_state = self._forward(model, batch, state)
        self.state = {k: v.detach() for k, v in new_state.items()}  # the truncation: no gradient into the past
        return outputs

    def tensors(self) -> dict[str, torch.Tensor] | None:
        """What a checkpoint saves (None before the first chunk)."""
        return None if self.state is None else dict(self.state)

    def load(self, tensors: dict[str, torch.Tensor] | None, *, mid_epoch: bool, where: str) -> None:
        """Restore the state a checkpoint saved.

        Raises:
            CheckpointError: a checkpoint written mid-epoch without a carried state (the run was not trained by
                truncated BPTT then), or one whose state has another number of streams (data.batch_size changed).
        """
        if not mid_epoch:
            self.state = None  # chunk 0 comes next: zeros
            return
        if tensors is None:
            raise CheckpointError(f"cannot resume from {where} by truncated backprop through time: it was written in "
                                  "the middle of an epoch without a carried recurrent state (trained on windows?). "
                                  "Resume with the settings the run started with, or start a new run.")
        streams = {int(v.shape[1]) for v in tensors.values()}
        if streams != {int(self.layout["streams"])}:
            raise CheckpointError(f"cannot resume from {where}: its carried state holds {sorted(streams)} stream(s) "
                                  f"and this run lays out {self.layout['streams']} (data.batch_size). Resume with "
                                  "the data.batch_size the run started with, or from a checkpoint at an epoch end.")
        self.state = dict(tensors)


__all__ = ["CarriedState"]
