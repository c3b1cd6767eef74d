"""CRF against brute-force enumeration; masking of the tagger (pads never change real outputs)."""

from __future__ import annotations

import itertools

import pytest
import torch

from rnnkit.models.tagger import CRF, TokenTagger


def brute_force(crf: CRF, emissions: torch.Tensor, length: int):
    """(log partition, best path) of one sequence by enumerating all K**length paths."""
    k = crf.num_tags
    scores = {}
    for path in itertools.product(range(k), repeat=length):
        tags = torch.tensor([path])
        mask = torch.ones(1, length, dtype=torch.bool)
        scores[path] = float(crf.path_score(emissions[None, :length], tags, mask)[0].detach())
    values = torch.tensor(list(scores.values()), dtype=torch.float64)
    return float(torch.logsumexp(values, 0)), max(scores, key=scores.get)


def test_crf_log_partition_and_viterbi_equal_brute_force():
    torch.manual_seed(0)
    k, lengths = 3, [4, 1, 3, 2]
    crf = CRF(k).double()
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    emissions = torch.randn(len(lengths), max(lengths), k, dtype=torch.float64)
    mask = torch.arange(max(lengths))[None] < torch.tensor(lengths)[:, None]
    log_z = crf.log_partition(emissions, mask)
    best = crf.viterbi(emissions, mask)
    for b, n in enumerate(lengths):
        want_z, want_path = brute_force(crf, emissions[b], n)
        assert float(log_z[b].detach()) == pytest.approx(want_z, abs=1e-9)
        assert best[b, :n].tolist() == list(want_path)
    # nll is a proper negative log-probability: >= 0, and probabilities of all paths sum to one
    tags = best.masked_fill(~mask, -100)
    assert (crf.nll(emissions, tags, mask) >= 0).all()


@pytest.mark.parametrize("options", [dict(), dict(crf=True), dict(num_chars=12, char_encoder="lstm"),
                                     dict(num_chars=12, char_encoder="cnn", crf=True)])
def test_pad_values_do_not_change_outputs_on_real_positions(options):
    torch.manual_seed(0)
    model = TokenTagger(vocab_size=20, num_tags=4, embedding_dim=8, hidden_size=8, num_layers=2,
                        word_dropout=0.5, **options).eval()
    lengths = torch.tensor([5, 3, 1])
    mask = torch.arange(5)[None] < lengths[:, None]
    inputs = torch.randint(2, 20, (3, 5))
    chars = torch.randint(1, 12, (3, 5, 4))
    char_lengths = torch.randint(1, 5, (3, 5))
    out1 = model(inputs.masked_fill(~mask, 0), lengths, mask, chars.masked_fill(~mask[..., None], 0),
                 char_lengths.masked_fill(~mask, 0))
    # garbage at word pads, and at character positions past each word's length
    garbage_chars = torch.where(torch.arange(4)[None, None] < char_lengths[..., None], chars, 11)
    garbage_chars = torch.where(mask[..., None], garbage_chars, 7)
    wide = torch.cat([garbage_chars, torch.full((3, 5, 3), 5)], dim=2)  # a wider char pad than needed
    out2 = model(inputs.masked_fill(~mask, 19), lengths, mask, wide, char_lengths.masked_fill(~mask, 3))
    assert torch.allclose(out1[mask], out2[mask], atol=1e-6)
    # the first sentence alone (no batch neighbours, no padding) gives the same emissions
    alone = model(inputs[:1], lengths[:1], mask[:1], garbage_chars[:1], char_lengths[:1])
    assert torch.allclose(alone[0], out1[0], atol=1e-6)
    assert torch.equal(model.decode(out1, mask)[mask], model.decode(out2, mask)[mask])


def test_word_dropout_only_in_training():
    torch.manual_seed(0)
    model = TokenTagger(vocab_size=50, num_tags=3, embedding_dim=4, hidden_size=4, num_layers=1, dropout=0.0,
                        recurrent_dropout=0.0, word_dropout=0.9)
    inputs, lengths = torch.randint(2, 50, (2, 6)), torch.tensor([6, 6])
    mask = torch.ones(2, 6, dtype=torch.bool)
    model.eval()
    assert torch.equal(model(inputs, lengths, mask), model(inputs, lengths, mask))
    model.train()
    assert not torch.equal(model(inputs, lengths, mask), model(inputs, lengths, mask))
