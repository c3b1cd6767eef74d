"""Tests for rnnkit.models.frontend through the classifier: exact masks (alone == batched with longer sequences,
garbage at pads ignored, padded == packed), what `auto` chooses, and that the front-end learns."""

from __future__ import annotations

import pytest
import torch

from rnnkit.models.classifier import ClassifierNet, build_classifier
from rnnkit.models.frontend import (
    ConvFrontend,
    PatchFrontend,
    auto_reduction,
    choose_frontend,
    split_strides,
)

LENGTHS = torch.tensor([41, 1, 17, 40, 9, 33])
SMALL = dict(embedding_dim=8, hidden_size=6, num_layers=2, bidirectional=True)


def mask_for(lengths: torch.Tensor, steps: int | None = None) -> torch.Tensor:
    return torch.arange(steps or int(lengths.max()))[None, :] < lengths[:, None]


def series_batch(features: int = 2, seed: int = 0, extra_pad: int = 0):
    """A padded batch of random-walk series (garbage NaN at the pads)."""
    gen = torch.Generator().manual_seed(seed)
    steps = int(LENGTHS.max()) + extra_pad
    x = torch.randn(len(LENGTHS), steps, features, generator=gen).cumsum(1)
    mask = mask_for(LENGTHS, steps)
    return x.masked_fill(~mask.unsqueeze(-1), float("nan")), LENGTHS, mask


def model(kind: str, reduction: int, packing: str = "never", pooling: str = "last", **kw) -> ClassifierNet:
    torch.manual_seed(0)
    net = ClassifierNet(num_classes=3, num_features=2, frontend=kind, frontend_reduction=reduction, packing=packing,
                        pooling=pooling, median_length=float(LENGTHS.median()), **SMALL, **kw)
    return net


def _warm_up_norms(net: ClassifierNet) -> None:
    """A few training-mode passes, so the batch norms' running statistics are not their initial 0 / 1."""
    x, lengths, mask = series_batch(seed=5)
    with torch.no_grad():
        for _ in range(3):
            net.train()(x, lengths, mask)
    net.eval()


@pytest.mark.parametrize("pooling", ["last", "mean", "attention"])
@pytest.mark.parametrize("kind,reduction", [("conv", 4), ("conv", 3), ("conv", 8), ("patch", 4), ("patch", 5)])
def test_a_sequence_alone_and_batched_with_longer_ones_gives_the_same_logits(kind, reduction, pooling):
    net = model(kind, reduction, pooling=pooling)
    _warm_up_norms(net)
    x, lengths, mask = series_batch(extra_pad=7)  # pads beyond the longest too
    batched = net(x, lengths, mask)
    assert torch.isfinite(batched).all()
    for b, n in enumerate(lengths.tolist()):
        alone = net(x[b : b + 1, :n], lengths[b : b + 1], mask[b : b + 1, :n])
        assert torch.allclose(alone, batched[b : b + 1], atol=1e-5), (b, n)


@pytest.mark.parametrize("kind", ["conv", "patch"])
def test_padded_and_packed_paths_agree_with_a_front_end(kind):
    padded = model(kind, 4, packing="never")
    _warm_up_norms(padded)
    packed = model(kind, 4, packing="always")
    packed.load_state_dict(padded.state_dict())
    packed.eval()
    x, lengths, mask = series_batch()
    assert torch.allclose(padded(x, lengths, mask), packed(x, lengths, mask), atol=1e-5)


def test_training_mode_statistics_count_real_steps_only():
    """In training the batch norm normalises by the batch's statistics: those of its real steps, whatever the
    pads hold and however many there are (dropout off, so the pass is deterministic)."""
    net = ClassifierNet(num_classes=3, num_features=2, frontend="conv", frontend_reduction=4, dropout=0.0,
                        recurrent_dropout=0.0, median_length=30.0, **SMALL)
    twin = ClassifierNet(num_classes=3, num_features=2, frontend="conv", frontend_reduction=4, dropout=0.0,
                         recurrent_dropout=0.0, median_length=30.0, **SMALL)
    twin.load_state_dict(net.state_dict())
    x, lengths, mask = series_batch()
    wide = torch.cat([x, torch.full((x.shape[0], 13, x.shape[2]), 1e6)], dim=1)  # 13 more pad steps
    wide_mask = mask_for(lengths, wide.shape[1])
    wide[~wide_mask] = 1e6  # huge values instead of NaN at the pads
    a = net.train()(x, lengths, mask)
    b = twin.train()(wide, lengths, wide_mask)
    assert torch.allclose(a, b, atol=1e-5)
    for name, buf in net.named_buffers():
        assert torch.allclose(buf, dict(twin.named_buffers())[name], atol=1e-6), name


def test_output_lengths_follow_the_input_lengths():
    lengths = torch.tensor([1, 2, 3, 4, 5, 63, 64, 65, 251])
    conv = ConvFrontend(1, 4, 4)
    assert conv.strides == (2, 2, 1)
    assert conv.output_lengths(lengths).tolist() == [-(-n // 4) for n in lengths.tolist()]
    patch = PatchFrontend(1, 4, 5)
    assert patch.output_lengths(lengths).tolist() == [-(-n // 5) for n in lengths.tolist()]
    x = torch.randn(len(lengths), 251, 1)
    h, out_lengths, out_mask = conv(x, lengths, mask_for(lengths))
    assert h.shape == (len(lengths), 63, 4) and out_mask.sum(1).tolist() == out_lengths.tolist()
    assert (h[~out_mask] == 0).all()


@pytest.mark.parametrize("reduction,strides", [(1, (1, 1, 1)), (2, (2, 1, 1)), (4, (2, 2, 1)), (8, (2, 2, 2)),
                                               (16, (4, 2, 2)), (12, (6, 2, 1)), (5, (5, 1, 1))])
def test_strides_multiply_to_the_reduction(reduction, strides):
    assert split_strides(reduction) == strides
    conv = ConvFrontend(1, 2, reduction)
    assert all(c.kernel_size[0] > c.stride[0] and c.kernel_size[0] % 2 == 1 for c in conv.convs)


def test_auto_chooses_by_input_kind_and_median_length():
    assert auto_reduction(251) == 4 and auto_reduction(1460) == 16 and auto_reduction(150) == 2
    assert auto_reduction(100) == 1 and auto_reduction(None) == 1
    long = choose_frontend("auto", None, token_input=False, median_length=251.0)
    assert (long.kind, long.reduction) == ("conv", 4)
    assert "median 251 -> 63 steps" in long.describe()
    assert choose_frontend("auto", None, token_input=False, median_length=100.0).kind == "none"
    assert choose_frontend("auto", None, token_input=True, median_length=5000.0).kind == "none"
    assert choose_frontend("auto", None, token_input=False, median_length=None).kind == "none"  # an older run
    assert choose_frontend("auto", 8, token_input=False, median_length=300.0).reduction == 8
    assert choose_frontend("none", None, token_input=False, median_length=5000.0).kind == "none"
    explicit = choose_frontend("patch", None, token_input=False, median_length=24.0)
    assert (explicit.kind, explicit.reduction) == ("patch", 2)  # set explicitly: at least 2
    with pytest.raises(ValueError, match="numeric sequences only"):
        choose_frontend("conv", None, token_input=True, median_length=300.0)
    with pytest.raises(ValueError, match="frontend must be one of"):
        choose_frontend("fcn", None, token_input=False, median_length=300.0)


def test_token_input_never_gets_a_front_end_under_auto():
    net = build_classifier({}, num_classes=2, vocab_size=30, median_length=900.0)
    assert net.frontend is None and net.frontend_choice.reason == "auto: token input"
    long = build_classifier({}, num_classes=2, num_features=1, median_length=900.0)
    assert isinstance(long.frontend, ConvFrontend) and long.frontend.reduction == 16
    short = build_classifier({}, num_classes=2, num_features=1, median_length=29.0)
    assert short.frontend is None and isinstance(short.embedding, torch.nn.Linear)


def test_a_conv_front_end_learns_a_long_shape_problem_the_default_recurrence_finds_hard():
    """300-step noisy series whose class is where a bump sits (early, middle or late): the conv front-end fits
    the training set within a few dozen steps."""
    gen = torch.Generator().manual_seed(0)
    n, steps = 48, 300
    labels = torch.arange(n) % 3
    t = torch.arange(steps).float()
    centres = torch.tensor([60.0, 150.0, 240.0])[labels]
    x = torch.exp(-((t[None, :] - centres[:, None]) ** 2) / (2 * 12.0**2)) * 2
    x = (x + 0.3 * torch.randn(n, steps, generator=gen)).unsqueeze(-1)
    lengths = torch.full((n,), steps)
    mask = mask_for(lengths)
    torch.manual_seed(0)
    net = build_classifier({"hidden_size": 16, "embedding_dim": 16}, num_classes=3, num_features=1,
                           median_length=float(steps))
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    for _ in range(40):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net.train()(x, lengths, mask), labels)
        loss.backward()
        opt.step()
    acc = (net.eval()(x, lengths, mask).argmax(-1) == labels).float().mean()
    assert acc >= 0.9
