"""Recurrent sequence encoder: stacked LSTM/GRU layers with exact handling of padding.

Every layer and direction is its own single-layer, single-direction ``nn.LSTM`` / ``nn.GRU``
(``batch_first``), so each one still runs on the fused library kernel (oneDNN on CPU, cuDNN
on CUDA) while the encoder controls what each direction sees:

* The forward direction runs on the padded batch directly. Padding comes after the real
  steps of a sequence, so the outputs at real steps never depend on it.
* The backward direction runs on the batch with every sequence reversed *within its own
  length* (``reverse_padded``); padding then again comes after the real steps, so it never
  enters the backward recurrence either. Its outputs are reversed back afterwards.

Two execution paths give the same numbers (and use the same parameters, so a checkpoint
moves freely between them):

* ``packing="never"`` (the CPU default under ``"auto"``): padded tensors as described above.
  On CPU, ``pack_padded_sequence`` falls off the fused oneDNN kernel and was measured 3x-11x
  slower per real token than bucketed padded batches, so padding plus masks is the default.
* ``packing="always"`` (the CUDA default under ``"auto"``): each direction's input is packed
  with ``pack_padded_sequence(enforce_sorted=False)``; cuDNN runs packed input natively.

Recurrent dropout is DropConnect on ``weight_hh`` (``WeightDropRNN``): the dropped matrix is
handed to the fused module through ``torch.func.functional_call`` for one call, so there is
no Python loop over time steps and no dropped copy is ever stored on the module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

CELLS = ("lstm", "gru")
PACKING_MODES = ("auto", "always", "never")
_GATES = {"lstm": 4, "gru": 3}  # gate blocks stacked in weight_ih / weight_hh (PyTorch order)


def _check_probability(name: str, p: float) -> float:
    """Return ``p`` as a float, or raise ValueError if it is not in [0, 1)."""
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= float(p) < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {p!r}")
    return float(p)


def _check_positive_int(name: str, value: int) -> int:
    """Return ``value`` or raise ValueError if it is not an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def _reverse_index(lengths: Tensor, total_length: int, device: torch.device) -> Tensor:
    """Time indices that reverse each row within its length and keep pads in place.

    Args:
        lengths: (B,) int64, every value in [0, total_length].
        total_length: T, the padded length.
        device: device of the tensor that will be indexed.

    Returns:
        (B, T) int64 tensor ``idx`` with ``idx[b, t] = lengths[b] - 1 - t`` for
        ``t < lengths[b]`` and ``idx[b, t] = t`` otherwise.
    """
    steps = torch.arange(total_length, device=device).unsqueeze(0)  # (1, T)
    lens = lengths.to(device=device, dtype=torch.long).unsqueeze(1)  # (B, 1)
    return torch.where(steps < lens, lens - 1 - steps, steps)  # (B, T)


def _gather_time(x: Tensor, index: Tensor) -> Tensor:
    """``x[b, index[b, t], :]`` for x (B, T, F) and index (B, T)."""
    return x.gather(1, index.unsqueeze(-1).expand_as(x))  # (B, T, F)


def _reverse(x: Tensor, index: Tensor | None) -> Tensor:
    """Reverse every row of (B, T, F) within its length: by `index` (`_reverse_index`), or a flip when None (every
    row fills the batch)."""
    return x.flip(1) if index is None else _gather_time(x, index)


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse every sequence of a padded batch within its own length.

    Position ``t < lengths[b]`` of row ``b`` receives position ``lengths[b] - 1 - t``; pad
    positions (``t >= lengths[b]``) keep their place and their values. Applying the function
    twice gives back ``x``.

    Args:
        x: (B, T, F) padded batch (any dtype).
        lengths: (B,) integer lengths, each in [0, T]; may live on any device.

    Returns:
        (B, T, F) tensor with the same dtype and device as ``x``.

    Raises:
        ValueError: if ``x`` is not 3-D or ``lengths`` does not have shape (B,).
    """
    if x.dim() != 3:
        raise ValueError(f"reverse_padded expects x of shape (B, T, F), got shape {tuple(x.shape)}")
    if lengths.shape != (x.shape[0],):
        raise ValueError(f"reverse_padded expects lengths of shape ({x.shape[0]},), got shape {tuple(lengths.shape)}")
    return _gather_time(x, _reverse_index(lengths, x.shape[1], x.device))


class LockedDropout(nn.Module):
    """Variational ("locked") dropout: one mask per sequence, shared across all time steps.

    Dropping the same features at every step (rather than fresh noise per step) regularises a
    recurrent network without destroying the signal it must carry through time.

    Args:
        p: probability of zeroing a feature, in [0, 1). Kept features are scaled by
            ``1 / (1 - p)`` so the expected value is unchanged.

    Raises:
        ValueError: if ``p`` is not in [0, 1).
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = _check_probability("p", p)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the dropout.

        Args:
            x: (B, T, F) tensor.

        Returns:
            (B, T, F) tensor; ``x`` itself in eval mode or when ``p == 0``.
        """
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(keep).div_(keep)  # (B, 1, F)
        return x * mask  # broadcast over T: the same features are dropped at every step

    def extra_repr(self) -> str:
        return f"p={self.p}"


class WeightDropRNN(nn.Module):
    """DropConnect on the recurrent weights of one fused ``nn.LSTM`` / ``nn.GRU``.

    In training mode with ``p > 0``, each forward call draws one Bernoulli mask over the
    entries of ``weight_hh_l0`` (shared by all time steps and all sequences of the batch) and
    runs the wrapped module with the dropped matrix via ``torch.func.functional_call``. The
    module's own ``forward`` (and therefore its fused kernel and any hooks on it) runs as
    usual; gradients reach the raw ``weight_hh_l0`` parameter; nothing extra is stored, so the
    state_dict only holds ``module.*`` parameters. In eval mode, or with ``p == 0``, the
    module is called unchanged.

    Args:
        module: a single-layer, single-direction, ``batch_first`` ``nn.LSTM`` or ``nn.GRU``.
        p: DropConnect probability for ``weight_hh_l0``, in [0, 1).

    Raises:
        TypeError: if ``module`` is not an ``nn.LSTM`` / ``nn.GRU``.
        ValueError: if the module is multi-layer, bidirectional, not ``batch_first``, uses a
            projection, or ``p`` is outside [0, 1).
    """

    def __init__(self, module: nn.Module, p: float = 0.0) -> None:
        super().__init__()
        if not isinstance(module, nn.LSTM | nn.GRU):
            raise TypeError(f"WeightDropRNN wraps an nn.LSTM or nn.GRU, got {type(module).__name__}")
        if module.num_layers != 1 or module.bidirectional or not module.batch_first:
            raise ValueError(
                "WeightDropRNN needs a single-layer, single-direction, batch_first module, got "
                f"num_layers={module.num_layers}, bidirectional={module.bidirectional}, "
                f"batch_first={module.batch_first}"
            )
        if getattr(module, "proj_size", 0):
            raise ValueError("WeightDropRNN does not support LSTM projections (proj_size > 0)")
        self.module = module
        self.p = _check_probability("recurrent dropout p", p)

    def forward(self, x, hx=None):
        """Run the wrapped module, with ``weight_hh_l0`` dropped in training.

        Args:
            x: (B, T, I) tensor or a ``PackedSequence``.
            hx: optional initial state, as the wrapped module accepts it.

        Returns:
            Whatever the wrapped module returns: ``(output, h_n)`` for GRU,
            ``(output, (h_n, c_n))`` for LSTM.
        """
        if not self.training or self.p == 0.0:
            return self.module(x, hx)
        # Only weight_hh_l0 is swapped for this call; every other parameter is the module's own.
        dropped = F.dropout(self.module.weight_hh_l0, p=self.p, training=True)
        return functional_call(self.module, {"weight_hh_l0": dropped}, (x, hx))

    def extra_repr(self) -> str:
        return f"p={self.p}"


@dataclass
class EncoderOutput:
    """What ``RNNEncoder.forward`` returns.

    Attributes:
        outputs: (B, T, D*H) last layer's outputs; exactly 0 at pad positions. For a
            bidirectional encoder the first H features are the forward direction.
        final: (B, D*H) the forward half of ``outputs`` at each sequence's last real step
            (``lengths - 1``) concatenated with the backward half at step 0 (the backward
            direction's true final state). Without layer_norm/residual on the last layer this
            is exactly the last layer's final hidden state h_n.
        state: the recurrent state after the last step, to continue the sequences from (truncated backprop
            through time): ``{"h": (num_layers, B, H)}``, plus ``"c"`` of that shape for an LSTM; only when
            ``forward`` was asked for it (``carry=True``), else None.
    """

    outputs: Tensor
    final: Tensor
    state: dict[str, Tensor] | None = None


def init_recurrent_(rnn: nn.LSTM | nn.GRU) -> None:
    """Initialise one single-layer LSTM/GRU in place (rnnkit's init contract).

    * ``weight_ih_l0``: Glorot/Xavier uniform over the whole (G*H, I) matrix (fan_out counts
      all G gates, as Keras does), bound ``sqrt(6 / (I + G*H))``.
    * ``weight_hh_l0``: orthogonal, separately for each (H, H) gate block, so every gate's
      recurrence starts norm-preserving.
    * biases 0, except the LSTM forget gate: ``b_ih[H:2H] = 1`` and ``b_hh[H:2H] = 0`` (total
      1), so the cell remembers by default early in training.

    Args:
        rnn: the module to initialise (``nn.LSTM`` gate order i,f,g,o; ``nn.GRU`` r,z,n).
    """
    hidden = rnn.hidden_size
    gates = _GATES["lstm" if isinstance(rnn, nn.LSTM) else "gru"]
    with torch.no_grad():
        nn.init.xavier_uniform_(rnn.weight_ih_l0)
        for k in range(gates):
            nn.init.orthogonal_(rnn.weight_hh_l0[k * hidden : (k + 1) * hidden])  # (H, H) block
        if rnn.bias:
            rnn.bias_ih_l0.zero_()
            rnn.bias_hh_l0.zero_()
            if isinstance(rnn, nn.LSTM):
                rnn.bias_ih_l0[hidden : 2 * hidden].fill_(1.0)


class RNNEncoder(nn.Module):
    """Stacked (bi)directional LSTM/GRU encoder over padded batches.

    Per layer: the layer input goes through locked dropout (``input_dropout`` for the first
    layer, ``dropout`` between layers), each direction's recurrent module (with DropConnect
    ``recurrent_dropout`` on ``weight_hh``) runs, the directions are concatenated, the layer
    input is added when ``residual`` is on and sizes match, LayerNorm over features is applied
    when ``layer_norm`` is on, and pad positions are set to exactly 0 so nothing leaks into
    the next layer or the pooling.

    Args:
        input_size: I, features per step of the input.
        hidden_size: H, hidden units per direction.
        num_layers: stacked layers, >= 1.
        cell: ``"lstm"`` or ``"gru"``.
        bidirectional: add a backward direction (D = 2).
        dropout: locked dropout on each layer's input from the second layer on, in [0, 1).
        input_dropout: locked dropout on the encoder input, in [0, 1).
        recurrent_dropout: DropConnect probability on every ``weight_hh``, in [0, 1).
        layer_norm: LayerNorm(D*H) after every layer.
        residual: add the layer input to the layer output; skipped for any layer whose input
            size differs from D*H (normally only the first layer).
        packing: ``"auto"`` (pack on CUDA, padded on CPU), ``"always"`` or ``"never"``.

    Attributes:
        output_size: D*H, features per step of ``EncoderOutput.outputs``.

    Raises:
        ValueError: on an unknown ``cell`` or ``packing``, a non-positive size or layer count,
            or a dropout probability outside [0, 1).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        num_layers: int = 1,
        cell: str = "lstm",
        bidirectional: bool = False,
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        layer_norm: bool = False,
        residual: bool = False,
        packing: str = "auto",
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {list(CELLS)}, got {cell!r}")
        if packing not in PACKING_MODES:
            raise ValueError(f"packing must be one of {list(PACKING_MODES)}, got {packing!r}")
        self.input_size = _check_positive_int("input_size", input_size)
        self.hidden_size = _check_positive_int("hidden_size", hidden_size)
        self.num_layers = _check_positive_int("num_layers", num_layers)
        self.cell = cell
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if self.bidirectional else 1
        self.output_size = self.num_directions * hidden_size
        self.packing = packing
        self.layer_norm = bool(layer_norm)
        self.residual = bool(residual)

        self.input_dropout = LockedDropout(_check_probability("input_dropout", input_dropout))
        self.dropout = LockedDropout(_check_probability("dropout", dropout))
        recurrent_dropout = _check_probability("recurrent_dropout", recurrent_dropout)

        rnn_class = nn.LSTM if cell == "lstm" else nn.GRU
        self.layers = nn.ModuleList()
        self.norms = nn.ModuleList()
        self._residual_layers: list[bool] = []
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else self.output_size
            directions = nn.ModuleList()
            for _ in range(self.num_directions):
                rnn = rnn_class(layer_in, hidden_size, num_layers=1, batch_first=True)
                init_recurrent_(rnn)
                directions.append(WeightDropRNN(rnn, recurrent_dropout))
            self.layers.append(directions)
            self.norms.append(nn.LayerNorm(self.output_size) if self.layer_norm else nn.Identity())
            self._residual_layers.append(self.residual and layer_in == self.output_size)

    def _use_packing(self, x: Tensor) -> bool:
        if self.packing == "auto":
            return x.is_cuda
        return self.packing == "always"

    @staticmethod
    def _exporting() -> bool:
        """Traced or exported (rnnkit export): no branch on the data's values may enter the graph."""
        return torch.jit.is_tracing() or torch.compiler.is_exporting()

    def _check_inputs(self, x: Tensor, lengths: Tensor, mask: Tensor) -> None:
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"RNNEncoder expects x of shape (B, T, {self.input_size}), got {tuple(x.shape)}")
        batch, steps = x.shape[0], x.shape[1]
        if lengths.shape != (batch,):
            raise ValueError(f"lengths must have shape ({batch},), got {tuple(lengths.shape)}")
        if mask.shape != (batch, steps) or mask.dtype != torch.bool:
            raise ValueError(
                f"mask must be a bool tensor of shape ({batch}, {steps}), got {mask.dtype} of shape {tuple(mask.shape)}"
            )
        if batch == 0:
            raise ValueError("RNNEncoder got an empty batch (B = 0)")
        if self._exporting():
            return  # an exported graph (rnnkit export) cannot hold data-dependent checks; the runtime gets real masks
        # lengths are CPU int64 by contract, so these checks do not synchronise a GPU.
        low, high = int(lengths.min()), int(lengths.max())
        if low < 1 or high > steps:
            raise ValueError(
                f"every length must be in [1, T={steps}], got min {low} and max {high}; "
                "empty sequences cannot be encoded"
            )

    def _run_padded(self, rnn: WeightDropRNN, x: Tensor) -> Tensor:
        out, _ = rnn(x)
        return out  # (B, T, H)

    def _check_state(self, state: dict[str, Tensor], batch: int) -> None:
        keys = {"h", "c"} if self.cell == "lstm" else {"h"}
        shape = (self.num_layers, batch, self.hidden_size)
        if set(state) != keys or any(tuple(v.shape) != shape for v in state.values()):
            got = {k: tuple(v.shape) for k, v in state.items()}
            raise ValueError(f"the carried state of this {self.cell} encoder is {sorted(keys)} each of shape {shape}, "
                             f"got {got}")

    def _run_packed(self, rnn: WeightDropRNN, x: Tensor, lengths: Tensor) -> Tensor:
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])  # (B, T, H)
        return out

    def forward(self, x: Tensor, lengths: Tensor, mask: Tensor, state: dict[str, Tensor] | None = None,
                carry: bool = False) -> EncoderOutput:
        """Encode a padded batch.

        Args:
            x: (B, T, I) float input; values at pad positions are ignored (may be garbage,
                even NaN).
            lengths: (B,) int64 on CPU, each in [1, T].
            mask: (B, T) bool, True at real steps (``t < lengths[b]``).
            state: the state to start from (``EncoderOutput.state`` of the previous chunk of the same
                sequences); None starts from zeros.
            carry: return the state after step T in ``EncoderOutput.state``.
                With either, the encoder must be unidirectional and every row must fill the batch (no pads).

        Returns:
            EncoderOutput with ``outputs`` (B, T, D*H), zero at pads, and ``final`` (B, D*H).

        Raises:
            ValueError: if shapes or dtypes of the arguments do not match, or a length is
                outside [1, T]; a state or carry with a bidirectional encoder, a state of the wrong
                shape, or carry over a batch with padded rows.
        """
        self._check_inputs(x, lengths, mask)
        if state is not None or carry:
            if self.bidirectional:
                raise ValueError("a carried state continues a sequence forward in time; a bidirectional encoder has "
                                 "none (its backward direction reads the future)")
            if not self._exporting() and not bool((lengths == x.shape[1]).all()):
                raise ValueError("a carried state needs every row to fill the batch (chunks of equal-length "
                                 "streams): the state after step T of a padded row would have run over its pads")
        if state is not None:
            self._check_state(state, x.shape[0])
        if state is not None or carry:
            return self._forward_carried(x, state, carry)
        pad = ~mask.unsqueeze(-1)  # (B, T, 1), True at pad positions
        packed = self._use_packing(x)
        hidden = self.hidden_size
        # Reverse indices are the same for every layer: build them once. A batch whose rows all fill it (equal-length
        # data, or a tight bucket) reverses with a flip, whose backward is a flip too (a gather's is a scatter-add).
        rev_index = None
        full = not self._exporting() and bool((lengths == x.shape[1]).all())  # an exported graph takes any lengths
        if self.bidirectional and not full:
            rev_index = _reverse_index(lengths, x.shape[1], x.device)

        # masked_fill rather than multiply: garbage such as NaN/inf at pads must not survive
        # (NaN * 0 is NaN), and clean zeros keep residual sums and LayerNorm finite.
        h = x.masked_fill(pad, 0.0)  # (B, T, I)
        for layer, (directions, norm) in enumerate(zip(self.layers, self.norms, strict=True)):
            layer_input = h
            h = self.input_dropout(h) if layer == 0 else self.dropout(h)
            outs = []
            for direction, rnn in enumerate(directions):
                inp = h if direction == 0 else _reverse(h, rev_index)  # (B, T, F_in)
                if packed:
                    out = self._run_packed(rnn, inp, lengths)  # (B, T, H)
                else:
                    out = self._run_padded(rnn, inp)  # (B, T, H)
                if direction == 1:
                    out = _reverse(out, rev_index)  # (B, T, H) back to forward time order
                outs.append(out)
            out = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)  # (B, T, D*H)
            if self._residual_layers[layer]:
                out = out + layer_input
            out = norm(out)
            h = out.masked_fill(pad, 0.0)  # (B, T, D*H)

        batch = torch.arange(x.shape[0], device=x.device)
        last = (lengths.to(x.device) - 1).long()
        final = h[batch, last, :hidden]  # (B, H) forward direction at the last real step
        if self.bidirectional:
            final = torch.cat([final, h[:, 0, hidden:]], dim=-1)  # (B, 2H)
        return EncoderOutput(outputs=h, final=final)

    def _forward_carried(self, x: Tensor, state: dict[str, Tensor] | None, carry: bool) -> EncoderOutput:
        """``forward`` for full rows (no pads) of a unidirectional encoder, from ``state`` and keeping the new
        one: each layer's module starts from its slice of the state. The padded path's steps otherwise (the same
        dropout, residual and norm), so a sequence cut into chunks gives the outputs of the whole sequence."""
        h = x
        last: dict[str, list[Tensor]] = {"h": [], "c": []}
        for layer, ((rnn,), norm) in enumerate(zip(self.layers, self.norms, strict=True)):
            layer_input = h
            h = self.input_dropout(h) if layer == 0 else self.dropout(h)
            hx = None
            if state is not None:
                h0 = state["h"][layer : layer + 1].contiguous()  # (1, B, H)
                hx = (h0, state["c"][layer : layer + 1].contiguous()) if self.cell == "lstm" else h0
            out, hn = rnn(h, hx)  # (B, T, H); hn (1, B, H) or a pair of them
            if self.cell == "lstm":
                last["h"].append(hn[0])
                last["c"].append(hn[1])
            else:
                last["h"].append(hn)
            if self._residual_layers[layer]:
                out = out + layer_input
            h = norm(out)  # (B, T, H)
        new_state = {k: torch.cat(v, dim=0) for k, v in last.items() if v} if carry else None  # (layers, B, H)
        return EncoderOutput(outputs=h, final=h[:, -1], state=new_state)

    def extra_repr(self) -> str:
        return (
            f"cell={self.cell!r}, bidirectional={self.bidirectional}, packing={self.packing!r}, "
            f"layer_norm={self.layer_norm}, residual={self._residual_layers}"
        )


__all__ = [
    "CELLS",
    "PACKING_MODES",
    "EncoderOutput",
    "LockedDropout",
    "RNNEncoder",
    "WeightDropRNN",
    "init_recurrent_",
    "reverse_padded",
]
