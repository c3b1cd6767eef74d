"""THE training loop, as a function of built objects. Read it top to bottom: `fit` starts and ends,
`_train_epoch` is the step loop (one inner loop over an optimizer step's micro-batches), `_end_epoch`
validates and checkpoints.

    summary = fit(model, optimizer, train_set, val_set, task, sampler=BucketBatchSampler(...))

`task` is anything with `collate(examples) -> Batch`, `forward(model, batch, step) -> outputs` and
`loss(outputs, batch) -> (mean, count)` (a `rnnkit.tasks.Task` is one). `run=None` trains without touching
disk (`MemoryRun`); `rnnkit.training.setup.fit_from_config` builds every object from a config and a run
directory (`Run`) and is what `rnnkit train` calls.

Everything a resume needs lives in `LoopState` (plus optimizer, sampler position and RNG), and the
schedule is a pure function of the step, so a resumed CPU run repeats the uninterrupted run's per-step
losses exactly. Training stops one way: a reason on `state.stop_reason` (early stopping, max_epochs, a
non-finite loss or gradient, a signal, or a callback); after the loop `fit` turns the reasons that are
errors into one exception (`TrainingError`, `Interrupted`).

Under torchrun the same loop runs on every rank: `dist` (rnnkit.training.distributed) gives the facts of
each optimizer step from all ranks (`step_facts`: the same tensor with one process as with many, in one
device-to-host transfer per step), the
forward goes through DistributedDataParallel (`distributed.net`), rank 0 alone writes through `run` and
validates, and every decision that changes control flow is taken from facts every rank has.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch

from rnnkit.data.collate import SequenceDataset, content_keys, length_array
from rnnkit.data.sampler import BucketBatchSampler
from rnnkit.errors import Interrupted, TrainingError
from rnnkit.training import distributed
from rnnkit.training.callbacks import fire
from rnnkit.training.precision import Precision, resolve_precision
from rnnkit.training.probes import Probe
from rnnkit.training.run import MemoryRun
from rnnkit.training.schedules import EarlyStopping, Monitor, PlateauState, lr_at


class _SignalFlag:
    """SIGINT/SIGTERM set a flag that the loop checks between steps (no exception mid-step)."""

    def __init__(self):
        self.signum: int | None = None
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum is not None and signum == signal.SIGINT:  # a second Ctrl-C: the user means it
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc):
        for s, old in self._old.items():
            signal.signal(s, old)


@dataclass
class LoopState:
    epoch: int = 0  # current epoch (0-based)
    batch_in_epoch: int = 0  # batches of this epoch already consumed
    step: int = 0  # optimizer steps taken
    plateau: PlateauState = field(default_factory=PlateauState)
    early: EarlyStopping = field(default_factory=EarlyStopping)
    best_step: int = -1
    epoch_loss_sum: float = 0.0  # sum of per-example losses this epoch
    epoch_examples: int = 0
    epoch_real: int = 0  # real (non-pad) positions this epoch
    epoch_positions: int = 0  # all positions this epoch
    last_finite_loss: float | None = None
    last_grad_norm: float | None = None
    real_tokens: int = 0  # over the whole run
    compute_seconds: float = 0.0  # forward/backward/step time over the whole run
    data_seconds: float = 0.0  # time spent building batches
    wall_seconds: float = 0.0  # over all sessions of the run, up to the last epoch end
    session_seconds: float = 0.0  # this session's share of wall_seconds (not saved meaningfully)
    stop_reason: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LoopState:
        d = dict(d)
        d["plateau"] = PlateauState(**d["plateau"])
        d["early"] = EarlyStopping(**d["early"])
        return cls(**d)


@dataclass(frozen=True)
class Steps:
    """What `fit` needs of a task: `collate(examples) -> batch` (with `.ids`, `.real_tokens`,
    `.padded_positions`, `.to(device)`), `forward(model, batch, step) -> outputs` (`step` is None in
    evaluation) and `loss(outputs, batch) -> (mean, count)`. A `rnnkit.tasks.Task` has all three."""

    collate: Any
    forward: Any
    loss: Any
    metric_names: tuple[str, ...] = ()


@dataclass
class _Loop:
    """What stays fixed while `fit` runs (one object instead of a dozen arguments to each function)."""

    net: Any  # forward(batch, step) and no_sync(): DDP, or the plain task forward (distributed.net)
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    sampler: BucketBatchSampler
    train_set: SequenceDataset
    task: Any
    validate: Any  # model -> {"loss": ..., metrics...}
    run: Any  # rnnkit.training.run.Run or MemoryRun
    precision: Precision
    device: torch.device
    dist: distributed.Dist
    callbacks: tuple
    schedule: dict  # lr_at's keywords but the step and the plateau reductions
    clip_norm: float | None
    accumulate: int
    max_epochs: int
    patience: int
    plateau_patience: int
    log_every: int
    checkpoint_every: int
    keep_checkpoints: int
    checkpoint_extra: dict  # saved with every checkpoint (the setup puts the config and the data fingerprint)
    started: float  # time.perf_counter() when this session began
    monitor: Monitor = field(default_factory=Monitor)
    carried: Any = None  # truncated BPTT: the state carried between chunks (`tbptt.CarriedState`), or None
    max_positions: int | None = None  # a batch of more padded positions runs in pieces (`batch_pieces`)
    stop_message: str = ""
    interrupted: tuple[int, Any] | None = None


def fit(model: torch.nn.Module, optimizer: torch.optim.Optimizer, train_set: SequenceDataset,
        val_set: SequenceDataset | None, task, *, sampler: BucketBatchSampler, validate=None,
        schedule: dict | None = None, clip_norm: float | None = 1.0, accumulate: int = 1, max_epochs: int = 10,
        patience: int = 10, plateau_patience: int = 3, log_every: int = 20, checkpoint_every: int = 500,
        keep_checkpoints: int = 2, precision: Precision | None = None, device: torch.device | None = None,
        dist: distributed.Dist = distributed.SINGLE, run=None, state: LoopState | None = None, callbacks=(),
        checkpoint_extra: dict | None = None, find_unused_parameters: bool = False, summarize=None,
        started: float | None = None, probe_every: int | None = None, monitor: Monitor | None = None,
        carried=None, max_positions: int | None = None) -> dict:
    """Train `model` on `train_set` in the batches `sampler` draws, validating on `val_set` after each epoch
    (early stopping on its loss, plateau decay), and restore the best epoch's weights at the end.

    Args:
        validate: model -> dict with "loss" (and metrics); default: the task's loss over `val_set`.
        schedule: keywords of `schedules.lr_at` but `reductions` (base_lr, warmup_steps, total_steps,
            cooldown_steps, min_lr, factor); default: the optimizer's learning rate, halved on plateaus.
        run: where logs and checkpoints go (`rnnkit.training.run.Run`); None keeps them in memory.
        state: the `LoopState` of a checkpoint to continue from (optimizer, sampler and RNG restored by the
            caller); None starts at step 0.
        summarize: (model, state) -> the summary to return (after the best weights are restored);
            default: steps, epochs, why training stopped and the last validation metrics.
        probe_every: every this many optimizer steps, a live probe (`rnnkit.training.probes.Probe`: per-layer
            gradient norms, update/weight ratios, clipped-step share, LSTM/GRU gate saturation, dead outputs)
            writes a `{"kind": "probe", ...}` record through `run`; None or 0: no probes. It changes nothing
            in training (the same per-step losses with and without it). `rnnkit train` probes every
            `train.probe_every` steps.
        monitor: the validation figure that picks the best epoch, stops early and decays the rate on plateaus
            (`schedules.Monitor`: the loss, or a metric with the loss breaking ties); default: the loss.
        carried: truncated backprop through time (`rnnkit.training.tbptt.CarriedState`, whose `forward` is the
            task's): the recurrent state carried from chunk to chunk, whose `tensors()` every checkpoint saves
            beside the weights, so a resume mid-sequence continues from it; None: no state outlives a batch.
        max_positions: a sampler batch of more padded positions (rows x longest row) than this runs forward and
            backward in pieces of fewer rows (`batch_pieces`), whose gradients add up to the batch's: memory for
            the activations of one piece at a time. Exact when the task's loss is a mean over the batch's rows
            (a mean over tokens is weighed by rows instead); not with `carried` (its state is per row). None:
            batches run whole.

    Returns:
        the summary; `on_fit_end(state, summary)` has fired.

    Raises:
        TrainingError: non-finite loss or gradient (no checkpoint was written after it).
        Interrupted: SIGINT/SIGTERM (a checkpoint is written first).
    """
    device = device or next(model.parameters()).device
    precision = precision or resolve_precision("fp32", device)
    state = state or LoopState()
    run = MemoryRun() if run is None else run
    if probe_every and dist.is_main:  # rank 0 alone writes the log; the other ranks' gradients are the same
        callbacks = (*callbacks, Probe(model, probe_every, run.log, clip_norm))
    steps_per_epoch = math.ceil(len(sampler) / accumulate)
    if schedule is None:
        schedule = dict(base_lr=optimizer.param_groups[0]["lr"], total_steps=max_epochs * steps_per_epoch)
    if validate is None:
        if val_set is None:
            raise ValueError("fit needs a validation set (val_set) or a validate(model) -> {'loss': ...} function: "
                             "early stopping, plateau decay and the best weights are chosen on it")
        validate = partial(evaluate_loss, dataset=val_set, task=task, device=device, precision=precision,
                           batch_size=sampler.batch_size)
    lp = _Loop(net=distributed.net(model, task.forward, dist, find_unused_parameters=find_unused_parameters),
               model=model, optimizer=optimizer, sampler=sampler, train_set=train_set, task=task,
               validate=validate, run=run, precision=precision, device=device, dist=dist,
               callbacks=tuple(callbacks), schedule=schedule, clip_norm=clip_norm, accumulate=accumulate,
               max_epochs=max_epochs, patience=patience, plateau_patience=plateau_patience, log_every=log_every,
               checkpoint_every=checkpoint_every, keep_checkpoints=keep_checkpoints,
               checkpoint_extra=dict(checkpoint_extra or {}), monitor=monitor or Monitor(),
               started=time.perf_counter() if started is None else started, carried=carried,
               max_positions=None if carried is not None else max_positions)
    run.start(max_epochs * steps_per_epoch)
    run.progress.step(state.step, float("nan"), 0.0, 0.0)
    fire(lp.callbacks, "on_fit_start", state)
    model.train()
    try:
        with _SignalFlag() as flag:
            while state.epoch < max_epochs and state.stop_reason is None:
                _train_epoch(lp, state, flag)
                if state.stop_reason is not None:
                    break
                _end_epoch(lp, state)
                run.prune(keep_checkpoints)
    finally:
        run.close()
    if lp.interrupted is not None:
        raise Interrupted(*lp.interrupted)
    if state.stop_reason is not None and state.stop_reason.startswith("nonfinite"):
        raise TrainingError(lp.stop_message)
    if state.stop_reason is None:
        state.stop_reason = "max_epochs"
    best = dist.main_only(run.best_weights)  # rank 0 restores and scores; the other ranks keep the last weights
    if best is not None and dist.is_main:
        model.load_state_dict(best)
    summary = summarize(model, state) if summarize is not None else {
        "steps": state.step, "epochs_run": state.epoch, "best_epoch": state.early.best_epoch + 1,
        "stopped": state.stop_reason, "val": validate(model)}
    fire(lp.callbacks, "on_fit_end", state, summary)
    return summary


def _train_epoch(lp: _Loop, state: LoopState, flag: _SignalFlag) -> None:
    """The step loop: one epoch of optimizer steps from `state.batch_in_epoch` (mid-epoch after a resume),
    each over `accumulate` micro-batches (the epoch's last step may have fewer).

    The step's facts (each micro-batch's loss and sizes, the gradient norm, a pending signal) reach the host in
    one transfer after the backward passes, not one per micro-batch: a non-finite loss is found there and stops
    training before the optimizer update (the gradients it spoiled are never applied). Under torchrun they come
    from all ranks, so the logged loss is the ranks' mean and a non-finite loss on any rank stops every rank at
    the same step; DDP averages the gradients in the backward of a step's last micro-batch only."""
    if state.batch_in_epoch == 0:
        fire(lp.callbacks, "on_epoch_start", state)
    lp.sampler.set_epoch(state.epoch, start=state.batch_in_epoch)
    n_batches, acc = len(lp.sampler), lp.accumulate
    batches = iter(lp.sampler)
    while state.batch_in_epoch < n_batches:
        window = min(acc, n_batches - state.batch_in_epoch)  # a step starts on a window boundary (resume too)
        micro_ids: list[list[str]] = []  # the records of each micro-batch of this optimizer step
        losses, sizes = [], []
        lr = lr_at(state.step, reductions=state.plateau.reductions, **lp.schedule)
        t_data = time.perf_counter()
        compute = 0.0
        for micro in range(window):
            examples = [lp.train_set[i] for i in next(batches)]
            parts = batch_pieces(examples, lp.max_positions)  # one, unless the batch would hold too many positions
            ids, real, padded, loss = [], 0, 0, None
            if len(parts) > 1:  # each piece weighs its share of what the whole batch's mean loss divides by
                rows = [len(part) for part in parts]
                parts = [lp.task.collate(part) for part in parts]
                counts = [lp.task.loss_count(b) for b in parts] if lp.task.loss_count else rows
                total = max(sum(counts), 1)
            for k, part in enumerate(parts):
                batch = (lp.task.collate(part) if len(parts) == 1 else part).to(lp.device)
                t0 = time.perf_counter()
                state.data_seconds += t0 - t_data
                # DDP all-reduces the gradients in the backward of a step's last micro-batch (and piece) only
                last = micro + 1 == window and k + 1 == len(parts)
                with contextlib.nullcontext() if last else lp.net.no_sync():
                    with lp.precision.autocast():
                        out = lp.net(batch, state.step)
                        mean, _ = lp.task.loss(out, batch)
                    if len(parts) == 1:
                        loss = mean
                        lp.precision.backward(mean / window)  # a non-finite loss is caught below, before the update
                    else:  # the pieces' gradients add up to the whole batch's mean
                        share = counts[k] / total
                        lp.precision.backward(mean * (share / window))
                        loss = mean.detach() * share if loss is None else loss + mean.detach() * share
                ids += batch.ids
                real, padded = real + batch.real_tokens, padded + batch.padded_positions
                compute += time.perf_counter() - t0
                t_data = time.perf_counter()
            micro_ids.append(ids)
            losses.append(loss)
            sizes.append((len(examples), real, padded))
        # ---- optimizer step: unscale, clip; the step's facts in one transfer; check, step, schedule ----
        t0 = time.perf_counter()
        lp.precision.unscale(lp.optimizer)
        params = [p for g in lp.optimizer.param_groups for p in g["params"]]
        clip = lp.clip_norm if lp.clip_norm is not None else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(params, clip)  # pre-clip norm, still on the device
        facts = lp.dist.step_facts(losses, sizes, norm, flag.signum)  # (world, window + 1, 5), on the host
        for micro in range(window):
            bad = [r for r in range(lp.dist.world) if not math.isfinite(facts[r, micro, 0])]
            if bad:
                ids = lp.dist.ids_of(bad[0], micro_ids[micro])
                _stop_nonfinite(lp, state, "loss", float(facts[bad[0], micro, 0]), ids, lr, bad[0])
                return
            state.batch_in_epoch += 1
            loss_value = float(facts[:, micro, 0].mean())  # the ranks' mean loss (DDP weighs the ranks alike too)
            state.epoch_loss_sum += float((facts[:, micro, 0] * facts[:, micro, 1]).sum())
            state.epoch_examples += int(facts[:, micro, 1].sum())
            state.epoch_real += int(facts[:, micro, 2].sum())
            state.epoch_positions += int(facts[:, micro, 3].sum())
            state.real_tokens += int(facts[:, micro, 2].sum())
            state.last_finite_loss = loss_value
        grad_norm = float(facts[0, window, 0])  # after the all-reduce the norm is the same on every rank
        window_ids = [i for ids in micro_ids for i in ids]
        if lp.log_every == 1 or not math.isfinite(grad_norm):
            # every rank's records, rank 0's first (all ranks are here together)
            window_ids = lp.dist.all_ids(window_ids)
        if not math.isfinite(grad_norm) and not lp.precision.skips_nonfinite:
            _stop_nonfinite(lp, state, "gradient norm", grad_norm, window_ids, lr, None)
            return
        fire(lp.callbacks, "on_before_step", state, lp.model, grad_norm)  # the gradients are still there
        for g in lp.optimizer.param_groups:
            g["lr"] = lr
        lp.precision.step(lp.optimizer)
        lp.optimizer.zero_grad(set_to_none=True)
        state.step += 1
        state.last_grad_norm = grad_norm
        state.compute_seconds += compute + time.perf_counter() - t0
        tps = state.real_tokens / max(state.compute_seconds, 1e-9)
        record = {"kind": "step", "step": state.step, "epoch": state.epoch, "loss": loss_value, "lr": lr,
                  "grad_norm": grad_norm, "clipped": grad_norm > clip, "ids": window_ids}
        if state.step % lp.log_every == 0:
            # log_every=1 makes metrics.jsonl a full record of the training order (ids per step); sparser
            # logging leaves the ids out, which a sample of steps could not use anyway
            kept = record if lp.log_every == 1 else {k: v for k, v in record.items() if k != "ids"}
            lp.run.log.write(kept | {"real_tokens_per_second": tps})
        lp.run.progress.step(1, loss_value, lr, tps)
        fire(lp.callbacks, "on_step_end", state, record)
        if state.stop_reason is not None:
            return
        signum = lp.dist.pending_signal(flag.signum, facts)
        if signum is not None:
            path = _save(lp, state, f"signal {signum}")
            lp.run.log.write({"event": "interrupted", "step": state.step, "signal": signum})
            lp.interrupted = (signum, path)
            state.stop_reason = "interrupted"
            return
        if state.step % lp.checkpoint_every == 0 and state.batch_in_epoch < n_batches:
            _save(lp, state, "periodic")


def batch_pieces(examples: list, max_positions: int | None) -> list[list]:
    """The sampler's batch as it runs forward and backward: whole, or, when its padded positions (rows x the
    longest row's steps) exceed `max_positions`, in consecutive pieces of as many rows as fit (at least one).
    The loop adds the pieces' gradients up to the whole batch's (each piece's mean loss weighed by its share
    of what the batch's mean divides by: `Task.loss_count`, else the rows): the same optimizer step, with the
    activations of one piece at a time in memory. None: whole."""
    if not max_positions or not examples:
        return [examples]
    longest = max(len(e) for e in examples)
    if len(examples) * longest <= max_positions:
        return [examples]
    rows = max(1, max_positions // longest)
    return [examples[i:i + rows] for i in range(0, len(examples), rows)]


def _stop_nonfinite(lp: _Loop, state: LoopState, what: str, value: float, ids: list[str], lr: float,
                    rank: int | None) -> None:
    """Stop for a non-finite loss or gradient norm: log the event, record why (`fit` raises). `rank`: the
    rank whose loss was bad (named under torchrun only)."""
    rank = rank if lp.dist.enabled else None
    where = f" on rank {rank} of {lp.dist.world}" if rank is not None else ""
    lp.stop_message = (
        f"non-finite {what} ({value}){where} at step {state.step + 1} (epoch {state.epoch + 1}); batch records: "
        f"{', '.join(ids[:10])}{' ...' if len(ids) > 10 else ''}; last finite loss "
        f"{state.last_finite_loss}, learning rate {lr:.3g}, last gradient norm {state.last_grad_norm}. "
        "The last valid checkpoint is untouched. Try a 10x lower learning rate (--set optim.lr=...), keep "
        "gradient clipping on, and check those records for extreme values; then continue with "
        f"{lp.run.resume_hint()}.")
    lp.run.log.write({"event": "nonfinite", "what": what, "step": state.step + 1, "ids": ids, "lr": lr,
                      "last_finite_loss": state.last_finite_loss, "grad_norm": state.last_grad_norm}
                     | ({"rank": rank} if rank is not None else {}))
    state.stop_reason = f"nonfinite_{what.replace(' ', '_')}"
    lp.run.write_stopped({"stopped": state.stop_reason, "error": lp.stop_message, "step": state.step,
                          "epoch": state.epoch})


def _end_epoch(lp: _Loop, state: LoopState) -> None:
    """Validate, update plateau and early-stopping state, checkpoint, decide whether to stop.

    DDP: rank 0 validates on the whole validation set and hands its metrics to every rank, so the
    plateau, early-stopping and best-checkpoint decisions are the same everywhere by construction."""
    val = lp.dist.main_only(lp.validate, lp.model)
    train_loss = state.epoch_loss_sum / max(state.epoch_examples, 1)
    pad_share = 1 - state.epoch_real / max(state.epoch_positions, 1)
    lr = lr_at(state.step, reductions=state.plateau.reductions, **lp.schedule)
    if lp.monitor.name not in val or not isinstance(val[lp.monitor.name], (int, float)):
        raise TrainingError(f"train.monitor={lp.monitor.name!r} is not among the validation figures (" + ", ".join(
            k for k, v in val.items() if isinstance(v, (int, float))) + "): set train.monitor to one of them")
    value, tie = lp.monitor.value(val), lp.monitor.tie(val)
    state.plateau = state.plateau.update(value, patience=lp.plateau_patience, tie=tie)
    state.early, improved = state.early.update(value, state.epoch, tie)
    if improved:
        state.best_step = state.step
    record = {"kind": "epoch", "epoch": state.epoch + 1, "step": state.step, "train_loss": train_loss,
              **{f"val_{k}": v for k, v in val.items() if isinstance(v, (int, float))},
              "lr": lr, "padding_share": pad_share,
              "grad_norm": state.last_grad_norm, "improved": improved,
              "real_tokens_per_second": state.real_tokens / max(state.compute_seconds, 1e-9),
              "data_wait_share": state.data_seconds / max(state.data_seconds + state.compute_seconds, 1e-9)}
    lp.run.log.write(record)
    names = getattr(lp.task, "metric_names", ())[:1]
    shown = "".join(f"  val_{k} {val[k]:.4f}" for k in names if isinstance(val.get(k), float))
    word = getattr(lp.run, "epoch_word", "epoch")
    lp.run.progress.line(f"{word} {state.epoch + 1:>3}  train_loss {train_loss:.4f}  val_loss {val['loss']:.4f}"
                         f"{shown}  lr {lr:.2e}  pad {pad_share:.1%}{'  *best' if improved else ''}")
    state.epoch += 1
    state.batch_in_epoch = 0
    state.epoch_loss_sum, state.epoch_examples, state.epoch_real, state.epoch_positions = 0.0, 0, 0, 0
    now = time.perf_counter() - lp.started
    state.wall_seconds += now - state.session_seconds
    state.session_seconds = now
    if state.early.should_stop(lp.patience):
        state.stop_reason = "early_stopping"
    fire(lp.callbacks, "on_epoch_end", state, record)
    path = _save(lp, state, "epoch")
    if improved:
        lp.run.mark_best(path, step=state.step, epoch=state.epoch, val_loss=val["loss"],
                         **({} if lp.monitor.name == "loss" else {f"val_{lp.monitor.name}": val[lp.monitor.name]}))


def _save(lp: _Loop, state: LoopState, reason: str):
    """A checkpoint of everything a resume needs (every rank's RNG stream under torchrun)."""
    rng = {"torch": torch.get_rng_state(),
           "cuda": torch.cuda.get_rng_state(lp.device) if lp.device.type == "cuda" else None}
    streams = lp.dist.rng_streams(rng)
    if streams is not None:  # rank 0's is also the top level one, for a single-process resume
        rng["ranks"] = streams
    payload = {"loop": state.to_dict(), "optimizer": lp.optimizer.state_dict(), "sampler": lp.sampler.state_dict(),
               "rng": rng, "scaler": lp.precision.state_dict(), **lp.checkpoint_extra, "reason": reason}
    carried = lp.carried.tensors() if lp.carried is not None else None  # truncated BPTT: the state between chunks
    path = lp.run.save(lp.model, payload, state.step, state.epoch, carried)
    fire(lp.callbacks, "on_checkpoint", state, path)
    return path


@torch.no_grad()
def evaluate_loss(model, *, dataset: SequenceDataset, task, device, precision: Precision, batch_size: int) -> dict:
    """The task's mean loss over `dataset` in eval mode (fit's default validation)."""
    was_training = model.training
    model.eval()
    loss_sum, n = 0.0, 0
    for idx in BucketBatchSampler(length_array(dataset), batch_size, bucketing=True, shuffle=False,
                                  tiebreak=content_keys(dataset)):
        batch = task.collate([dataset[i] for i in idx]).to(device)
        with precision.autocast():
            mean, count = task.loss(task.forward(model, batch, None), batch)
        loss_sum += float(mean) * count
        n += count
    model.train(was_training)
    return {"loss": loss_sum / max(n, 1)}
