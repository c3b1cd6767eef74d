"""Each doctor rule on hand-made evidence, across its thresholds; the preflight on broken models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rnnkit import config as C
from rnnkit.data.collate import Example
from rnnkit.doctor import rules as R
from rnnkit.doctor.evidence import Evidence
from rnnkit.doctor.preflight import preflight
from rnnkit.errors import TrainingError
from rnnkit.models.forecaster import ForecastOutput
from rnnkit.tasks import get_task


def evidence(train, val, *, chance=1.0, summary=None, events=(), cfg=None):
    epochs = [{"kind": "epoch", "epoch": i + 1, "train_loss": t, "val_loss": v} for i, (t, v) in
              enumerate(zip(train, val, strict=True))]
    pre = {"event": "preflight", "chance_loss": chance, "initial_loss": chance, "no_grad": [], "nonfinite_grad": [],
           "shape_problem": None, "parameters": 4, "batch_size": 8, "output_shape": [8, 3], "target_shape": [8]}
    return Evidence(Path("run"), cfg or C.Config(), summary or {}, epochs, [], [pre, *events])


@pytest.mark.parametrize(("last_val", "expected"), [(0.93, None), (0.99, "info"), (1.17, "warning")])
def test_overfitting_needs_a_real_rise_and_grades_it(last_val, expected):
    ev = evidence([0.9, 0.7, 0.5, 0.4, 0.3, 0.2], [1.0, 0.9, 0.96, 0.97, 0.98, last_val])  # best: epoch 2
    found = R.overfitting(ev)
    assert [f.severity for f in found] == ([] if expected is None else [expected])


def test_overfitting_not_found_when_the_training_loss_rises_too():
    ev = evidence([0.5, 0.6, 0.7, 0.8, 0.9], [0.9, 1.0, 1.1, 1.2, 1.3])  # diverging, not memorising
    assert R.overfitting(ev) == []


@pytest.mark.parametrize(("train", "fires"), [
    ([1.10, 1.09, 1.08], True),  # stays at chance (ln 3 = 1.0986)
    ([1.1, 0.9, 0.7, 0.69, 0.689, 0.688], True),  # flat at 63% of chance
    ([1.1, 0.9, 0.5, 0.3, 0.2, 0.1], False),  # learning
    ([1.1, 0.4, 0.3, 0.3, 0.3, 0.3], False),  # flat, but far below chance (converged)
])
def test_underfitting_near_chance_or_flat_and_high(train, fires):
    ev = evidence(train, [1.0] * len(train), chance=1.0986)
    assert bool(R.underfitting(ev)) is fires


@pytest.mark.parametrize(("pad", "wait", "fired"), [(0.1, 0.1, []), (0.45, 0.1, ["slow.padding"]),
                                                    (0.1, 0.5, ["slow.data_wait"])])
def test_slow_training_causes(pad, wait, fired):
    ev = evidence([1.0], [1.0], summary={"padding_share": pad, "data_wait_share": wait, "metrics": {}})
    assert [f.code for f in R.slow(ev)] == fired


def test_long_sequences_and_small_batches():
    cfg = C.resolve(None, ["data.batch_size=4"])
    summary = {"train_real_tokens": 3000 * 100, "data": {"sizes": {"train": 100}}, "steps": 500, "epochs_run": 2}
    codes = [f.code for f in R.slow(evidence([1.0], [1.0], summary=summary, cfg=cfg))]
    assert codes == ["slow.long_sequences", "slow.small_batch"]


@pytest.mark.parametrize(("front", "first"), [
    ({"kind": "none", "reduction": 1, "reason": "model.frontend none"}, "--set model.frontend=conv"),
    ({"kind": "conv", "reduction": 4, "reason": "auto: median length > 100"}, "--set model.frontend_reduction=8"),
    ({"kind": "none", "reduction": 1, "reason": "auto: token input"}, "--set data.max_length=1024"),
])
def test_long_sequences_advice_names_the_front_end_where_it_applies(front, first):
    """Issue 11/12: the long-sequence advice names the option that would help (a numeric model's front-end)."""
    summary = {"train_real_tokens": 3000 * 100, "data": {"sizes": {"train": 100}, "frontend": front}, "steps": 5000,
               "epochs_run": 2}
    (f,) = [f for f in R.slow(evidence([1.0], [1.0], summary=summary)) if f.code == "slow.long_sequences"]
    assert first in f.advice[0]
    for key, value in (a.split("--set ", 1)[1].split()[0].split("=") for a in f.advice if "--set " in a):
        C.resolve(None, [f"{key}={value}"])  # each advised change is a valid config


def test_nonfinite_repair_lowers_the_base_rate_and_turns_clipping_on():
    cfg = C.resolve(None, ["optim.lr=5e-2", "optim.clip_norm=null"])
    event = {"event": "nonfinite", "what": "loss", "step": 7, "lr": 0.05, "ids": ["a:1"], "grad_norm": 3.0}
    (f,) = R.nonfinite(evidence([1.0], [1.0], events=[event], cfg=cfg))  # Path("run") holds no checkpoint
    assert f.severity == "error" and f.repair == {"mode": "restart", "set": ["optim.lr=0.005", "optim.clip_norm=1.0"]}
    assert "above the guide's range" in f.explanation and "gradient clipping is off" in f.explanation


class WrongShape(torch.nn.Module):
    """Forecasts `shape[1:]` per window for 3-step targets, and holds a parameter the forward never uses."""

    def __init__(self, horizon: int, targets: int):
        super().__init__()
        self.proj = torch.nn.Linear(2, horizon * targets)
        self.shape = (horizon, targets)
        self.unused = torch.nn.Parameter(torch.zeros(5))

    def forward(self, inputs, lengths, mask):
        return ForecastOutput(self.proj(inputs[:, -1]).view(-1, *self.shape), "mse")


def _forecast_batch():
    task = get_task("forecast")
    return task, task.collate([Example(id=f"s:{i}", inputs=torch.randn(6, 2), target=torch.randn(3, 1))
                               for i in range(4)])


def test_preflight_names_a_silently_broadcasting_output_and_a_dead_parameter():
    task, batch = _forecast_batch()
    model = WrongShape(1, 1)  # (B, 1, 1) - (B, 3, 1) broadcasts: no error from the loss
    rng = torch.get_rng_state()
    record = preflight(model, batch, task, prep=None)
    assert torch.equal(torch.get_rng_state(), rng)  # the run's random stream is untouched
    assert "regression output (4, 1, 1) != targets (4, 3, 1)" in record["shape_problem"]
    assert record["no_grad"] == ["unused"] and record["chance_loss"] == 1.0
    ev = evidence([1.0], [1.0])
    ev.events = [record]
    codes = [f.code for f in R.setup(ev)]
    assert codes == ["setup.shapes", "setup.no_gradient"]


def test_preflight_turns_a_loss_crash_from_mismatched_shapes_into_a_clear_error():
    task, batch = _forecast_batch()
    with pytest.raises(TrainingError, match=r"shape mismatch: regression output \(4, 2, 1\) != targets \(4, 3, 1\)"):
        preflight(WrongShape(2, 1), batch, task, prep=None)


def test_overfitting_is_info_when_the_validation_metric_held():
    """Loss up 30% but accuracy unchanged: over-confidence, not a worse model."""
    ev = evidence([0.9, 0.7, 0.5, 0.4, 0.3, 0.2], [1.0, 0.9, 0.96, 0.97, 0.98, 1.17])
    for e, acc in zip(ev.epochs, [0.5, 0.8, 0.8, 0.8, 0.8, 0.8], strict=True):
        e["val_accuracy"] = acc
    (f,) = R.overfitting(ev)
    assert f.severity == "info" and "over-confident rather than wrong" in f.explanation
    ev.epochs[-1]["val_accuracy"] = 0.7  # now the metric got worse too
    (f,) = R.overfitting(ev)
    assert f.severity == "warning" and "over-confident" not in f.explanation


def test_one_late_spike_is_not_overfitting():
    ev = evidence([0.9, 0.7, 0.5, 0.4, 0.3, 0.2], [1.0, 0.9, 0.91, 0.92, 0.93, 1.2])
    assert R.overfitting(ev) == []


def test_underfitting_advice_never_lowers_a_high_learning_rate():
    cfg = C.resolve(None, ["optim.lr=3e-2"])
    (f,) = R.underfitting(evidence([1.1, 1.09, 1.08], [1.0] * 3, chance=1.0986, cfg=cfg))
    assert not any("optim.lr" in a for a in f.advice)


def test_a_stale_nan_summary_without_its_event_is_not_a_nan_stop():
    """After a NaN stop and a resume that was then killed, summary.json may still say nonfinite; the
    event was dropped by the resume, so the run is not diagnosed as NaN-stopped."""
    ev = evidence([1.0], [1.0], summary={"stopped": "nonfinite_loss", "step": 9})
    assert R.nonfinite(ev) == []


def test_a_nan_before_the_first_checkpoint_offers_a_restart(tmp_path):
    event = {"event": "nonfinite", "what": "loss", "step": 2, "lr": 1e-4, "ids": ["a:1"]}
    ev = evidence([1.0], [1.0], events=[event])
    ev.run_dir = tmp_path  # no checkpoints/
    (f,) = R.nonfinite(ev)
    assert f.repair == {"mode": "restart", "set": ["optim.lr=0.0001"]}
    assert "before its first checkpoint" in f.explanation
    ev.events.insert(0, {"event": "repair", "attempt": 1, "mode": "restart", "set": ["optim.lr=0.0001"],
                         "finding": "nonfinite"})
    (f,) = R.nonfinite(ev)
    assert "earlier repair(s)" in f.explanation  # the data, more than the learning rate


def test_data_check_fails_on_heavy_truncation_and_constant_channels():
    from rnnkit.doctor.checklist import run_checklist

    data = {"sizes": {"train": 100, "val": 10}, "truncated": {"train": 30, "val": 0}, "rejected": 0}
    ev = evidence([1.0], [1.0], summary={"data": data})
    check = run_checklist(ev, [])[0]
    assert check.verdict == "fail" and "30% of the train rows" in check.detail
    data["truncated"]["train"] = 5
    assert run_checklist(ev, [])[0].verdict == "pass"
    data["constant_channels"] = [2]
    assert "constant" in run_checklist(ev, [])[0].detail


def test_overfitting_that_early_stopping_dealt_with_is_info():
    val = [1.0, 0.9, 0.8, 0.96, 0.97, 0.98, 1.17]  # best at epoch 3, then +30%
    train = [0.9, 0.7, 0.5, 0.4, 0.3, 0.2, 0.1]
    done = {"stopped": "early_stopping", "metrics": {"test": {}}}
    assert [f.severity for f in R.overfitting(evidence(train, val, summary=done))] == ["info"]
    assert [f.severity for f in R.overfitting(evidence(train, val, summary={**done, "stopped": "max_epochs"}))] == [
        "warning"]
    early = [1.0, 0.8, 0.96, 0.97, 0.98, 1.0, 1.17]  # best at epoch 2: overfits almost at once
    assert [f.severity for f in R.overfitting(evidence(train, early, summary=done))] == ["warning"]


def test_overfitting_names_the_epoch_whose_weights_were_restored_when_a_metric_picked_it():
    """Issue 11, hironsan_ner seed 0: validation entity F1 (train.monitor=auto for BIO tags) picked epoch 62, the
    validation loss was lowest at epoch 38; the finding said the weights of epoch 38 were restored."""
    val = [1.0, 0.9, 0.8, 0.96, 0.97, 0.98, 1.17]  # lowest loss at epoch 3
    train = [0.9, 0.7, 0.5, 0.4, 0.3, 0.2, 0.1]
    done = {"stopped": "early_stopping", "metrics": {"test": {}}, "monitor": "entity_f1", "best_epoch": 5}
    (f,) = R.overfitting(evidence(train, val, summary=done, cfg=C.resolve(None, ["task=tag"])))
    assert f.action == ("the weights of epoch 5 (the best validation entity_f1) were restored before scoring and "
                        "early stopping ended the run")
    assert "validation loss was lowest at epoch 3" in f.explanation and f.severity == "info"
    by_loss = {**done, "monitor": "loss", "best_epoch": 3}  # the loss picked the epoch: as before
    (f,) = R.overfitting(evidence(train, val, summary=by_loss))
    assert f.action == "the best weights (epoch 3) were restored before scoring and early stopping ended the run"


def _cpu_summary(wall, cpu_seconds, run, wait, threads, load=(0.3, 0.4)):
    return {"metrics": {}, "threads": round(threads), "threads_reason": "train.threads=2",
            "cpu": {"usable_cores": 2, "rnnkit_trainings": 1, "threads_mean": threads, "thread_changes": [],
                    "load_start": load[0], "load_end": load[1], "process_cpu_seconds": cpu_seconds,
                    "session_wall_seconds": wall, "cpu_run_seconds": run, "cpu_wait_seconds": wait}}


CPU_CASES = [
    # the issue's run: 12 minutes of wall, 173 s of CPU, two threads, its threads mostly waiting for a CPU
    (_cpu_summary(720, 173, 173, 540, 2, load=(5.1, 4.8)), "warning"),
    (_cpu_summary(720, 173, None, None, 2), "warning"),  # no schedstat: 0.24 cores used on average
    (_cpu_summary(300, 290, 290, 400, 1), "info"),  # one thread already: only fewer jobs would help
    (_cpu_summary(60, 110, 110, 4, 2), None),  # healthy: both threads ran, hardly any waiting
    (_cpu_summary(60, 58, 58, 20, 1), None),  # a bit of contention (26%) is not "far below"
    (_cpu_summary(60, 60, 60, 53, 2), "warning"),  # 47% with two threads: the bench's 5x slower case
    (_cpu_summary(60, 60, 60, 53, 1), None),  # ...which one thread lives with
    (_cpu_summary(60, 58, None, None, 1), None),  # no schedstat, one core kept busy
    (_cpu_summary(10, 2, 2, 8, 2), None),  # oversubscribed, but a 10 s run is not worth a finding
    ({"metrics": {}, "padding_share": 0.1, "data_wait_share": 0.1}, None),  # a run from before item 10
]


def test_item10_slow_threads_fires_on_an_oversubscribed_run_and_not_on_a_healthy_one():
    cfg = C.resolve(None, ["train.threads=2"])
    found = [[f for f in R.slow(evidence([1.0], [1.0], summary=summary, cfg=cfg)) if f.code == "slow.threads"]
             for summary, _ in CPU_CASES]
    assert [[f.severity for f in fs] for fs in found] == [[] if e is None else [e] for _, e in CPU_CASES]
    (issue,) = found[0]
    assert issue.advice[0].startswith("one thread per training on a busy machine: --set train.threads=1")
    assert "waited for a CPU 76% of the time" in issue.explanation and "oversubscribed" in issue.explanation
    assert issue.evidence["cpu_wait_share"] == pytest.approx(540 / 713)


def test_one_noisy_pass_on_small_data_is_not_a_divergence():
    """Small data counts 8 one-step passes as an epoch (summary epoch_scale): the doctor reads the training loss
    per counted epoch, so one batch's spike (2.3x the start) is not called a divergence, while a real rise is."""
    train = [0.7, 0.6, 0.5] * 16
    train[20] = 1.6  # one pass of one batch
    flat = [0.6] * len(train)
    assert R.divergence(evidence(train, flat, chance=0.69)) != []  # read pass by pass: a "divergence"
    assert R.divergence(evidence(train, flat, chance=0.69, summary={"epoch_scale": 8})) == []
    rising = [0.7 + 0.03 * i for i in range(48)]  # 0.7 -> 2.1 over 48 passes
    (found,) = R.divergence(evidence(rising, flat, chance=0.69, summary={"epoch_scale": 8}))
    assert found.evidence["peak_epoch"] == 6  # counted in the user's epochs


def _regress_evidence(train, *, initial, test_rmse, base_rmse=0.0447):
    """A regression run (z-scored targets: a know-nothing prediction scores 1) whose first batch scored
    `initial` (an untrained network's outputs are not the mean: above 1) and whose test rmse is `test_rmse`."""
    cfg = C.resolve(None, ["task=regress"])
    summary = {"finished": True, "stopped": "early_stopping", "epochs_run": len(train),
               "metrics": {"test": {"rmse": test_rmse, "baselines": {"training_mean": {"rmse": base_rmse}}}}}
    ev = evidence(train, [0.6] * len(train), chance=1.0, summary=summary, cfg=cfg)
    ev.events[0]["initial_loss"] = initial
    return ev


def test_a_training_loss_near_the_know_nothing_loss_is_underfitting_though_below_the_first_batch():
    """Covid3Month as the new user saw it: the training loss went from 1.23 (the first batch) to 0.96, 78% of where
    it started, but 96% of what predicting the training mean scores (1.0); test R^2 0.06. The doctor called it
    healthy; the yardstick for "learned almost nothing" is the know-nothing loss when that is the lower."""
    ev = _regress_evidence([1.05, 1.0, 0.98, 0.97, 0.965, 0.96], initial=1.23, test_rmse=0.0433)
    (f,) = R.underfitting(ev)
    assert f.code == "underfitting" and "96% of the loss of a prediction that knows nothing (1)" in f.explanation
    assert any("targets shuffled" in a for a in f.advice)
    # learning well below the know-nothing loss is not underfitting, whatever the first batch scored
    assert R.underfitting(_regress_evidence([1.0, 0.6, 0.4, 0.3, 0.25, 0.2], initial=1.23, test_rmse=0.02)) == []


@pytest.mark.parametrize(("test_rmse", "verdict"), [(0.0433, "fail"), (0.039, "pass"), (0.05, "fail")])
def test_predictions_hardly_better_than_the_training_mean_are_not_sensible(test_rmse, verdict):
    """Test rmse 3% below the training mean's (R^2 0.06) passed "Predictions sensible?"; a model must remove at
    least a tenth of the trivial baseline's error (for accuracy: close a tenth of its gap to 1) to pass."""
    from rnnkit.doctor.checklist import run_checklist

    ev = _regress_evidence([1.0, 0.6, 0.4, 0.3, 0.25, 0.2], initial=1.0, test_rmse=test_rmse)
    (check,) = [c for c in run_checklist(ev, []) if c.item == "Predictions sensible?"]
    assert check.verdict == verdict
    if test_rmse == 0.0433:
        assert "hardly better" in check.detail and "3%" in check.detail


def test_a_forecast_that_beats_naive_by_a_little_is_sensible():
    """The naive forecast is a real method, not a trivial one: any gain over it passes."""
    from rnnkit.doctor.checklist import run_checklist

    cfg = C.resolve(None, ["task=forecast"])
    summary = {"finished": True, "metrics": {"test": {"mse": 0.97, "baselines": {"naive": {"mse": 1.0}}}}}
    ev = evidence([1.0, 0.8], [1.0, 0.9], summary=summary, cfg=cfg)
    (check,) = [c for c in run_checklist(ev, []) if c.item == "Predictions sensible?"]
    assert check.verdict == "pass"


def test_a_seasonal_forecast_is_judged_against_seasonal_naive_when_that_is_the_stronger_rule():
    """With a season (wineind, m=12: test mse 9.619e6 against naive's 1.9e7 and seasonal naive's 9.597e6) the
    model that loses to repeating last year is not sensible, and the check and the doctor name seasonal naive;
    where the season adds nothing (seasonal naive no better than naive) the naive forecast stays the yardstick."""
    from rnnkit.doctor.checklist import run_checklist

    cfg = C.resolve(None, ["task=forecast"])
    for snaive, verdict, name in ((9.597e6, "fail", "seasonal naive"), (2.5e7, "pass", "naive")):
        base = {"naive": {"mse": 1.9e7}, "seasonal_naive": {"seasonality": 12, "mse": snaive}}
        summary = {"finished": True, "metrics": {"test": {"mse": 9.619e6, "baselines": base}}}
        ev = evidence([1.0, 0.8], [1.0, 0.9], summary=summary, cfg=cfg)
        (check,) = [c for c in run_checklist(ev, []) if c.item == "Predictions sensible?"]
        assert check.verdict == verdict, check.detail
        assert f"the {name} baseline" in check.detail and (name == "naive") == ("seasonal" not in check.detail)
        found = R.baseline(ev)
        assert [f.code for f in found] == (["baseline.not_beaten"] if verdict == "fail" else [])
        if found:
            assert "seasonal naive baseline's 9.597e+06" in found[0].explanation


def test_a_small_data_run_that_counts_passes_is_told_in_passes():
    """A small data set's epoch is several passes (summary epoch_scale): the log, the progress and the done line
    say "best pass 20 of 40", and the doctor said "epoch 20" for the same pass."""
    from rnnkit.doctor.checklist import run_checklist

    train, val = [0.9, 0.7, 0.5, 0.4, 0.3, 0.2], [1.0, 0.9, 0.96, 0.97, 0.98, 1.17]
    for scale, word, words in ((2, "pass", "passes"), (1, "epoch", "epochs")):
        ev = evidence(train, val, summary={"epoch_scale": scale, "metrics": {}})
        (f,) = R.overfitting(ev)
        assert f"lowest at {word} 2" in f.explanation and f"next 4 {words}" in f.explanation
        (check,) = [c for c in run_checklist(ev, []) if c.item == "Validation loss improving?"]
        assert f"({word} 1)" in check.detail and (word == "epoch" or "epoch" not in check.detail)


def test_a_flat_loss_at_the_know_nothing_level_after_a_lucky_first_batch_is_not_divergence():
    """A new user's regression on returns (no signal): the first batch scored 0.47, every epoch about 1.0, the
    loss of predicting the mean; the doctor said 'learning rate too high' and would have lowered it."""
    ev = _regress_evidence([1.02, 1.0, 0.99, 1.0, 1.01, 1.0], initial=0.47, test_rmse=1.2653, base_rmse=1.2639)
    assert R._diverged(ev) is None and not [f for f in R.run_rules(ev) if f.code == "divergence"]
    # a real rise above the know-nothing level still is
    assert R._diverged(_regress_evidence([1.0, 2.4, 3.1, 2.8], initial=0.47, test_rmse=2.0)) is not None


def test_the_underfitting_title_says_what_the_explanation_found():
    """One title for every underfitting reason ("Training loss plateaus early") contradicted the explanation
    "max_epochs ended the run while the validation loss was still falling" and "learned almost nothing"."""
    slow = C.resolve(None, ["optim.lr=0.0001"])
    falling = evidence([1.0, 0.9, 0.8, 0.7, 0.6, 0.5], [1.0, 0.9, 0.8, 0.7, 0.6, 0.5],
                       summary={"stopped": "max_epochs", "metrics": {}}, cfg=slow)
    (f,) = R.underfitting(falling)
    assert f.severity == "warning" and "still falling" in f.explanation
    assert "plateau" not in f.title.lower() and "still improving" in f.title.lower()
    flat = evidence([1.0, 0.99, 0.99, 0.99, 0.99, 0.99], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    (f,) = R.underfitting(flat)
    assert "almost nothing" in f.explanation and "almost nothing" in f.title
    plateau = evidence([1.0, 0.7, 0.62, 0.61, 0.61, 0.61, 0.61, 0.61], [1.0, 0.8, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7])
    (f,) = R.underfitting(plateau)
    assert "stopped falling" in f.explanation and f.title == "Training loss plateaus early"


def test_an_epoch_picked_by_the_training_rows_loss_is_not_called_the_best_validation_one():
    """With too few validation rows the training rows' loss (fit_loss) picks the epoch: the overfitting action said
    "the best validation fit_loss", a figure that is no validation figure at all."""
    ev = evidence([0.9, 0.7, 0.5, 0.4, 0.3, 0.2], [1.0, 0.9, 0.96, 0.97, 0.98, 1.17],
                  summary={"finished": True, "stopped": "max_epochs", "monitor": "fit_loss", "best_epoch": 6,
                           "metrics": {}})
    (f,) = R.overfitting(ev)
    assert "validation fit_loss" not in f.action
    assert "epoch 6" in f.action and "training rows" in f.action


def test_a_forecast_must_beat_its_baseline_on_mase_too():
    """ausbeer as a new user ran it: test mse 95.61 against seasonal naive's 97.25 passed 'Predictions sensible?'
    while MASE (the scale-free figure forecasting is judged on) lost, 0.5503 against 0.5467. A MASE that is not a
    number (a series of constant history) is left out of the comparison, not counted as lost."""
    from rnnkit.doctor.checklist import run_checklist

    cfg = C.resolve(None, ["task=forecast"])
    base = {"naive": {"mse": 400.0, "mase": 1.9}, "seasonal_naive": {"seasonality": 4, "mse": 97.25, "mase": 0.5467}}
    for mase, verdict in ((0.5503, "fail"), (0.5401, "pass"), (float("nan"), "pass")):
        summary = {"finished": True, "metrics": {"test": {"mse": 95.61, "mase": mase, "baselines": base}}}
        ev = evidence([1.0, 0.8], [1.0, 0.9], summary=summary, cfg=cfg)
        (check,) = [c for c in run_checklist(ev, []) if c.item == "Predictions sensible?"]
        assert check.verdict == verdict, (mase, check.detail)
        if verdict == "fail":
            assert "test mase 0.5503 vs the seasonal naive baseline 0.5467" in check.detail
