"""Issue 12, items 1-2 (data side): what head / tail / head+tail truncation keeps, the window arithmetic the data
path and the windowed model share, the counts of what a cut drops, the auto rule, and a vocabulary that holds
exactly the tokens the model sees."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from rnnkit import config as C
from rnnkit.data.collate import Example, truncate_examples
from rnnkit.data.longseq import (
    AUTO_HIERARCHICAL_FACTOR,
    AUTO_WINDOW_SHARE,
    Truncation,
    Windows,
    choose_long_sequences,
    cut_counts,
    head_steps,
    kept_slices,
)
from rnnkit.data.pipeline import Preprocessing, load_file_for_inference, prepare_data
from rnnkit.data.sampler import BucketBatchSampler
from rnnkit.errors import ConfigError
from rnnkit.models.windows import window_layout


def test_head_steps_takes_a_share_or_a_count_and_always_leaves_both_ends():
    assert head_steps(512, 0.25) == 128  # Sun et al.'s head of 128 at 512 (their tail 382 is 510 - 128)
    assert head_steps(512, 128) == 128 and head_steps(512, 128.0) == 128
    assert head_steps(10, 0.01) == 1 and head_steps(10, 0.99) == 9  # a share never leaves an end empty
    for bad, limit in ((512, 512), (600, 512), (12.5, 512), (0, 512), (-1, 512), (0.5, 1)):
        with pytest.raises(ValueError):
            head_steps(limit, bad)


@pytest.mark.parametrize(("keep", "expected"), [
    ("head", [slice(0, 5)]),
    ("tail", [slice(7, 12)]),
    ("head_tail", [slice(0, 2), slice(9, 12)]),  # head 0.4 of 5: the first 2 steps and the last 3
])
def test_kept_slices_cover_exactly_the_limit_in_order(keep, expected):
    head = 0.4  # 0.4 * 5 = 2 steps from the start, 3 from the end
    got = kept_slices(12, 5, keep, head)
    assert got == expected
    kept = [i for s in got for i in range(12)[s]]
    assert len(kept) == 5 and kept == sorted(set(kept))
    assert kept_slices(5, 5, keep, head) == [slice(0, 5)] == kept_slices(5, 9, keep, head)  # nothing to cut


def test_head_tail_keeps_the_first_k_and_last_m_tokens_and_numeric_steps():
    doc = [f"w{i}" for i in range(20)]
    cut = Truncation(8, "head_tail", 3)
    assert cut.cut(doc) == ["w0", "w1", "w2", "w15", "w16", "w17", "w18", "w19"]
    assert cut.describe() == "head 3 + tail 5 kept"
    assert cut.to_dict() == {"limit": 8, "by": "data.max_length", "keep": "head_tail", "head": 3, "tail": 5}
    examples = [Example("a", torch.arange(20, dtype=torch.float32).reshape(10, 2)),
                Example("b", torch.arange(1, 21)), Example("c", torch.arange(1, 4))]
    out, n = truncate_examples(examples, 4, keep="head_tail", head=0.5)
    assert n == 2
    assert out[0].inputs.tolist() == [[0, 1], [2, 3], [16, 17], [18, 19]]  # steps 0, 1, 8, 9: whole rows of channels
    assert out[1].inputs.tolist() == [1, 2, 19, 20]
    assert out[2] is examples[2]
    with pytest.raises(ValueError, match="both ends"):
        truncate_examples(examples, 1, keep="head_tail")


def test_windows_of_the_data_path_are_the_windows_the_model_cuts():
    """`Windows` (cap, counts, reports) and `models.windows.window_layout` (what is encoded) agree for every
    length, with and without overlap."""
    for length, stride in ((4, 4), (4, 2), (5, 3), (1, 1), (7, 1)):
        win = Windows(length, stride, max_windows=3)
        lengths = torch.arange(1, 40)
        doc, start, size = window_layout(lengths, length, stride)
        for d, steps in enumerate(lengths.tolist()):
            mine = (doc == d).nonzero().flatten()
            assert len(mine) == win.count(steps)
            assert size[mine].tolist() == win.window_lengths(steps)
            assert start[mine].tolist() == [w * stride for w in range(win.count(steps))]
            assert int((start[mine] + size[mine]).max()) == steps  # the last window reaches the end
            assert all(s + n <= steps for s, n in zip(start[mine].tolist(), size[mine].tolist(), strict=True))
        assert win.count(win.span) == 3 and win.count(win.span + 1) == 4  # span: what max_windows windows cover
    assert Windows(512, 512, 8).span == 4096 and Windows(512, 256, 8).span == 2304
    with pytest.raises(ValueError, match="skip steps"):
        Windows(4, 5, 2)


def test_the_bucketing_sampler_batches_documents_of_similar_window_counts():
    """The window count never falls as a document grows, so the sampler's sort by length is a sort by window count
    (and, within one count, by the length of the last window): bucketed batches hold documents of one or two
    window counts, random ones of many."""
    win = Windows(64, 48, 8)
    counts = [win.count(n) for n in range(1, win.span + 1)]
    assert counts == sorted(counts) and counts[-1] == 8
    lengths = np.random.default_rng(0).integers(20, win.span + 1, size=3200).tolist()

    def spread(bucketing: bool) -> list[int]:
        sampler = BucketBatchSampler(lengths, 32, bucketing=bucketing, chunk_batches=100, seed=0)
        return [max(win.count(lengths[i]) for i in b) - min(win.count(lengths[i]) for i in b)
                for b in sampler.epoch_batches(0)]

    assert max(spread(True)) <= 1 and min(spread(False)) >= 4


def test_cut_counts_rows_and_positions():
    assert cut_counts([3, 10, 6, 20], 5) == {"rows": 4, "cut_rows": 3, "cut_rows_share": 0.75, "positions": 39,
                                             "dropped_positions": 1 + 5 + 15, "dropped_share": 21 / 39}
    assert cut_counts([], 5)["cut_rows_share"] == 0.0


def test_auto_rule_reads_windows_from_a_tenth_of_long_rows_and_says_why():
    nine = [100] * 91 + [600] * 9  # 9% longer than 512
    ten = [100] * 90 + [600] * 10
    assert AUTO_WINDOW_SHARE == 0.10
    mode, why = choose_long_sequences("auto", nine, 512, supported=("truncate", "window"))
    assert mode == "truncate" and why == ("auto: 9% of the training rows (9 of 100) are longer than "
                                          "data.max_length=512, < 10%")
    mode, why = choose_long_sequences("auto", ten, 512, supported=("truncate", "window"))
    assert mode == "window" and why.endswith("(10 of 100) are longer than data.max_length=512, >= 10%")
    assert choose_long_sequences("auto", ten, 512) == ("truncate", "auto: this task truncates")
    assert choose_long_sequences("truncate", ten, 512, supported=("truncate", "window"))[0] == "truncate"
    assert choose_long_sequences("window", nine, 512, supported=("truncate", "window")) == (
        "window", "data.long_sequences window")
    with pytest.raises(ValueError, match="data.long_sequences.*not available"):
        choose_long_sequences("window", ten, 512)


def test_auto_rule_reads_documents_of_several_windows_hierarchically():
    both = ("truncate", "window", "hierarchical")
    assert AUTO_HIERARCHICAL_FACTOR == 4
    nine = [100] * 80 + [600] * 11 + [2049] * 9  # 20% longer than 512, 9% longer than 4 x 512
    ten = [100] * 80 + [600] * 10 + [2049] * 10
    assert choose_long_sequences("auto", nine, 512, supported=both)[0] == "window"
    mode, why = choose_long_sequences("auto", ten, 512, supported=both)
    assert mode == "hierarchical" and why == ("auto: 10% of the training rows (10 of 100) are longer than 4 x "
                                              "data.max_length=512 (2048 steps), >= 10%: several windows each, "
                                              "read in order")
    assert choose_long_sequences("auto", ten, 512, supported=("truncate", "window"))[0] == "window"
    assert choose_long_sequences("auto", [2048] * 10, 512, supported=both)[0] == "window"  # 4 x exactly: not over
    assert choose_long_sequences("hierarchical", nine, 512, supported=both) == (
        "hierarchical", "data.long_sequences hierarchical")


def _reviews(path, docs):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["review", "stars"])
        w.writerows(docs)
    return path


def _cfg(train, *extra):
    return C.resolve(None, [f"data.train={train}", "data.text_column=review", "data.label_column=stars",
                            "data.test_fraction=0", *extra])


def test_head_tail_prepares_exactly_the_kept_tokens_counts_them_and_builds_the_vocabulary_from_them(tmp_path):
    rows = [(f"good film number{i}", "pos" if i % 2 else "neg") for i in range(40)]
    long = " ".join([f"head{j}" for j in range(6)] + [f"mid{j}" for j in range(100)] + [f"tail{j}" for j in range(6)])
    train = _reviews(tmp_path / "train.csv", [*rows, (long, "pos")])
    val = _reviews(tmp_path / "val.csv", rows[:12])
    data = prepare_data(_cfg(train, f"data.val={val}", "data.max_length=10", "data.truncate_keep=head_tail",
                             "data.truncate_head=4"))
    (doc,) = [ex for ex in data.datasets["train"].examples if len(ex) == 10]
    words = data.prep.vocab.decode(doc.inputs.tolist())
    assert words == ["head0", "head1", "head2", "head3", "tail0", "tail1", "tail2", "tail3", "tail4", "tail5"]
    # the vocabulary holds exactly the tokens the model sees (min_freq 1): the kept ends, no middle
    seen = {t for ds in data.datasets.values() for ex in ds.examples
            for t in data.prep.vocab.decode(ex.inputs.tolist())}
    specials = set(data.prep.vocab.tokens[:2])  # pad, unk
    assert set(data.prep.vocab.tokens) - specials == seen - specials and "<unk>" not in seen
    assert "head4" not in data.prep.vocab and "mid0" not in data.prep.vocab and "tail0" in data.prep.vocab
    cut = data.report["truncation"]
    assert cut == {"limit": 10, "by": "data.max_length", "keep": "head_tail", "head": 4, "tail": 6, "splits": {
        "train": {"rows": 41, "cut_rows": 1, "cut_rows_share": 1 / 41, "positions": 40 * 3 + 112,
                  "dropped_positions": 102, "dropped_share": 102 / (40 * 3 + 112)},
        "val": {"rows": 12, "cut_rows": 0, "cut_rows_share": 0.0, "positions": 36, "dropped_positions": 0,
                "dropped_share": 0.0}}}
    assert data.report["truncated"] == {"train": 1, "val": 0}
    assert data.report["long_sequences"] == {
        "mode": "truncate", "reason": "auto: 2% of the training rows (1 of 41) are longer than data.max_length=10, "
                                      "< 10%"}


def test_a_head_that_leaves_no_tail_is_a_config_error_naming_the_key(tmp_path):
    train = _reviews(tmp_path / "train.csv", [(f"good film number{i} " * 5, "pos" if i % 2 else "neg")
                                             for i in range(40)])
    with pytest.raises(ConfigError, match="data.truncate_head.*leaves no tail"):
        prepare_data(_cfg(train, "data.max_length=10", "data.truncate_keep=head_tail", "data.truncate_head=10",
                          "data.long_sequences=truncate"))
    with pytest.raises(ConfigError, match="data.truncate_head.*neither a share"):
        _cfg(train, "data.truncate_head=2.5")
    with pytest.raises(ConfigError, match="data.window_stride.*longer than the window"):
        _cfg(train, "data.window_length=8", "data.window_stride=9")


def test_windowed_numeric_documents_are_capped_by_max_windows_and_predicted_with_the_same_cut(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "series.jsonl"
    lengths = [int(n) for n in rng.integers(5, 60, size=60)]
    with open(path, "w") as fh:
        for i, n in enumerate(lengths):
            fh.write(json.dumps({"sequence": rng.standard_normal((n, 2)).round(3).tolist(), "label": f"c{i % 2}"})
                     + "\n")
    cfg = C.resolve(None, [f"data.train={path}", "data.max_length=16", "data.max_windows=2", "data.window_stride=8",
                           "data.truncate_keep=tail", "data.val_fraction=0.2", "data.test_fraction=0"])
    data = prepare_data(cfg, tmp_path / "run")
    assert data.prep.long_sequences == "window"  # most series are longer than 16 steps, none than 4 x 16
    span = 8 + 16  # two windows of 16, 8 apart
    assert max(max(ds.lengths) for ds in data.datasets.values()) == span
    assert data.report["truncation"]["by"] == "data.max_windows" and data.report["truncation"]["limit"] == span
    counts = data.report["truncation"]["splits"]
    assert sum(c["cut_rows"] for c in counts.values()) == sum(n > span for n in lengths)
    assert sum(c["dropped_positions"] for c in counts.values()) == sum(n - span for n in lengths if n > span)
    windows = data.report["long_sequences"]["splits"]["train"]
    assert windows["max_windows"] == 2 and windows["documents"] == counts["train"]["rows"]
    # the median that model.frontend auto reads is the training windows' (each at most 16 steps)
    assert data.prep.median_length <= 16
    # inference cuts the same way (the mode is saved with the preprocessing)
    prep = Preprocessing.load(tmp_path / "run")
    assert prep.long_sequences == "window"
    dataset, records, n_cut = load_file_for_inference(cfg, prep, path, with_targets=True)
    assert n_cut == sum(n > span for n in lengths) and len(dataset) == len(records) == len(lengths)
    for ex, rec in zip(dataset.examples, records, strict=True):
        want = prep.standardizer.transform(rec.values)[-span:]
        assert torch.allclose(ex.inputs, torch.from_numpy(np.ascontiguousarray(want, dtype=np.float32)))
