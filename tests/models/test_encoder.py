"""Tests for rnnkit.models.encoder: padding exactness, packed/padded parity, dropout, init."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence
from torch.profiler import ProfilerActivity, profile

from rnnkit.models.encoder import (
    EncoderOutput,
    LockedDropout,
    RNNEncoder,
    WeightDropRNN,
    reverse_padded,
)

ATOL = 1e-5
LENGTHS = [7, 1, 4, 7, 2, 5]  # a mix including length 1 and the full length T=7


def make_batch(input_size: int, lengths=LENGTHS, seed: int = 0):
    """Random padded batch: x (B, T, I), lengths (B,), mask (B, T)."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths, dtype=torch.long)
    steps = int(lengths.max())
    x = torch.randn(len(lengths), steps, input_size, generator=gen)
    mask = torch.arange(steps)[None, :] < lengths[:, None]  # (B, T)
    return x, lengths, mask


def with_garbage_pads(x: torch.Tensor, mask: torch.Tensor, seed: int = 1) -> torch.Tensor:
    """Copy of x with large random values, NaN and inf written at every pad position."""
    gen = torch.Generator().manual_seed(seed)
    garbage = torch.randn(x.shape, generator=gen) * 1e3
    garbage[..., 0] = float("nan")
    garbage[..., -1] = float("inf")
    return torch.where(mask.unsqueeze(-1), x, garbage)


def valid(t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return t[mask]  # (N_real, F)


# --------------------------------------------------------------------------- reverse_padded


def test_reverse_padded_reverses_within_length_and_keeps_pads():
    x = torch.arange(2 * 4, dtype=torch.float).reshape(2, 4, 1)  # (B, T, F)
    lengths = torch.tensor([3, 4])
    out = reverse_padded(x, lengths)
    assert out[0, :, 0].tolist() == [2.0, 1.0, 0.0, 3.0]  # pad at t=3 stays where it was
    assert out[1, :, 0].tolist() == [7.0, 6.0, 5.0, 4.0]


def test_reverse_padded_is_its_own_inverse():
    x, lengths, mask = make_batch(3)
    once = reverse_padded(x, lengths)
    assert torch.equal(reverse_padded(once, lengths), x)
    assert torch.equal(once[~mask], x[~mask])  # pad values untouched
    assert not torch.equal(once[mask], x[mask])


def test_reverse_padded_rejects_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        reverse_padded(torch.zeros(2, 3), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="lengths"):
        reverse_padded(torch.zeros(2, 3, 1), torch.tensor([1, 2, 3]))


# --------------------------------------------------------------------------- LockedDropout


def test_locked_dropout_shares_one_mask_over_time():
    torch.manual_seed(0)
    drop = LockedDropout(0.5).train()
    out = drop(torch.ones(8, 20, 16))
    # Every (sequence, feature) pair is either dropped at all steps or kept (scaled) at all steps.
    assert torch.equal(out, out[:, :1, :].expand_as(out))
    assert set(out.unique().tolist()) == {0.0, 2.0}


def test_locked_dropout_is_identity_in_eval_or_zero_p():
    x = torch.randn(2, 5, 3)
    assert LockedDropout(0.5).eval()(x) is x
    assert LockedDropout(0.0).train()(x) is x
    with pytest.raises(ValueError, match="p"):
        LockedDropout(1.0)


# --------------------------------------------------------------------------- masking


@pytest.mark.parametrize("packing", ["never", "always"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_pad_values_never_reach_outputs_or_final(cell, packing):
    # input_size == D*H so the residual connection is active on both layers.
    torch.manual_seed(0)
    enc = RNNEncoder(
        8, 4, num_layers=2, cell=cell, bidirectional=True, layer_norm=True, residual=True, packing=packing
    ).eval()
    x, lengths, mask = make_batch(8)
    clean = enc(x, lengths, mask)
    dirty = enc(with_garbage_pads(x, mask), lengths, mask)
    assert torch.isfinite(dirty.outputs).all()
    assert torch.allclose(valid(dirty.outputs, mask), valid(clean.outputs, mask), atol=ATOL)
    assert torch.allclose(dirty.final, clean.final, atol=ATOL)
    assert torch.equal(dirty.outputs[~mask], torch.zeros_like(dirty.outputs[~mask]))  # exactly 0


@pytest.mark.parametrize("packing", ["never", "always"])
def test_no_gradient_reaches_pad_inputs(packing):
    torch.manual_seed(0)
    enc = RNNEncoder(3, 4, num_layers=2, bidirectional=True, packing=packing).eval()
    x, lengths, mask = make_batch(3)
    x.requires_grad_(True)
    out = enc(x, lengths, mask)
    (out.outputs.sum() + out.final.sum()).backward()
    assert torch.equal(x.grad[~mask], torch.zeros_like(x.grad[~mask]))
    assert x.grad[mask].abs().sum() > 0


@pytest.mark.parametrize("packing", ["never", "always"])
def test_garbage_pads_leave_parameter_gradients_finite_and_unchanged(packing):
    # On the padded path the forward RNN does run over pad steps; their outputs get zero
    # gradient, but 0 * NaN is NaN, so NaN inputs there would poison weight gradients
    # unless the encoder cleans them first.
    torch.manual_seed(0)
    enc = RNNEncoder(8, 4, num_layers=2, bidirectional=True, residual=True, packing=packing).train()
    x, lengths, mask = make_batch(8)

    def grads(inputs):
        enc.zero_grad()
        out = enc(inputs, lengths, mask)
        (out.outputs.pow(2).sum() + out.final.sum()).backward()
        return [p.grad.clone() for p in enc.parameters()]

    for clean, dirty in zip(grads(x), grads(with_garbage_pads(x, mask)), strict=True):
        assert torch.isfinite(dirty).all()
        assert torch.allclose(clean, dirty, atol=ATOL)


# --------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("packing", ["never", "always"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bidirectional_matches_per_sequence_reference(cell, packing):
    torch.manual_seed(0)
    enc = RNNEncoder(
        8, 4, num_layers=2, cell=cell, bidirectional=True, layer_norm=True, residual=True, packing=packing
    ).eval()
    x, lengths, mask = make_batch(8)
    batched = enc(x, lengths, mask)
    for b, n in enumerate(lengths.tolist()):
        alone = enc(x[b : b + 1, :n], lengths[b : b + 1], mask[b : b + 1, :n])  # batch of one, no pads
        assert torch.allclose(batched.outputs[b, :n], alone.outputs[0], atol=ATOL)
        assert torch.allclose(batched.final[b], alone.final[0], atol=ATOL)


@pytest.mark.parametrize("packing", ["never", "always"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_matches_torch_bidirectional_stack_with_same_weights(cell, packing):
    # An independent reference: PyTorch's own 2-layer bidirectional module on packed input.
    torch.manual_seed(0)
    enc = RNNEncoder(3, 4, num_layers=2, cell=cell, bidirectional=True, packing=packing).eval()
    ref = (nn.LSTM if cell == "lstm" else nn.GRU)(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    state = {}
    for layer in range(2):
        for direction, suffix in enumerate(["", "_reverse"]):
            inner = enc.layers[layer][direction].module
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                state[f"{name}_l{layer}{suffix}"] = getattr(inner, f"{name}_l0")
    ref.load_state_dict(state)
    x, lengths, mask = make_batch(3)
    packed_out, h_n = ref(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    ref_out, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=x.shape[1])  # (B, T, 2H)
    h_n = h_n[0] if cell == "lstm" else h_n  # (layers*2, B, H)
    ref_final = torch.cat([h_n[-2], h_n[-1]], dim=-1)  # (B, 2H): last layer forward, backward
    out = enc(x, lengths, mask)
    assert torch.allclose(out.outputs, ref_out, atol=ATOL)
    assert torch.allclose(out.final, ref_final, atol=ATOL)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_equals_padded(cell, bidirectional):
    torch.manual_seed(0)
    kwargs = dict(num_layers=2, cell=cell, bidirectional=bidirectional, layer_norm=True, residual=True)
    padded = RNNEncoder(5, 4, packing="never", **kwargs).eval()
    packed = RNNEncoder(5, 4, packing="always", **kwargs).eval()
    packed.load_state_dict(padded.state_dict())  # a checkpoint moves between the paths
    x, lengths, mask = make_batch(5)
    a, b = padded(x, lengths, mask), packed(x, lengths, mask)
    assert torch.allclose(valid(a.outputs, mask), valid(b.outputs, mask), atol=ATOL)
    assert torch.allclose(a.final, b.final, atol=ATOL)


def test_packed_equals_padded_in_training_with_same_random_draws():
    # Both paths consume the random generator in the same order, so with equal seeds the
    # dropout masks (locked and DropConnect) agree and so do the results.
    kwargs = dict(num_layers=2, bidirectional=True, dropout=0.3, input_dropout=0.2, recurrent_dropout=0.3)
    torch.manual_seed(0)
    padded = RNNEncoder(5, 4, packing="never", **kwargs).train()
    packed = RNNEncoder(5, 4, packing="always", **kwargs).train()
    packed.load_state_dict(padded.state_dict())
    x, lengths, mask = make_batch(5)
    torch.manual_seed(7)
    a = padded(x, lengths, mask)
    torch.manual_seed(7)
    b = packed(x, lengths, mask)
    assert torch.allclose(valid(a.outputs, mask), valid(b.outputs, mask), atol=ATOL)
    assert torch.allclose(a.final, b.final, atol=ATOL)


def test_unidirectional_final_is_output_at_last_real_step():
    enc = RNNEncoder(3, 4, num_layers=1).eval()
    x, lengths, mask = make_batch(3)
    out = enc(x, lengths, mask)
    assert enc.output_size == 4
    assert isinstance(out, EncoderOutput)
    assert out.outputs.shape == (len(LENGTHS), 7, 4) and out.final.shape == (len(LENGTHS), 4)
    assert torch.equal(out.final, out.outputs[torch.arange(len(LENGTHS)), lengths - 1])


@pytest.mark.parametrize(
    ("packing", "expected"), [("auto", torch.Tensor), ("never", torch.Tensor), ("always", PackedSequence)]
)
def test_packing_mode_selects_path_on_cpu(packing, expected):
    enc = RNNEncoder(3, 4, packing=packing).eval()
    seen = []
    enc.layers[0][0].module.register_forward_pre_hook(lambda _m, args: seen.append(type(args[0])))
    enc(*make_batch(3))
    assert len(seen) == 1 and issubclass(seen[0], expected)


def test_residual_adds_the_layer_input():
    torch.manual_seed(0)
    plain = RNNEncoder(8, 4, bidirectional=True).eval()
    res = RNNEncoder(8, 4, bidirectional=True, residual=True).eval()
    res.load_state_dict(plain.state_dict())
    x, lengths, mask = make_batch(8)
    diff = res(x, lengths, mask).outputs - plain(x, lengths, mask).outputs
    assert torch.allclose(valid(diff, mask), valid(x, mask), atol=ATOL)
    # First layer input size 3 != D*H 8: no residual there, and no error.
    odd = RNNEncoder(3, 4, num_layers=2, bidirectional=True, residual=True)
    assert odd._residual_layers == [False, True]


def test_layer_norm_normalises_real_steps():
    enc = RNNEncoder(3, 8, num_layers=2, bidirectional=True, layer_norm=True).eval()
    x, lengths, mask = make_batch(3)
    real = valid(enc(x, lengths, mask).outputs, mask)  # (N_real, 16)
    assert torch.allclose(real.mean(-1), torch.zeros(len(real)), atol=1e-5)
    assert torch.allclose(real.var(-1, unbiased=False), torch.ones(len(real)), atol=1e-3)


# --------------------------------------------------------------------------- recurrent dropout


def test_recurrent_dropout_only_in_training():
    torch.manual_seed(0)
    dropped = RNNEncoder(3, 8, num_layers=2, bidirectional=True, recurrent_dropout=0.5)
    plain = RNNEncoder(3, 8, num_layers=2, bidirectional=True, recurrent_dropout=0.0)
    plain.load_state_dict(dropped.state_dict())
    x, lengths, mask = make_batch(3)

    dropped.eval()
    plain.eval()
    first, second = dropped(x, lengths, mask), dropped(x, lengths, mask)
    assert torch.equal(first.outputs, second.outputs)
    assert torch.equal(first.outputs, plain(x, lengths, mask).outputs)

    dropped.train()  # every other dropout is 0, so any difference comes from DropConnect
    a, b = dropped(x, lengths, mask), dropped(x, lengths, mask)
    assert not torch.allclose(a.outputs, b.outputs)
    plain.train()
    assert torch.equal(plain(x, lengths, mask).outputs, first.outputs)  # p=0: train == eval


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_weight_drop_calls_the_fused_module(cell):
    enc = RNNEncoder(3, 4, num_layers=2, cell=cell, bidirectional=True, recurrent_dropout=0.3).train()
    calls = []
    for directions in enc.layers:
        for wrapper in directions:
            assert isinstance(wrapper.module, nn.LSTM if cell == "lstm" else nn.GRU)
            wrapper.module.register_forward_hook(lambda *_: calls.append(1))
    x, lengths, mask = make_batch(3)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        enc(x, lengths, mask).outputs.sum().backward()
    assert len(calls) == 4  # one call per layer and direction, not one per time step
    counts = {e.key: e.count for e in prof.key_averages()}
    assert counts.get(f"aten::{cell}") == 4  # the whole-sequence fused op, once per module
    assert not any(f"{cell}_cell" in key for key in counts)  # no per-step cell ops


def test_weight_drop_uses_same_kernels_as_plain_module():
    torch.manual_seed(0)
    lstm = nn.LSTM(4, 8, batch_first=True)
    wrapped = WeightDropRNN(nn.LSTM(4, 8, batch_first=True), 0.3).train()
    x = torch.randn(3, 5, 4)

    def rnn_ops(module):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            module(x)[0].sum().backward()
        return {e.key for e in prof.key_averages() if "lstm" in e.key or "rnn" in e.key}

    assert rnn_ops(wrapped) == rnn_ops(lstm)  # e.g. aten::lstm + oneDNN's mkldnn_rnn_layer


def test_weight_drop_gradients_reach_raw_weight_hh():
    torch.manual_seed(0)
    wrapper = WeightDropRNN(nn.LSTM(4, 16, batch_first=True), 0.5).train()
    out, _ = wrapper(torch.randn(8, 6, 4))
    out.pow(2).sum().backward()
    grad = wrapper.module.weight_hh_l0.grad
    assert grad is not None and grad.abs().sum() > 0
    # DropConnect: entries dropped for this call get exactly zero gradient, about p of them.
    zero_fraction = (grad == 0).float().mean().item()
    assert 0.4 < zero_fraction < 0.6

    wrapper.zero_grad()
    wrapper.eval()
    out, _ = wrapper(torch.randn(8, 6, 4))
    out.pow(2).sum().backward()
    assert (wrapper.module.weight_hh_l0.grad == 0).float().mean().item() < 0.01


def test_state_dict_holds_no_dropped_copies():
    enc = RNNEncoder(3, 4, num_layers=2, bidirectional=True, recurrent_dropout=0.5).train()
    before = set(enc.state_dict())
    enc(*make_batch(3))
    after = set(enc.state_dict())
    assert before == after
    expected = {
        f"layers.{layer}.{direction}.module.{name}_l0"
        for layer in range(2)
        for direction in range(2)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    }
    assert after == expected
    assert all(isinstance(p, nn.Parameter) for p in enc.layers[0][0].module.parameters())


def test_weight_drop_rejects_unsupported_modules():
    with pytest.raises(TypeError):
        WeightDropRNN(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="single-layer"):
        WeightDropRNN(nn.LSTM(2, 2, num_layers=2, batch_first=True))
    with pytest.raises(ValueError, match="single-layer"):
        WeightDropRNN(nn.GRU(2, 2, bidirectional=True, batch_first=True))
    with pytest.raises(ValueError, match="single-layer"):
        WeightDropRNN(nn.LSTM(2, 2))  # not batch_first


# --------------------------------------------------------------------------- init contract


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_init_contract(cell):
    torch.manual_seed(0)
    in_size, hidden = 24, 32
    enc = RNNEncoder(in_size, hidden, num_layers=2, cell=cell, bidirectional=True)
    gates = 4 if cell == "lstm" else 3
    for layer, directions in enumerate(enc.layers):
        for wrapper in directions:
            rnn = wrapper.module
            fan_in = in_size if layer == 0 else 2 * hidden
            w_ih = rnn.weight_ih_l0.detach()  # (G*H, I)
            bound = math.sqrt(6.0 / (fan_in + gates * hidden))
            assert w_ih.abs().max() <= bound + 1e-7
            assert w_ih.abs().max() > 0.95 * bound  # uniform over the whole range
            assert abs(w_ih.std().item() - bound / math.sqrt(3)) < 0.1 * bound
            for k in range(gates):
                block = rnn.weight_hh_l0.detach()[k * hidden : (k + 1) * hidden]  # (H, H)
                assert torch.allclose(block @ block.T, torch.eye(hidden), atol=1e-5)
            expected_ih = torch.zeros(gates * hidden)
            if cell == "lstm":
                expected_ih[hidden : 2 * hidden] = 1.0  # forget gate (order i, f, g, o)
            assert torch.equal(rnn.bias_ih_l0.detach(), expected_ih)
            assert torch.equal(rnn.bias_hh_l0.detach(), torch.zeros(gates * hidden))


# --------------------------------------------------------------------------- validation


def test_unknown_cell_names_value_and_options():
    with pytest.raises(ValueError, match="rnn") as info:
        RNNEncoder(3, 4, cell="rnn")
    assert "lstm" in str(info.value) and "gru" in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [{"packing": "sometimes"}, {"dropout": 1.0}, {"recurrent_dropout": -0.1}, {"num_layers": 0}],
)
def test_invalid_options_raise(kwargs):
    with pytest.raises(ValueError):
        RNNEncoder(3, 4, **kwargs)


def test_forward_rejects_bad_lengths_and_shapes():
    enc = RNNEncoder(3, 4)
    x, lengths, mask = make_batch(3)
    with pytest.raises(ValueError, match="length"):
        enc(x, torch.zeros_like(lengths), mask)  # empty sequences
    with pytest.raises(ValueError, match="length"):
        enc(x, lengths + 1, mask)  # longer than T
    with pytest.raises(ValueError, match="shape"):
        enc(x[..., :2], lengths, mask)
    with pytest.raises(ValueError, match="mask"):
        enc(x, lengths, mask.float())


def test_a_full_batch_reverses_by_flip_exactly_as_by_the_index(monkeypatch):
    """Rows that all fill the batch take the flip (its backward is a flip, not a scatter-add): the same outputs and
    gradients, bit for bit, as the per-row index the general path uses."""
    import rnnkit.models.encoder as E

    torch.manual_seed(0)
    enc = RNNEncoder(5, 7, num_layers=2, bidirectional=True)
    x = torch.randn(4, 9, 5)
    lengths = torch.full((4,), 9, dtype=torch.long)
    mask = torch.ones(4, 9, dtype=torch.bool)
    calls = []
    real = E._reverse

    def spy(t, index):
        calls.append(index is None)
        return real(t, index)

    monkeypatch.setattr(E, "_reverse", spy)
    x1 = x.clone().requires_grad_()
    out1 = enc(x1, lengths, mask)
    (out1.outputs.sum() + out1.final.pow(2).sum()).backward()
    grads1 = [p.grad.clone() for p in enc.parameters()]
    assert calls and all(calls)  # the flip on every reversal
    enc.zero_grad()
    calls.clear()
    monkeypatch.setattr(E, "_reverse", lambda t, index: real(t, E._reverse_index(lengths, t.shape[1], t.device)))
    x2 = x.clone().requires_grad_()
    out2 = enc(x2, lengths, mask)
    (out2.outputs.sum() + out2.final.pow(2).sum()).backward()
    assert torch.equal(out1.outputs, out2.outputs) and torch.equal(out1.final, out2.final)
    assert torch.equal(x1.grad, x2.grad)
    assert all(torch.equal(a, p.grad) for a, p in zip(grads1, enc.parameters(), strict=True))
