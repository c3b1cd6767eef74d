"""Issue 10: the doctor's rules for the pathologies it misread or missed, each driven across its threshold on
synthetic evidence, and the advice check: every `--set` a finding advises changes the config that will run."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnkit import config as C
from rnnkit.doctor import Diagnosis, format_text, summary_line
from rnnkit.doctor import rules as R
from rnnkit.doctor.checklist import run_checklist
from rnnkit.doctor.evidence import Evidence
from rnnkit.training.schedules import lr_at


def evidence(train, val=None, *, start=2.2, cfg=None, summary=None, steps=(), events=(), inputs=None, val_acc=None,
             signal=None, chance=2.197):
    val = val if val is not None else [t * 1.1 for t in train]
    epochs = [{"kind": "epoch", "epoch": i + 1, "train_loss": t, "val_loss": v} for i, (t, v) in
              enumerate(zip(train, val, strict=True))]
    if val_acc is not None:
        for e, a in zip(epochs, val_acc, strict=False):
            e["val_accuracy"] = a
    pre = {"event": "preflight", "chance_loss": chance, "initial_loss": start, "no_grad": [], "nonfinite_grad": [],
           "shape_problem": None, "parameters": 4, "batch_size": 8, "output_shape": [8, 9], "target_shape": [8],
           "inputs": inputs, "signal": signal}
    return Evidence(Path("run"), cfg or C.Config(), summary or {}, epochs, list(steps), [pre, *events])


def finished(test_accuracy, base=0.0838, **extra):
    return {"metrics": {"test": {"accuracy": test_accuracy, "baselines": {"majority_class": {"accuracy": base}}}},
            "stopped": "early_stopping", "epochs_run": 12, **extra}


def codes(ev):
    return [(f.code, f.severity) for f in R.run_rules(ev)]


# ----------------------------------------------------------------------------- divergence


def test_a_high_learning_rate_with_clipping_is_divergence_not_underfitting():
    """LR 1.0 on JapaneseVowels (the issue's run): the loss climbs from 2.25 to 44 and every step is clipped."""
    cfg = C.resolve(None, ["optim.lr=1.0"])
    steps = [{"kind": "step", "step": i, "grad_norm": 9.9e4, "clipped": True} for i in range(1, 40)]
    ev = evidence([8.68, 24.7, 31.45, 40.99, 43.72, 37.64, 36.6], start=2.246, cfg=cfg, steps=steps,
                  summary=finished(0.2676))
    found = {f.code: f for f in R.run_rules(ev)}
    assert "underfitting" not in found and "baseline.not_beaten" not in found
    f = found["divergence"]
    assert f.severity == "error" and f.repair == {"mode": "restart", "set": ["optim.lr=0.001"]}
    assert "19.5x the loss before training" in f.explanation
    assert "100% of the logged steps were clipped" in f.explanation


@pytest.mark.parametrize(("peak", "fires"), [(2.2 * 1.49, False), (2.2 * 1.51, True)])
def test_divergence_threshold(peak, fires):
    ev = evidence([peak, 1.0, 0.5], start=2.2)
    assert bool(R.divergence(ev)) is fires
    if fires:
        assert R.divergence(ev)[0].severity == "warning"  # it came back below its start


def test_divergence_turns_clipping_on_when_it_was_off():
    cfg = C.resolve(None, ["optim.lr=0.05", "optim.clip_norm=null"])
    (f,) = R.divergence(evidence([9.0, 9.0], start=2.2, cfg=cfg))
    assert f.repair["set"] == ["optim.lr=0.005", "optim.clip_norm=1.0"]


# ----------------------------------------------------------------------------- learning rates and repairs


@pytest.mark.parametrize(("lr", "expected"), [(1e4, 1e-3), (10.0, 1e-3), (0.05, 5e-3), (1e-2, 1e-3), (1e-3, 1e-4)])
def test_a_lower_rate_reaches_the_guides_range_in_one_step(lr, expected):
    assert R.lower_lr(lr) == pytest.approx(expected)


def test_a_nan_from_an_absurd_rate_is_repaired_into_the_guides_range_from_scratch(tmp_path):
    """LR 1e4 without clipping: one repair to 1e-3 with clipping on, and a restart (the last checkpoint holds
    weights that had already diverged), where it used to divide by 10 twice and stop at 100."""
    cfg = C.resolve(None, ["optim.lr=1e4", "optim.clip_norm=null"])
    event = {"event": "nonfinite", "what": "loss", "step": 20, "lr": 1e4, "ids": ["a:1"], "grad_norm": 3.0,
             "last_finite_loss": 6.3e13}
    (f,) = R.nonfinite(evidence([6.3e13], start=2.246, cfg=cfg, events=[event]))
    assert f.repair == {"mode": "restart", "set": ["optim.lr=0.001", "optim.clip_norm=1.0"]}
    assert "diverged" in f.advice[0]


def test_advice_after_repairs_reproduces_all_of_them():
    repairs = [{"event": "repair", "finding": "nonfinite", "mode": "resume",
                "set": ["optim.lr=1e+03", "optim.clip_norm=1.0"]},
               {"event": "repair", "finding": "nonfinite", "mode": "resume", "set": ["optim.lr=100"]}]
    (f,) = R.nonfinite(evidence([2.0, 1.0], events=repairs))
    assert f.advice == ["start the next run with the repaired settings: --set optim.lr=100 --set optim.clip_norm=1.0"]


def test_a_rate_below_min_lr_is_advised_as_one_that_runs():
    cfg = C.resolve(None, ["optim.lr=1e-6"])  # floored at optim.min_lr = 1e-5
    ev = evidence([2.3, 2.26, 2.25, 2.2, 2.1, 1.9, 1.5, 1.0], [2.2, 2.1, 2.0, 1.9, 1.5, 1.2, 1.0, 0.8], start=2.246,
                  cfg=cfg, summary=finished(0.9, stopped="max_epochs"))
    (f,) = [f for f in R.run_rules(ev) if f.code == "underfitting"]
    assert f.severity == "warning" and "below the guide's range" in f.explanation
    assert f.advice[0].startswith("a higher learning rate: --set optim.lr=0.001 ")
    assert R.lr_sets(cfg, 3e-6) == ["optim.lr=3e-06", "optim.min_lr=3e-08"]  # below the floor: the floor moves too


# ----------------------------------------------------------------------------- labels and baselines


def test_shuffled_labels_point_at_the_labels():
    """The issue's shuffled-label run: training loss 2.26 -> 1.6, validation only rising, test at chance."""
    train = [2.24, 2.14, 2.08, 1.99, 1.93, 1.92, 1.8, 1.76, 1.74, 1.63, 1.63, 1.6]
    val = [2.28, 2.26, 2.32, 2.38, 2.43, 2.47, 2.55, 2.58, 2.61, 2.67, 2.68, 2.71]
    shares = {"examples": 243, "channels": 12, "mean": [0.0] * 12, "std": [1.0] * 12, "constant": [],
              "label_channels": [], "label_entropy": 2.197}
    for inputs in (None, shares):  # with the label shares' loss known too, it is not called underfitting
        found = dict(codes(evidence(train, val, start=2.264, summary=finished(0.0649), inputs=inputs)))
        assert found["labels.unpredictable"] == "warning"
        assert "baseline.not_beaten" not in found and "underfitting" not in found


def test_a_majority_only_model_gets_a_finding_and_a_short_run_is_told_to_train_longer():
    train, val = [0.5, 0.3, 0.25], [0.45, 0.4, 0.39]  # down to the loss of the 95/5 label shares (0.199), no lower
    shares = {"examples": 40, "channels": 1, "mean": [0.0], "std": [1.0], "constant": [], "label_channels": [],
              "label_entropy": 0.199}
    ev = evidence(train, val, start=0.69, summary=finished(0.95, base=0.95, epochs_run=3), inputs=shares)
    (f,) = [f for f in R.run_rules(ev) if f.code == "baseline.not_beaten"]
    assert f.severity == "warning" and f.advice[0].startswith("train longer: --set train.max_epochs=")
    assert codes(evidence(train, val, start=0.69, summary=finished(0.97, base=0.95))) == []


def test_a_feature_that_gives_the_label_away_is_named():
    inputs = {"examples": 243, "channels": 13, "mean": [0.0] * 13, "std": [1.0] * 13, "constant": [],
              "label_channels": [12]}
    (f,) = R.inputs(evidence([1.0, 0.5], inputs=inputs))
    assert f.code == "labels.leak" and f.severity == "warning" and "[12]" in f.explanation
    # no channel found, but perfect validation after epoch 1: a note only
    plain = {**inputs, "label_channels": []}
    (note,) = R.inputs(evidence([1.0, 0.5], inputs=plain, val_acc=[1.0, 1.0]))
    assert note.code == "labels.leak" and note.severity == "info"
    assert R.inputs(evidence([1.0, 0.5], inputs=plain, val_acc=[0.9, 1.0])) == []


# ----------------------------------------------------------------------------- inputs


@pytest.mark.parametrize(("mean", "std", "fires"), [(0.1, 1.2, False), (-0.4, 0.3, False), (120.0, 800.0, True),
                                                     (0.0, 0.005, True), (11.0, 1.0, True)])
def test_unscaled_inputs(mean, std, fires):
    cfg = C.resolve(None, ["data.standardize=false"])
    inputs = {"examples": 50, "channels": 2, "mean": [0.0, mean], "std": [1.0, std], "constant": [],
              "label_channels": []}
    found = R.inputs(evidence([1.0, 0.5], cfg=cfg, inputs=inputs))
    assert [f.code for f in found] == (["inputs.unscaled"] if fires else [])
    if fires:
        assert found[0].advice[0].endswith("--set data.standardize=true") and found[0].evidence["channels"] == [1]


def test_constant_inputs_are_named_first():
    inputs = {"examples": 50, "channels": 3, "mean": [1.0] * 3, "std": [0.0] * 3, "constant": [0, 1, 2],
              "label_channels": []}
    ev = evidence([2.2, 2.2, 2.19], start=2.197, inputs=inputs, summary=finished(0.2))
    found = R.run_rules(ev)
    assert found[0].code == "inputs.constant" and found[0].severity == "error"
    (under,) = [f for f in found if f.code == "underfitting"]
    assert under.advice[0].startswith("input channel(s) [0, 1, 2] are constant")


def test_clipping_off_on_long_windows_with_a_high_rate():
    cfg = C.resolve(None, ["optim.clip_norm=null", "optim.lr=0.05"])
    summary = {"train_real_tokens": 200 * 300, "data": {"sizes": {"train": 200}}}
    steps = [{"kind": "step", "step": i, "grad_norm": 40.0 if i == 7 else 1.0} for i in range(1, 12)]
    (f,) = R.clipping_off(evidence([1.0, 0.9], cfg=cfg, summary=summary, steps=steps))
    assert f.code == "clipping.off" and f.severity == "warning"
    assert f.advice == ["turn clipping on: --set optim.clip_norm=1.0"]
    assert R.clipping_off(evidence([1.0, 0.9], summary=summary, steps=steps)) == []  # clipping on: nothing


# ----------------------------------------------------------------------------- what a healthy user reads


def test_a_healthy_early_stopped_run_reads_as_healthy():
    """Validation loss 0.006 -> 0.012 after its best, 100% validation accuracy, early stopping: a note that
    says nothing alarming, and a summary line that marks it as a note."""
    train = [0.5, 0.1, 0.05, 0.01, 0.005, 0.003, 0.002, 0.001]
    val = [0.2, 0.05, 0.01, 0.006, 0.008, 0.01, 0.011, 0.012]
    ev = evidence(train, val, start=2.2, summary=finished(0.98, epochs_run=8))
    (f,) = R.run_rules(ev)
    assert f.code == "overfitting" and f.severity == "info"
    assert "memorises" not in f.explanation and "nothing needs doing" in f.explanation
    line = summary_line(Diagnosis(Path("run"), [f], run_checklist(ev, [f])))
    assert line.startswith("doctor: overfitting (note);")


def test_unknown_checks_are_not_a_clean_bill_of_health():
    ev = evidence([2.0], [1.9], summary=finished(0.84, stopped="max_epochs", epochs_run=1))
    diag = Diagnosis(Path("run"), [], run_checklist(ev, []))
    assert "Validation loss improving?" in diag.unknown
    text = format_text(diag)
    assert "looks healthy" not in text and "not a clean bill of health" in text
    line = summary_line(diag)
    assert " unknown (" in line and "Validation loss improving?" in line.split(" unknown (")[1]


def test_dropout_far_above_the_guide_holds_the_model_back():
    cfg = C.resolve(None, ["model.dropout=0.9"])
    ev = evidence([2.8, 1.2, 0.6, 0.41, 0.39], [1.0, 0.5, 0.2, 0.14, 0.13], start=3.04, cfg=cfg,
                  summary=finished(0.96))
    (f,) = [f for f in R.run_rules(ev) if f.code == "underfitting"]
    assert f.advice[0] == "less dropout: --set model.dropout=0.3 (the guide: 0.3 to 0.5)"
    assert R.underfitting(evidence([2.8, 1.2, 0.6, 0.41, 0.39], [1.0, 0.5, 0.2, 0.14, 0.13], start=3.04,
                                   summary=finished(0.96))) == []  # the same curves at dropout 0.3: fine


# ----------------------------------------------------------------------------- the advice check


def _scenarios():
    lowlr = C.resolve(None, ["optim.lr=1e-6"])
    yield evidence([2.3, 2.26, 2.25, 2.2, 2.1], [2.2, 2.1, 2.0, 1.9, 1.5], start=2.246, cfg=lowlr,
                   summary=finished(0.9, stopped="max_epochs"))
    yield evidence([8.7, 24.7, 31.5], start=2.246, cfg=C.resolve(None, ["optim.lr=1.0"]))
    yield evidence([9.0, 9.0], start=2.2, cfg=C.resolve(None, ["optim.lr=10", "optim.clip_norm=null"]))
    yield evidence([0.9, 0.7, 0.5, 0.4, 0.3, 0.2], [1.0, 0.9, 0.96, 0.97, 0.98, 1.3],
                   cfg=C.resolve(None, ["model.dropout=0.0", "optim.weight_decay=0.0"]))
    yield evidence([0.9, 0.7, 0.5, 0.4, 0.3, 0.2], [1.0, 0.9, 0.96, 0.97, 0.98, 1.3])
    yield evidence([2.2, 2.19, 2.2], start=2.197, cfg=C.resolve(None, ["model.dropout=0.5"]))
    yield evidence([2.8, 1.2, 0.6, 0.41, 0.39], [1.0, 0.5, 0.2, 0.14, 0.13], start=3.04,
                   cfg=C.resolve(None, ["model.dropout=0.9"]))
    yield evidence([1.0, 0.9], cfg=C.resolve(None, ["optim.clip_norm=null", "optim.lr=0.05"]),
                   summary={"train_real_tokens": 60000, "data": {"sizes": {"train": 200}}})
    yield evidence([1.0, 0.5], cfg=C.resolve(None, ["data.standardize=false"]),
                   inputs={"examples": 50, "channels": 1, "mean": [500.0], "std": [900.0], "constant": [],
                           "label_channels": []})


def _advised_sets(text: str) -> list[str]:
    words = text.split()
    return [words[i + 1] for i, w in enumerate(words[:-1]) if w == "--set"]


def test_every_advised_set_changes_the_config_and_the_rate_that_runs():
    """Apply each `--set` group of each piece of advice to the config it was given for: the resolved config
    differs in every key named, inside the key's valid range (resolve checks it), and an advised learning rate
    is one the schedule actually runs (not floored at optim.min_lr)."""
    seen = 0
    for ev in _scenarios():
        for f in R.run_rules(ev):
            groups = [_advised_sets(a) for a in f.advice] + ([f.repair["set"]] if f.repair else [])
            for sets in (g for g in groups if g):
                new = C.resolve(None, sets, base=ev.cfg)
                for item in sets:
                    key = item.split("=", 1)[0]
                    section, name = key.split(".")
                    before, after = getattr(getattr(ev.cfg, section), name), getattr(getattr(new, section), name)
                    assert before != after, f"{f.code}: --set {item} changes nothing (already {before})"
                if any(s.startswith("optim.lr=") for s in sets):
                    ran = lr_at(0, base_lr=ev.cfg.optim.lr, min_lr=ev.cfg.optim.min_lr)
                    advised = lr_at(0, base_lr=new.optim.lr, min_lr=new.optim.min_lr)
                    assert advised != ran, f"{f.code}: {sets} leave the rate that runs at {ran}"
                seen += 1
    assert seen >= 10  # the scenarios gave advice to check


# ----------------------------------------------------------------------------- rows the pathology benchmark missed


def test_a_huge_model_on_a_handful_of_sequences_is_overfitting_even_when_early_stopping_hid_it():
    """bench_doctor jv.tiny_big: 3.95M parameters for 36 sequences, training loss 2.26 -> 0.0005, 9 validation
    sequences that barely moved."""
    train = [2.26, 0.59, 0.16, 0.02, 0.01, 0.0005, 0.0005, 0.0005]
    val = [0.83, 0.58, 0.29, 0.09, 0.03, 0.03, 0.035, 0.04]
    summary = finished(0.86, parameters=3_950_729, data={"sizes": {"train": 36, "val": 9}})
    (f,) = [f for f in R.run_rules(evidence(train, val, start=2.29, summary=summary)) if f.code == "overfitting"]
    assert f.severity == "warning" and "(109,742 each)" in f.explanation and "split of 9 is too small" in f.explanation
    assert f.advice[0] == "a smaller model: --set model.hidden_size=32 --set model.num_layers=1"
    small = finished(0.97, parameters=663_433, data={"sizes": {"train": 243, "val": 27}})  # the default model
    assert [f.severity for f in R.overfitting(evidence(train, val, start=2.29, summary=small))] in ([], ["info"])


def test_a_validation_loss_that_stays_at_the_label_shares_loss_is_underfitting():
    """bench_doctor jv.dropout_09: training loss 3.3 -> 2.7 under dropout 0.9, validation 2.26 -> 2.10 against
    ln 9 = 2.197 for predicting the label shares."""
    cfg = C.resolve(None, ["model.dropout=0.9", "model.recurrent_dropout=0.9", "model.input_dropout=0.9"])
    shares = {"examples": 243, "channels": 12, "mean": [0.0] * 12, "std": [1.0] * 12, "constant": [],
              "label_channels": [], "label_entropy": 2.197}
    train = [3.31, 3.13, 3.24, 3.13, 2.84, 2.77, 2.81, 2.67]
    val = [2.26, 2.25, 2.25, 2.24, 2.11, 2.11, 2.10, 2.10]
    (f,) = [f for f in R.run_rules(evidence(train, val, start=3.36, cfg=cfg, inputs=shares,
                                            summary=finished(0.26, stopped="max_epochs")))
            if f.code == "underfitting"]
    assert f.severity == "warning" and "96% of the loss of predicting the label shares" in f.explanation
    assert f.advice[0] == ("less dropout: --set model.dropout=0.3 --set model.recurrent_dropout=0.2 "
                           "--set model.input_dropout=0.2 (the guide: 0.3 to 0.5)")


@pytest.mark.parametrize(("batch", "steps", "severity"), [(2, 610, "warning"), (4, 40, "warning"), (8, 400, "info"),
                                                          (8, 40, None), (32, 4000, None)])
def test_small_batches(batch, steps, severity):
    cfg = C.resolve(None, [f"data.batch_size={batch}"])
    found = R.slow(evidence([1.0], [1.0], cfg=cfg, summary={"steps": steps, "epochs_run": 2}))
    assert [f.severity for f in found if f.code == "slow.small_batch"] == ([] if severity is None else [severity])


def test_tags_hardly_better_than_the_baseline_after_memorising_are_unpredictable_labels():
    """bench_doctor tb.shuffled_tags: token accuracy 0.416 against the most-frequent-tag baseline's 0.380 (a
    healthy run: 0.888), training loss 2.57 -> 0.85 while the validation loss rose from epoch 3."""
    cfg = C.resolve(None, ["task=tag"])
    summary = {"metrics": {"test": {"accuracy": 0.416, "baselines": {"most_frequent_tag": {"accuracy": 0.380}}}},
               "stopped": "early_stopping", "epochs_run": 13}
    train = [2.17, 1.86, 1.85, 1.82, 1.7, 1.59, 1.04, 0.97, 0.9, 0.85]
    val = [1.85, 1.83, 1.82, 1.87, 1.92, 2.02, 2.54, 2.7, 2.74, 2.8]
    found = dict(codes(evidence(train, val, start=2.574, cfg=cfg, summary=summary)))
    assert found["labels.unpredictable"] == "warning"
    healthy = {**summary, "metrics": {"test": {"accuracy": 0.888, "baselines": {"most_frequent_tag":
                                                                              {"accuracy": 0.85}}}}}
    assert "labels.unpredictable" not in dict(codes(evidence(train, val, start=2.574, cfg=cfg, summary=healthy)))


def test_the_checklist_names_the_metric_it_compares_with_the_baseline():
    """The predictions item read "test accuracy 0 vs the most frequent tag baseline 0.29" for a tagger that beat the
    baseline on accuracy and not on entity F1: the figures were entity F1's, the name the family's metric. A
    tagger that beats both shows both."""
    cfg = C.resolve(None, ["task=tag"])
    test = {"accuracy": 0.946, "entity_f1": 0.0,
            "baselines": {"most_frequent_tag": {"accuracy": 0.940, "entity_f1": 0.29}}}
    summary = {"metrics": {"test": test}, "stopped": "early_stopping", "epochs_run": 4, "monitor": "entity_f1"}
    ev = evidence([0.5, 0.3, 0.24, 0.22], cfg=cfg, summary=summary)
    (check,) = [c for c in run_checklist(ev, []) if c.item == "Predictions sensible?"]
    assert check.verdict == "fail"
    assert check.detail == ("test entity_f1 0 vs the most frequent tag baseline 0.29: the model does no better than "
                            "the trivial prediction")
    good = {**test, "entity_f1": 0.5373}
    ev = evidence([0.5, 0.3, 0.24, 0.22], cfg=cfg, summary={**summary, "metrics": {"test": good}})
    (check,) = [c for c in run_checklist(ev, []) if c.item == "Predictions sensible?"]
    assert check.verdict == "pass"
    assert check.detail == "test accuracy 0.946 vs the most frequent tag baseline 0.94; entity_f1 0.5373 vs 0.29"


def test_ner_clearly_better_on_entity_f1_is_not_unpredictable_labels_for_a_close_token_accuracy():
    """Issue 11, hironsan_ner (Japanese IOB2, 84% O), the default tagger, seed 0: token accuracy 0.9184 against the
    most-frequent-tag baseline's 0.9141 (5% of its gap to 1), entity F1 0.537 against 0.428 (19% of its gap) after
    the training loss fell from 0.85 (the tag shares' loss) to 0.017. The doctor warned labels.unpredictable from
    the token accuracy alone; the headline that picked the best epoch (entity F1) clearly beat the baseline."""
    cfg = C.resolve(None, ["task=tag"])
    test = {"accuracy": 0.9184, "entity_f1": 0.5373,
            "baselines": {"most_frequent_tag": {"accuracy": 0.9141, "entity_f1": 0.4278}}}
    summary = {"metrics": {"test": test}, "stopped": "early_stopping", "epochs_run": 72, "monitor": "entity_f1"}
    train = [2.58, 0.79, 0.41, 0.27, 0.2, 0.12, 0.074, 0.041, 0.036, 0.031, 0.024, 0.023]
    val = [1.49, 0.78, 0.46, 0.37, 0.38, 0.35, 0.36, 0.36, 0.36, 0.36, 0.36, 0.37]
    ev = evidence(train, val, start=2.82, cfg=cfg, summary=summary, inputs={"label_entropy": 0.85})
    assert R.baseline(ev) == []
    # the same run hardly better on entity F1 too: the labels are the suspect again
    barely = {**test, "entity_f1": 0.44}
    ev = evidence(train, val, start=2.82, cfg=cfg, summary={**summary, "metrics": {"test": barely}},
                  inputs={"label_entropy": 0.85})
    (f,) = R.baseline(ev)
    assert f.code == "labels.unpredictable" and f.severity == "warning"
    assert "the test entity_f1 0.44 is hardly better than the most frequent tag baseline's 0.4278" in f.explanation


def test_ner_below_the_baseline_on_accuracy_but_clearly_above_on_entity_f1_is_not_a_label_problem():
    """hironsan_ner with tag.crf=false, seed 0: token accuracy 0.9124 against the baseline's 0.9141 (2 tokens of
    1,164), entity F1 0.509 against 0.428 (14% of its gap to 1), the training loss down to 0.0095: the doctor said
    labels.unpredictable ("inputs do not predict the labels"). Entity F1 shows they do: the finding is
    baseline.not_beaten on accuracy, saying what did beat the baseline. Entity F1 0.485 (the default's seed 2: 9.96%
    of the gap, under BARELY) is hardly better, and the labels stay the suspect."""
    cfg = C.resolve(None, ["task=tag"])
    test = {"accuracy": 0.9124, "entity_f1": 0.5094,
            "baselines": {"most_frequent_tag": {"accuracy": 0.9141, "entity_f1": 0.4278}}}
    summary = {"metrics": {"test": test}, "stopped": "early_stopping", "epochs_run": 71, "monitor": "entity_f1"}
    train = [2.58, 0.79, 0.41, 0.27, 0.2, 0.12, 0.074, 0.041, 0.02, 0.0095]
    val = [1.49, 0.78, 0.46, 0.37, 0.31, 0.30, 0.31, 0.32, 0.33, 0.33]
    ev = evidence(train, val, start=2.82, cfg=cfg, summary=summary, inputs={"label_entropy": 0.85})
    (f,) = R.baseline(ev)
    assert f.code == "baseline.not_beaten" and f.severity == "warning"
    assert f.explanation.startswith("the test accuracy 0.9124 is no better than the most frequent tag baseline's "
                                    "0.9141, while its entity_f1 0.5094 beat the baseline's 0.4278")
    hardly = {**test, "entity_f1": 0.4848}
    ev = evidence(train, val, start=2.82, cfg=cfg, summary={**summary, "metrics": {"test": hardly}},
                  inputs={"label_entropy": 0.85})
    assert [f.code for f in R.baseline(ev)] == ["labels.unpredictable"]


def test_the_leak_check_names_a_label_channel_but_not_a_chance_sorting():
    """input_statistics: a channel equal to the class index is named with 4 classes of 9 sequences (held-out
    BasicMotions had 9 per class, under the former 10-per-class minimum); 2 sequences of a class that one
    extreme value sorts apart from 30 others (chance: 1 in 248, over 3 channels) are not a leak."""
    import torch

    from rnnkit.data.collate import Example, SequenceDataset
    from rnnkit.doctor.preflight import input_statistics

    g = torch.Generator().manual_seed(0)

    def dataset(labels, leak):
        out = []
        for i, y in enumerate(labels):
            x = torch.randn(12, 3, generator=g)
            if leak:
                x[:, 2] = float(y)
            out.append(Example(id=str(i), inputs=x, target=torch.tensor(y)))
        return SequenceDataset(out)

    four = [k % 4 for k in range(36)]
    assert input_statistics(dataset(four, leak=True))["label_channels"] == [2]
    assert input_statistics(dataset(four, leak=False))["label_channels"] == []
    skewed = [0] * 30 + [1] * 2
    stats = input_statistics(dataset(skewed, leak=True))  # channel 2 does sort them: but chance would too
    assert stats["label_channels"] == [] and stats["label_entropy"] == pytest.approx(0.2338, abs=1e-3)


def test_a_divergence_under_heavy_dropout_also_advises_less_dropout():
    """Held-out GunPoint with dropout 0.9 everywhere exploded (median pre-clip norm 2.4e10): the lower learning
    rate alone would not address the dropout."""
    cfg = C.resolve(None, ["model.dropout=0.9", "model.recurrent_dropout=0.9"])
    (f,) = R.divergence(evidence([0.98, 1.72, 1.5], start=0.89, cfg=cfg, chance=0.693))  # 2 classes: ln 2
    assert f.advice[-1].startswith("less dropout: --set model.dropout=0.3 --set model.recurrent_dropout=0.2")
    (plain,) = R.divergence(evidence([0.98, 1.72, 1.5], start=0.89, chance=0.693))
    assert not any(a.startswith("less dropout") for a in plain.advice)


def test_a_validation_loss_of_exactly_zero_does_not_crash_the_doctor():
    """Held-out ItalyPowerDemand at LR 1.0: a diverged model's huge logits put the validation loss at 0.0 in one
    epoch; `rnnkit diagnose` raised ZeroDivisionError (a traceback for the user) instead of naming the divergence."""
    train = [6.39, 27.8, 24.0, 19.0, 34.1, 22.5, 21.3, 23.9, 20.5, 26.1]
    val = [41.5, 31.4, 9.5, 16.7, 0.0, 19.5, 3.5, 4.4, 0.06, 2.95]
    found = dict(codes(evidence(train, val, start=0.699, summary=finished(0.68, base=0.4985))))
    assert found["divergence"] == "error" and "overfitting" not in found  # its curves are the divergence's


def test_a_tagger_below_the_baseline_on_entity_f1_is_a_finding_even_when_token_accuracy_is_close():
    """Issue 11: NER on ~95% O tags, the default tagger predicted O everywhere: entity F1 0.00 against the
    most-frequent-tag baseline's 0.29; the doctor said only `overfitting` (info). The headline that picked the
    best epoch (summary "monitor") is compared with the baseline too."""
    cfg = C.resolve(None, ["task=tag"])
    test = {"accuracy": 0.946, "entity_f1": 0.0,
            "baselines": {"most_frequent_tag": {"accuracy": 0.940, "entity_f1": 0.29}}}
    # the training loss fell from ln(9) to about the loss of predicting the tag shares (0.25 at 95% O): an
    # all-O model, not memorised labels
    summary = {"metrics": {"test": test}, "stopped": "early_stopping", "epochs_run": 4, "monitor": "entity_f1"}
    ev = evidence([0.5, 0.3, 0.24, 0.22], cfg=cfg, summary=summary, inputs={"label_entropy": 0.25})
    cmp = ev.baseline_comparison()
    assert (cmp.metric, cmp.model, cmp.base, cmp.better) == ("entity_f1", 0.0, 0.29, False)
    (f,) = [f for f in R.baseline(ev)]
    assert f.code == "baseline.not_beaten" and f.severity == "warning"
    assert "entity_f1 0 is no better than the most frequent tag baseline's 0.29" in f.explanation
    # without a headline in the summary (a run from before it), the family's metric alone: beaten, no finding
    ev.summary.pop("monitor")
    assert ev.baseline_comparison().metric == "accuracy" and R.baseline(ev) == []


def test_a_tagger_that_clearly_beat_the_baseline_on_validation_is_not_called_a_label_problem():
    """hironsan_ner, the default tagger, seed 2 (issue 11): on the 50 test sentences token accuracy 0.9124 against
    the most-frequent-tag baseline's 0.9141 and entity F1 0.4848 against 0.4278 (9.96% of its gap, under BARELY)
    after the training loss fell to 0.0095: labels.unpredictable ("inputs do not predict the labels"), a false
    alarm, since on validation the model beat the same rule by 3 points. With the validation baselines in the
    summary the doctor sees that: not a label problem, and baseline.not_beaten says where the difference lies."""
    cfg = C.resolve(None, ["task=tag"])
    test = {"accuracy": 0.9124, "entity_f1": 0.4848,
            "baselines": {"most_frequent_tag": {"accuracy": 0.9141, "entity_f1": 0.4278}}}
    val = {"accuracy": 0.941, "entity_f1": 0.62, "per_class": {"O": {"support": 1292}, "I-LOC": {"support": 255}},
           "baselines": {"most_frequent_tag": {"accuracy": 0.911, "entity_f1": 0.45}}}  # 1,547 validation tokens
    train = [2.58, 0.79, 0.41, 0.27, 0.2, 0.12, 0.074, 0.041, 0.02, 0.0095]
    val_loss = [1.49, 0.78, 0.46, 0.37, 0.31, 0.30, 0.31, 0.32, 0.33, 0.33]

    def findings(test, val, **extra):
        summary = {"metrics": {"test": test, **({"val": val} if val else {})}, "stopped": "early_stopping",
                   "epochs_run": 84, "monitor": "entity_f1", **extra}
        return R.baseline(evidence(train, val_loss, start=2.82, cfg=cfg, summary=summary,
                                   inputs={"label_entropy": 0.85}))

    assert [f.code for f in findings(test, None)] == ["labels.unpredictable"]  # a run without val baselines
    (f,) = findings(test, val)
    assert f.code == "baseline.not_beaten" and f.severity == "warning"
    assert ("On validation it did beat the baseline (accuracy 0.941 against 0.911 over 1,547 labels, far beyond "
            "chance even allowing for the epoch having been picked there)" in f.explanation)
    assert f.evidence["val"] == {"accuracy": {"model": 0.941, "most_frequent_tag": 0.911, "n": 1547}}
    assert f.advice[0].startswith("compare the test file with the training and validation files")
    # hardly better on test on every metric, clearly better on validation: no finding at all
    assert findings({**test, "accuracy": 0.9150}, val) == []
    # the epoch was picked on validation: its figure counts only far above the rule and beyond chance. Shuffled
    # tags (validation hardly better, on as many tokens), the same rates on 45 tokens, entity F1 alone, or a
    # refit (validation's figures are the first model's): the labels stay the suspect
    shuffled = {**val, "accuracy": 0.40, "baselines": {"most_frequent_tag": {"accuracy": 0.38, "entity_f1": 0.04}}}
    few = {**val, "per_class": {"O": {"support": 40}, "I-LOC": {"support": 5}}}
    f1_only = {**val, "accuracy": 0.912}
    for other, extra in ((shuffled, {}), (few, {}), (f1_only, {}), (val, {"refit": {"on": True}})):
        assert [f.code for f in findings(test, other, **extra)] == ["labels.unpredictable"]


def test_validation_beating_the_baseline_does_not_overrule_a_neighbour_check_that_found_no_signal():
    """The epoch is picked on validation, so its figure is a little optimistic; the nearest-neighbour check is not,
    and when it finds no signal the labels stay the suspect."""
    cfg = C.resolve(None, [])
    summary = {"metrics": {"test": {"accuracy": 0.49, "baselines": {"majority_class": {"accuracy": 0.5}}},
                           "val": {"accuracy": 0.62, "per_class": {"a": {"support": 500}, "b": {"support": 500}},
                                   "baselines": {"majority_class": {"accuracy": 0.5}}}},
               "stopped": "early_stopping", "epochs_run": 12}
    none = {"examples": 55, "accuracy": 0.45, "majority": 0.51, "p_value": 0.7, "verdict": "none"}
    memorised = [0.69, 0.5, 0.3, 0.1, 0.05, 0.03]  # the training labels learned by heart
    ev = evidence(memorised, [0.70] * 6, start=0.70, cfg=cfg, summary=summary, signal=none)
    assert [f.code for f in R.baseline(ev)] == ["labels.unpredictable"]
    unclear = {**none, "p_value": 0.05, "verdict": "unclear"}  # the same validation figures overrule it then
    ev = evidence(memorised, [0.70] * 6, start=0.70, cfg=cfg, summary=summary, signal=unclear)
    assert [f.code for f in R.baseline(ev)] == ["baseline.not_beaten"]
