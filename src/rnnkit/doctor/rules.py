"""Rules: evidence in, findings out. One function per problem of the guide's troubleshooting list.

Every rule reads an `Evidence` and returns the findings it supports (often none). A finding says
what was seen (the numbers), what it means, what to do, and what rnnkit already did about it.
Thresholds are module constants, named and documented, so a test can drive each rule across them.

Guide entry -> codes:
  "Loss is NaN or Inf"                                  -> nonfinite
  "Reduce learning rate" / "Enable gradient clipping"    -> divergence, clipping.off
  "Training loss decreases but validation loss increases" -> overfitting
  "Training loss plateaus early"                          -> underfitting
  "Check if data is preprocessed correctly"               -> baseline.not_beaten, labels.unpredictable,
                                                             labels.leak, inputs.unscaled, inputs.constant,
                                                             inputs.truncated
  "Very slow training"                                    -> slow.padding, slow.data_wait,
                                                             slow.long_sequences, slow.small_batch,
                                                             slow.threads
Preflight evidence (debugging checklist)                  -> setup.shapes, setup.no_gradient,
                                                             setup.initial_loss
"""

from __future__ import annotations

import math
from collections.abc import Callable

from rnnkit.data.longseq import WINDOWED
from rnnkit.data.rowstream import UNMIXED
from rnnkit.doctor.advice import GUIDE_LR, effective_lr, lower_lr, lr_sets
from rnnkit.doctor.evidence import Evidence
from rnnkit.doctor.finding import Finding
from rnnkit.doctor.probe_rules import PROBE_RULES
from rnnkit.tasks import get_task
from rnnkit.training.schedules import FIT_LOSS, LOWER_IS_BETTER

# Overfitting: validation loss this much above its best, for at least this many epochs after the
# best, while the training loss kept falling; a warning from OVERFIT_SEVERE up, unless early stopping
# ended the run and the best weights were restored (it has dealt with it: info).
OVERFIT_RISE = 0.05
OVERFIT_SEVERE = 0.25
OVERFIT_EPOCHS = 3
OVERFIT_EARLY_BEST = 2
# ...or a model with this many parameters per training sequence whose training loss fell below MEMORISED_LOSS of
# its start (JapaneseVowels with 36 training sequences and a 256 x 3 LSTM: 110k per sequence; the default
# classifier on all 243: 2.7k)
OVERSIZED = 20_000
MEMORISED_LOSS = 0.01  # a best epoch this early stays a warning even when early stopping dealt with it
METRIC_HELD = 0.01  # ...and info too when the headline validation metric stayed within 1% of its value at the best
# Underfitting: the best training loss still this close to the loss before training (the preflight
# batch: it covers loss functions and baselines, e.g. a forecast that starts from the naive one)...
UNDERFIT_START_SHARE = 0.9
# ...or the training loss flat (relative change below PLATEAU_CHANGE over the last half of the run)
# while still above PLATEAU_START_SHARE of it.
PLATEAU_CHANGE = 0.01
PLATEAU_START_SHARE = 0.5
PLATEAU_MIN_EPOCHS = 4
# Slow training.
PADDING_SHARE = 0.30  # share of padded positions in the training batches
DATA_WAIT_SHARE = 0.30  # share of step time spent waiting for batches
LONG_SEQUENCE = 1024  # mean training length above which the guide advises truncation (512-1024)
# Truncation (data.max_length, or the cap on windows) cutting more than this share of the training rows: a warning
# naming the option that keeps more (the checklist's data item fails above the same share)
TRUNCATED_ROWS = 0.10
SMALL_BATCH = 16  # below the guide's range for small data sets
SMALL_BATCH_STEPS = 200  # ...and only when an epoch has this many steps (tiny data sets need small batches)
TINY_BATCH = 4  # a batch this small is below any range the guide gives: a warning whatever the data set's size
# An oversubscribed CPU (summary.json's "cpu", recorded by rnnkit.threads): the run's threads were
# ready to run but waited for a CPU this share of their runnable time (/proc schedstat; 0.5: the run
# took at least twice as long as on a CPU of its own)...
CPU_WAIT_SHARE = 0.5
# ...or this share with several threads, where each wait also holds the others up at the op's barrier
# (bench/bench_threads.py: 2 trainings x 2 threads on 2 cores waited 47% and ran 5x slower than 1 thread each)
CPU_WAIT_SHARE_THREADS = 0.3
CPU_BUSY_LOW = 0.5  # ...or, where the kernel gives no schedstat, the process used less than this many cores
CPU_MIN_WALL = 30.0  # only sessions this long (seconds): a short run's time is not worth a finding
# Preflight: an initial loss this many times the chance loss means outsized initial outputs.
INITIAL_LOSS_FACTOR = 3.0
# Divergence: an epoch's mean training loss above this multiple of the loss before training (a healthy run
# falls below its start within the first epoch; dropout can lift the first epochs a little, not 1.5x).
DIVERGE_FACTOR = 1.5
# Labels the inputs cannot predict: the test metric stayed at the trivial baseline's while the training loss
# fell below this share of its start (the network memorised the training labels)...
MEMORISED_SHARE = 0.5
FELL_SHARE = 0.2  # ...or fell by this share while the validation loss rose from its first epochs on
VAL_CLOSED = 0.2  # validation overrules labels.unpredictable: the accuracy closed this share of the baseline's gap
VAL_Z = 3.0  # ... and stood this many binomial standard errors above the baseline's rate
# Unscaled inputs: a numeric channel whose mean or spread is this far from 0 / 1 (|mean| > 10, spread > 10
# or < 0.01), in what the network is fed (after the family's own scaling).
UNSCALED = 10.0
# Clipping off: pre-clip gradient norms whose largest logged value is this many times their median.
NORM_SPIKE = 10.0
LONG_WINDOW = 100  # mean training length from which the guide's exploding-gradient warning applies
# Dropout above the guide's range holds the model back when the training loss (with dropout) stays this many
# times the validation loss (without it); healthy runs end with the training loss below the validation loss.
DROPOUT_GAP = 1.2
# Still improving: the best validation epoch within the last EPOCHS_TAIL share of a run that max_epochs ended.
EPOCHS_TAIL = 0.1


def _chance(ev: Evidence) -> float | None:
    pre = ev.event("preflight")
    return pre.get("chance_loss") if pre else None


def _has_checkpoint(ev: Evidence) -> bool:
    from rnnkit.training import checkpoint as ckpt

    return bool(ckpt.step_checkpoints(ev.run_dir / "checkpoints"))


def _heavy_dropout(cfg) -> list[str]:
    """The model's dropout settings above the guide's 0.5."""
    return [k for k in ("dropout", "recurrent_dropout", "input_dropout") if getattr(cfg.model, k) > 0.5]


def _less_dropout(keys: list[str]) -> str:
    return "less dropout: " + " ".join(f"--set model.{k}={0.3 if k == 'dropout' else 0.2}" for k in keys) + \
        " (the guide: 0.3 to 0.5)"


def _more_dropout(dropout: float) -> float:
    """One notch more dropout, inside the guide's 0.3 to 0.5."""
    return max(0.3, min(0.5, dropout + 0.2))


def merged_sets(*groups: list[str]) -> list[str]:
    """`key=value` lists applied one after another, as one list (a later value of a key replaces an earlier)."""
    merged: dict[str, str] = {}
    for group in groups:
        for item in group:
            merged[item.split("=", 1)[0]] = item
    return list(merged.values())


def _train_losses(ev: Evidence) -> list[float]:
    """The training loss per epoch as the user counts epochs: on small data (summary `epoch_scale` k > 1, each
    logged epoch one pass of a step or few) the mean of each k passes, so one noisy batch is not a trend."""
    losses = [e["train_loss"] for e in ev.epochs if _number(e.get("train_loss"))]
    k = ev.summary.get("epoch_scale")
    if not isinstance(k, int) or isinstance(k, bool) or k <= 1:
        return losses
    return [sum(losses[i:i + k]) / len(losses[i:i + k]) for i in range(0, len(losses), k)]


def _diverged(ev: Evidence) -> tuple[float, float, int] | None:
    """(loss before training, peak epoch training loss, its epoch) when the training loss rose above
    DIVERGE_FACTOR x its start, else None."""
    start, train = ev.start_loss(), _train_losses(ev)
    # a first batch that scored below a know-nothing prediction (a regressor's one lucky batch: 0.47 against 1)
    # is no yardstick for "rose": a flat loss at the know-nothing level is not divergence
    chance = _chance(ev)
    ref = max(start, chance) if start is not None and _number(chance) else start
    if start is None or not train or max(train) <= DIVERGE_FACTOR * ref:
        return None
    peak = max(train)
    return start, peak, train.index(peak) + 1


def _step_norms(ev: Evidence) -> list[float]:
    return [s["grad_norm"] for s in ev.steps if _number(s.get("grad_norm"))]


def nonfinite(ev: Evidence) -> list[Finding]:
    """A NaN/Inf loss or gradient norm stopped the run (its `nonfinite` event is in the log: a resume
    drops it, so a stale summary.json of an earlier stop does not count)."""
    record = ev.event("nonfinite")
    repairs = [e for e in ev.events if e.get("event") == "repair" and e.get("finding") == "nonfinite"]
    done = "; ".join(f"{'restarted' if r.get('mode') == 'restart' else 'continued from the last valid checkpoint'} "
                     f"with {' '.join(r['set'])}" for r in repairs)
    if record is None:
        if not repairs:
            return []
        return [Finding(
            code="nonfinite", severity="info", title="Loss is NaN or Inf",
            evidence={"repairs": [{"set": r["set"], **{k: r.get("evidence", {}).get(k) for k in ("what", "step", "lr")}}
                                  for r in repairs]},
            explanation=f"training hit a non-finite value {len(repairs)} time(s) and was repaired automatically "
                        "(train.nonfinite=repair)" + ("; the run then finished." if ev.finished else "."),
            advice=["start the next run with the repaired settings: " + " ".join(
                f"--set {s}" for s in merged_sets(*(r["set"] for r in repairs)))],
            action=done)]
    lr = record.get("lr")
    cfg = ev.cfg
    causes = []
    if lr is not None and lr > GUIDE_LR[1]:
        causes.append(f"the learning rate {lr:.3g} is above the guide's range (1e-3 to 1e-2)")
    if cfg.optim.clip_norm is None:
        causes.append("gradient clipping is off")
    norms = [s["grad_norm"] for s in ev.steps if isinstance(s.get("grad_norm"), (int, float))
             and math.isfinite(s["grad_norm"])]
    if len(norms) >= 4 and norms[-1] > 10 * min(norms):
        causes.append(f"the gradient norm grew from {min(norms):.3g} to {norms[-1]:.3g} before the failure")
    if repairs:
        causes.insert(0, f"{len(repairs)} earlier repair(s) with a lower learning rate did not prevent it, which "
                         "points to the data (extreme values in the records named) more than to the learning rate")
    new_lr = lower_lr(cfg.optim.lr)  # the base rate: warm-up and plateau reductions still apply on top
    repair_set = [f"optim.lr={new_lr:.3g}"] + ([] if cfg.optim.clip_norm is not None else ["optim.clip_norm=1.0"])
    diverged = _diverged(ev)
    last = record.get("last_finite_loss")
    start = ev.start_loss()
    blown = diverged is not None or (start is not None and _number(last) and last > DIVERGE_FACTOR * start)
    if blown:
        causes.append("the training loss had already risen far above its start before the failure, so the last "
                      "checkpoint holds diverged weights: the repair starts again")
    resumable = _has_checkpoint(ev) and not blown
    mode = "resume" if resumable else "restart"
    repair = {"mode": mode, "set": repair_set} if new_lr >= cfg.optim.min_lr else None
    how = (f"continue from the last valid checkpoint with a lower learning rate: rnnkit train --resume {ev.run_dir}"
           if resumable else ("the weights had diverged before it" if blown else "no checkpoint was written before it")
           + ": start again with a lower learning rate (`rnnkit diagnose --repair` restarts the run in its "
           "directory):")
    advice = ([how + " " + " ".join(f"--set {s}" for s in repair_set)] if repair else
              [f"the learning rate would fall below optim.min_lr={cfg.optim.min_lr:g}: look at the data instead"])
    advice += ["keep gradient clipping on (optim.clip_norm=1.0)",
               "look for extreme values in the records named in the evidence",
               "on GPU with fp16, try train.precision=bf16 or fp32"]
    return [Finding(
        code="nonfinite", severity="error", title="Loss is NaN or Inf",
        evidence={"what": record.get("what"), "step": record.get("step"), "lr": lr,
                  "last_finite_loss": record.get("last_finite_loss"), "grad_norm": record.get("grad_norm"),
                  "records": record.get("ids", [])[:10], "clip_norm": cfg.optim.clip_norm,
                  "checkpoint": resumable, "earlier_repairs": len(repairs)},
        explanation=("training produced a non-finite value and stopped"
                     + ("; the last valid checkpoint is intact. " if resumable else
                        ", before its first checkpoint. ")
                     + ("Likely causes: " + "; ".join(causes) + "." if causes else
                        "Common causes: a learning rate too high, exploding gradients on long sequences, "
                        "extreme input values.")),
        advice=advice,
        action="stopped at the first non-finite value; nothing after it was written"
               + (f"; earlier: {done}" if repairs else ""),
        repair=repair)]




def _metric_held(ev: Evidence, best: dict, last: dict) -> tuple[str, float, float] | None:
    """(name, at best, at last) when the task's headline validation metric at the last epoch is no
    worse (within METRIC_HELD) than at the best-loss epoch; None otherwise or when not logged."""
    from rnnkit.tasks import get_task

    names = get_task(ev.cfg.task).metric_names
    if not names or not isinstance(best.get(f"val_{names[0]}"), (int, float)):
        return None
    name = names[0]
    b, last_value = best[f"val_{name}"], last.get(f"val_{name}")
    if not isinstance(last_value, (int, float)):
        return None
    worse = (last_value - b) if name in LOWER_IS_BETTER else (b - last_value)
    return (name, b, last_value) if worse <= METRIC_HELD * max(abs(b), 1e-12) else None


def _oversized(ev: Evidence) -> Finding | None:
    """A model with OVERSIZED parameters per training sequence that drove the training loss to almost nothing:
    it can memorise the training set, whatever a small validation split shows."""
    params, n = ev.summary.get("parameters"), ev.summary.get("data", {}).get("sizes", {}).get("train")
    start, train = ev.start_loss(), _train_losses(ev)
    if not params or not n or start is None or not train or params / n < OVERSIZED:
        return None
    if min(train) > MEMORISED_LOSS * start:
        return None
    m = ev.cfg.model
    sizes = ev.summary.get("data", {}).get("sizes", {})
    advice = [f"a smaller model: --set model.hidden_size={max(16, m.hidden_size // 4)}"
              + (" --set model.num_layers=1" if m.num_layers > 1 else "")]
    if m.dropout < 0.5:
        advice.append(f"more dropout: --set model.dropout={_more_dropout(m.dropout):.1f} "
                      "(the guide: 0.3 to 0.5)")
    if ev.cfg.optim.weight_decay < 1e-2:
        advice.append("weight decay: --set optim.weight_decay=0.01")
    advice.append("more training data")
    return Finding(
        code="overfitting", severity="warning", title="Training loss decreases but validation loss increases",
        evidence={"parameters": params, "train_sequences": n, "parameters_per_sequence": params / n,
                  "train_loss_best": min(train), "initial_loss": start, "val_sequences": sizes.get("val")},
        explanation=f"the model has {params:,} parameters for {n} training sequences ({params / n:,.0f} each) and "
                    f"drove the training loss to {min(train):.3g} (from {start:.3g}): it can memorise the training "
                    "set outright" + (f"; a validation split of {sizes['val']} is too small to show how much that "
                                      "costs on new data" if sizes.get("val", 1000) < 50 else "") + ".",
        advice=advice)


def overfitting(ev: Evidence) -> list[Finding]:
    """Validation loss rose for several epochs after its best while the training loss kept falling; or a model
    far too large for its training set memorised it."""
    oversized = _oversized(ev)
    found = _overfitting_curve(ev)
    if oversized is not None and not any(f.severity == "warning" for f in found):
        return [oversized]
    return found


def _overfitting_curve(ev: Evidence) -> list[Finding]:
    epochs = [e for e in ev.epochs if isinstance(e.get("val_loss"), (int, float))]
    if len(epochs) < OVERFIT_EPOCHS + 1 or _diverged(ev) is not None:  # a diverging run's curves: `divergence`
        return []
    best = min(range(len(epochs)), key=lambda i: epochs[i]["val_loss"])
    after = epochs[best + 1:]
    if len(after) < OVERFIT_EPOCHS:
        return []
    vb, vl = epochs[best]["val_loss"], after[-1]["val_loss"]
    tb, tl = epochs[best]["train_loss"], after[-1]["train_loss"]
    above = [e for e in after if e["val_loss"] > vb * (1 + OVERFIT_RISE)]
    if not (len(above) >= OVERFIT_EPOCHS and vl > vb * (1 + OVERFIT_RISE) and tl < tb):
        return []
    m = ev.cfg.model
    advice = []
    if m.dropout < 0.5:  # into the guide's range, at least one notch up
        advice.append(f"more dropout: --set model.dropout={_more_dropout(m.dropout):.1f} "
                      "(the guide: 0.3 to 0.5)")
    advice.append(f"more weight decay: --set optim.weight_decay={max(ev.cfg.optim.weight_decay * 10, 1e-2):g} "
                  f"(now {ev.cfg.optim.weight_decay:g})")
    if m.hidden_size > 32:
        advice.append(f"a smaller model: --set model.hidden_size={m.hidden_size // 2}")
    advice.append("more training data or augmentation")
    rise = vl / vb - 1 if vb > 0 else math.inf  # a validation loss of exactly 0 happens (huge logits)
    stopped = ev.summary.get("stopped")
    held = _metric_held(ev, epochs[best], after[-1])
    # early stopping with the best weights restored has dealt with it, unless the best came in the first epochs
    handled = ev.finished and stopped == "early_stopping" and epochs[best]["epoch"] > OVERFIT_EARLY_BEST
    severe = rise >= OVERFIT_SEVERE and not held and not handled
    seen = (f"validation loss was lowest at {ev.epoch_word} {epochs[best]['epoch']} ({vb:.4g}) and rose to {vl:.4g} "
            f"over the next {len(after)} {ev.epochs_word} while the training loss fell from {tb:.4g} to {tl:.4g}")
    if severe:
        explanation = seen + ": the model memorises the training set instead of learning what generalises."
    else:  # a note, not an alarm: the run kept the best epoch's weights, or the metric did not suffer
        explanation = seen + (": the usual end of a healthy run; early stopping kept the best epoch's weights, so "
                              "nothing needs doing unless more accuracy is wanted." if handled else
                              ": the model began to fit the training set more closely than the validation set.")
    if held:
        explanation += (f" The validation {held[0]} held ({held[2]:.4g} at the end, {held[1]:.4g} at the best "
                        "epoch): the model grew over-confident rather than wrong.")
    return [Finding(
        code="overfitting", severity="warning" if severe else "info",
        title="Training loss decreases but validation loss increases",
        evidence={"best_epoch": epochs[best]["epoch"], "val_loss_best": vb, "val_loss_last": vl, "val_rise": rise,
                  "train_loss_at_best": tb, "train_loss_last": tl, "epochs_after_best": len(after)},
        explanation=explanation,
        advice=advice,
        action=((_restored(ev, epochs[best]["epoch"]) + " were restored before scoring"
                 + (" and early stopping ended the run" if stopped == "early_stopping" else ""))
                if ev.finished else "none yet: the run has not finished (it restores the best weights when it does)"),
    )]


def _restored(ev: Evidence, lowest_loss_epoch: int) -> str:
    """Whose weights the run kept: the lowest validation loss's, or another epoch's when a validation metric
    picked the best epoch (summary "monitor", e.g. entity_f1 for BIO tags)."""
    monitor, best = ev.summary.get("monitor"), ev.summary.get("best_epoch")
    if monitor not in (None, "loss") and isinstance(best, int) and best != lowest_loss_epoch:
        if monitor == FIT_LOSS:  # the training rows' loss in evaluation mode, not a validation figure
            return (f"the weights of {ev.epoch_word} {best} (the lowest loss over the training rows, {FIT_LOSS}: "
                    "validation has too few rows to pick the epoch)")
        return f"the weights of {ev.epoch_word} {best} (the best validation {monitor})"
    return f"the best weights ({ev.epoch_word} {lowest_loss_epoch})"


def underfitting(ev: Evidence) -> list[Finding]:
    """The training loss barely moves from where it started, goes flat early while still high, or was still
    falling when max_epochs ended the run (a learning rate too low for the epochs given). Not for a run whose
    loss rose above its start: that is `divergence`."""
    start = ev.start_loss()
    train = _train_losses(ev)
    if start is None or len(train) < 2 or _diverged(ev) is not None:
        return []
    cfg = ev.cfg
    lr = effective_lr(cfg)
    best = min(train)
    # the yardstick: where training started, or the loss of a prediction that knows nothing when that is lower (an
    # untrained regressor's outputs are off the mean: 1.23 at the start, 0.96 after training is still about 1).
    # With class shares known, the validation loss is held against them below (a training loss under heavy dropout
    # sits above any such yardstick)
    chance, prior = _chance(ev), ev.label_entropy
    ref, ref_words = start, "the loss before training"
    if _number(chance) and 0 < chance < start and not (_number(prior) and prior > 0):
        ref, ref_words = chance, "the loss of a prediction that knows nothing"
    reason, severity, title = None, "warning", "Training loss plateaus early"
    if best >= UNDERFIT_START_SHARE * ref:
        title = "The model learns almost nothing"
        reason = (f"the best training loss {best:.4g} is {best / ref:.0%} of {ref_words} ({ref:.4g}): the model "
                  "has learned almost nothing, even on the training set")
    elif len(train) >= PLATEAU_MIN_EPOCHS:
        half = train[len(train) // 2:]
        change = (half[0] - half[-1]) / max(abs(half[0]), 1e-12)
        if change < PLATEAU_CHANGE and half[-1] > PLATEAU_START_SHARE * ref:
            reason = (f"the training loss stopped falling (it changed {change:.1%} over the last {len(half)} "
                      f"{ev.epochs_word}) "
                      f"at {half[-1]:.4g}, still {half[-1] / ref:.0%} of {ref_words} ({ref:.4g})")
    vals = [e["val_loss"] for e in ev.epochs if _number(e.get("val_loss"))]
    # ...unless the training loss fell while the validation loss only rose: that is the labels, not capacity
    rose_only = len(vals) >= 3 and vals.index(min(vals)) < 2 and vals[-1] > vals[0] and best < (1 - FELL_SHARE) * start
    if (reason is None and not rose_only and _number(prior) and prior > 0 and vals
            and min(vals) >= UNDERFIT_START_SHARE * prior):
        reason = (f"the best validation loss {min(vals):.4g} is still {min(vals) / prior:.0%} of the loss of "
                  f"predicting the label shares ({prior:.4g}): the model has learned almost nothing")
        title = "The model learns almost nothing"
    held_back = _dropout_gap(ev)
    if reason is None and held_back is not None:
        reason = (f"dropout {cfg.model.dropout:g} is above the guide's range (0.3 to 0.5), and the training loss "
                  f"({held_back[0]:.4g}) stayed {held_back[0] / held_back[1]:.1f}x the validation loss "
                  f"({held_back[1]:.4g}): the noise dropout adds in training holds the model back")
        title = "Dropout holds training back"
    if reason is None:
        still = _still_improving(ev)
        if still is None:
            return []
        reason = (f"max_epochs ended the run while the validation loss was still falling (best at {ev.epoch_word} "
                  f"{still[0]} of {still[1]})")
        if lr < GUIDE_LR[0]:
            reason += f", at a learning rate of {lr:.3g}, below the guide's range (1e-3 to 1e-2)"
            title = "Still improving when it stopped, at a low learning rate"
        else:
            severity = "info"  # a healthy run that could have gone on: nothing is wrong, it is not underfitting
    advice = []
    if ev.signal.get("verdict") == "none":
        advice.append("first check the labels: a nearest-neighbour check finds no signal about them in the inputs "
                      "(see labels.unpredictable); more capacity or epochs will not help if the inputs cannot "
                      "predict them")
    constant = ev.inputs.get("constant") or []
    if constant:
        advice.append(f"input channel(s) {constant} are constant: nothing can be learned from them; check how the "
                      "columns were read")
    heavy = _heavy_dropout(cfg)
    if held_back is not None or heavy:
        advice.append(_less_dropout(heavy or ["dropout"]))
    if lr < GUIDE_LR[1]:
        new = GUIDE_LR[0] if lr < GUIDE_LR[0] else min(lr * 3, GUIDE_LR[1])
        note = (f" (the rate that ran: {lr:.3g}; optim.lr={cfg.optim.lr:.3g} is floored at optim.min_lr)"
                if cfg.optim.lr < cfg.optim.min_lr else "")
        advice.append("a higher learning rate: " + " ".join(f"--set {x}" for x in lr_sets(cfg, new))
                      + f" (the guide: 1e-3 to 1e-2){note}")
    if ev.summary.get("stopped") == "max_epochs":
        advice.append(f"more epochs: --set train.max_epochs={cfg.train.max_epochs * 2}")
    if severity == "warning" and held_back is None and not reason.startswith("max_epochs"):
        advice.append(f"more capacity: --set model.hidden_size={cfg.model.hidden_size * 2}"
                      + (f" or --set model.num_layers={cfg.model.num_layers + 1}" if cfg.model.num_layers < 3 else ""))
        if not heavy and (cfg.model.dropout > 0.1 or cfg.model.recurrent_dropout > 0.1):
            advice.append("less dropout: --set model.dropout=0.1 --set model.recurrent_dropout=0.0")
        advice.append("check the preprocessing: labels matched to the right rows, inputs on a sensible scale, no "
                      "constant columns")
        if ev.signal.get("verdict") not in ("none", "signal") and ref_words != "the loss before training":
            advice.append("check that the inputs can predict the targets at all: train on a copy with the targets "
                          "shuffled; if it does as well, no setting will help (some data sets carry little signal)")
    return [Finding(
        code="underfitting" if severity == "warning" else "training.unfinished", severity=severity,
        title=title if severity == "warning" else "Still improving when it stopped",
        evidence={"initial_loss": start, "chance_loss": _chance(ev), "train_loss_first_epoch": train[0],
                  "train_loss_best": best, "train_loss_last": train[-1], "epochs": len(train), "lr": cfg.optim.lr,
                  "lr_effective": lr, "hidden_size": cfg.model.hidden_size, "dropout": cfg.model.dropout,
                  "constant_channels": constant},
        explanation=reason + ".", advice=advice)]


def _dropout_gap(ev: Evidence) -> tuple[float, float] | None:
    """(training loss, validation loss) of the last epoch when dropout is above the guide's range and the
    training loss stays DROPOUT_GAP x the validation loss (dropout acts in training only), else None."""
    last = ev.epochs[-1] if ev.epochs else {}
    t, v = last.get("train_loss"), last.get("val_loss")
    if ev.cfg.model.dropout <= 0.5 or not _number(t) or not _number(v) or v <= 0 or t < DROPOUT_GAP * v:
        return None
    return t, v


def _still_improving(ev: Evidence) -> tuple[int, int] | None:
    """(best validation epoch, epochs) when max_epochs ended the run with its best epoch in the last
    EPOCHS_TAIL of the run (the validation loss had not stopped falling), else None."""
    vals = [e["val_loss"] for e in ev.epochs if _number(e.get("val_loss"))]
    if ev.summary.get("stopped") != "max_epochs" or len(vals) < 2:
        return None
    best = vals.index(min(vals)) + 1
    return (best, len(vals)) if best >= len(vals) - max(1, round(EPOCHS_TAIL * len(vals))) + 1 else None


def divergence(ev: Evidence) -> list[Finding]:
    """The training loss rose far above where it started: the learning rate is too high (clipping keeps it
    finite, so no NaN ever stops the run)."""
    found = _diverged(ev)
    if found is None:
        return []
    start, peak, peak_epoch = found
    cfg = ev.cfg
    train = _train_losses(ev)
    norms = _step_norms(ev)
    clipped = [bool(s.get("clipped")) for s in ev.steps if "clipped" in s]
    clip = cfg.optim.clip_norm
    evidence = {"initial_loss": start, "train_loss_peak": peak, "peak_epoch": peak_epoch, "train_loss_last": train[-1],
                "lr": cfg.optim.lr, "clip_norm": clip,
                "clipped_share": sum(clipped) / len(clipped) if clipped else None,
                "median_grad_norm": sorted(norms)[len(norms) // 2] if norms else None}
    seen = (f"the training loss rose to {peak:.4g} ({ev.epoch_word} {peak_epoch}), {peak / start:.1f}x the loss before "
            f"training ({start:.4g})")
    if train[-1] > start:
        seen += f", and ended at {train[-1]:.4g}, still above it"
    if clipped and evidence["clipped_share"] >= 0.9 and clip is not None:
        seen += (f"; {evidence['clipped_share']:.0%} of the logged steps were clipped (median pre-clip norm "
                 f"{evidence['median_grad_norm']:.3g} against optim.clip_norm={clip:g})")
    new = lower_lr(cfg.optim.lr)
    sets = lr_sets(cfg, new) + ([] if clip is not None else ["optim.clip_norm=1.0"])
    heavy = _heavy_dropout(cfg)
    return [Finding(
        code="divergence", severity="error" if train[-1] > start else "warning",
        title="Loss rising: learning rate too high",
        evidence=evidence,
        explanation=seen + ": each step overshoots, so the weights move away from a solution instead of towards it"
                    + (f"; the learning rate {cfg.optim.lr:.3g} is above the guide's range (1e-3 to 1e-2)"
                       if cfg.optim.lr > GUIDE_LR[1] else "") + ".",
        advice=["a lower learning rate, from scratch (the weights have diverged): " + " ".join(
                    f"--set {x}" for x in sets),
                f"a longer warm-up: --set optim.warmup_epochs={max(1, 2 * cfg.optim.warmup_epochs):g}",
                *([_less_dropout(heavy) + ": dropout this heavy makes every step's gradient noisy"] if heavy else [])],
        repair={"mode": "restart", "set": sets})]


def clipping_off(ev: Evidence) -> list[Finding]:
    """Gradient clipping is off where the guide says it matters: a high learning rate, long sequences, or
    gradient norms that spike."""
    cfg = ev.cfg
    if cfg.optim.clip_norm is not None or not ev.epochs:
        return []
    norms = _step_norms(ev)
    spike = max(norms) / max(sorted(norms)[len(norms) // 2], 1e-12) if len(norms) >= 4 else None
    sizes = ev.summary.get("data", {}).get("sizes", {})
    tokens, n = ev.summary.get("train_real_tokens"), sizes.get("train")
    length = tokens / n if tokens and n else None
    why = []
    if cfg.optim.lr > GUIDE_LR[1]:
        why.append(f"the learning rate {cfg.optim.lr:.3g} is above the guide's range")
    if spike is not None and spike >= NORM_SPIKE:
        why.append(f"the gradient norm spiked to {spike:.0f}x its median")
    if length is not None and length >= LONG_WINDOW:
        why.append(f"training sequences are {length:.0f} steps long (exploding gradients grow with length)")
    if not why:
        return []
    return [Finding(
        code="clipping.off", severity="warning" if len(why) > 1 or spike is not None and spike >= NORM_SPIKE
        else "info", title="Gradient clipping off",
        evidence={"clip_norm": None, "lr": cfg.optim.lr, "norm_spike": spike, "mean_train_length": length},
        explanation="gradient clipping is off and " + "; ".join(why) + ": one large gradient can throw the weights "
                    "far off (the guide: enable gradient clipping).",
        advice=["turn clipping on: --set optim.clip_norm=1.0"])]


def baseline(ev: Evidence) -> list[Finding]:
    """The model does no better than the trivial prediction on test data (the family's baseline, or its own
    judgement where it has none); when it learned the training set all the same, the labels are the suspect."""
    if not ev.finished or _diverged(ev) is not None or ev.event("nonfinite") is not None:
        return []
    cmp = ev.baseline_comparison()
    found = ev.baseline_comparisons()
    # a metric that clearly beat the baseline (the headline that picked the epoch, say): the inputs predict the
    # labels, whatever another metric shows; "clearly": it closed at least BARELY of a trivial baseline's distance
    # to a perfect score (`BaselineComparison.clearly`)
    clearly = [c for c in found if c.clearly]
    # ... and on validation: a model far and significantly above the baseline there learned something the labels
    # carry, whatever the test rows show (`_validation_beat`)
    on_val = _validation_beat(ev)
    barely = False
    if cmp is not None and cmp.better:
        # every metric hardly better: a suspect only when the training set was memorised all the same (below)
        if clearly:
            return []
        barely = True
        cmp = next((c for c in found if c.metric == ev.summary.get("monitor")), cmp)  # the headline's words
    if cmp is not None:
        seen = (f"the test {cmp.metric} {cmp.model:.4g} is {'hardly' if barely else 'no'} better than the "
                f"{cmp.name.replace('_', ' ')} baseline's {cmp.base:.4g}")
        seen += "".join(f", while its {c.metric} {c.model:.4g} beat the baseline's {c.base:.4g}" for c in clearly)
        evidence = {"metric": cmp.metric, "model": cmp.model, cmp.name: cmp.base}
    else:
        judge = get_task(ev.cfg.task).judge_predictions
        test = ev.summary.get("metrics", {}).get("test")
        if judge is None or not test:
            return []
        verdict, detail, evidence = judge(test)
        if verdict != "fail":
            return []
        seen = detail
    start, train = ev.start_loss(), _train_losses(ev)
    # what "learned the training labels" is measured against: the loss of predicting the label shares when the
    # preflight knows them (a majority-only model on imbalanced data gets there from the input alone), else the start
    prior = ev.label_entropy
    start = prior if _number(prior) and prior > 0 else start
    vals = [e["val_loss"] for e in ev.epochs if _number(e.get("val_loss"))]
    # the training loss fell by half, or by a fifth while the validation loss only rose from its first epochs
    val_rose = len(vals) >= 3 and vals.index(min(vals)) < 2 and vals[-1] > vals[0]
    signal = ev.signal
    memorised = start is not None and train and (min(train) < MEMORISED_SHARE * start
                                                 or (min(train) < (1 - FELL_SHARE) * start and val_rose))
    shifted = _out_of_range(ev)  # test levels the training span never reached: a cause of its own (out_of_range)
    shifted = shifted if cmp is not None and not cmp.better else None
    if (memorised or signal.get("verdict") == "none") and not clearly and not on_val and shifted is None:
        if memorised:
            why = (f"{seen}, although the training loss fell to {min(train):.4g} (from {start:.4g}): the model "
                   "memorised the training labels without learning anything that carries over")
            evidence = {**evidence, "initial_loss": start, "train_loss_best": min(train)}
        else:
            why = f"{seen}, and {_signal_words(signal)} finds no signal either"
        if signal.get("verdict") == "signal":
            why += (f" ({_signal_words(signal)} does find signal in the training and validation sequences: if the "
                    "test labels come from another file, check that they are coded the same way)")
        return [Finding(
            code="labels.unpredictable", severity="warning", title="Inputs do not predict the labels",
            evidence={**evidence, "signal": signal or None},
            explanation=why + ". The inputs may not predict the labels: labels shuffled or misaligned with their "
                        "rows (a sort or join gone wrong), labels taken from another column, or validation/test "
                        "labels coded differently.",
            advice=["look at a few rows with their labels; check the label column and the row order of each file",
                    "check it: train on a copy with the labels shuffled; if it does as well, the inputs carry no "
                    "signal about them"])]
    if barely:
        return []
    cfg = ev.cfg
    advice = ["train longer or with a higher learning rate (see underfitting, if found)",
              "for imbalanced classes: look at macro_f1 and the per-class counts; rebalance the training data "
              "(oversample the rare classes)",
              "if nothing helps, check that the inputs can predict the labels at all: labels matched to the "
              "right rows, the right label column (a model that never learns looks the same as one given "
              "shuffled labels)"]
    if ev.summary.get("epochs_run", 0) <= 3:
        advice.insert(0, f"train longer: --set train.max_epochs={max(cfg.train.max_epochs * 4, 20)} (only "
                         f"{ev.summary.get('epochs_run')} {ev.epochs_word} ran)")
    explanation = seen + (": the model predicts no better than a rule that ignores the input (for classes: "
                          "always the most frequent one)" if cmp is None or cmp.trivial else
                          ": the trained model predicts no better than that simple rule")
    if shifted is not None:
        explanation += (f"; {shifted['test']['share']:.0%} of the test targets lie outside the training levels "
                        "(see data.out_of_range), the likelier cause than the labels")
        advice = list(shifted.get("advice") or [])
    if signal.get("verdict") == "signal":
        explanation += (f". Yet {_signal_words(signal)} does better than with the labels shuffled: the inputs "
                        "predict the labels, and this model did not learn how")
        advice = [a for a in advice if not a.startswith("if nothing helps")]
    if on_val:
        explanation += (". On validation it did beat the baseline (" + ", ".join(
            f"{c.metric} {c.model:.4g} against {c.base:.4g} over {n:,} {units}" for c, n, units in on_val)
            + ", far beyond chance even allowing for the epoch having been picked there): the inputs predict the "
            "labels there, so the test rows differ from the validation rows, or are too few to tell")
        advice = ["compare the test file with the training and validation files: the label shares, the lengths, "
                  "the source and time of the rows (a test set drawn another way than validation)",
                  "with few test rows a difference of a few rows decides this: evaluate on more rows "
                  "(rnnkit evaluate RUN FILE)",
                  *[a for a in advice if not a.startswith("if nothing helps")]]
        evidence = {**evidence, "val": {c.metric: {"model": c.model, c.name: c.base, "n": n} for c, n, _ in on_val}}
    return [Finding(
        code="baseline.not_beaten", severity="warning", title="No better than a trivial prediction",
        evidence={**evidence, "signal": signal or None}, explanation=explanation + ".", advice=advice)]


def _validation_beat(ev: Evidence) -> list[tuple]:
    """(comparison, labels scored, "labels") where the validation split shows the model far above its trivial
    baseline, strongly enough to overrule `labels.unpredictable`: accuracy (over the per-class supports: one label
    a row for classes, one a token for tags) closed at least `VAL_CLOSED` of the baseline's gap to perfect, and
    stood `VAL_Z` binomial standard errors above the baseline's rate (the epoch was picked on validation, so its
    figure is optimistic: the margin is wide). Never when the label-permutation check found no signal (no epoch
    choice flatters it), nor after a refit (validation's figures are the first model's, test's the refit's)."""
    if ev.signal.get("verdict") == "none" or (ev.summary.get("refit") or {}).get("on"):
        return []
    per_class = ((ev.summary.get("metrics") or {}).get("val") or {}).get("per_class")
    per_class = per_class if isinstance(per_class, dict) else {}
    n = sum(c.get("support", 0) for c in per_class.values() if isinstance(c, dict))
    units = "labels"
    out = []
    for c in ev.baseline_comparisons("val"):
        if c.metric != "accuracy" or not c.higher or not n or not 0 < c.base < 1:
            continue
        closed = (c.model - c.base) / (1 - c.base)
        z = (c.model - c.base) / math.sqrt(c.base * (1 - c.base) / n)
        if closed >= VAL_CLOSED and z >= VAL_Z:
            out.append((c, int(n), units))
    return out


def _signal_words(signal: dict) -> str:
    """The nearest-neighbour permutation test (`doctor.signal`) in words."""
    if signal.get("kind") == "numeric":
        return (f"a nearest-neighbour check on {signal['examples']} training and validation sequences (leave-one-out "
                f"prediction by the 5 nearest sequences' mean target: skill {signal['skill']:.2g} against predicting "
                f"the mean, p = {signal['p_value']:.2g} against shuffled targets)")
    return (f"a nearest-neighbour check on {signal['examples']} training and validation sequences (leave-one-out "
            f"accuracy {signal['accuracy']:.3g}, majority share {signal['majority']:.3g}, p = {signal['p_value']:.2g} "
            "against shuffled labels)")


def protocol(ev: Evidence) -> list[Finding]:
    """The protocol search (summary data.auto, e.g. forecast.auto) ranked every candidate on validation inside
    the training span, and its best did not beat the seasonal-naive baseline there."""
    auto = (ev.summary.get("data") or {}).get("auto") or {}
    if auto.get("beats_seasonal_naive") is not False:
        return []
    metric, val = auto.get("metric", "mase"), auto.get("val") or {}
    mine, naive = val.get(metric), (val.get("seasonal_naive") or {}).get(metric)
    chosen = ", ".join(f"{k}={v}" for k, v in (auto.get("chosen") or {}).items())
    seen = (f"the best of the {auto.get('tried', '?')} protocols tried ({chosen}) scored validation {metric} "
            + (f"{mine:.4g} against the seasonal-naive forecast's {naive:.4g}" if _number(mine) and _number(naive)
               else "no better than the seasonal-naive forecast"))
    advice = []
    if auto.get("budget_exhausted"):
        advice.append(f"the search ran out of time after {auto.get('tried')} of {auto.get('candidates')} candidates: "
                      "raise its budget (" + f"{auto.get('seconds', 0):.0f} s were spent)")
    advice += list(get_task(ev.cfg.task).search_advice)
    return [Finding(
        code="protocol.not_beaten", severity="warning", title="No protocol beat the seasonal-naive forecast",
        evidence={"metric": metric, "best": mine, "seasonal_naive": naive, "chosen": auto.get("chosen"),
                  "tried": auto.get("tried"), "budget_exhausted": auto.get("budget_exhausted")},
        explanation=seen + ": on the data before the test span, a rule that repeats the last season forecasts at "
                    "least as well as the trained model.",
        advice=advice)]


OUT_OF_RANGE = 0.2  # a test split with this share of targets outside the training span's levels is named


def _out_of_range(ev: Evidence) -> dict | None:
    """summary data.out_of_range when at least OUT_OF_RANGE of the test targets lie outside the training levels."""
    rng = ((ev.summary or {}).get("data") or {}).get("out_of_range") or {}
    share = (rng.get("test") or {}).get("share")
    return rng if _number(share) and share >= OUT_OF_RANGE else None


def out_of_range(ev: Evidence) -> list[Finding]:
    """The test targets lie at levels the training span never reached (a family's summary data.out_of_range) and
    the model lost to its baseline there: a network extrapolates badly, and validation inside the span cannot
    show it."""
    rng = _out_of_range(ev)
    cmp = ev.baseline_comparison() if rng is not None and ev.finished else None
    if cmp is None or cmp.better:  # a trend the model followed (window_norm, say) is no finding
        return []
    test, val = rng.get("test") or {}, rng.get("val") or {}
    unseen = (val.get("share") or 0) < OUT_OF_RANGE
    return [Finding(
        code="data.out_of_range", severity="warning", title="Test levels outside the training range",
        evidence={"test_share": test.get("share"), "val_share": val.get("share")},
        explanation=f"{test['share']:.0%} of the test targets ({test.get('outside')} of {test.get('targets')}) lie "
                    f"beyond the levels the training span covered (validation: {val.get('share') or 0:.0%}); "
                    f"{rng.get('why', '')}: the model extrapolates there, which networks do badly"
                    + (", and the validation figures, inside the training levels, could not show it." if unseen
                       else "."),
        advice=list(rng.get("advice") or []))]


def unshuffled(ev: Evidence) -> list[Finding]:
    """data.storage=stream read a file in label order through a buffer of a few row groups (the scan's figure)."""
    storage = ((ev.summary or {}).get("data") or {}).get("storage") or {}
    distance, chance = storage.get("buffer_label_distance"), storage.get("buffer_label_chance") or 0.0
    if storage.get("mode") != "stream" or not isinstance(distance, (int, float)) or distance - chance <= UNMIXED:
        return []
    rows = ((ev.summary.get("data") or {}).get("sizes") or {}).get("train")
    return [Finding(
        code="data.unshuffled", severity="warning", title="Training rows not shuffled",
        evidence={"buffer_label_distance": distance, "buffer_label_chance": chance,
                  "shuffle_buffer": storage.get("shuffle_buffer"),
                  "row_groups": storage.get("row_groups")},
        explanation=f"the training file's rows are grouped by label: each shuffle buffer of "
                    f"{storage.get('shuffle_buffer'):,} rows held a label mix {distance:.0%} away from the whole "
                    f"file's ({chance:.0%} for as many rows drawn at random), so the batches of one stretch of an "
                    "epoch come from few classes, and the gradient "
                    "swings from class to class instead of following the whole data (the guide: shuffle the "
                    "training data).",
        advice=["shuffle the rows when writing the Parquet or Arrow file (e.g. pandas .sample(frac=1, random_state=0))",
                f"or read more of it at a time: --set data.shuffle_buffer={rows or 1_000_000}"])]


def inputs(ev: Evidence) -> list[Finding]:
    """What the network was fed (the preflight's input statistics): constant channels, channels far from
    mean 0 / spread 1, and a channel that alone gives the label away."""
    stats = ev.inputs
    if not stats:
        return []
    out = []
    constant = stats.get("constant") or []
    channels = stats.get("channels", 0)
    if constant:
        every = len(constant) == channels
        out.append(Finding(
            code="inputs.constant", severity="error" if every else "warning", title="Constant inputs",
            evidence={"constant_channels": constant, "channels": channels},
            explanation=(f"{'every input channel' if every else f'{len(constant)} of {channels} input channels'} "
                         f"({constant[:20]}) hold(s) one value across the training data: "
                         + ("the model cannot learn anything from the inputs." if every else
                            "they carry no information.")),
            advice=["check how the columns were read (a wrong column, a sensor that was off, a join that filled a "
                    "default); drop the constant channels"]))
    mean, std = stats.get("mean") or [], stats.get("std") or []
    far = [c for c in range(len(mean)) if c not in constant and
           (abs(mean[c]) > UNSCALED or std[c] > UNSCALED or std[c] < 1 / UNSCALED)]
    if far:
        cfg = ev.cfg
        shown = ", ".join(f"{c}: mean {mean[c]:.3g}, sd {std[c]:.3g}" for c in far[:5])
        shown += " ..." if len(far) > 5 else ""
        out.append(Finding(
            code="inputs.unscaled", severity="warning", title="Inputs not normalized",
            evidence={"channels": far, "mean": [mean[c] for c in far], "std": [std[c] for c in far],
                      "standardize": cfg.data.standardize},
            explanation=f"{len(far)} input channel(s) are far from mean 0 and spread 1 ({shown}): "
                        "large or tiny inputs saturate the gates and make gradients unstable (the guide: normalize "
                        "to mean 0, std 1).",
            advice=(["standardize the inputs (fitted on the training split only): --set data.standardize=true"]
                    if not cfg.data.standardize else
                    ["the values reached the network unscaled: check the family's scaling settings"])))
    leaks = stats.get("label_channels") or []
    if leaks:
        out.append(Finding(
            code="labels.leak", severity="warning", title="A feature gives the label away",
            evidence={"label_channels": leaks, "examples": stats.get("examples")},
            explanation=f"input channel(s) {leaks[:10]} alone sort(s) the training sequences into one run per class "
                        "(by each sequence's mean): such a feature is usually the label itself, or derived from it "
                        "(an id, a date or a file order that follows the label); the scores are then too good to be "
                        "true and will not hold on new data.",
            advice=[f"remove channel(s) {leaks[:10]} and train again, or check how they were made"]))
    else:
        first = next((e for e in ev.epochs), None)
        name = (get_task(ev.cfg.task).metric_names or ("",))[0]
        if first is not None and name in ("accuracy",) and first.get(f"val_{name}") == 1.0:
            out.append(Finding(
                code="labels.leak", severity="info", title="A feature gives the label away",
                evidence={f"val_{name}_epoch_1": 1.0},
                explanation=f"the validation {name} was perfect after the first {ev.epoch_word}: possible for an "
                            "easy task, but also the sign of a feature that gives the label away, or of validation "
                            "rows that are copies of training rows.",
                advice=["check for duplicates between the splits and for a column derived from the label"]))
    return out


def _frontend_advice(summary: dict) -> list[str]:
    """For a model that can take a front-end (summary data.frontend, numeric input): shorten the sequence before
    the recurrent layers, or shorten it more."""
    front = (summary.get("data") or {}).get("frontend") or {}
    if front.get("kind") == "none" and "token input" not in str(front.get("reason", "")):
        return ["shorten the sequence before the recurrent layers with a strided convolutional front-end: --set "
                "model.frontend=conv (model.frontend_reduction: the factor)"]
    if front.get("kind") in ("conv", "patch") and isinstance(front.get("reduction"), int):
        return [f"shorten it more before the recurrent layers: --set model.frontend_reduction={front['reduction'] * 2}"]
    return []


def _long_mode(summary: dict) -> str:
    """What data.long_sequences resolved to for the run ("truncate" for a run from before windows)."""
    return ((summary.get("data") or {}).get("long_sequences") or {}).get("mode") or "truncate"


def _window_advice(ev: Evidence) -> list[str]:
    """For a family that reads documents in windows and a run that truncated: read them in windows instead."""
    if "window" not in get_task(ev.cfg.task).long_sequences or _long_mode(ev.summary) in WINDOWED:
        return []
    return ["read each document whole in windows: --set data.long_sequences=window (each window of "
            "data.window_length steps is encoded alone and the document's prediction combines them; at most "
            "data.max_windows windows per document; or data.long_sequences=hierarchical for documents of many "
            "windows: a document-level RNN reads the window vectors in order)"]


def truncation_advice(ev: Evidence) -> list[str]:
    """The options that keep more of what truncation (or the windows' cap) cuts, most helpful first."""
    cfg, data = ev.cfg, ev.summary.get("data") or {}
    if _long_mode(ev.summary) in WINDOWED:
        return ["more windows per document (memory grows with them): --set "
                f"data.max_windows={cfg.data.max_windows * 2}"]
    advice = _window_advice(ev)
    keep = (data.get("truncation") or {}).get("keep", cfg.data.truncate_keep)
    if keep != "head_tail":
        advice.append("keep both ends of each long row: --set data.truncate_keep=head_tail (the first quarter and "
                      "the last three quarters of data.max_length by default, data.truncate_head; Sun et al. 2019 "
                      "found head+tail the best cut of long reviews)")
    if cfg.data.max_length < 1024:
        advice.append(f"or keep more of every row (slower): --set data.max_length={min(1024, cfg.data.max_length * 2)}")
    return advice


def truncation(ev: Evidence) -> list[Finding]:
    """inputs.truncated: truncation (data.max_length), or the cap on windows (data.max_windows), cut a large share
    of the training rows: the model never sees what they held past the cut."""
    data = ev.summary.get("data") or {}
    info = data.get("truncation") or {}
    train = (info.get("splits") or {}).get("train")
    if not train:  # a run from before the counts: the rows cut, without positions
        rows, cut = (data.get("sizes") or {}).get("train"), (data.get("truncated") or {}).get("train")
        if not rows or not cut:
            return []
        train = {"rows": rows, "cut_rows": cut, "cut_rows_share": cut / rows}
    share = train.get("cut_rows_share") or 0.0
    if share <= TRUNCATED_ROWS:
        return []
    by = info.get("by", "data.max_length")
    limit = info.get("limit", ev.cfg.data.max_length)
    kept = info.get("keep", ev.cfg.data.truncate_keep)
    if kept == "head_tail" and "head" in info:
        kept = f"the first {info['head']} and the last {info['tail']} steps"
    else:
        kept = f"the {kept}"
    dropped = (f", dropping {train['dropped_positions']:,} of the {train['positions']:,} training positions "
               f"({train['dropped_share']:.0%})" if "dropped_positions" in train else "")
    what = f"{by}={ev.cfg.data.max_windows} windows ({limit} steps)" if by == "data.max_windows" else f"{by}={limit}"
    return [Finding(
        code="inputs.truncated", severity="warning", title="Long sequences cut",
        evidence={"by": by, "limit": limit, "keep": info.get("keep", ev.cfg.data.truncate_keep), **train},
        explanation=f"{what} cut {train['cut_rows']} of the {train['rows']} training rows ({share:.0%}) to {kept}"
                    f"{dropped}: the model never sees the rest, and it cannot learn from what is only there.",
        advice=truncation_advice(ev))]


def slow(ev: Evidence) -> list[Finding]:
    """The guide's causes of slow training that the run's own numbers show."""
    s, cfg, out = ev.summary, ev.cfg, []
    pad = s.get("padding_share")
    steps, epochs = s.get("steps"), s.get("epochs_run")
    # batches per pass: with one, every training row shares the one batch, and no bucketing can pad less
    batches = steps * cfg.optim.accumulate / epochs if steps and epochs else None
    if isinstance(pad, (int, float)) and pad > PADDING_SHARE and (batches is None or batches >= 2):
        fix = ("turn length bucketing on: --set data.bucketing=true" if not cfg.data.bucketing else
               f"sort more batches together: --set data.bucket_chunk={cfg.data.bucket_chunk * 4}")
        out.append(Finding(
            code="slow.padding", severity="warning", title="Very slow training",
            evidence={"padding_share": pad, "bucketing": cfg.data.bucketing, "bucket_chunk": cfg.data.bucket_chunk},
            explanation=f"{pad:.0%} of the positions in the training batches are padding: that share of the "
                        "computation is spent on nothing.",
            advice=[fix, "cap outliers: --set data.max_length=N (truncated rows are counted in the summary)"]))
    wait = s.get("data_wait_share")
    if isinstance(wait, (int, float)) and wait > DATA_WAIT_SHARE:
        out.append(Finding(
            code="slow.data_wait", severity="warning", title="Very slow training",
            evidence={"data_wait_share": wait},
            explanation=f"{wait:.0%} of the training time is spent assembling batches rather than computing.",
            advice=([f"data.storage={cfg.data.storage} reads and tokenizes the training file again every epoch: "
                     "a file that fits in memory trains faster with --set data.storage=memory (or disk), which read "
                     "it once"] if cfg.data.storage == "stream" else [])
            + ["a larger batch (fewer, bigger batches): --set data.batch_size="
               f"{cfg.data.batch_size * 2}", "profile the collate step (python -m cProfile)"]))
    sizes = s.get("data", {}).get("sizes", {})
    tokens, n = s.get("train_real_tokens"), sizes.get("train")
    if tokens and n and tokens / n > LONG_SEQUENCE:
        out.append(Finding(
            code="slow.long_sequences", severity="warning", title="Very slow training",
            evidence={"mean_train_length": tokens / n, "max_length": cfg.data.max_length},
            explanation=f"training sequences are {tokens / n:.0f} steps long on average; a recurrent network "
                        "processes them one step after another, so time grows with length.",
            advice=_frontend_advice(s) + (_long_window_advice(ev) or list(get_task(cfg.task).long_sequence_advice) or
                                          ["truncate to 512-1024 steps (the guide): --set data.max_length=1024",
                                           *_head_tail_advice(ev),
                                           "or downsample / summarise long inputs before training"])))
    contention = _cpu_contention(ev)
    if contention is not None:
        out.append(contention)
    tiny = cfg.data.batch_size <= TINY_BATCH
    if cfg.data.batch_size < SMALL_BATCH and steps and epochs and (steps / epochs >= SMALL_BATCH_STEPS or tiny):
        out.append(Finding(
            code="slow.small_batch", severity="warning" if tiny else "info", title="Very slow training",
            evidence={"batch_size": cfg.data.batch_size, "steps_per_epoch": steps / epochs},
            explanation=f"batches of {cfg.data.batch_size} make {steps / epochs:.0f} small steps per "
                        f"{ev.epoch_word}; each step has a fixed cost the hardware cannot spread over more examples.",
            advice=["--set data.batch_size=32 (the guide: 32-128), with optim.lr scaled up a little"]))
    return out


def _long_window_advice(ev: Evidence) -> list[str]:
    """slow.long_sequences for a run that read its documents in windows: the time grows with the steps read,
    windowed or not (on CPU, measured: BENCHMARKS.md), so read fewer."""
    if _long_mode(ev.summary) not in WINDOWED:
        return []
    long = (ev.summary.get("data") or {}).get("long_sequences") or {}
    # half the most windows a training document has (half the cap would change nothing below the cap)
    most = ((long.get("splits") or {}).get("train") or {}).get("max_windows") or ev.cfg.data.max_windows
    fewer = [f"cut each document to fewer windows: --set data.max_windows={max(1, most // 2)} (an epoch's time "
             "grows with the steps read, in windows or not)"] if most > 1 else []
    return [*fewer, ("or truncate instead" if fewer else "truncate instead") + ", keeping both ends: --set "
            "data.long_sequences=truncate --set data.truncate_keep=head_tail"]


def _head_tail_advice(ev: Evidence) -> list[str]:
    keep = ((ev.summary.get("data") or {}).get("truncation") or {}).get("keep", ev.cfg.data.truncate_keep)
    return [] if keep == "head_tail" else ["keeping both ends of each row: --set data.truncate_keep=head_tail"]


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _cpu_contention(ev: Evidence) -> Finding | None:
    """slow.threads: the run waited for CPUs that other processes (or its own surplus threads) held."""
    s = ev.summary
    cpu = s.get("cpu")
    if not isinstance(cpu, dict) or not _number(cpu.get("session_wall_seconds")):
        return None
    wall = cpu["session_wall_seconds"]
    if wall < CPU_MIN_WALL:
        return None
    run, wait, used = cpu.get("cpu_run_seconds"), cpu.get("cpu_wait_seconds"), cpu.get("process_cpu_seconds")
    threads = cpu.get("threads_mean") if _number(cpu.get("threads_mean")) else s.get("threads") or 1
    evidence = {"threads": s.get("threads"), "threads_mean": threads, "threads_reason": s.get("threads_reason"),
                **{k: cpu.get(k) for k in ("usable_cores", "rnnkit_trainings", "load_start", "load_end")},
                "session_wall_seconds": wall, "process_cpu_seconds": used}
    if _number(run) and _number(wait) and run + wait > 0:
        share = wait / (run + wait)
        if share < (CPU_WAIT_SHARE_THREADS if threads > 1 else CPU_WAIT_SHARE):
            return None
        evidence |= {"cpu_run_seconds": run, "cpu_wait_seconds": wait, "cpu_wait_share": share}
        seen = (f"the run's threads were ready to run but waited for a CPU {share:.0%} of the time ({wait:.0f} of "
                f"{run + wait:.0f} thread-seconds): it took about {1 / max(1 - share, 1e-9):.1f}x as long as with "
                "CPUs of its own")
    elif _number(used) and used / wall < CPU_BUSY_LOW:
        evidence["cores_used"] = used / wall
        seen = (f"the process used {used / wall:.2f} cores on average over {wall:.0f} s, though a training on CPU "
                "keeps at least one busy")
    else:
        return None
    cores, l0, l1 = cpu.get("usable_cores"), cpu.get("load_start"), cpu.get("load_end")
    if _number(l0) and _number(l1) and cores:
        seen += f"; the load average was {l0:.1f} at the start and {l1:.1f} at the end, on {cores} usable cores"
    advice = []
    if threads > 1:
        advice.append(f"one thread per training on a busy machine: --set train.threads=1 (this run used "
                      f"{threads:.3g}); several threads per process pay only on idle cores")
    if ev.cfg.train.threads is not None:
        advice.append("or leave train.threads unset (auto): it divides the usable cores among the rnnkit trainings "
                      "on the machine and follows the other load while training")
    advice += ["run fewer trainings at once here (rnnkit tune workers: at most one per core), or train when the "
               "other jobs are done; the time says little about the configuration",
               "start it with OMP_WAIT_POLICY=PASSIVE in the environment: idle OpenMP threads then sleep "
               "instead of spinning on the cores the others need"]
    reason = s.get("threads_reason") or ""
    return Finding(
        code="slow.threads", severity="warning" if threads > 1 else "info", title="Very slow training",
        evidence=evidence,
        explanation=seen + ": the machine was oversubscribed, and every step waited for its turn.",
        advice=advice,
        action=f"threads chosen automatically ({reason})" if reason.startswith("auto") else None)


def setup(ev: Evidence) -> list[Finding]:
    """Problems the preflight batch showed before the first step."""
    pre, out = ev.event("preflight"), []
    if pre is None:
        return out
    if pre.get("shape_problem"):
        out.append(Finding(
            code="setup.shapes", severity="error", title="Shapes match expectations?",
            evidence={k: pre.get(k) for k in ("batch_size", "output_shape", "target_shape")},
            explanation=pre["shape_problem"] + ".",
            advice=["check the task's settings (e.g. forecast.horizon, forecast.target_columns) and the model's "
                    "output layer"]))
    if pre.get("no_grad") or pre.get("nonfinite_grad"):
        names = pre.get("no_grad", []) + pre.get("nonfinite_grad", [])
        out.append(Finding(
            code="setup.no_gradient", severity="warning", title="Gradients flowing backwards?",
            evidence={"no_grad": pre.get("no_grad", []), "nonfinite_grad": pre.get("nonfinite_grad", []),
                      "parameters": pre.get("parameters")},
            explanation=f"{len(names)} of {pre.get('parameters')} parameter tensors got no gradient or a non-finite "
                        f"one from a training batch ({', '.join(names[:5])}{' ...' if len(names) > 5 else ''}): "
                        "they will not learn.",
            advice=["a part outside the loss's graph is dead weight or a bug (a detached tensor, an unused "
                    "layer); a non-finite gradient at the start points to extreme input values"]))
    init, chance = pre.get("initial_loss"), pre.get("chance_loss")
    if isinstance(init, float) and (not math.isfinite(init) or (chance and init > INITIAL_LOSS_FACTOR * chance)):
        out.append(Finding(
            code="setup.initial_loss", severity="warning", title="Loss reasonable magnitude?",
            evidence={"initial_loss": init, "chance_loss": chance},
            explanation=(f"the loss before training ({init:.4g}) is more than {INITIAL_LOSS_FACTOR:g}x the loss of a "
                         f"prediction that knows nothing ({chance:.4g}): the initial outputs are far too large."
                         if math.isfinite(init) else "the loss before training is not finite."),
            advice=(["standardize numeric inputs: --set data.standardize=true"] if not ev.cfg.data.standardize
                    else []) + ["check the targets' units and labels", "keep the default initialisation"]))
    return out


RULES: tuple[Callable[[Evidence], list[Finding]], ...] = (
    setup, unshuffled, out_of_range, inputs, truncation, nonfinite, divergence, clipping_off, overfitting,
    underfitting, baseline, protocol, slow, *PROBE_RULES)


def run_rules(ev: Evidence) -> list[Finding]:
    """Every rule's findings, errors first."""
    found = [f for rule in RULES for f in rule(ev)]
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(found, key=lambda f: order[f.severity])


__all__ = ["RULES", "Finding", "baseline", "clipping_off", "divergence", "effective_lr", "inputs", "lower_lr",
           "lr_sets", "merged_sets", "nonfinite", "overfitting", "run_rules", "setup", "slow", "truncation",
           "out_of_range", "truncation_advice", "underfitting", "unshuffled"]
