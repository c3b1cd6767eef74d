"""Six named events with no-op defaults. Callbacks observe; they stop training only through
`state.stop_reason`, never by raising (a real Ctrl-C must stay distinguishable)."""

from __future__ import annotations

EVENTS = ("on_fit_start", "on_epoch_start", "on_step_end", "on_epoch_end", "on_checkpoint", "on_fit_end")


class Callback:
    def on_fit_start(self, state) -> None: ...
    def on_epoch_start(self, state) -> None: ...
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
        "    for each batch: forward, masked loss, backward, (every `accumulate` batches:) unscale, clip, step,",
        "                    schedule -> on_step_end; mid-epoch checkpoint every `checkpoint_every` steps",
        "    evaluate on val, plateau decay, early stopping -> on_epoch_end",
        "    checkpoint (best pointer on improvement) -> on_checkpoint",
        "restore best weights, evaluate train/val/test -> on_fit_end",
    ])


def fire(callbacks, event: str, *args) -> None:
    for cb in callbacks:
        getattr(cb, event)(*args)
