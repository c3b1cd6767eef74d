"""Refit on train + validation (`train.refit`, issue 11 item 3).

On small data the validation split holds rows the final model never learns from (ArrowHead: 4 of 36). With a
refit, once the run's early stopping has picked its best epoch E, a second model is trained from the same seed
on the training and validation rows together for E epochs and becomes the run's final model: the test split is
scored on it and `predict` / `evaluate` / `export` load it. The validation figures in summary.json stay the first
model's (they chose E; the refit model has seen those rows).

How the second training follows the first (`fit_from_config` on the joined rows, its own run directory):

1. E is counted in the first run's units: passes over the training set (`best_epoch`), with `train.min_epoch_steps`'
   scale k of the first run kept (the joined set may fill more steps a pass, which would change k).
2. The learning rate follows the first run's schedule pass by pass: warm-up and cool-down in the same passes, and
   the plateau decay at the same passes. The decay is *replayed*, not re-decided: the refit has no held-out rows,
   so `Replay` hands the loop the first run's validation figures of each pass, and the loop's own plateau,
   early-stopping and best-epoch logic take the same decisions as in the first run (best = pass E, no stop
   before it), by construction. A fresh plateau decision would need a validation split the refit does not have.
3. The refit stops after pass E (`Replay.on_epoch_end`), and its weights there are the final model.
4. The preprocessing (vocabulary, standardizer, label map) stays the one fitted on train: the run's saved files.

Files (all in the run directory DIR):

* DIR/refit/: the second training's metrics.jsonl, checkpoints/ and summary.json (its "val" scores a model trained
  on those rows: not a validation figure), plan.json (what it replays; written before it starts) and
  first_summary.json (the first model's summary, as it was).
* DIR/checkpoints/refit-NNNNNNNN: the final model, written atomically and checksummed like every checkpoint; not a
  `step-*` name, so the first run's resume and pruning never take it. best.json names it ("refit": true);
  first_best.json keeps the first model's pointer.
* DIR/summary.json: the first run's, with metrics.test scored on the refit model and a "refit" block (rows,
  passes, epochs, the first model's test scores); data.notes carries the line the console and the report show.

Off by default (`train.refit=false`): on small UCR sets it moved test accuracy by up to 17 points either way
from seed to seed and did not help on average (BENCHMARKS.md, "Refit on train + validation"). `auto` refits when
the validation split holds fewer than `AUTO_VAL_ROWS` rows.

Resume: a refit stopped by a kill or a signal continues from its own latest checkpoint (`rnnkit train --resume
DIR`, bit for bit on CPU); a finished one is not redone; when a resume trains the first model further and its best
epoch changes, the refit is done again. Not available under torchrun or with truncated BPTT (`decide`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rnnkit import config as C
from rnnkit.data.collate import SequenceDataset
from rnnkit.data.pipeline import PreparedData
from rnnkit.errors import CheckpointError, ConfigError, TrainingError
from rnnkit.training import checkpoint as ckpt
from rnnkit.training import distributed
from rnnkit.training.callbacks import Callback
from rnnkit.training.samples import TEST_SAMPLES_FILE
from rnnkit.training.schedules import EarlyStopping, Monitor, PlateauState
from rnnkit.training.setup import fit_from_config, scaled_config

REFIT_DIR = "refit"
PLAN_FILE, FIRST_SUMMARY = "plan.json", "first_summary.json"
FIRST_BEST = "first_best"  # checkpoints/first_best.json: the first model's best pointer
FIRST_SAMPLES = "first_" + TEST_SAMPLES_FILE  # refit/first_test_samples.json: the first model's report samples
PREFIX = "refit-"  # checkpoints/refit-NNNNNNNN: the final model
STOP = "refit_passes"  # the refit's stop reason (its own summary.json)
AUTO_VAL_ROWS = 30  # train.refit=auto refits when the validation split holds fewer rows (the "~20", with room)


@dataclass(frozen=True)
class Decision:
    on: bool
    why: str


def decide(cfg: C.Config, data: PreparedData, dist: distributed.Dist = distributed.SINGLE) -> Decision:
    """What `train.refit` means for this run (before training, so that a refit that cannot be done fails first).

    Raises:
        ConfigError: train.refit=true where no refit can be done (torchrun, truncated BPTT, data.storage=stream),
            naming the fix.
    """
    setting = cfg.train.refit
    if setting is False:
        return Decision(False, "train.refit=false")
    blocker = ("under torchrun (the refit runs in one process)" if dist.enabled else
               "with truncated BPTT (its stream is built from the training span alone)" if data.streams is not None
               else "with data.storage=stream (the training rows are read from the file by row groups)"
               if data.train_stream is not None else None)
    if setting is True:
        if blocker:
            raise ConfigError(f"config key 'train.refit': true cannot refit {blocker}; set train.refit=false or "
                              "auto.")
        return Decision(True, "train.refit=true")
    if blocker:
        return Decision(False, f"auto: off {blocker}")
    rows = len(data.datasets["val"])
    if rows < AUTO_VAL_ROWS:
        return Decision(True, f"auto: validation holds {rows} rows, fewer than {AUTO_VAL_ROWS}")
    return Decision(False, f"auto: validation holds {rows} rows, {AUTO_VAL_ROWS} or more")


class Replay(Callback):
    """The refit's validation and stop: `replay(model)` returns the first run's validation figures of the pass
    being trained (so the loop's plateau decay, early stopping and best epoch repeat the first run's), and after
    pass `passes` the refit stops (state.stop_reason). The pass is read from the loop state at each start, a
    resumed one included."""

    def __init__(self, figures: list[dict], passes: int):
        self.figures, self.passes, self.epoch = figures, passes, 0

    def on_fit_start(self, state) -> None:
        self.epoch = state.epoch

    def on_epoch_start(self, state) -> None:
        self.epoch = state.epoch

    def __call__(self, model) -> dict:
        return {**self.figures[self.epoch], "replayed_pass": self.epoch + 1}

    def on_epoch_end(self, state, record: dict) -> None:
        if state.epoch >= self.passes:
            state.stop_reason = STOP


def first_figures(metrics_file: Path, passes: int) -> list[dict]:
    """The first run's validation figures of passes 1..`passes` (its epoch records in metrics.jsonl; a resumed run
    has one record per pass, the last one kept if not)."""
    by_pass: dict[int, dict] = {}
    for line in Path(metrics_file).read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("kind") == "epoch":
            by_pass[int(rec["epoch"])] = {k[4:]: v for k, v in rec.items() if k.startswith("val_")
                                          and isinstance(v, (int, float)) and not isinstance(v, bool)}
    missing = [p for p in range(1, passes + 1) if p not in by_pass]
    if missing:
        raise CheckpointError(f"cannot refit: {metrics_file} lacks the validation figures of pass(es) "
                              f"{', '.join(map(str, missing[:5]))} (the refit replays them); set train.refit=false")
    return [by_pass[p] for p in range(1, passes + 1)]


def replayed_decisions(figures: list[dict], monitor: str, plateau_patience: int) -> tuple[int, list[int]]:
    """(best pass, passes after which the rate was decayed) that the loop takes on these figures: the first run's."""
    mon, plateau, early = Monitor(monitor), PlateauState(), EarlyStopping()
    decayed = []
    for i, val in enumerate(figures):
        before = plateau.reductions
        plateau = plateau.update(mon.value(val), patience=plateau_patience, tie=mon.tie(val))
        early, _ = early.update(mon.value(val), i, mon.tie(val))
        if plateau.reductions > before:
            decayed.append(i + 1)
    return early.best_epoch + 1, decayed


def refit_config(cfg: C.Config, scale: int, passes: int, monitor: str) -> C.Config:
    """The refit's config: the run's, counted in passes as its first training was (`scaled_config` with the first
    run's scale; train.min_epoch_steps 1 so that it is not scaled again), its monitor, no probes (nothing reads
    them), and no progress of its own (its replayed validation lines would read as new figures)."""
    new = scaled_config(cfg, scale)
    if new is cfg:
        new = C.from_dict(cfg.to_dict())
    new.train.min_epoch_steps = 1
    new.train.monitor = monitor
    new.train.probe_every = 0
    new.train.progress = "none"
    new.train.refit = False
    new.train.max_epochs = max(new.train.max_epochs, passes)  # a resume may have lowered it below the best pass
    return new


def _read(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def first_pointer_restored(run_dir: Path):
    """While a resume trains the first model, checkpoints/best.json names the first model's best again (the loop
    restores and scores "best" at its end). When the resume fails or is refused before a new best, the refit
    model is put back as the final one; after a successful resume `finish` decides."""
    root = Path(run_dir) / "checkpoints"
    best, first = _read(root / "best.json"), _read(root / f"{FIRST_BEST}.json")
    if not (isinstance(best, dict) and best.get("refit") and isinstance(first, dict)):
        yield
        return
    ckpt.write_json_atomic(root / "best.json", first)
    done = False
    try:
        yield
        done = True
    finally:
        if not done and _read(root / "best.json") == first:
            ckpt.write_json_atomic(root / "best.json", best)


def finish(cfg: C.Config, data: PreparedData, task, run_dir: Path, summary: dict, decision: Decision, *,
           dist: distributed.Dist = distributed.SINGLE) -> dict:
    """The hook at the end of `rnnkit.api.train`: refit when `decision` says so, and return the run's summary.

    `summary` is what the first training returned (on a resume of a finished run, summary.json with a note). Off:
    the summary gains {"refit": {"on": false, "why": ...}} (and a refit done before is undone: the first model is
    the final one again). On: a refit already done for this first model is kept; an interrupted one continues;
    otherwise it is trained (see the module docstring).

    Raises:
        TrainingError: the refit met a NaN/Inf (the first model stays the final one).
        Interrupted: a signal stopped the refit (it continues with `rnnkit train --resume DIR`).
    """
    run_dir = Path(run_dir)
    work = run_dir / REFIT_DIR
    note = {k: summary.pop(k) for k in ("note", "already_finished") if k in summary}
    if (summary.get("refit") or {}).get("on"):
        first = _read(work / FIRST_SUMMARY)
        if first is None:
            raise CheckpointError(f"{run_dir}: summary.json says the model was refit, but {work / FIRST_SUMMARY} is "
                                  "missing; start a new run")
    else:
        first = summary
    if not decision.on or not dist.is_main:
        if (summary.get("refit") or {}).get("on"):
            _undo(run_dir)
        out = {**first, "refit": {"on": False, "why": decision.why}}
        # a finished run resumed to no effect stays as it was on disk ("nothing was changed"), unless it was refit
        if dist.is_main and first.get("refit") != out["refit"] and (not note or (summary.get("refit") or {}).get("on")):
            ckpt.write_json_atomic(run_dir / "summary.json", out)
        return {**out, **note}
    scale, passes, monitor = int(first.get("epoch_scale") or 1), int(first.get("best_epoch") or 0), first["monitor"]
    if passes < 1:
        return {**first, "refit": {"on": False, "why": f"{decision.why}; but no epoch was validated"}, **note}
    figures = first_figures(run_dir / "metrics.jsonl", passes)
    rcfg = refit_config(cfg, scale, passes, monitor)
    best, decayed = replayed_decisions(figures, monitor, rcfg.optim.plateau_patience)
    if best != passes:
        raise CheckpointError(f"cannot refit: the validation figures in {run_dir / 'metrics.jsonl'} pick pass {best}, "
                              f"summary.json says {passes}; set train.refit=false")
    train, val = data.datasets["train"], data.datasets["val"]
    plan = {"passes": passes, "epoch_scale": scale, "monitor": monitor, "first_best_step": first.get("best_step"),
            "train_rows": len(train), "val_rows": len(val), "seed": cfg.train.seed, "lr_decayed_after": decayed,
            "figures": figures}
    saved = _read(work / PLAN_FILE)
    if saved and {k: v for k, v in saved.items() if k != "done"} == plan:
        final = _read(run_dir / "summary.json")
        if saved.get("done") and final and (final.get("refit") or {}).get("on"):
            _point_best(run_dir, final["refit"])  # a resume of the first run had put the first model back
            return {**final, **note}
        resume = bool(ckpt.step_checkpoints(work / "checkpoints"))
    else:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        ckpt.write_json_atomic(work / PLAN_FILE, {**plan, "done": False})
        resume = False
    if first is summary:  # the first model's summary as the first training wrote it (for a resume's undo)
        ckpt.write_json_atomic(work / FIRST_SUMMARY, first)
    joined = PreparedData(datasets={**data.datasets, "train": joined_rows(train, val)}, prep=data.prep,
                          report=data.report, streams=None)
    show = cfg.train.progress != "none"
    if show:
        print(f"rnnkit: refit ({decision.why}): {'continuing' if resume else 'training'} a second model from seed "
              f"{cfg.train.seed} on train + validation ({len(train) + len(val)} rows) for {passes} passes, the first "
              f"run's best" + (f", its rate decayed after pass(es) {', '.join(map(str, decayed))}" if decayed else ""),
              file=sys.stderr, flush=True)
    replay = Replay(figures, passes)
    t0 = time.perf_counter()
    try:
        second = fit_from_config(rcfg, joined, task, work, resume=resume, callbacks=(replay,), validate=replay)
    except TrainingError as exc:
        raise TrainingError(f"the refit on train + validation stopped: {exc} The first model stays the run's final "
                            f"model; --set train.refit=false keeps it without refitting.") from None
    except CheckpointError as exc:
        if not resume:
            raise
        print(f"rnnkit: refit: cannot continue it ({str(exc).splitlines()[0]}); refitting from the start",
              file=sys.stderr, flush=True)
        shutil.rmtree(work / "checkpoints", ignore_errors=True)
        second = fit_from_config(rcfg, joined, task, work, callbacks=(replay,), validate=replay)
    if second.get("already_finished"):  # not expected (the refit's stop reason is its own), but never silent
        raise CheckpointError(f"{work}: the refit reports a finished run without scoring it; remove {work} and "
                              "resume again")
    final = _final(cfg, task, run_dir, first, second, plan, decision, time.perf_counter() - t0)
    ckpt.write_json_atomic(work / PLAN_FILE, {**plan, "done": True})
    if show:
        print(f"rnnkit: refit done in {final['refit']['wall_seconds']:.0f} s: the final model is "
              f"{run_dir / final['refit']['checkpoint']}", file=sys.stderr, flush=True)
    return final  # something was done: not "finished already" (the doctor runs again)


def joined_rows(train: SequenceDataset, val: SequenceDataset) -> SequenceDataset:
    """The training examples, then the validation ones as training examples: with only the `extra` fields the
    training examples have (a field only evaluation reads, such as every reference of a source, is left out, so
    that the family's collate sees one kind of example)."""
    keys = set(train.examples[0].extra) if len(train) else set()
    return SequenceDataset([*train.examples, *(
        ex if set(ex.extra) <= keys else dataclasses.replace(ex, extra={k: v for k, v in ex.extra.items() if k in keys})
        for ex in val.examples)])


def _final(cfg, task, run_dir: Path, first: dict, second: dict, plan: dict, decision: Decision,
           seconds: float) -> dict:
    """Write the final model's checkpoint, point best.json at it and write summary.json; returns the summary."""
    work, root = run_dir / REFIT_DIR, run_dir / "checkpoints"
    source = ckpt.read_pointer(work / "checkpoints", "best")
    if source is None:
        raise CheckpointError(f"{work}: the refit wrote no best checkpoint; remove {work} and resume again")
    weights = ckpt.load_checkpoint(source).model_state
    step, passes = int(second["steps"]), plan["passes"]
    name = f"{PREFIX}{step:08d}"
    for old in root.glob(f"{PREFIX}*"):
        if old.name != name and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    info = {"passes": passes, "rows": plan["train_rows"] + plan["val_rows"], "steps": step, "seed": plan["seed"]}
    ckpt.save_checkpoint(root, name, weights, {"refit": info, "config": cfg.to_dict()}, step=step, epoch=passes)
    best = _read(root / "best.json")
    if isinstance(best, dict) and not best.get("refit"):
        ckpt.write_json_atomic(root / f"{FIRST_BEST}.json", best)
    test, first_test = (second["metrics"].get("test"), (first.get("metrics") or {}).get("test"))
    if test is not None and first_test and "baselines" in first_test:
        test = {**test, "baselines": first_test["baselines"]}  # the baselines of the first run's training split
    scale = plan["epoch_scale"]
    block = {"on": True, "why": decision.why, "rows": info["rows"], "train_rows": plan["train_rows"],
             "val_rows": plan["val_rows"], "passes": passes, "epochs": passes / scale, "epoch_scale": scale,
             "steps": step, "seed": plan["seed"], "lr_decayed_after": plan["lr_decayed_after"],
             "schedule": "the first run's, pass by pass: warm-up, cool-down and plateau decay at the same passes "
                         "(its validation figures replayed)",
             "checkpoint": f"checkpoints/{name}",
             "metrics": {"train+val": second["metrics"].get("train"), **({"test": test} if test else {})},
             "first_model": {"best_epoch": passes, **({"test": first_test} if first_test else {})},
             "wall_seconds": seconds}
    final = json.loads(json.dumps(first))  # a copy
    if test is not None:
        final["metrics"]["test"] = test
    final["refit"] = block
    final["wall_seconds"] = float(first.get("wall_seconds") or 0.0) + seconds
    final.setdefault("data", {}).setdefault("notes", []).append(refit_note(task, block))
    _point_best(run_dir, block)
    ckpt.write_json_atomic(run_dir / "summary.json", final)
    samples, shown = work / TEST_SAMPLES_FILE, run_dir / TEST_SAMPLES_FILE
    if shown.exists() and not (work / FIRST_SAMPLES).exists():  # the first model's: never beside the refit's scores
        shutil.move(shown, work / FIRST_SAMPLES)
    shown.unlink(missing_ok=True)
    if samples.exists():
        shutil.copyfile(samples, run_dir / TEST_SAMPLES_FILE)
    return final


def refit_note(task, block: dict) -> str:
    """The line the console's end and the report show, e.g. "final model refit on train + validation (36 rows: 32 +
    4) for 24 passes (3 epochs of 8), the first run's best; test accuracy 0.6229 on it (first model 0.5714); the
    validation figures are the first model's (auto: validation holds 4 rows, fewer than 30)"."""
    names = [n for n in (*getattr(task, "metric_names", ()), "loss")
             if isinstance(((block["metrics"].get("test") or {}).get(n)), (int, float))]
    score = ""
    if names:
        n = names[0]
        was = (block["first_model"].get("test") or {}).get(n)
        score = (f"; test {n} {block['metrics']['test'][n]:.4f} on it"
                 + (f" (first model {was:.4f})" if isinstance(was, (int, float)) else ""))
    scale = block["epoch_scale"]
    unit = f"{block['passes']} passes ({block['epochs']:g} epochs of {scale})" if scale > 1 else \
        f"{block['passes']} epochs"
    return (f"final model refit on train + validation ({block['rows']} rows: {block['train_rows']} + "
            f"{block['val_rows']}) for {unit}, the first run's best{score}; the validation figures are the first "
            f"model's ({block['why']})")


def _point_best(run_dir: Path, block: dict) -> None:
    root = Path(run_dir) / "checkpoints"
    name = Path(block["checkpoint"]).name
    if not (root / name).is_dir():
        raise CheckpointError(f"{root / name} (the refit model) is missing; remove {Path(run_dir) / REFIT_DIR} and "
                              f"resume with `rnnkit train --resume {run_dir}` to refit again")
    ckpt.write_json_atomic(root / "best.json", {"name": name, "refit": True, "step": block["steps"],
                                                "epoch": block["passes"]})


def _undo(run_dir: Path) -> None:
    """train.refit turned off on a resume of a refit run: the first model is the final one again."""
    root = Path(run_dir) / "checkpoints"
    first = _read(root / f"{FIRST_BEST}.json")
    best = _read(root / "best.json")
    if isinstance(best, dict) and best.get("refit") and isinstance(first, dict):
        ckpt.write_json_atomic(root / "best.json", first)
    shown, kept = Path(run_dir) / TEST_SAMPLES_FILE, Path(run_dir) / REFIT_DIR / FIRST_SAMPLES
    shown.unlink(missing_ok=True)  # the refit model's
    if kept.exists():
        shutil.copyfile(kept, shown)


__all__ = ["AUTO_VAL_ROWS", "Decision", "Replay", "decide", "finish", "first_figures", "first_pointer_restored",
           "refit_config", "refit_note", "replayed_decisions"]
