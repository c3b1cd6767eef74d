"""Live probes: what the field guide's "gradients flowing backwards?" asks, measured while the model trains.

Every `every` optimizer steps `Probe` writes one `{"kind": "probe", ...}` record to metrics.jsonl (the doctor's
`rnnkit.doctor.probe_rules` turns them into findings):

* `grad_norm`: the pre-clip gradient norm of each parameter group (`groups`: each layer of the model's main
  `RNNEncoder` is a group, `encoder.layers.0`, ...; every other parameter is grouped by the model's top-level
  child, `embedding`, `head`, ...); `recurrent` lists the encoder's layer groups, first layer first, so the
  ratio of the first to the last says whether gradients vanish on their way down the stack;
* `update_ratio`: ||w_after - w_before|| / ||w_before|| of each group over the probed step (a copy of the
  weights is taken on probed steps only);
* `clipped_share`: the share of the steps since the last probe whose gradient norm was clipped;
* `gate_saturation`: the share of the sigmoid gate activations (LSTM input/forget/output, GRU reset/update)
  of the encoder's first layer (forward direction) below 0.05 or above 0.95 over the real positions of the
  probed step's (first micro-)batch, recomputed from the layer's weights and that batch's layer input
  (without dropout: the gates of the network the weights define);
* `dead_output_share`: the share of the encoder's output units whose value is the same at every real position
  of that batch (a unit stuck at one value carries no information).

The probe changes nothing in training: it draws no random numbers, writes no parameter or gradient, and runs
its forward pass without autograd. On the steps it does not probe it only counts clipped steps from the step
records (already on the host): no device work and no host sync. On a probed step it arms two forward hooks on
the encoder before the step's forward pass (they remove themselves after one call), reads the gradients in
`on_before_step` and the new weights in `on_step_end`, a few host transfers in all.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rnnkit.models.encoder import RNNEncoder
from rnnkit.training.callbacks import Callback

SATURATED = 0.05  # a sigmoid gate below this or above 1 - SATURATED counts as saturated (its gradient < 0.05)
_SATURATED_LOGIT = math.log((1 - SATURATED) / SATURATED)  # |pre-activation| above this: saturated
DEAD_SPREAD = 1e-6  # an output unit whose max - min over the batch's real positions is below this is dead


def main_encoder(model: nn.Module) -> tuple[str, RNNEncoder] | None:
    """(name, module) of the model's largest `RNNEncoder` (a tagger's character encoder is the smaller one),
    or None when the model has none."""
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, RNNEncoder)]
    if not found:
        return None
    return max(found, key=lambda nm: sum(p.numel() for p in nm[1].parameters()))


def parameter_groups(model: nn.Module) -> tuple[dict[str, list[nn.Parameter]], list[str]]:
    """The probe's groups of trainable parameters, in model order, and the names of the recurrent ones (the
    main encoder's layers, first layer first)."""
    enc = main_encoder(model)
    prefix = f"{enc[0]}.layers." if enc and enc[0] else "layers." if enc else None
    groups: dict[str, list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if prefix is not None and name.startswith(prefix):
            key = prefix + name[len(prefix):].split(".", 1)[0]
        else:
            key = name.split(".", 1)[0] if "." in name else name
        groups.setdefault(key, []).append(p)
    recurrent = [f"{prefix}{k}" for k in range(enc[1].num_layers)] if enc else []
    return groups, [r for r in recurrent if r in groups]


class Probe(Callback):
    """The live probe, as a loop callback (`fit(..., probe_every=N)` adds one; it needs `on_before_step`).

    Args:
        model: the model being trained (the unwrapped module under DDP).
        every: optimizer steps between probes (steps every, 2 * every, ...).
        log: where the records go (anything with `write(record)`: a run's `run.log`).
        clip_norm: the loop's clipping threshold (None: off), to give the pre-clip norms of each group.
    """

    def __init__(self, model: nn.Module, every: int, log, clip_norm: float | None = None):
        if every < 1:
            raise ValueError(f"probe every must be >= 1 step, got {every}")
        self.every, self.log, self.clip_norm = every, log, clip_norm
        self._groups, self._recurrent = parameter_groups(model)
        enc = main_encoder(model)
        self._encoder: RNNEncoder | None = enc[1] if enc else None
        self._hook = None
        self._seen: tuple | None = None  # (layer-0 input, mask, encoder outputs) of the probed batch
        self._before: list[list[torch.Tensor]] | None = None
        self._grads: torch.Tensor | None = None
        self._grad_norm = 0.0
        self._steps = 0  # steps since the last probe
        self._clipped = 0  # ...of which clipped

    # ---- the loop's events ----
    def on_fit_start(self, state) -> None:
        self._steps = self._clipped = 0
        if (state.step + 1) % self.every == 0:
            self._arm()

    def on_before_step(self, state, model, grad_norm: float) -> None:
        if (state.step + 1) % self.every != 0 or not math.isfinite(grad_norm):
            return
        self._disarm()
        params = list(self._groups.values())
        # the gradients are clipped by now: clip_grad_norm_ scaled all of them by clip / (norm + 1e-6); undo it
        scale = 1.0
        if self.clip_norm is not None and grad_norm > self.clip_norm:
            scale = (grad_norm + 1e-6) / self.clip_norm
        squares = [torch.stack([p.grad.detach().float().pow(2).sum() if p.grad is not None
                                else torch.zeros((), device=p.device) for p in ps]).sum() for ps in params]
        self._grads = torch.stack(squares).sqrt() * scale  # stays on the device until the record is written
        self._grad_norm = grad_norm
        self._before = [[p.detach().clone() for p in ps] for ps in params]

    def on_step_end(self, state, record: dict) -> None:
        self._steps += 1
        self._clipped += bool(record.get("clipped"))
        if self._before is not None and state.step % self.every == 0:
            self._write(state, record.get("lr"))
        if (state.step + 1) % self.every == 0:
            self._arm()

    def on_fit_end(self, state, summary: dict) -> None:
        self._disarm()

    # ---- the work of a probed step ----
    def _arm(self) -> None:
        """Hook the encoder for the next step's forward pass (its first call only)."""
        self._disarm()
        self._seen = None
        if self._encoder is not None:
            self._hook = self._encoder.register_forward_hook(self._capture, with_kwargs=True)

    def _disarm(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def _capture(self, module: RNNEncoder, args, kwargs, output) -> None:
        if not module.training:
            return  # armed at an epoch's last step: the validation in between is not the probed step's batch
        values = list(args) + [kwargs[k] for k in ("x", "lengths", "mask") if k in kwargs]
        x, _, mask = values[:3]
        self._seen = (x.detach(), mask.detach(), output.outputs.detach())
        self._disarm()  # one micro-batch is enough

    @torch.no_grad()
    def _activity(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(gate saturation share, dead output share) of the captured batch, on its device."""
        if self._seen is None or self._encoder is None:
            return None
        x, mask, outputs = self._seen
        self._seen = None
        enc = self._encoder
        rnn = enc.layers[0][0].module  # the first layer's forward direction: nn.LSTM or nn.GRU
        h0 = x.float().masked_fill(~mask.unsqueeze(-1), 0.0)  # the layer's input, as the encoder builds it
        with torch.autocast(h0.device.type, enabled=False):
            hidden = rnn(h0)[0].float()  # (B, T, H), without dropout (the network the weights define)
            previous = torch.cat([torch.zeros_like(hidden[:, :1]), hidden[:, :-1]], dim=1)  # h_{t-1}
            pre = (h0 @ rnn.weight_ih_l0.float().T + previous @ rnn.weight_hh_l0.float().T)
            if rnn.bias:
                pre = pre + rnn.bias_ih_l0.float() + rnn.bias_hh_l0.float()
        H = rnn.hidden_size
        # sigmoid gates: LSTM i, f (g is tanh), o; GRU r, z (n is tanh); PyTorch's gate order
        sig = torch.cat([pre[..., : 2 * H], pre[..., 3 * H:]], dim=-1) if enc.cell == "lstm" else pre[..., : 2 * H]
        saturated = (sig.abs() > _SATURATED_LOGIT)[mask].float().mean()
        real = outputs[mask].float()  # (N, D*H)
        dead = ((real.amax(0) - real.amin(0)) < DEAD_SPREAD).float().mean() if real.shape[0] > 1 else \
            torch.tensor(float("nan"), device=real.device)
        return saturated, dead

    def _write(self, state, lr: float | None) -> None:
        before, self._before = self._before, None
        ratios = []
        for ps, bs in zip(self._groups.values(), before, strict=True):
            delta = torch.stack([(p.detach() - b).float().pow(2).sum() for p, b in zip(ps, bs, strict=True)]).sum()
            base = torch.stack([b.float().pow(2).sum() for b in bs]).sum()
            ratios.append((delta / base.clamp_min(1e-30)).sqrt())
        activity = self._activity()
        stats = torch.cat([self._grads, torch.stack(ratios)]
                          + ([torch.stack(list(activity))] if activity is not None else []))
        values = stats.cpu().tolist()  # the probe's one transfer of the step's numbers
        n = len(self._groups)
        names = list(self._groups)

        def number(v):
            return v if math.isfinite(v) else None

        self.log.write({
            "kind": "probe", "step": state.step, "epoch": state.epoch, "lr": lr,
            "grad_norm": {k: number(v) for k, v in zip(names, values[:n], strict=True)},
            "update_ratio": {k: number(v) for k, v in zip(names, values[n:2 * n], strict=True)},
            "recurrent": list(self._recurrent),
            "grad_norm_total": self._grad_norm, "clip_norm": self.clip_norm,
            "clipped_share": self._clipped / max(self._steps, 1), "steps_since_probe": self._steps,
            "cell": self._encoder.cell if self._encoder is not None else None,
            "gate_saturation": number(values[2 * n]) if activity is not None else None,
            "dead_output_share": number(values[2 * n + 1]) if activity is not None else None,
        })
        self._steps = self._clipped = 0


__all__ = ["DEAD_SPREAD", "SATURATED", "Probe", "main_encoder", "parameter_groups"]
