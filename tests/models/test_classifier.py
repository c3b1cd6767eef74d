"""Tests for rnnkit.models.classifier: input kinds, masking, options, and that it can learn."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn

from rnnkit.models.classifier import MODEL_OPTION_DEFAULTS, ClassifierNet, build_classifier

LENGTHS = torch.tensor([6, 1, 3, 6, 2])


def mask_for(lengths: torch.Tensor) -> torch.Tensor:
    return torch.arange(int(lengths.max()))[None, :] < lengths[:, None]  # (B, T)


def token_batch(vocab: int = 20, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    mask = mask_for(LENGTHS)
    ids = torch.randint(1, vocab, mask.shape, generator=gen).masked_fill(~mask, 0)  # (B, T)
    return ids, LENGTHS, mask


def feature_batch(features: int = 3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    mask = mask_for(LENGTHS)
    x = torch.randn(*mask.shape, features, generator=gen).masked_fill(~mask.unsqueeze(-1), 0.0)
    return x, LENGTHS, mask


SMALL = dict(embedding_dim=8, hidden_size=4, num_layers=2, bidirectional=True, layer_norm=True, residual=True)


@pytest.mark.parametrize("packing", ["never", "always"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_token_logits_ignore_pad_ids(cell, packing):
    torch.manual_seed(0)
    model = ClassifierNet(num_classes=3, vocab_size=20, cell=cell, packing=packing, **SMALL).eval()
    ids, lengths, mask = token_batch()
    logits = model(ids, lengths, mask)
    assert logits.shape == (5, 3)
    # Garbage ids at pads, including ones outside the vocabulary.
    garbage = torch.randint(0, 1000, ids.shape, generator=torch.Generator().manual_seed(3))
    dirty = torch.where(mask, ids, garbage)
    assert torch.allclose(model(dirty, lengths, mask), logits, atol=1e-5)


@pytest.mark.parametrize("packing", ["never", "always"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_feature_logits_ignore_pad_values(cell, packing):
    torch.manual_seed(0)
    model = ClassifierNet(num_classes=2, num_features=3, cell=cell, packing=packing, **SMALL).eval()
    x, lengths, mask = feature_batch()
    logits = model(x, lengths, mask)
    assert logits.shape == (5, 2)
    garbage = torch.full_like(x, float("nan"))
    garbage[..., 1] = 1e6
    dirty = torch.where(mask.unsqueeze(-1), x, garbage)
    assert torch.allclose(model(dirty, lengths, mask), logits, atol=1e-5)


@pytest.mark.parametrize("pooling", ["last", "attention", "mean"])
def test_packed_and_padded_classifiers_agree(pooling):
    torch.manual_seed(0)
    padded = ClassifierNet(num_classes=4, vocab_size=20, pooling=pooling, packing="never", **SMALL).eval()
    packed = ClassifierNet(num_classes=4, vocab_size=20, pooling=pooling, packing="always", **SMALL).eval()
    packed.load_state_dict(padded.state_dict())
    ids, lengths, mask = token_batch()
    assert torch.allclose(padded(ids, lengths, mask), packed(ids, lengths, mask), atol=1e-5)


def test_input_layers_and_their_init():
    torch.manual_seed(0)
    tokens = ClassifierNet(num_classes=2, vocab_size=50, embedding_dim=16)
    assert isinstance(tokens.embedding, nn.Embedding) and tokens.embedding.padding_idx == 0
    weight = tokens.embedding.weight.detach()
    assert torch.equal(weight[0], torch.zeros(16))
    bound = (6.0 / (50 + 16)) ** 0.5
    assert weight.abs().max() <= bound and weight[1:].abs().max() > 0.9 * bound

    numeric = ClassifierNet(num_classes=2, num_features=5, embedding_dim=16)
    assert isinstance(numeric.embedding, nn.Linear)
    assert numeric.embedding.weight.abs().max() <= (6.0 / (5 + 16)) ** 0.5
    assert torch.equal(numeric.embedding.bias.detach(), torch.zeros(16))
    assert numeric.encoder.input_size == 16 and numeric.encoder.output_size == 256


def test_residual_auto_turns_on_for_deep_stacks():
    assert not ClassifierNet(num_classes=2, num_features=2, num_layers=2).encoder.residual
    assert ClassifierNet(num_classes=2, num_features=2, num_layers=3).encoder.residual
    assert not ClassifierNet(num_classes=2, num_features=2, num_layers=3, residual=False).encoder.residual


@pytest.mark.parametrize("sizes", [{}, {"vocab_size": 10, "num_features": 3}])
def test_exactly_one_input_kind(sizes):
    with pytest.raises(ValueError, match="exactly one"):
        ClassifierNet(num_classes=2, **sizes)


def test_forward_rejects_the_wrong_input_kind():
    tokens = ClassifierNet(num_classes=2, vocab_size=20, **SMALL)
    numeric = ClassifierNet(num_classes=2, num_features=3, **SMALL)
    x, lengths, mask = feature_batch()
    ids, _, _ = token_batch()
    with pytest.raises(ValueError, match="token ids"):
        tokens(x, lengths, mask)
    with pytest.raises(ValueError, match="numeric"):
        numeric(ids, lengths, mask)


def test_build_classifier_passes_options_through():
    model = build_classifier(
        {"cell": "gru", "hidden_size": 6, "num_layers": 1, "bidirectional": False, "pooling": "mean"},
        num_classes=3,
        num_features=4,
    )
    assert isinstance(model.encoder.layers[0][0].module, nn.GRU)
    assert model.encoder.output_size == 6 and model.head.pooling == "mean"
    assert model.head.out.out_features == 3


def test_build_classifier_lists_unknown_keys():
    with pytest.raises(ValueError) as info:
        build_classifier({"hiden_size": 3, "cells": "gru", "dropout": 0.1}, num_classes=2, vocab_size=5)
    message = str(info.value)
    assert "cells" in message and "hiden_size" in message and "hidden_size" in message
    with pytest.raises(ValueError, match="from the data"):
        build_classifier({"num_classes": 3}, num_classes=3, vocab_size=5)


def test_option_defaults_match_the_constructor():
    params = inspect.signature(ClassifierNet).parameters
    constructor = {k: p.default for k, p in params.items() if k in MODEL_OPTION_DEFAULTS}
    assert constructor == MODEL_OPTION_DEFAULTS


def _fit(model: nn.Module, inputs, lengths, mask, labels, steps: int) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(inputs, lengths, mask), labels).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        return (model(inputs, lengths, mask).argmax(1) == labels).float().mean().item()


def test_overfits_a_separable_token_problem():
    torch.manual_seed(0)
    n, steps = 48, 12
    labels = torch.arange(n) % 2
    lengths = torch.randint(2, steps + 1, (n,))
    mask = mask_for(lengths)
    # Class 0 draws ids 1-5, class 1 draws ids 6-10; pads are id 0.
    ids = torch.randint(1, 6, (n, steps)) + 5 * labels[:, None]
    ids = ids.masked_fill(~mask, 0)
    model = ClassifierNet(
        num_classes=2,
        vocab_size=11,
        embedding_dim=8,
        hidden_size=8,
        num_layers=1,
        dropout=0.0,
        recurrent_dropout=0.0,
    )
    assert _fit(model, ids, lengths, mask, labels, steps=30) > 0.9


def test_overfits_a_separable_numeric_problem_with_default_regularisation():
    torch.manual_seed(0)
    n, steps = 48, 12
    labels = torch.arange(n) % 2
    lengths = torch.randint(2, steps + 1, (n,))
    mask = mask_for(lengths)
    x = torch.randn(n, steps, 3)
    x[..., 0] += 2.0 * labels[:, None] - 1.0  # feature 0 drifts +1 for class 1, -1 for class 0
    model = ClassifierNet(num_classes=2, num_features=3, embedding_dim=8, hidden_size=8, pooling="attention")
    assert _fit(model, x, lengths, mask, labels, steps=30) > 0.9
