"""Seven named events with no-op defaults. Callbacks observe; they stop training only through
`state.stop_reason`, never by raising (a real Ctrl-C must stay distinguishable).

A duck-typed callback (not a `Callback` subclass) needs only the events it defines: `fire` skips the
others, so a callback written for the six events before `on_before_step` existed keeps working."""

from __future__ import annotations

EVENTS = ("on_fit_start", "on_epoch_start", "on_before_step", "on_step_end", "on_epoch_end", "on_checkpoint",
          "on_fit_end")


class Callback:
    def on_fit_start(self, state) -> None: ...
    def on_epoch_start(self, state) -> None: ...

    def on_before_step(self, state, model, grad_norm: float) -> None:
        """After backward and clipping, before the optimizer update of step `state.step + 1`: the gradients
        are on the parameters of `model` (the unwrapped module under DDP), already clipped; `grad_norm` is
        their pre-clip global norm (a float already on the host). Only fires for a step that will be taken
        (not after a non-finite loss or gradient norm). Reading gradients here costs a device sync per
        call: do it on the steps you need only (`rnnkit.training.probes.Probe` does, every N steps)."""

    def on_step_end(self, state, record: dict) -> None: ...
    def on_epoch_end(self, state, record: dict) -> None: ...
    def on_checkpoint(self, state, path) -> None: ...
    def on_fit_end(self, state, summary: dict) -> None: ...


def show_training_loop() -> str:
    """The loop's events in the order they fire, for users writing callbacks."""
    return "\n".join([
        "on_fit_start",
        "for each epoch:",
        "    on_epoch_start",
        "    for each batch: forward, masked loss, backward, (every `accumulate` batches:) unscale, clip,",
        "                    non-finite check -> on_before_step (gradients still there) -> step, schedule",
        "                    -> on_step_end; mid-epoch checkpoint every `checkpoint_every` steps",
        "    evaluate on val, plateau decay, early stopping -> on_epoch_end",
        "    checkpoint (best pointer on improvement) -> on_checkpoint",
        "restore best weights, evaluate train/val/test -> on_fit_end",
    ])


def fire(callbacks, event: str, *args) -> None:
    for cb in callbacks:
        handler = getattr(cb, event, None)
        if handler is not None:
            handler(*args)
