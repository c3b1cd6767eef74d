"""`fit_from_config`: every object the loop needs, built from a config, a prepared data set and a run
directory; a resume's checks and restores; the final scores and summary.json. `rnnkit train` comes here
(through `rnnkit.api.train`); the loop itself (`rnnkit.training.loop.fit`) knows no config.

Set-up order (a resumed CPU run repeats the uninterrupted run exactly, so the order of random draws is part
of the contract): threads, device and precision; seed; build the model; the optimizer; per-rank seeds; the
sampler; on resume, every refusal before metrics.jsonl is touched, then weights, optimizer, scaler, loop
state and RNG; the preflight on step 1's batch; under torchrun, DDP around the model.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import math
import sys
import time
import warnings
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from rnnkit import config as C
from rnnkit.data import fingerprint as fingerprints
from rnnkit.data.collate import SequenceDataset, length_array
from rnnkit.data.pipeline import PreparedData
from rnnkit.data.sampler import BucketBatchSampler, padding_share
from rnnkit.errors import CheckpointError, ConfigError
from rnnkit.training import checkpoint as ckpt
from rnnkit.training import distributed
from rnnkit.training.callbacks import Callback
from rnnkit.training.evaluation import evaluate
from rnnkit.training.loop import LoopState, batch_pieces, evaluate_loss, fit
from rnnkit.training.precision import resolve_device, resolve_precision
from rnnkit.training.run import MetricsLog, Run
from rnnkit.training.samples import write_test_samples
from rnnkit.training.schedules import FIT_LOSS, Monitor
from rnnkit.training.tbptt import CarriedState

if TYPE_CHECKING:
    from rnnkit.tasks import Task


def data_fingerprint(datasets: dict[str, SequenceDataset], cfg: C.Config | None = None, files: dict | None = None,
                     cache: dict | None = None) -> str:
    """What a resume must find again (`rnnkit.data.fingerprint`): with `cfg` and the split files, their streamed
    hash (through `cache`, updated in place) with the settings that encode them; else the encoded columns."""
    return fingerprints.fingerprint(cfg, datasets, files, {} if cache is None else cache)


def make_optimizer(model: torch.nn.Module, cfg: C.Config) -> torch.optim.Optimizer:
    """AdamW; weight decay on weight matrices only (not biases, norms or the embedding's pad row logic)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.dim() >= 2 and "norm" not in name else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.optim.lr, betas=tuple(cfg.optim.betas))


def _check_resume_config(saved: C.Config, new: C.Config, log: MetricsLog | None) -> None:
    """Refuse architecture changes with a key-by-key diff (log None: check only); warn about and log
    optimisation changes."""
    changes = C.diff(saved, new)
    arch = [(k, a, b) for k, a, b in changes if C.is_architecture_key(k)]
    if arch:
        lines = "\n".join(f"  {k}: checkpoint {a!r} -> now {b!r}" for k, a, b in arch)
        raise CheckpointError("cannot resume: the architecture or input encoding changed since the checkpoint:\n"
                              f"{lines}\nStart a new run (new --out) or undo these changes.")
    if log is None:
        return
    soft = [(k, a, b) for k, a, b in changes if not k.startswith("data.") or k in ("data.batch_size",)]
    for k, a, b in soft:
        warnings.warn(f"resuming with {k} changed from {a!r} to {b!r}", stacklevel=3)
    if soft and log is not None:
        log.write({"event": "config_changed_on_resume", "changes": [[k, a, b] for k, a, b in soft]})


def finished_summary(run_dir: Path, state: LoopState, cfg: C.Config, scale: int = 1) -> dict | None:
    """On resume from a checkpoint that ended the run (early stopping, or max_epochs reached) and with a
    config that would not train further: the run's summary with a `note` on how to go on, and nothing
    touched. None when `cfg` lets it continue (train.max_epochs raised past the epochs run; after early
    stopping, train.patience raised past the epochs since the best one) or no summary was written. `cfg` counts
    passes (`scaled_config`); the advice counts the user's epochs (`scale` passes each)."""
    stopped = state.stop_reason or ("max_epochs" if state.epoch >= cfg.train.max_epochs else None)
    if stopped not in ("early_stopping", "max_epochs"):
        return None
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None  # killed between the last checkpoint and the summary: finishing writes it
    needed = []
    if stopped == "early_stopping" and state.early.should_stop(cfg.train.patience):
        needed.append(f"--set train.patience=N (N > {state.early.bad_epochs // scale}, the epochs since the best)")
    if state.epoch >= cfg.train.max_epochs:
        needed.append(f"--set train.max_epochs=N (N > {state.epoch // scale})")
    if not needed:
        return None
    summary["note"] = (f"{run_dir} finished already (stopped: {stopped} after {state.epoch} epochs, best epoch "
                       f"{state.early.best_epoch + 1}); nothing was changed. To train it further: "
                       f"rnnkit train --resume {run_dir} {' '.join(needed)}")
    summary["already_finished"] = True
    return summary


def choose_monitor(cfg: C.Config, data: PreparedData, task: Task) -> tuple[str, str]:
    """`train.monitor` resolved: (validation figure, why) - the family's headline under auto."""
    if cfg.train.monitor != "auto":
        return cfg.train.monitor, "train.monitor"
    if task.monitor is None:
        return "loss", "the family's default"
    return task.monitor(cfg, data)


def _check_monitor(cfg: C.Config, model, data: PreparedData, task: Task, device, precision) -> None:
    """An explicit `train.monitor` must be a figure validation reports: checked on one batch of validation data
    with the untrained model, before anything is written (the RNG is left as it was)."""
    if cfg.train.monitor in ("auto", "loss", FIT_LOSS) or not len(data.datasets["val"]):
        return
    rng = torch.get_rng_state()
    try:
        val = data.datasets["val"]
        few = val.subset(range(min(cfg.data.batch_size, len(val))))
        figures = evaluate(model, few, task, data.prep, cfg, device=device, precision=precision)[0]
    finally:
        torch.set_rng_state(rng)
    names = [k for k, v in figures.items() if isinstance(v, (int, float))]
    if cfg.train.monitor not in names:
        raise ConfigError(f"config key 'train.monitor': {cfg.train.monitor!r} is not among the validation figures "
                          f"({', '.join(names)}); set it to one of them, or auto.")


def epoch_scale(batches_per_pass: int, accumulate: int, min_steps: int) -> int:
    """How many passes over the training data make one "epoch" of at least `min_steps` optimizer steps
    (`train.min_epoch_steps`) for the settings that count epochs; 1 when one pass already does."""
    return max(1, math.ceil(min_steps * accumulate / max(batches_per_pass, 1)))


def scaled_config(cfg: C.Config, scale: int) -> C.Config:
    """`cfg` with the settings that count epochs (train.max_epochs, train.patience, optim.plateau_patience,
    optim.warmup_epochs, optim.cooldown_epochs) counted in passes: `scale` passes make one of their epochs."""
    if scale == 1:
        return cfg
    new = C.from_dict(cfg.to_dict())
    new.train.max_epochs *= scale
    new.train.patience *= scale
    new.optim.plateau_patience *= scale
    new.optim.warmup_epochs *= scale
    new.optim.cooldown_epochs *= scale
    return new


def batch_positions(cfg: C.Config) -> int | None:
    """`train.max_batch_positions` resolved: auto is data.batch_size x the window (data.window_length, else
    data.max_length; None when both are null: nothing is cut, so nothing bounds a row); 0 is None (whole)."""
    value = cfg.train.max_batch_positions
    if value == "auto":
        window = cfg.data.window_length or cfg.data.max_length
        return cfg.data.batch_size * window if window else None
    return int(value) or None


def split_batches(sampler, positions: int | None) -> dict:
    """How many of epoch 0's training batches `batch_pieces` cuts (rows x longest row above `positions`):
    {"max_positions", "split", "batches"}; none for a sampler without lengths (a streamed file's)."""
    lengths = getattr(sampler, "lengths", None)
    if not positions or lengths is None or not hasattr(sampler, "batch_arrays"):
        return {"max_positions": positions, "split": 0, "batches": len(sampler)}
    batches = sampler.batch_arrays(0)
    split = sum(1 for b in batches if len(b) and len(b) * int(lengths[b].max()) > positions)
    return {"max_positions": positions, "split": split, "batches": len(batches)}


def probe_interval(every: int | None, least: int, total_steps: int) -> int | None:
    """Steps between live probes: `every`, shortened so that a run planned for `total_steps` logs at least
    `least` probes (a small data set's run of 60 steps would get none at every 100; the doctor's probe rules
    need several)."""
    if not every:
        return None
    if least and total_steps // every < least:
        return max(1, min(every, total_steps // least))
    return every


def fit_from_config(cfg: C.Config, data: PreparedData, task: Task, run_dir: Path, *, resume: bool = False,
                    callbacks=(), preflight=None, validate=None) -> dict:
    """Train, early-stop, restore the best weights and score every split. Returns summary.json's content.

    `validate(model) -> dict` replaces the validation on data.datasets["val"] (the refit on train + validation,
    `rnnkit.training.refit`, replays the first run's figures through it); None: validate on that split.

    `preflight(model, first_batch, task, prep) -> dict` (the doctor's, passed in by `rnnkit.train`: the
    training layer does not import the doctor) runs on step 1's batch before training; its evidence goes
    to metrics.jsonl and, under DDP, names the parameters without a gradient.

    Under torchrun (a process group initialized, e.g. by `rnnkit.train`), every rank calls this with
    the same arguments; batches are per rank (`data.batch_size` each), rank 0 writes the run directory.

    Raises:
        TrainingError: non-finite loss or gradient (the last valid checkpoint is left untouched).
        Interrupted: SIGINT/SIGTERM (a checkpoint is written first).
        CheckpointError: resume found no valid checkpoint or an incompatible one.
    """
    t_start = time.perf_counter()
    dist = distributed.current()
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    dist.main_only(ckpt.clean_leftovers, ckpt_dir)  # the other ranks read checkpoints only after this
    from rnnkit import threads as thread_policy  # null: auto (rnnkit.threads); the callback keeps it current

    callbacks = (*callbacks, thread_policy.start(cfg.train.threads, distributed=dist.enabled))
    device = resolve_device(cfg.train.device)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)  # one GPU per process
    precision = resolve_precision(cfg.train.precision, device)
    torch.manual_seed(cfg.train.seed)
    model = task.build_model(cfg, data.prep).to(device)
    _check_monitor(cfg, model, data, task, device, precision)
    optimizer = make_optimizer(model, cfg)
    if dist.rank > 0:  # same initial weights on every rank (built above), then its own dropout masks
        torch.manual_seed(distributed.rank_seed(cfg.train.seed, dist.rank))
    train_set = data.datasets["train"]
    if data.train_stream is not None:  # data.storage=stream: the file's row groups through a shuffle buffer
        train_set, sampler = data.train_stream.dataset, data.train_stream.sampler(dist.world, dist.rank)
    else:
        sampler = BucketBatchSampler(length_array(train_set), cfg.data.batch_size, bucketing=cfg.data.bucketing,
                                     chunk_batches=cfg.data.bucket_chunk, shuffle=True, seed=cfg.train.seed,
                                     num_replicas=dist.world, rank=dist.rank)
    streams, carried, steps = data.streams, None, task  # truncated BPTT: the family's chunks of its long sequence
    if streams is not None:
        if dist.enabled:
            raise ConfigError("truncated backprop through time runs in one process (its streams are one batch); "
                              "run it without torchrun, or train on windows (turn the family's TBPTT setting off).")
        train_set, sampler = streams.dataset, streams.sampler()
        carried = CarriedState(streams.forward, streams.layout.describe())
        steps = dataclasses.replace(task, collate=streams.collate, forward=carried.forward, loss=streams.loss)
    scale = epoch_scale(len(sampler), cfg.optim.accumulate, cfg.train.min_epoch_steps)
    user_cfg, cfg = cfg, scaled_config(cfg, scale)  # the loop counts passes; checkpoints keep the user's config
    positions = batch_positions(user_cfg) if streams is None else None  # TBPTT: the carried state is per row
    hash_cache = fingerprints.load_cache(run_dir)  # file hashes by (path, size, mtime_ns); written once accepted
    fingerprint = data_fingerprint(data.datasets, user_cfg, data.report.get("files"), hash_cache)
    state = LoopState()
    run = None
    unused: list[str] = []  # parameters without a gradient (the preflight's finding); DDP must know them
    try:  # under torchrun every rank learns whether any rank's set-up failed, and all stop together
        if resume:
            loaded = ckpt.load_latest_valid(ckpt_dir, map_location="cpu")
            saved_cfg = C.from_dict(loaded.state["config"])
            # every refusal comes before metrics.jsonl is touched: a refused resume changes nothing in the run
            _check_resume_config(saved_cfg, user_cfg, None)
            if not fingerprints.same_data(loaded.state["data_fingerprint"], fingerprint, data.datasets):
                raise CheckpointError(f"cannot resume from {loaded.path}: the training data differ from the data the "
                                      "run started with (the input files' bytes, the data.* settings that encode them, "
                                      "or the rows' ids, lengths or targets changed). Start a new run.")
            saved_world = int(loaded.state["sampler"].get("num_replicas", 1))
            if saved_world != dist.world and loaded.state["loop"]["batch_in_epoch"]:
                raise CheckpointError(
                    f"cannot resume from {loaded.path} with {dist.world} process(es): it was written by "
                    f"{saved_world} in the middle of epoch {loaded.state['loop']['epoch'] + 1}, and its position "
                    f"counts per-process batches. Resume with {saved_world} process(es) (torchrun "
                    "--nproc_per_node), or from a checkpoint written at an epoch end.")
            _check_resume_streams(loaded, streams)
            finished = finished_summary(run_dir, LoopState.from_dict(loaded.state["loop"]), cfg, scale)
            if finished is not None:  # every rank read the same checkpoint, so every rank returns here
                return finished
            run = Run(run_dir, resume_step=loaded.state["loop"]["step"], progress=cfg.train.progress, dist=dist,
                      tensorboard=cfg.train.tensorboard)
            _check_resume_config(saved_cfg, user_cfg, run.log if dist.is_main else None)
            if saved_world != dist.world:
                if dist.is_main:
                    warnings.warn(f"resuming a run of {saved_world} process(es) with {dist.world}: each optimizer "
                                  "step now averages a different number of batches, and the random streams of "
                                  "the new ranks start afresh (not bit-identical to an uninterrupted run)",
                                  stacklevel=2)
                run.log.write({"event": "world_size_changed_on_resume", "from": saved_world, "to": dist.world})
            model.load_state_dict(loaded.model_state)
            optimizer.load_state_dict(loaded.state["optimizer"])
            precision.load_state_dict(loaded.state.get("scaler"))
            state = LoopState.from_dict(loaded.state["loop"])
            state.session_seconds = 0.0
            if carried is not None:
                carried.load(loaded.carried, mid_epoch=state.batch_in_epoch > 0, where=str(loaded.path))
            if state.stop_reason == "early_stopping" and not state.early.should_stop(cfg.train.patience):
                state.stop_reason = None  # train.patience was raised on this resume: train on
            if not dist.enabled:
                torch.set_rng_state(loaded.state["rng"]["torch"])
                if device.type == "cuda" and loaded.state["rng"].get("cuda") is not None:
                    torch.cuda.set_rng_state(loaded.state["rng"]["cuda"], device)
            else:
                _restore_rank_rng(loaded.state["rng"], dist, device, cfg.train.seed, state.step)
            run.log.write({"event": "resume", "step": state.step, "epoch": state.epoch, "from": loaded.path.name})
        else:
            run = Run(run_dir, progress=cfg.train.progress, dist=dist, tensorboard=cfg.train.tensorboard)
        if preflight is not None and (not resume or dist.enabled):
            first = batch_pieces([train_set[i] for i in sampler.first_batch()], positions)[0]  # step 1's first piece
            first = steps.collate(first).to(device)
            checked = task if streams is None else dataclasses.replace(  # chunk 0: from zeros, nothing carried
                steps, forward=lambda model, batch, step=None: streams.forward(model, batch, None)[0])
            with precision.autocast():
                evidence = preflight(model, first, checked, data.prep)  # evidence for the doctor; changes nothing
            if not resume:
                run.log.write(evidence)
            unused = evidence.get("no_grad") or []
    except Exception as exc:  # noqa: BLE001 - re-raised on this rank; the other ranks raise it too
        dist.agree(exc)
    dist.agree(None)
    dist.main_only(fingerprints.save_cache, run_dir, hash_cache)  # only now: a refused resume writes nothing
    if dist.enabled and not resume:
        run.log.write({"event": "distributed", "world_size": dist.world, "backend": dist.backend,
                       "batch_size_per_process": cfg.data.batch_size,
                       "examples_per_step": cfg.data.batch_size * dist.world * cfg.optim.accumulate})
    steps_per_epoch = math.ceil(len(sampler) / cfg.optim.accumulate)
    schedule = dict(base_lr=cfg.optim.lr, warmup_steps=round(cfg.optim.warmup_epochs * steps_per_epoch),
                    total_steps=cfg.train.max_epochs * steps_per_epoch,
                    cooldown_steps=cfg.optim.cooldown_epochs * steps_per_epoch, min_lr=cfg.optim.min_lr,
                    factor=cfg.optim.plateau_factor)
    monitor, why = choose_monitor(cfg, data, task)
    scored = ValidatedWeights()  # the final scoring reuses the best epoch's validation figures (same weights)
    if validate is None:
        validate = scored.wrap(partial(_validate, dataset=data.datasets["val"], task=task, prep=data.prep,
                                       cfg=cfg, device=device, precision=precision))
        callbacks = (*callbacks, scored)
        if monitor == FIT_LOSS:
            if streams is not None:
                raise ConfigError(f"train.monitor={FIT_LOSS} (the training rows' loss) is not available with "
                                  "truncated backprop through time; set train.monitor=loss")
            validate = partial(_with_fit_loss, validate, task=task, device=device,
                               dataset=train_set if data.train_stream is None else data.datasets["train"],
                               precision=precision, batch_size=cfg.data.batch_size)
    if scale > 1:
        run.epoch_word = "pass"  # each line is one validated pass, not one of the scaled epochs
    if not resume:
        run.log.write({"event": "monitor", "name": monitor, "why": why})
        pieces = split_batches(sampler, positions)
        if pieces["split"]:
            run.log.write({"event": "batch_pieces", **pieces})
            if cfg.train.progress != "none" and dist.is_main:
                print(f"rnnkit: memory: {pieces['split']} of the epoch's {pieces['batches']} batches hold more than "
                      f"{positions} padded positions (rows x longest row); each runs in pieces of fewer rows whose "
                      "gradients add up to the batch's (train.max_batch_positions; 0 = whole)", file=sys.stderr,
                      flush=True)
        if scale > 1:
            run.log.write({"event": "epoch_scale", "scale": scale, "steps_per_pass": steps_per_epoch,
                           "train_rows": len(train_set), "min_epoch_steps": cfg.train.min_epoch_steps,
                           "max_passes": cfg.train.max_epochs, "patience_passes": cfg.train.patience})
            if cfg.train.progress != "none" and dist.is_main:
                print(f"rnnkit: small data: a pass over the {len(train_set)} training rows is {steps_per_epoch} "
                      f"step(s); warm-up, plateau decay, early stopping and train.max_epochs count {scale} passes as "
                      f"one epoch (at most {cfg.train.max_epochs} passes, each validated; train.min_epoch_steps="
                      f"{cfg.train.min_epoch_steps}, 1 = off)", file=sys.stderr, flush=True)
        if cfg.train.progress != "none" and dist.is_main:  # beside the data and model lines printed before
            figure = (f"the loss over the {len(train_set)} training rows (evaluation mode)" if monitor == FIT_LOSS
                      else f"val {monitor}")
            print(f"rnnkit: selection: {figure} picks the best {'pass' if scale > 1 else 'epoch'} and stops "
                  f"early ({why})"
                  + ("" if monitor in ("loss", FIT_LOSS) else "; ties go to the lower val loss"), file=sys.stderr,
                  flush=True)
    summarize = partial(_summarize, user_cfg, data, task, precision, device, run, run_dir, t_start, dist,
                        scored=scored)
    extra = {"config": user_cfg.to_dict(), "data_fingerprint": fingerprint}
    if streams is not None:
        extra["streams"] = streams.layout.describe()  # a mid-epoch resume must lay the chunks out the same way
    return fit(model, optimizer, train_set, data.datasets["val"], steps, sampler=sampler, validate=validate,
               schedule=schedule, clip_norm=cfg.optim.clip_norm, accumulate=cfg.optim.accumulate,
               max_epochs=cfg.train.max_epochs, patience=cfg.train.patience,
               plateau_patience=cfg.optim.plateau_patience, log_every=cfg.train.log_every,
               checkpoint_every=cfg.train.checkpoint_every, keep_checkpoints=cfg.train.keep_checkpoints,
               precision=precision, device=device, dist=dist, run=run, state=state, callbacks=callbacks,
               checkpoint_extra=extra, carried=carried,
               find_unused_parameters=bool(unused), summarize=summarize, started=t_start,
               probe_every=probe_interval(cfg.train.probe_every, cfg.train.min_probes, schedule["total_steps"]),
               monitor=Monitor(monitor), max_positions=positions)


def _check_resume_streams(loaded, streams) -> None:
    """A checkpoint written mid-epoch continues only with the chunk layout it was written under (truncated BPTT:
    the position in the epoch counts chunks), and a window-trained one only on windows.

    Raises:
        CheckpointError: the layouts differ (data.batch_size or the family's chunk setting changed), naming both.
    """
    if not loaded.state["loop"]["batch_in_epoch"]:
        return  # an epoch end: the next epoch starts afresh either way
    saved = loaded.state.get("streams")
    now = None if streams is None else streams.layout.describe()
    if saved == now:
        return

    def said(layout):
        return ("windows (no truncated BPTT)" if layout is None else
                f"{layout['streams']} streams of {layout['stream_length']} steps in chunks of {layout['chunk_steps']}")
    epoch = loaded.state["loop"]["epoch"] + 1
    raise CheckpointError(f"cannot resume from {loaded.path} in the middle of epoch {epoch}: it was trained on "
                          f"{said(saved)}, this run would train on {said(now)}. Resume with the "
                          "settings the run started with (data.batch_size and the truncated BPTT chunk), or from a "
                          "checkpoint written at an epoch end.")


def _validate(model, *, dataset, task, prep, cfg, device, precision) -> dict:
    return evaluate(model, dataset, task, prep, cfg, device=device, precision=precision)[0]


class ValidatedWeights(Callback):
    """The validation figures of this session's best epoch, by the optimizer step the weights were validated at.
    An epoch's checkpoint is written right after its validation (`loop._end_epoch`: nothing trains in between),
    so the best checkpoint's weights are the ones validated at `state.best_step`, and the final scoring need not
    run the validation split through them a second time (evaluation mode is deterministic). A resumed run whose
    best epoch came before this session scores the split again. It relies on callbacks observing, as
    `rnnkit.training.callbacks` asks: one that swapped the weights at an epoch's end (an average, say) would have
    the swapped weights checkpointed under figures of the others."""

    def __init__(self) -> None:
        self.last: dict | None = None
        self.by_step: dict[int, dict] = {}  # the best epoch's only (an improved epoch replaces it)

    def wrap(self, validate):
        def remembered(model) -> dict:
            self.last = validate(model)
            return self.last
        return remembered

    def on_epoch_end(self, state, record: dict) -> None:
        if self.last is not None and record.get("improved"):
            self.by_step = {state.step: self.last}
        self.last = None

    def at(self, step: int | None) -> dict | None:
        """A copy of the figures validated at `step`, or None when this session did not validate there."""
        found = self.by_step.get(step) if step is not None else None
        return copy.deepcopy(found) if found is not None else None


def _with_fit_loss(validate, model, *, dataset, task, device, precision, batch_size) -> dict:
    """The validation figures plus `fit_loss`: the task's loss over the training rows in evaluation mode (dropout
    off, no training-only adjustment), for a monitor that follows the fit because validation is too small to."""
    fit_loss = evaluate_loss(model, dataset=dataset, task=task, device=device, precision=precision,
                             batch_size=batch_size)["loss"]
    return {**validate(model), FIT_LOSS: fit_loss}


def _summarize(cfg, data, task, precision, device, run, run_dir, t_start, dist, model, state, *,
               scored: ValidatedWeights | None = None) -> dict:
    """Score every split with the restored best weights and write summary.json (DDP: rank 0, which hands
    the summary to the other ranks)."""
    return dist.main_only(_finish, cfg, model, data, task, state, precision, device, run.log, run_dir, t_start, dist,
                          scored=scored)


def split_lengths(datasets: dict, train_stream=None) -> dict:
    """Per split: min, median, 90th percentile and max of the sequence lengths the model saw (after truncation);
    with data.storage=stream, train's are the scan's (every training row, not the sample)."""
    out = {}
    for split, ds in datasets.items():
        if split == "train" and train_stream is not None:
            out[split] = train_stream.lengths_summary()
            continue
        lengths = length_array(ds) if len(ds) else np.zeros(0)
        if lengths.size:
            out[split] = {"min": int(lengths.min()), "median": float(np.median(lengths)),
                          "p90": float(np.percentile(lengths, 90)), "max": int(lengths.max())}
    return out


def label_counts(data: PreparedData) -> dict:
    """`{"label_counts": {split: {label: rows}}}` for one label per sequence (classify); {} for other targets."""
    labels = getattr(getattr(data.prep, "labels", None), "labels", None)
    if not labels:
        return {}
    counts: dict = {}
    for split, ds in data.datasets.items():
        if split == "train" and data.train_stream is not None:  # every training row (the scan's), not the sample
            counts[split] = dict(zip(labels, data.prep.class_counts, strict=True))
            continue
        targets = ds.scalar_targets()
        if targets is None or not len(targets):
            return {}  # one tag per token (tag), or no targets
        ids = np.bincount(targets.astype(np.int64), minlength=len(labels))
        counts[split] = {lab: int(n) for lab, n in zip(labels, ids, strict=False)}
    return {"label_counts": counts}


def _restore_rank_rng(rng: dict, dist: distributed.Dist, device, seed: int, step: int) -> None:
    """Each rank continues its own random stream from the checkpoint; a rank the checkpoint has no
    stream for (more processes than the run had) starts a fresh one from (seed, rank, step)."""
    per_rank = rng.get("ranks") or [rng]  # a single-process checkpoint holds rank 0's stream only
    if dist.rank >= len(per_rank):
        torch.manual_seed(distributed.rank_seed(seed, dist.rank, step))
        return
    mine = per_rank[dist.rank]
    torch.set_rng_state(mine["torch"])
    if device.type == "cuda" and mine.get("cuda") is not None:
        torch.cuda.set_rng_state(mine["cuda"], device)


def train_eval_sample(rows: int, limit: int | None, seed: int) -> dict:
    """Which training rows the final scoring reads: all (limit None or >= rows), else a sorted sample of `limit`
    rows drawn with `seed` (the same rows for the same seed and split).

    Returns:
        {"rows": scored, "of": rows, "sampled": bool, "indices": sorted row indices (all rows when not sampled)}.
    """
    if limit is None or rows <= limit:
        return {"rows": rows, "of": rows, "sampled": False, "indices": list(range(rows))}
    picked = sorted(np.random.default_rng([seed, 20261201]).choice(rows, size=limit, replace=False).tolist())
    return {"rows": limit, "of": rows, "sampled": True, "indices": picked}


def _finish(cfg, model, data, task, state, precision, device, log, run_dir, t_start,
            dist: distributed.Dist = distributed.SINGLE, scored: ValidatedWeights | None = None) -> dict:
    """Score every split (the best weights are restored by then; the training split on a sample of
    train.train_eval_rows rows when it is larger; the validation split's figures those the best epoch was
    validated with, when `scored` holds them), write summary.json and the report's test samples."""
    metrics, test_preds = {}, None
    train_eval = train_eval_sample(len(data.datasets["train"]), cfg.train.train_eval_rows, cfg.train.seed)
    for split, ds in data.datasets.items():
        known = scored.at(state.best_step) if split == "val" and scored is not None else None
        if known is not None:
            metrics[split] = known
            continue
        if split == "train" and train_eval["sampled"]:
            ds = ds.subset(train_eval["indices"])
        metrics[split], preds = evaluate(model, ds, task, data.prep, cfg, device=device, precision=precision)
        if split == "test":
            test_preds = preds
    if task.baselines is not None:  # the trivial forecast on test, and on val (the doctor weighs both)
        by_split = "split" in inspect.signature(task.baselines).parameters  # a plugin's (data, cfg): test only
        for split in ("test", "val") if by_split else ("test",):
            if split in metrics and (split == "test" or len(data.datasets[split])):
                metrics[split]["baselines"] = task.baselines(data, cfg, split) if by_split else task.baselines(data,
                                                                                                               cfg)
    if data.train_stream is not None:  # data.storage=stream: the scan's counts, and the batches the loop formed
        counts = data.train_stream.dataset.length_counts
        positions = int((np.arange(len(counts)) * counts).sum())
        sampler = data.train_stream.sampler()
        padding = data.train_stream.padding_share
    else:
        trained = data.datasets["train"] if data.streams is None else data.streams.dataset  # what the loop read
        trained_lengths = length_array(trained)
        positions = int(trained_lengths.sum())
        sampler = (BucketBatchSampler(trained_lengths, cfg.data.batch_size, bucketing=cfg.data.bucketing,
                                      chunk_batches=cfg.data.bucket_chunk, seed=cfg.train.seed)
                   if data.streams is None else data.streams.sampler())
        padding = padding_share(trained_lengths, sampler.batch_arrays(0))
    summary = {
        "task": cfg.task,
        "metrics": metrics,
        "best_epoch": state.early.best_epoch + 1, "monitor": choose_monitor(cfg, data, task)[0],
        "best_step": state.best_step,
        "epochs_run": state.epoch,
        "steps": state.step,
        "epoch_scale": epoch_scale(-(-len(sampler) // dist.world), cfg.optim.accumulate,
                                   cfg.train.min_epoch_steps),  # passes per counted epoch (per-rank batches)
        "stopped": state.stop_reason,
        "train_eval": {k: v for k, v in train_eval.items() if k != "indices"} if data.train_stream is None else {
            **{k: v for k, v in train_eval.items() if k != "indices"}, "of": len(data.train_stream.dataset),
            "sampled": train_eval["rows"] < len(data.train_stream.dataset),
            "from": "data.storage=stream: the scan's seeded sample of training rows"},
        "padding_share": padding,
        "batch_pieces": split_batches(sampler, batch_positions(cfg) if data.streams is None else None),
        "real_tokens_per_second": state.real_tokens / max(state.compute_seconds, 1e-9),
        "data_wait_share": state.data_seconds / max(state.data_seconds + state.compute_seconds, 1e-9),
        "train_real_tokens": positions,
        "device": str(device),
        "precision": precision.name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "data": {**data.report, "lengths": split_lengths(data.datasets, data.train_stream), **label_counts(data)},
        "config_warnings": C.guide_warnings(cfg),
    }
    if data.streams is not None:  # trained by truncated BPTT: on what, and how far back its gradients reach
        summary["tbptt"] = {"on": True, **data.streams.layout.describe(), **data.streams.info}
    from rnnkit import threads as thread_policy

    summary.update(thread_policy.report())  # threads, threads_reason, cpu: the doctor's slow.threads evidence
    if dist.enabled:
        summary["distributed"] = {"world_size": dist.world, "backend": dist.backend,
                                  "batch_size_per_process": cfg.data.batch_size,
                                  "examples_per_step": cfg.data.batch_size * dist.world * cfg.optim.accumulate}
    # wall time over every session of this run (a resumed run adds to what the checkpoint recorded)
    summary["wall_seconds"] = state.wall_seconds + (time.perf_counter() - t_start) - state.session_seconds
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    write_test_samples(run_dir, task, model, data, test_preds, cfg, device)  # what the report shows of them
    log.write({"event": "finished", "step": state.step, "stopped": state.stop_reason})
    return summary
