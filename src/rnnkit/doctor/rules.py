"""Rules: evidence in, findings out. One function per problem of the guide's troubleshooting list.

Every rule reads an `Evidence` and returns the findings it supports (often none). A finding says
what was seen (the numbers), what it means, what to do, and what rnnkit already did about it.
Thresholds are module constants, named and documented, so a test can drive each rule across them.

Guide entry -> codes:
  "Loss is NaN or Inf"                                  -> nonfinite
  "Training loss decreases but validation loss increases" -> overfitting
  "Training loss plateaus early"                          -> underfitting
  "Very slow training"                                    -> slow.padding, slow.data_wait,
                                                             slow.long_sequences, slow.small_batch,
                                                             slow.threads
Preflight evidence (debugging checklist)                  -> setup.shapes, setup.no_gradient,
                                                             setup.initial_loss
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from rnnkit.doctor.evidence import Evidence
from rnnkit.tasks import get_task

# Overfitting: validation loss this much above its best, for at least this many epochs after the
# best, while the training loss kept falling; a warning from OVERFIT_SEVERE up, unless early stopping
# ended the run and the best weights were restored (it has dealt with it: info).
OVERFIT_RISE = 0.05
OVERFIT_SEVERE = 0.25
OVERFIT_EPOCHS = 3
OVERFIT_EARLY_BEST = 2  # a best epoch this early stays a warning even when early stopping dealt with it
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
SMALL_BATCH = 16  # below the guide's range for small data sets
SMALL_BATCH_STEPS = 200  # ...and only when an epoch has this many steps (tiny data sets need small batches)
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


@dataclass
class Finding:
    """One diagnosed problem.

    Attributes:
        code: stable identifier (e.g. "overfitting", "slow.padding").
        severity: "error" (the run is broken), "warning" (results suffer) or "info".
        title: the guide's name for the problem.
        evidence: the numbers that triggered the rule.
        explanation: what they mean, in plain words.
        advice: what to try, most promising first; each a concrete change where one exists.
        action: what rnnkit already did about it (None: nothing).
        repair: a change `rnnkit diagnose --repair` may apply by itself: {"mode": "resume" or
            "restart", "set": [key=value...]}: continue this run from its last valid checkpoint with
            the new values, or (no checkpoint yet) train it again in its directory with them. None
            when a fix needs another model or a person's judgement.
    """

    code: str
    severity: str
    title: str
    evidence: dict
    explanation: str
    advice: list[str] = field(default_factory=list)
    action: str | None = None
    repair: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _chance(ev: Evidence) -> float | None:
    pre = ev.event("preflight")
    return pre.get("chance_loss") if pre else None


def _has_checkpoint(ev: Evidence) -> bool:
    from rnnkit.training import checkpoint as ckpt

    return bool(ckpt.step_checkpoints(ev.run_dir / "checkpoints"))


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
                f"--set {s}" for s in repairs[-1]["set"])],
            action=done)]
    lr = record.get("lr")
    cfg = ev.cfg
    causes = []
    if lr is not None and lr > 1e-2:
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
    new_lr = cfg.optim.lr / 10  # the base rate: warm-up and plateau reductions still apply on top
    repair_set = [f"optim.lr={new_lr:.3g}"] + ([] if cfg.optim.clip_norm is not None else ["optim.clip_norm=1.0"])
    resumable = _has_checkpoint(ev)
    mode = "resume" if resumable else "restart"
    repair = {"mode": mode, "set": repair_set} if new_lr >= cfg.optim.min_lr else None
    how = (f"continue from the last valid checkpoint with a 10x lower learning rate: rnnkit train --resume {ev.run_dir}"
           if resumable else "no checkpoint was written before it: start again with a 10x lower learning rate "
           "(`rnnkit diagnose --repair` restarts the run in its directory):")
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


_LOWER_IS_BETTER = {"wer", "per", "mse", "mae", "rmse", "mase", "smape"}


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
    worse = (last_value - b) if name in _LOWER_IS_BETTER else (b - last_value)
    return (name, b, last_value) if worse <= METRIC_HELD * max(abs(b), 1e-12) else None


def overfitting(ev: Evidence) -> list[Finding]:
    """Validation loss rose for several epochs after its best while the training loss kept falling."""
    epochs = [e for e in ev.epochs if isinstance(e.get("val_loss"), (int, float))]
    if len(epochs) < OVERFIT_EPOCHS + 1:
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
    if m.dropout < 0.5:
        advice.append(f"more dropout: --set model.dropout={min(0.5, m.dropout + 0.2):.1f} (the guide: 0.3 to 0.5)")
    advice.append(f"more weight decay: --set optim.weight_decay={max(ev.cfg.optim.weight_decay * 10, 1e-2):g}")
    if m.hidden_size > 32:
        advice.append(f"a smaller model: --set model.hidden_size={m.hidden_size // 2}")
    advice.append("more training data or augmentation")
    rise = vl / vb - 1
    stopped = ev.summary.get("stopped")
    held = _metric_held(ev, epochs[best], after[-1])
    explanation = (f"validation loss was lowest at epoch {epochs[best]['epoch']} ({vb:.4g}) and rose to {vl:.4g} "
                   f"over the next {len(after)} epochs while the training loss fell from {tb:.4g} to {tl:.4g}: "
                   "the model memorises the training set instead of learning what generalises.")
    if held:
        explanation += (f" The validation {held[0]} held ({held[2]:.4g} at the end, {held[1]:.4g} at the best "
                        "epoch): the model grew over-confident rather than wrong.")
    # early stopping with the best weights restored has dealt with it, unless the best came in the first epochs
    handled = ev.finished and stopped == "early_stopping" and epochs[best]["epoch"] > OVERFIT_EARLY_BEST
    return [Finding(
        code="overfitting", severity="warning" if rise >= OVERFIT_SEVERE and not held and not handled else "info",
        title="Training loss decreases but validation loss increases",
        evidence={"best_epoch": epochs[best]["epoch"], "val_loss_best": vb, "val_loss_last": vl, "val_rise": rise,
                  "train_loss_at_best": tb, "train_loss_last": tl, "epochs_after_best": len(after)},
        explanation=explanation,
        advice=advice,
        action=((f"the best weights (epoch {epochs[best]['epoch']}) were restored before scoring"
                 + (" and early stopping ended the run" if stopped == "early_stopping" else ""))
                if ev.finished else "none yet: the run has not finished (it restores the best weights when it does)"),
    )]


def _start_loss(ev: Evidence) -> float | None:
    """The training loss before any step (the preflight batch), the yardstick for "learned nothing"."""
    pre = ev.event("preflight")
    value = pre.get("initial_loss") if pre else None
    return value if isinstance(value, (int, float)) and math.isfinite(value) and value > 0 else None


def underfitting(ev: Evidence) -> list[Finding]:
    """The training loss barely moves from where it started, or goes flat early while still high."""
    start = _start_loss(ev)
    train = [e["train_loss"] for e in ev.epochs if isinstance(e.get("train_loss"), (int, float))]
    if start is None or len(train) < 2:
        return []
    best = min(train)
    reason = None
    if best >= UNDERFIT_START_SHARE * start:
        reason = (f"the best training loss {best:.4g} is {best / start:.0%} of the loss before training "
                  f"({start:.4g}): the model has learned almost nothing, even on the training set")
    elif len(train) >= PLATEAU_MIN_EPOCHS:
        half = train[len(train) // 2:]
        change = (half[0] - half[-1]) / max(abs(half[0]), 1e-12)
        if change < PLATEAU_CHANGE and half[-1] > PLATEAU_START_SHARE * start:
            reason = (f"the training loss stopped falling (it changed {change:.1%} over the last {len(half)} epochs) "
                      f"at {half[-1]:.4g}, still {half[-1] / start:.0%} of the loss before training ({start:.4g})")
    if reason is None:
        return []
    cfg = ev.cfg
    advice = []
    if cfg.optim.lr < 1e-2:
        advice.append(f"a higher learning rate: --set optim.lr={min(cfg.optim.lr * 3, 1e-2):.3g} "
                      "(the guide: 1e-3 to 1e-2)")
    advice.append(f"more capacity: --set model.hidden_size={cfg.model.hidden_size * 2}"
                  + (f" or --set model.num_layers={cfg.model.num_layers + 1}" if cfg.model.num_layers < 3 else ""))
    if cfg.model.dropout > 0.1 or cfg.model.recurrent_dropout > 0.1:
        advice.append("less dropout: --set model.dropout=0.1 --set model.recurrent_dropout=0.0")
    if ev.summary.get("stopped") == "max_epochs":
        advice.append(f"more epochs: --set train.max_epochs={cfg.train.max_epochs * 2}")
    advice.append("check the preprocessing: labels matched to the right rows, inputs on a sensible scale, no "
                  "constant columns")
    return [Finding(
        code="underfitting", severity="warning", title="Training loss plateaus early",
        evidence={"initial_loss": start, "chance_loss": _chance(ev), "train_loss_first_epoch": train[0],
                  "train_loss_best": best, "train_loss_last": train[-1], "epochs": len(train), "lr": cfg.optim.lr,
                  "hidden_size": cfg.model.hidden_size, "dropout": cfg.model.dropout},
        explanation=reason + ".", advice=advice)]


def slow(ev: Evidence) -> list[Finding]:
    """The guide's causes of slow training that the run's own numbers show."""
    s, cfg, out = ev.summary, ev.cfg, []
    pad = s.get("padding_share")
    if isinstance(pad, (int, float)) and pad > PADDING_SHARE:
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
            advice=["a larger batch (fewer, bigger batches): --set data.batch_size="
                    f"{cfg.data.batch_size * 2}", "profile the collate step (python -m cProfile)"]))
    sizes = s.get("data", {}).get("sizes", {})
    tokens, n = s.get("train_real_tokens"), sizes.get("train")
    if tokens and n and tokens / n > LONG_SEQUENCE:
        out.append(Finding(
            code="slow.long_sequences", severity="warning", title="Very slow training",
            evidence={"mean_train_length": tokens / n, "max_length": cfg.data.max_length},
            explanation=f"training sequences are {tokens / n:.0f} steps long on average; a recurrent network "
                        "processes them one step after another, so time grows with length.",
            advice=(list(get_task(cfg.task).long_sequence_advice) or
                    ["truncate to 512-1024 steps (the guide): --set data.max_length=1024",
                     "or downsample / summarise long inputs before training"])))
    contention = _cpu_contention(ev)
    if contention is not None:
        out.append(contention)
    steps, epochs = s.get("steps"), s.get("epochs_run")
    if cfg.data.batch_size < SMALL_BATCH and steps and epochs and steps / epochs >= SMALL_BATCH_STEPS:
        out.append(Finding(
            code="slow.small_batch", severity="info", title="Very slow training",
            evidence={"batch_size": cfg.data.batch_size, "steps_per_epoch": steps / epochs},
            explanation=f"batches of {cfg.data.batch_size} make {steps / epochs:.0f} small steps per epoch; each "
                        "step has a fixed cost the hardware cannot spread over more examples.",
            advice=["--set data.batch_size=32 (the guide: 32-128), with optim.lr scaled up a little"]))
    return out


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


RULES: tuple[Callable[[Evidence], list[Finding]], ...] = (setup, nonfinite, overfitting, underfitting, slow)


def run_rules(ev: Evidence) -> list[Finding]:
    """Every rule's findings, errors first."""
    found = [f for rule in RULES for f in rule(ev)]
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(found, key=lambda f: order[f.severity])


__all__ = ["RULES", "Finding", "nonfinite", "overfitting", "run_rules", "setup", "slow", "underfitting"]
