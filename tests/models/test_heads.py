"""Tests for rnnkit.models.heads: masked pooling and the classification head."""

from __future__ import annotations

import pytest
import torch

from rnnkit.models.encoder import EncoderOutput
from rnnkit.models.heads import AttentionPooling, ClassificationHead, masked_mean

LENGTHS = torch.tensor([5, 1, 3])


def padded_batch(features: int = 6, seed: int = 0):
    """outputs (B, T, F) with NaN garbage at pads, mask (B, T)."""
    gen = torch.Generator().manual_seed(seed)
    mask = torch.arange(5)[None, :] < LENGTHS[:, None]  # (B, T)
    outputs = torch.randn(3, 5, features, generator=gen)
    outputs = outputs.masked_fill(~mask.unsqueeze(-1), float("nan"))
    return outputs, mask


def test_masked_mean_averages_real_steps_only():
    outputs, mask = padded_batch()
    pooled = masked_mean(outputs, mask)
    assert pooled.shape == (3, 6)
    for b, n in enumerate(LENGTHS.tolist()):
        assert torch.allclose(pooled[b], outputs[b, :n].mean(0), atol=1e-6)


def test_masked_mean_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="mask"):
        masked_mean(torch.zeros(2, 3, 4), torch.ones(2, 4, dtype=torch.bool))


def test_attention_puts_zero_weight_on_pads():
    torch.manual_seed(0)
    pool = AttentionPooling(6)
    outputs, mask = padded_batch()
    pooled, weights = pool(outputs, mask)
    assert pooled.shape == (3, 6) and weights.shape == (3, 5)
    assert torch.equal(weights[~mask], torch.zeros_like(weights[~mask]))
    assert (weights[mask] > 0).all()
    assert torch.allclose(weights.sum(1), torch.ones(3))
    assert torch.isfinite(pooled).all()  # NaN garbage at pads did not leak
    assert torch.allclose(pooled[1], outputs[1, 0], atol=1e-6)  # length 1: all weight on step 0
    clean = outputs.nan_to_num(0.0)
    manual = (weights.unsqueeze(-1) * clean).sum(1)  # (B, F)
    assert torch.allclose(pooled, manual, atol=1e-6)


def test_attention_weights_follow_the_scores():
    torch.manual_seed(0)
    pool = AttentionPooling(4, attention_size=3)
    outputs = torch.randn(1, 4, 4)
    mask = torch.ones(1, 4, dtype=torch.bool)
    _, weights = pool(outputs, mask)
    scores = pool.score(torch.tanh(pool.proj(outputs))).squeeze(-1)  # (1, T)
    assert torch.allclose(weights, torch.softmax(scores, dim=1))
    pooled, _ = pool(outputs, mask)
    pooled.sum().backward()
    assert pool.proj.weight.grad.abs().sum() > 0 and pool.score.weight.grad.abs().sum() > 0


def encoder_output(features: int = 6) -> tuple[EncoderOutput, torch.Tensor]:
    outputs, mask = padded_batch(features)
    outputs = outputs.masked_fill(~mask.unsqueeze(-1), 0.0)  # encoder contract: pads are 0
    final = torch.randn(3, features)
    return EncoderOutput(outputs=outputs, final=final), mask


@pytest.mark.parametrize("pooling", ["last", "attention", "mean"])
def test_head_shapes_for_all_poolings(pooling):
    torch.manual_seed(0)
    head = ClassificationHead(6, 4, pooling=pooling, dropout=0.1).eval()
    enc, mask = encoder_output()
    logits = head(enc, mask)
    assert logits.shape == (3, 4)
    assert torch.isfinite(logits).all()


def test_head_pooling_picks_the_right_vector():
    torch.manual_seed(0)
    enc, mask = encoder_output()
    last = ClassificationHead(6, 2, pooling="last").eval()
    assert torch.allclose(last(enc, mask), last.out(enc.final))
    changed = EncoderOutput(outputs=torch.randn_like(enc.outputs), final=enc.final)
    assert torch.equal(last(changed, mask), last(enc, mask))  # "last" reads only .final
    mean = ClassificationHead(6, 2, pooling="mean").eval()
    assert torch.allclose(mean(enc, mask), mean.out(masked_mean(enc.outputs, mask)))


def test_head_dropout_only_in_training():
    torch.manual_seed(0)
    head = ClassificationHead(64, 3, pooling="last", dropout=0.5)
    enc = EncoderOutput(outputs=torch.randn(2, 4, 64), final=torch.randn(2, 64))
    mask = torch.ones(2, 4, dtype=torch.bool)
    head.eval()
    assert torch.equal(head(enc, mask), head(enc, mask))
    head.train()
    assert not torch.equal(head(enc, mask), head(enc, mask))


def test_head_rejects_unknown_pooling():
    with pytest.raises(ValueError, match="max") as info:
        ClassificationHead(6, 2, pooling="max")
    assert "attention" in str(info.value)
    with pytest.raises(ValueError, match="dropout"):
        ClassificationHead(6, 2, dropout=1.5)
