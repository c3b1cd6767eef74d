"""Encoder-decoder with attention: decoders against exhaustive search, masking, fused vs stepwise paths."""

import math

import pytest
import torch

from rnnkit.models.seq2seq import (
    Seq2Seq,
    beam_search,
    greedy_decode,
    reorder_state,
    sample_decode,
    sequence_log_prob,
    teacher_forcing_ratio,
)

BOS, EOS = 2, 3


def tiny(attention="additive", cell="lstm", target_vocab=6, max_target_length=2, decoder_layers=1, seed=0,
         sharpen=6.0):
    torch.manual_seed(seed)
    model = Seq2Seq(source_vocab=7, target_vocab=target_vocab, bos_id=BOS, eos_id=EOS, embedding_dim=8,
                    hidden_size=12, num_layers=1, cell=cell, dropout=0.0, recurrent_dropout=0.0,
                    attention=attention, decoder_layers=decoder_layers, max_target_length=max_target_length)
    with torch.no_grad():  # sharpen the output layer: peaked, input-dependent next-token distributions
        model.output.weight.mul_(sharpen)
    return model.eval()


def source(rows, pad=0):
    lengths = torch.tensor([len(r) for r in rows])
    width = int(lengths.max())
    src = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    mask = torch.arange(width)[None, :] < lengths[:, None]
    return src, lengths, mask


def exhaustive(model, memory_row, limit, alpha):
    """Best (normalised score, ids, log-prob) over EVERY sequence of generatable tokens up to `limit`:
    ended by EOS, or cut at the limit. Enumerated level by level (all prefixes of one length form a batch)."""
    real = [t for t in range(model.target_vocab) if t not in (0, BOS, EOS)]
    prefixes, lps = [()], [0.0]
    state, last = memory_row.state, torch.tensor([BOS])
    best = None
    for depth in range(limit):
        logp, state = model.step(last, state, memory_row.repeat(len(prefixes)))
        logp = logp.tolist()
        grown, grown_lp, parents = [], [], []
        for i, (prefix, lp) in enumerate(zip(prefixes, lps, strict=True)):
            ended = lp + logp[i][EOS]
            candidates = [(prefix, ended, depth + 1)]
            for t in real:
                grown.append(prefix + (t,))
                grown_lp.append(lp + logp[i][t])
                parents.append(i)
                if depth + 1 == limit:
                    candidates.append((prefix + (t,), lp + logp[i][t], limit))
            for ids, total, length in candidates:
                if best is None or total / length**alpha > best[0]:
                    best = (total / length**alpha, ids, total)
        prefixes, lps = grown, grown_lp
        state = reorder_state(state, torch.tensor(parents))
        last = torch.tensor([p[-1] for p in prefixes])
    return best


@pytest.mark.parametrize("alpha", [0.5, 1.0])
@pytest.mark.parametrize("attention", ["additive", "multiplicative"])
@pytest.mark.parametrize("seed", [2, 3])
def test_wide_beam_equals_exhaustive_search(attention, alpha, seed):
    # 4 generatable tokens (<unk> and ids 4-6) + EOS, limit 4: at most 4**3 live + 21 ended hypotheses
    # survive a step, so a beam of 128 prunes nothing and must find the exhaustive optimum
    model = tiny(attention, target_vocab=7, max_target_length=1, seed=seed, sharpen=3.0)
    limit = 4
    src, lengths, mask = source([[1, 4, 5], [6, 2], [3, 3, 3]])
    memory = model.encode(src, lengths, mask)
    hyps = beam_search(model, memory, beam=128, length_penalty=alpha, max_length=limit)
    for i, hyp in enumerate(hyps):
        row = model.encode(src[i:i + 1, :lengths[i]], lengths[i:i + 1], mask[i:i + 1, :lengths[i]])
        norm, ids, lp = exhaustive(model, row, limit, alpha)
        assert hyp.ids == ids
        assert hyp.score == pytest.approx(lp, abs=1e-4)


def test_the_exhaustive_case_is_not_trivial():
    """In the setting above greedy search misses the optimum that the wide beam finds."""
    model = tiny("additive", target_vocab=7, max_target_length=1, seed=2, sharpen=3.0)
    src, lengths, mask = source([[1, 4, 5], [6, 2], [3, 3, 3]])
    memory = model.encode(src, lengths, mask)
    wide = [h.ids for h in beam_search(model, memory, beam=128, length_penalty=1.0, max_length=4)]
    assert wide != [h.ids for h in greedy_decode(model, memory, max_length=4)]
    assert len({t for ids in wide for t in ids}) >= 2


def test_beam_width_one_is_greedy():
    model = tiny("multiplicative", target_vocab=9, max_target_length=5, decoder_layers=2)
    src, lengths, mask = source([[1, 2, 3, 4], [5, 6], [6, 5, 4, 3, 2, 1]])
    memory = model.encode(src, lengths, mask)
    greedy = greedy_decode(model, memory)
    beam1 = beam_search(model, memory, beam=1, length_penalty=1.0)
    assert [h.ids for h in beam1] == [h.ids for h in greedy]
    assert [h.score for h in beam1] == pytest.approx([h.score for h in greedy], abs=1e-5)


def test_beam_finds_at_least_the_greedy_score_without_normalisation():
    model = tiny(target_vocab=9, max_target_length=5, seed=4)
    src, lengths, mask = source([[1, 2, 3], [4, 5, 6, 1], [2, 2]])
    memory = model.encode(src, lengths, mask)
    greedy = greedy_decode(model, memory)
    beam = beam_search(model, memory, beam=4, length_penalty=0.0)
    assert all(b.score >= g.score - 1e-5 for b, g in zip(beam, greedy, strict=True))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_source_padding_does_not_change_decoder_outputs(cell):
    model = tiny(cell=cell, target_vocab=8)
    src, lengths, mask = source([[1, 2, 3, 4, 5], [6, 5]])
    target = torch.tensor([[BOS, 4, 5, 6], [BOS, 7, 0, 0]])
    clean = model(src, lengths, mask, target)
    garbage = src.masked_fill(~mask, 6)  # pads hold real token ids now
    assert torch.allclose(model(garbage, lengths, mask, target), clean, atol=1e-6)
    alone = model(src[1:, :2], lengths[1:], mask[1:, :2], target[1:, :2])  # the short row without batch padding
    assert torch.allclose(alone, clean[1:, :2], atol=1e-5)
    memory = model.encode(garbage, lengths, mask)
    assert [h.ids for h in beam_search(model, memory, 3)] == \
        [h.ids for h in beam_search(model, model.encode(src, lengths, mask), 3)]


def test_fused_teacher_forcing_equals_the_decoding_steps():
    model = tiny(target_vocab=8, decoder_layers=2)
    src, lengths, mask = source([[1, 2, 3], [4, 5]])
    target = torch.tensor([[BOS, 4, 5, 6], [BOS, 7, 4, 0]])
    fused = torch.log_softmax(model(src, lengths, mask, target), -1)  # (B, L, V)
    memory = model.encode(src, lengths, mask)
    state = memory.state
    for t in range(target.shape[1]):
        logp, state = model.step(target[:, t], state, memory)
        assert torch.allclose(logp, fused[:, t], atol=1e-5)


def test_scheduled_sampling_at_ratio_one_matches_the_fused_path():
    model = tiny(target_vocab=8)
    src, lengths, mask = source([[1, 2, 3], [4, 5]])
    target = torch.tensor([[BOS, 4, 5, 6], [BOS, 7, 4, 0]])
    memory = model.encode(src, lengths, mask)
    # ratio 1 - 1e-9 takes the step loop, and (almost surely) feeds gold tokens every step
    looped = model._scheduled_sampling(memory, target, 1 - 1e-9)
    assert torch.allclose(looped, model(src, lengths, mask, target), atol=1e-5)


def test_teacher_forcing_schedule_is_a_pure_function_of_the_step():
    values = [teacher_forcing_ratio(s, 1.0, 0.5, 100) for s in (0, 50, 100, 1000)]
    assert values == [1.0, 0.75, 0.5, 0.5]
    assert teacher_forcing_ratio(None, 1.0, 0.0, 100) == 1.0  # evaluation always teacher-forces
    assert [teacher_forcing_ratio(s, 1.0, 0.5, 100) for s in (0, 50, 100, 1000)] == values  # no hidden state
    assert teacher_forcing_ratio(7, 0.9, 0.2, 0) == 0.2


def test_sampling_is_seeded_and_top_k_one_is_greedy():
    model = tiny(target_vocab=9, max_target_length=5)
    src, lengths, mask = source([[1, 2, 3], [4, 5, 6, 1]] * 4)
    memory = model.encode(src, lengths, mask)

    def draw(seed, **kw):
        return [h.ids for h in sample_decode(model, memory, generator=torch.Generator().manual_seed(seed), **kw)]

    assert draw(1, temperature=1.5) == draw(1, temperature=1.5)
    assert len({tuple(map(tuple, draw(s, temperature=3.0))) for s in range(5)}) > 1
    assert draw(2, top_k=1) == [h.ids for h in greedy_decode(model, memory)]
    scored = sample_decode(model, memory, generator=torch.Generator().manual_seed(0))
    row = model.encode(src[:1], lengths[:1], mask[:1])
    seq = list(scored[0].ids) + ([EOS] if len(scored[0].ids) < model.decode_limit(None) else [])
    assert scored[0].score == pytest.approx(sequence_log_prob(model, row, seq), abs=1e-4)
    assert all(math.isfinite(h.score) for h in scored)


@pytest.mark.parametrize("cell, decoder_layers, seed, sharpen", [("lstm", 1, 1, 6.0), ("gru", 2, 6, 2.0)])
def test_attention_weights_are_the_ones_decoding_used(cell, decoder_layers, seed, sharpen):
    """The report's heat map: teacher forcing on BOS + the decoded tokens gives, row for row, the attention
    weights greedy decoding computed at each step (no input feeding), and none on source pads."""
    model = tiny(cell=cell, decoder_layers=decoder_layers, max_target_length=4, seed=seed, sharpen=sharpen)
    src, lengths, mask = source([[4, 5, 6, 1, 5], [6, 4]])
    seen = []
    handle = model.attention.register_forward_hook(lambda mod, args, out: seen.append(out[1]))  # (N, 1, S) a step
    try:
        hyps = greedy_decode(model, model.encode(src, lengths, mask), max_length=6)
    finally:
        handle.remove()
    assert all(0 < len(h.ids) < 6 for h in hyps)  # each ended with EOS before the limit: every row is a step
    stepwise = torch.cat(seen, dim=1)  # (N, steps, S)
    for row, hyp in enumerate(hyps):
        target_in = torch.tensor([[BOS, *hyp.ids]])
        weights = model.attention_weights(src[row:row + 1], lengths[row:row + 1], mask[row:row + 1], target_in)[0]
        assert weights.shape == (len(hyp.ids) + 1, src.shape[1])
        torch.testing.assert_close(weights, stepwise[row, :len(hyp.ids) + 1], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(weights.sum(-1), torch.ones(len(hyp.ids) + 1))
        assert bool((weights[:, int(lengths[row]):] == 0).all())
