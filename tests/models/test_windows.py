"""Issue 12, item 2 (model side): a classifier that reads documents in sliding windows. One output per document;
neither padded windows nor the pad steps inside a document's last window change it (a document gives the same
logits alone and in a batch with longer documents); a document no longer than one window is read exactly as
without windows; gradients reach every window."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit.data.collate import Example, collate
from rnnkit.data.longseq import Windows
from rnnkit.models.classifier import build_classifier
from rnnkit.models.windows import cut_windows, to_grid, window_layout

SMALL = {"hidden_size": 12, "embedding_dim": 8, "num_layers": 2, "dropout": 0.1, "recurrent_dropout": 0.1}


def _logits(model, docs, pad_value=0.0):
    batch = collate([Example(str(i), d) for i, d in enumerate(docs)], pad_value=pad_value)
    with torch.no_grad():
        return model(batch.inputs, batch.lengths, batch.mask)


def test_layout_cut_and_grid_on_a_known_batch():
    lengths = torch.tensor([3, 10, 1])
    doc, start, size = window_layout(lengths, 4, 3)  # windows start at 0, 3, 6, ... until one reaches the end
    assert doc.tolist() == [0, 1, 1, 1, 2] and start.tolist() == [0, 0, 3, 6, 0] and size.tolist() == [3, 4, 4, 4, 1]
    inputs = torch.tensor([[1, 2, 3, 0, 0, 0, 0, 0, 0, 0], list(range(10, 20)), [7] + [0] * 9])
    windows, lengths_w, mask = cut_windows(inputs, doc, start, size)
    assert lengths_w.tolist() == [3, 4, 4, 4, 1] and lengths_w.device.type == "cpu"
    assert windows[mask].tolist() == [1, 2, 3, 10, 11, 12, 13, 13, 14, 15, 16, 16, 17, 18, 19, 7]
    grid, grid_mask = to_grid(torch.arange(5.0).unsqueeze(1), doc, 3)
    assert grid.squeeze(-1).tolist() == [[0, 0, 0], [1, 2, 3], [4, 0, 0]]
    assert grid_mask.tolist() == [[True, False, False], [True, True, True], [True, False, False]]


@pytest.mark.parametrize("combine", ["mean", "attention", "rnn"])
@pytest.mark.parametrize("kind", ["tokens", "numeric", "numeric_conv"])
def test_a_document_gets_the_same_logits_alone_and_in_a_batch_of_longer_ones(combine, kind):
    torch.manual_seed(0)
    options = dict(SMALL, frontend="conv" if kind == "numeric_conv" else "none",
                   **({"frontend_reduction": 2} if kind == "numeric_conv" else {}))
    model = build_classifier(options, num_classes=3, window_length=16, window_stride=10, window_combine=combine,
                             **({"vocab_size": 40} if kind == "tokens" else {"num_features": 2})).eval()
    sizes = (5, 16, 17, 26, 61, 130)  # one window, exactly one, just over, two strides, many
    docs = [torch.randint(1, 40, (n,)) if kind == "tokens" else torch.randn(n, 2) for n in sizes]
    together = _logits(model, docs)  # (6, 3): padded to 130 steps, 13 windows for the longest
    assert together.shape == (len(docs), 3)
    for i, d in enumerate(docs):
        alone = _logits(model, [d])[0]
        assert torch.allclose(alone, together[i], atol=1e-6, rtol=0), (sizes[i], (alone - together[i]).abs().max())
    if kind != "tokens":  # garbage in the pad positions changes nothing
        assert torch.allclose(_logits(model, docs, pad_value=float("nan")), together, atol=1e-6, rtol=0)


@pytest.mark.parametrize("combine", ["mean", "attention"])
def test_a_document_within_one_window_is_read_as_without_windows(combine):
    torch.manual_seed(1)
    plain = build_classifier(dict(SMALL), num_classes=2, vocab_size=30).eval()
    windowed = build_classifier(dict(SMALL), num_classes=2, vocab_size=30, window_length=20,
                                window_combine=combine).eval()
    windowed.load_state_dict(plain.state_dict(), strict=combine == "mean")  # attention adds its own weights
    docs = [torch.randint(1, 30, (n,)) for n in (3, 20, 11)]
    assert torch.allclose(_logits(windowed, docs), _logits(plain, docs), atol=1e-6, rtol=0)
    long = [torch.randint(1, 30, (45,))]
    assert not torch.allclose(_logits(windowed, long), _logits(plain, long))  # 3 windows are not one pass


def test_mean_combine_is_the_mean_of_each_windows_own_logits():
    torch.manual_seed(2)
    model = build_classifier(dict(SMALL), num_classes=2, vocab_size=30, window_length=8, window_stride=8).eval()
    plain = build_classifier(dict(SMALL), num_classes=2, vocab_size=30).eval()
    plain.load_state_dict(model.state_dict())
    doc = torch.randint(1, 30, (21,))  # windows 0-8, 8-16, 16-21
    by_hand = torch.stack([_logits(plain, [doc[s:s + 8]])[0] for s in (0, 8, 16)]).mean(0)
    assert torch.allclose(_logits(model, [doc])[0], by_hand, atol=1e-6, rtol=0)


def test_gradients_reach_every_window_and_the_attention():
    torch.manual_seed(3)
    model = build_classifier(dict(SMALL), num_classes=2, vocab_size=30, window_length=6, window_combine="attention")
    docs = [torch.randint(1, 30, (n,)) for n in (20, 7)]
    batch = collate([Example(str(i), d, torch.tensor(i)) for i, d in enumerate(docs)])
    loss = torch.nn.functional.cross_entropy(model(batch.inputs, batch.lengths, batch.mask), batch.targets)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    used = model.embedding.weight.grad.abs().sum(1) > 0
    assert used[docs[0][-1]] and used[docs[0][0]] and used[docs[1]].all()  # first and last window alike


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_hierarchical_padded_equals_packed_on_valid_positions_and_pads_change_nothing(cell):
    """The hierarchical encoder (combine "rnn"): packed at both levels (as on CUDA) and padded (CPU) give the same
    document logits; garbage in the padded steps (and so in the padded windows' places) changes nothing."""
    torch.manual_seed(4)
    options = dict(SMALL, cell=cell, frontend="none")
    padded = build_classifier(dict(options, packing="never"), num_classes=3, num_features=2, window_length=8,
                              window_combine="rnn").eval()
    packed = build_classifier(dict(options, packing="always"), num_classes=3, num_features=2, window_length=8,
                              window_combine="rnn").eval()
    packed.load_state_dict(padded.state_dict())
    assert packed.windows.document.packing == "always"
    docs = [torch.randn(n, 2) for n in (3, 8, 9, 40, 17)]  # 1, 1, 2, 5 and 3 blocks
    ref = _logits(padded, docs)
    assert torch.allclose(_logits(packed, docs), ref, atol=1e-6, rtol=0)
    assert torch.allclose(_logits(padded, docs, pad_value=float("nan")), ref, atol=1e-6, rtol=0)
    assert torch.allclose(_logits(packed, docs, pad_value=1e6), ref, atol=1e-6, rtol=0)


def test_hierarchical_reads_the_blocks_in_order_the_mean_does_not():
    torch.manual_seed(5)
    blocks = [torch.randint(1, 30, (8,)) for _ in range(3)]
    doc, swapped = torch.cat(blocks), torch.cat([blocks[2], blocks[1], blocks[0]])
    for combine, order_matters in (("mean", False), ("attention", False), ("rnn", True)):
        model = build_classifier(dict(SMALL), num_classes=2, vocab_size=30, window_length=8,
                                 window_combine=combine).eval()
        same = torch.allclose(_logits(model, [doc]), _logits(model, [swapped]), atol=1e-6, rtol=0)
        assert same != order_matters, combine
    rnn = build_classifier(dict(SMALL), num_classes=2, vocab_size=30, window_length=8, window_combine="rnn")
    assert rnn.windows.document.bidirectional and rnn.windows.document.output_size == rnn.encoder.output_size
    docs = [torch.randint(1, 30, (n,)) for n in (30, 5)]
    batch = collate([Example(str(i), d, torch.tensor(i)) for i, d in enumerate(docs)])
    torch.nn.functional.cross_entropy(rnn(batch.inputs, batch.lengths, batch.mask), batch.targets).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in rnn.windows.document.parameters())


def test_window_settings_are_checked():
    with pytest.raises(ValueError, match="skip steps"):
        build_classifier({}, num_classes=2, vocab_size=5, window_length=4, window_stride=5)
    with pytest.raises(ValueError, match="window combine"):
        build_classifier({}, num_classes=2, vocab_size=5, window_length=4, window_combine="max")
    with pytest.raises(ValueError, match="must not set"):
        build_classifier({"window_length": 4}, num_classes=2, vocab_size=5)


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.integers(1, 120), min_size=1, max_size=6), length=st.integers(1, 40),
       stride_share=st.floats(0.05, 1.0))
def test_property_windows_stay_inside_their_document_and_cover_it(lengths, length, stride_share):
    """Every window belongs to one document, starts and ends inside it, the windows of a document are
    contiguous in the layout, cover all its steps, and number `Windows.count` (the data path's arithmetic)."""
    stride = max(1, min(length, round(length * stride_share)))
    doc, start, size = window_layout(torch.tensor(lengths), length, stride)
    assert doc.tolist() == sorted(doc.tolist())  # document by document, in order
    spec = Windows(length, stride, 10**6)
    for d, n in enumerate(lengths):
        mine = (doc == d).nonzero().flatten()
        assert len(mine) == spec.count(n) and mine.tolist() == list(range(int(mine[0]), int(mine[-1]) + 1))
        covered = set()
        for i in mine.tolist():
            s, k = int(start[i]), int(size[i])
            assert 0 <= s < n and 1 <= k <= length and s + k <= n  # never past the document's end
            covered.update(range(s, s + k))
        assert covered == set(range(n))
        assert [int(size[i]) for i in mine] == spec.window_lengths(n)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), val=st.sampled_from([0.1, 0.2, 0.3]), mode=st.sampled_from(["window",
                                                                                               "hierarchical"]))
def test_property_a_documents_windows_never_straddle_splits(tmp_path, seed, val, mode):
    """Windows are cut inside the model from one example, and an example is one whole document (cut only to the
    windows' span): the splits hold disjoint documents covering every row, each whole, whatever the seed."""
    from fakedata import write_long_documents_csv
    from rnnkit import config as C
    from rnnkit.data.pipeline import prepare_data

    path, lengths = write_long_documents_csv(tmp_path / f"d{seed}.csv", n=60, min_len=20, max_len=90, seed=seed % 7)
    cfg = C.resolve(None, [f"data.train={path}", "data.text_column=review", "data.label_column=stars",
                           "data.max_length=16", f"data.long_sequences={mode}", f"data.split_seed={seed}",
                           f"data.val_fraction={val}", "data.test_fraction=0.2", "data.max_windows=8"])
    data = prepare_data(cfg)
    ids = {split: [ex.id for ex in ds.examples] for split, ds in data.datasets.items()}
    seen = [i for split in ids.values() for i in split]
    assert len(seen) == len(set(seen)) == len(lengths)  # disjoint, every row once
    span = 8 * 16
    for ds in data.datasets.values():
        for ex in ds.examples:
            line = int(ex.id.rsplit(":", 1)[1])
            assert len(ex) == min(lengths[line - 2], span)  # the whole document (line 1 is the header)
