"""A long sequence laid out for truncated backprop through time (TBPTT): contiguous streams cut into chunks.

The classic layout: the P trainable positions of one long sequence are cut into B equal, contiguous
streams (B = the batch size; the last P mod B positions are left out and counted), stream b holding
positions [b * T, (b + 1) * T) with T = P // B. Each stream is cut into chunks of k steps (the last chunk
of every stream is the remainder, T mod k, when it is not 0). Batch j holds chunk j of every stream, row b
always stream b, so a row's recurrent state after batch j is where batch j + 1 of that row begins: the
training loop carries it (`rnnkit.training.tbptt.CarriedState`), detached between chunks.

Invariants (tests/tasks/test_forecast_tbptt.py checks them through the forecasting family):

1. Example `j * B + b` of `chunk_examples` is chunk j of stream b; `StreamSampler` yields, for every epoch,
   the batches [j * B + b for b in range(B)] for j = 0 .. chunks - 1, in that order (no shuffling: the order
   *is* the sequence). Every position of the B streams is in exactly one batch of every epoch.
2. Chunk 0 of every epoch starts each stream from a zero state (`Example.extra["chunk"] == 0`).
3. The sampler is stateless about progress, like `BucketBatchSampler`: `set_epoch(epoch, start=k)` resumes
   after k batches, and the batch list depends on nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from rnnkit.data.collate import Batch, Example, SequenceDataset, collate


@dataclass(frozen=True)
class StreamLayout:
    """Where the streams and chunks fall in a sequence of trainable positions.

    Attributes:
        first: the first position used (an index into the sequence).
        streams: B, rows of every batch.
        stream_length: T, positions per stream.
        chunk_steps: k, steps per chunk (the last chunk of each stream may be shorter).
        left_out: trainable positions after the last stream (P mod B).
    """

    first: int
    streams: int
    stream_length: int
    chunk_steps: int
    left_out: int

    @property
    def chunks(self) -> int:
        """Chunks per stream, the batches of one pass."""
        return -(-self.stream_length // self.chunk_steps)

    def span(self, stream: int, chunk: int) -> tuple[int, int]:
        """(start, stop) positions of `chunk` of `stream`."""
        start = self.first + stream * self.stream_length + chunk * self.chunk_steps
        return start, min(start + self.chunk_steps, self.first + (stream + 1) * self.stream_length)

    def describe(self) -> dict:
        return {"streams": self.streams, "stream_length": self.stream_length, "chunk_steps": self.chunk_steps,
                "chunks_per_pass": self.chunks, "positions": self.streams * self.stream_length,
                "left_out_positions": self.left_out, "first_position": self.first}


def lay_out(first: int, stop: int, *, streams: int, chunk_steps: int) -> StreamLayout:
    """The layout of positions [first, stop) as `streams` streams in chunks of `chunk_steps` (a chunk longer
    than a stream becomes one chunk per stream: full backprop through each stream).

    Raises:
        ValueError: fewer positions than streams (each stream needs at least one step), or a size below 1.
    """
    if streams < 1 or chunk_steps < 1:
        raise ValueError(f"streams and chunk_steps must be >= 1, got {streams} and {chunk_steps}")
    positions = stop - first
    if positions < streams:
        raise ValueError(f"{max(positions, 0)} trainable positions cannot make {streams} streams")
    length = positions // streams
    return StreamLayout(first=first, streams=streams, stream_length=length, chunk_steps=min(chunk_steps, length),
                        left_out=positions - length * streams)


def chunk_examples(layout: StreamLayout, inputs: torch.Tensor, targets: torch.Tensor, *, name: str,
                   extra: dict[str, torch.Tensor] | None = None) -> list[Example]:
    """The examples of every (chunk, stream), chunk-major (invariant 1).

    Args:
        layout: from `lay_out`.
        inputs: (N, C) the whole sequence's input steps.
        targets: (N, ...) what each position is trained to predict.
        name: the id prefix (a file name): ids read "NAME:stream S:steps A-B" (positions, 0-based, B excluded).
        extra: more per-position tensors (N, ...), cut the same way into `Example.extra`.
    """
    out = []
    for j in range(layout.chunks):
        for b in range(layout.streams):
            a, z = layout.span(b, j)
            ex = {"chunk": j, "stream": b}
            ex.update({k: v[a:z] for k, v in (extra or {}).items()})
            out.append(Example(id=f"{name}:stream {b}:steps {a}-{z}", inputs=inputs[a:z], target=targets[a:z],
                               extra=ex))
    return out


def collate_chunks(examples: list[Example]) -> Batch:
    """One chunk of every stream: `collate`, plus extra["chunk"] (int, the chunk's index; 0 starts the streams
    afresh) and every other per-position tensor of the examples stacked (B, T, ...)."""
    chunks = {int(ex.extra["chunk"]) for ex in examples}
    if len(chunks) != 1:
        raise ValueError(f"a TBPTT batch holds one chunk of every stream, got chunks {sorted(chunks)}")
    batch = collate(examples)
    batch.extra["chunk"] = chunks.pop()
    for key, value in examples[0].extra.items():
        if isinstance(value, torch.Tensor):
            batch.extra[key] = torch.stack([ex.extra[key] for ex in examples])
    return batch


class StreamSampler(torch.utils.data.Sampler[list[int]]):
    """The batches of `chunk_examples` in sequence order, resumable (see the module's invariants).

    The protocol of `BucketBatchSampler` that the training loop and its set-up use: `set_epoch(epoch,
    start)`, iteration, `len`, `epoch_batches`, `batch_arrays`, `first_batch`, `state_dict`, `batch_size`.
    """

    def __init__(self, layout: StreamLayout):
        self.layout = layout
        self.batch_size = layout.streams
        self.num_replicas, self.rank = 1, 0
        self.epoch, self.start = 0, 0

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        b = self.layout.streams
        return [[j * b + s for s in range(b)] for j in range(self.layout.chunks)]

    def batch_arrays(self, epoch: int) -> list[np.ndarray]:
        """`epoch_batches(epoch)` as int64 arrays."""
        return [np.asarray(b, dtype=np.int64) for b in self.epoch_batches(epoch)]

    def first_batch(self) -> list[int]:
        """Step 1's batch (the first of epoch 0)."""
        return self.epoch_batches(0)[0]

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        if not 0 <= start <= len(self):
            raise ValueError(f"start must be in [0, {len(self)}], got {start}")
        self.epoch, self.start = epoch, start

    @property
    def remaining(self) -> int:
        return len(self) - self.start

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.epoch_batches(self.epoch)[self.start:])

    def __len__(self) -> int:
        return self.layout.chunks

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "start": self.start, "num_replicas": 1, "layout": self.layout.describe()}


@dataclass
class StreamPlan:
    """What a family hands the training set-up to train by TBPTT instead of on its windows
    (`PreparedData.streams`).

    Attributes:
        layout: the streams and chunks.
        dataset: `chunk_examples` of the training span.
        forward: (model, batch, state) -> (outputs, new state): the family's forward over one chunk from the
            carried state (None at chunk 0), returning the encoder state after the chunk.
        loss: (outputs, batch) -> (mean, count), over every position of the chunk.
        collate: examples -> Batch (`collate_chunks`, or the family's own).
        info: what summary.json and the start line say (chunk, streams, what each position is trained on).
    """

    layout: StreamLayout
    dataset: SequenceDataset
    forward: Callable
    loss: Callable
    collate: Callable = collate_chunks
    info: dict = field(default_factory=dict)

    def sampler(self) -> StreamSampler:
        return StreamSampler(self.layout)


__all__ = ["StreamLayout", "StreamPlan", "StreamSampler", "chunk_examples", "collate_chunks", "lay_out"]
