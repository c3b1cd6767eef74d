"""Sliding windows over a batch of documents, and their combination back into one output per document.

A document of T real steps is read in windows of L steps every S steps (S <= L): window w starts at step
w * S, the first at 0 and the last the first one that reaches the document's end, so a document has
``1 + ceil(max(0, T - L) / S)`` windows, the last one possibly shorter than L (the same arithmetic as
``rnnkit.data.longseq.Windows``, which the data path uses to cap and report them).

`window_layout` lists the windows of a padded batch from its lengths alone; `cut_windows` gathers them into
a padded batch of windows (N, L') with their own lengths and mask; `to_grid` puts one vector per window back
into a (B, W, F) grid with a window mask (W: the most windows of a document in the batch). Only real windows
are cut and encoded: a padded window never reaches the encoder, and in the grid it is masked, so neither it
nor the pad steps inside a document's last window change any document's output (a document gives the same
output alone and in a batch of longer ones).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.models.encoder import RNNEncoder
from rnnkit.models.heads import AttentionPooling, masked_mean

WINDOW_COMBINES = ("mean", "attention", "rnn")


def window_layout(lengths: Tensor, length: int, stride: int) -> tuple[Tensor, Tensor, Tensor]:
    """The windows of a batch of documents, document by document, in order.

    Args:
        lengths: (B,) int64 document lengths, each >= 1 (on CPU, as a Batch's lengths are).
        length: L, steps per window, >= 1.
        stride: S, steps between window starts, in [1, L].

    Returns:
        ``(doc, start, size)``, each (N,) int64 on the device of `lengths`, N = the windows of all documents:
        the document of each window, its first step and its real steps (``min(L, T - start)``).
    """
    counts = 1 + torch.div((lengths - length).clamp(min=0) + stride - 1, stride, rounding_mode="floor")  # (B,)
    doc = torch.repeat_interleave(torch.arange(len(lengths), device=lengths.device), counts)  # (N,)
    first = torch.cumsum(counts, 0) - counts  # (B,) index of each document's first window
    start = (torch.arange(len(doc), device=lengths.device) - first[doc]) * stride  # (N,)
    size = torch.minimum(lengths[doc] - start, torch.full_like(start, length))  # (N,)
    return doc, start, size


def cut_windows(inputs: Tensor, doc: Tensor, start: Tensor, size: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Gather the windows of `window_layout` out of a padded batch.

    Args:
        inputs: (B, T) token ids or (B, T, F) features.
        doc, start, size: (N,) from `window_layout` (any device; `size` is also returned on CPU).

    Returns:
        ``(windows, lengths, mask)``: windows (N, L') or (N, L', F) with L' = the longest window, pads filled
        with whatever the document holds there (the mask marks them); lengths (N,) int64 on CPU; mask (N, L')
        bool on the device of `inputs`, True at real steps.
    """
    device = inputs.device
    steps = int(size.max())
    offsets = torch.arange(steps, device=device)  # (L',)
    mask = offsets.unsqueeze(0) < size.to(device).unsqueeze(1)  # (N, L')
    # pads of a short last window read step start (a real step): an index past T would be out of range
    index = start.to(device).unsqueeze(1) + offsets.unsqueeze(0).masked_fill(~mask, 0)  # (N, L')
    windows = inputs[doc.to(device).unsqueeze(1), index]  # (N, L') or (N, L', F)
    return windows, size.cpu(), mask


def to_grid(values: Tensor, doc: Tensor, batch: int) -> tuple[Tensor, Tensor]:
    """One row per window -> one row of windows per document.

    Args:
        values: (N, F) one vector per window, in `window_layout` order.
        doc: (N,) the document of each window.
        batch: B, the documents.

    Returns:
        ``(grid, mask)``: grid (B, W, F), 0 at padded windows; mask (B, W) bool, True at real windows.
    """
    doc = doc.to(values.device)
    counts = torch.bincount(doc, minlength=batch)  # (B,)
    first = torch.cumsum(counts, 0) - counts  # (B,)
    slot = torch.arange(len(doc), device=values.device) - first[doc]  # (N,) the window's place in its document
    grid = values.new_zeros(batch, int(counts.max()), values.shape[-1])  # (B, W, F)
    grid[doc, slot] = values
    mask = torch.arange(grid.shape[1], device=values.device).unsqueeze(0) < counts.unsqueeze(1)  # (B, W)
    return grid, mask


class WindowCombiner(nn.Module):
    """Combine the windows of each document into one output.

    * ``"mean"``: each window's vector goes through the output layer; the document's logits are the mean of its
      windows' logits (no parameters of its own).
    * ``"attention"``: additive attention (``AttentionPooling``) over the document's window vectors, masked to
      its real windows; the pooled vector goes through the output layer.
    * ``"rnn"`` (the hierarchical encoder): a one-layer bidirectional document-level ``RNNEncoder`` reads the
      document's window (block) vectors in order, masked to its real windows (its lengths are the window
      counts), and its final state (forward at the last real window, backward at the first) goes through the
      output layer. Its hidden size is F / 2 per direction, so the output layer keeps its width F (F odd: one
      direction of F). Padded windows hold 0 and are masked, so a document's output does not depend on the
      longer documents beside it; the document-level encoder takes `cell` and `packing` as the word level does
      (packed on CUDA, padded on CPU: the same outputs on the valid positions).

    Args:
        input_size: F, the width of a window vector.
        combine: "mean", "attention" or "rnn".
        cell: "lstm" or "gru", for "rnn".
        packing: the document-level encoder's packing (``RNNEncoder``), for "rnn".

    Raises:
        ValueError: an unknown `combine`.
    """

    def __init__(self, input_size: int, combine: str = "mean", *, cell: str = "lstm", packing: str = "auto") -> None:
        super().__init__()
        if combine not in WINDOW_COMBINES:
            raise ValueError(f"window combine must be one of {list(WINDOW_COMBINES)}, got {combine!r}")
        self.combine = combine
        self.attention = AttentionPooling(input_size) if combine == "attention" else None
        self.document: RNNEncoder | None = None
        if combine == "rnn":
            both = input_size % 2 == 0
            self.document = RNNEncoder(input_size, input_size // 2 if both else input_size, num_layers=1, cell=cell,
                                       bidirectional=both, packing=packing)

    def forward(self, vectors: Tensor, doc: Tensor, batch: int, output: nn.Module) -> Tensor:
        """Args:
            vectors: (N, F) window vectors in `window_layout` order.
            doc: (N,) the document of each window.
            batch: B, the documents.
            output: maps (M, F) vectors to (M, K) logits (the classification head's dropout and output layer).

        Returns:
            (B, K) logits, one row per document.
        """
        if self.combine == "mean":
            grid, mask = to_grid(output(vectors), doc, batch)  # (B, W, K), (B, W)
            return masked_mean(grid, mask)  # (B, K)
        grid, mask = to_grid(vectors, doc, batch)  # (B, W, F), (B, W)
        if self.document is not None:
            counts = mask.sum(1).cpu()  # (B,) windows per document, each >= 1
            return output(self.document(grid, counts, mask).final)  # (B, F) -> (B, K)
        pooled, _ = self.attention(grid, mask)  # (B, F)
        return output(pooled)

    def extra_repr(self) -> str:
        return f"combine={self.combine!r}"


__all__ = ["WINDOW_COMBINES", "WindowCombiner", "cut_windows", "to_grid", "window_layout"]
