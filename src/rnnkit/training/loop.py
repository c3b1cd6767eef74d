"""THE training loop. Read it top to bottom: `fit` sets up, `_train_epoch` is the step loop,
`_end_epoch` evaluates and checkpoints, `_finish` restores the best weights and scores.

Everything a resume needs lives in `LoopState` (plus optimizer, sampler position and RNG), and
the schedule is a pure function of the step, so a resumed CPU run repeats the uninterrupted
run's per-step losses exactly.

Under torchrun (`rnnkit.training.distributed`; docs/distributed.md) the same loop runs on every rank with
`dist.enabled`: the model is wrapped in DistributedDataParallel, each rank takes its share of the
epoch's batches, rank 0 alone writes the run directory and validates, and every decision that
changes control flow (stop on a non-finite loss, on a signal, early stopping) is taken from facts
every rank has. With one process each `dist` helper is the plain operation it replaces.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import shutil
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rnnkit import config as C
from rnnkit.data.collate import SequenceDataset
from rnnkit.data.pipeline import PreparedData
from rnnkit.data.sampler import BucketBatchSampler, padding_share
from rnnkit.errors import CheckpointError, Interrupted, TrainingError
from rnnkit.tasks import Task
from rnnkit.training import checkpoint as ckpt
from rnnkit.training import distributed
from rnnkit.training.callbacks import fire
from rnnkit.training.precision import Precision, resolve_device, resolve_precision
from rnnkit.training.schedules import EarlyStopping, PlateauState, lr_at


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


def data_fingerprint(datasets: dict[str, SequenceDataset]) -> str:
    """Hash of ids, lengths and targets: a resume must see the same data in the same order."""
    h = hashlib.sha256()
    for name in sorted(datasets):
        for ex in datasets[name].examples:
            h.update(f"{name}|{ex.id}|{ex.inputs.shape[0]}|".encode())
            h.update(ex.inputs.numpy().tobytes())
            if ex.target is not None:
                h.update(ex.target.numpy().tobytes())
    return h.hexdigest()


def make_optimizer(model: torch.nn.Module, cfg: C.Config) -> torch.optim.Optimizer:
    """AdamW; weight decay on weight matrices only (not biases, norms or the embedding's pad row logic)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.dim() >= 2 and "norm" not in name else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.optim.lr, betas=tuple(cfg.optim.betas))


class _SignalFlag:
    """SIGINT/SIGTERM set a flag that the loop checks between batches (no exception mid-step)."""

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


class MetricsLog:
    """Append-only metrics.jsonl; on resume, lines after the checkpoint's step are dropped first."""

    def __init__(self, path: Path, resume_step: int | None = None):
        self.path = path
        if resume_step is not None and path.exists():
            kept = []
            for line in path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line torn by a kill
                if rec.get("step", 0) <= resume_step:
                    kept.append(line)
            path.write_text("".join(k + "\n" for k in kept))

    def write(self, record: dict) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")


class _NoLog:
    """metrics.jsonl on ranks other than 0: they never write the run directory."""

    def write(self, record: dict) -> None:
        pass


class Progress:
    """A tqdm bar on a terminal; plain lines (one per epoch) otherwise."""

    def __init__(self, mode: str, total: int):
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "plain"
        self.mode = mode
        self.bar = None
        if mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="step", dynamic_ncols=True, leave=False)

    def step(self, n: int, loss: float, lr: float, tps: float) -> None:
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tps:,.0f}", refresh=False)

    def line(self, text: str) -> None:
        if self.mode == "none":
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@torch.no_grad()
def evaluate(model, dataset: SequenceDataset, task: Task, prep, cfg: C.Config, *, device,
             precision: Precision) -> tuple[dict, list]:
    """Loss and metrics over a whole dataset (eval mode); per-example predictions in dataset order."""
    was_training = model.training
    model.eval()
    sampler = BucketBatchSampler(dataset.lengths, cfg.data.batch_size, bucketing=True, shuffle=False)
    preds: list = [None] * len(dataset)
    loss_sum, n = 0.0, 0
    has_targets = len(dataset) > 0 and dataset[0].target is not None
    for idx in sampler:
        batch = task.collate([dataset[i] for i in idx]).to(device)
        with precision.autocast():
            out = task.forward(model, batch, None)
        if has_targets:
            mean, count = task.loss(out, batch)
            loss_sum += float(mean) * count
            n += count
        for i, p in zip(idx, task.predict(model, batch, out, cfg), strict=True):
            preds[i] = p
    model.train(was_training)
    if not has_targets:
        return {}, preds
    return {"loss": loss_sum / max(n, 1), **task.score(preds, dataset.examples, prep, cfg)}, preds


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


def finished_summary(run_dir: Path, state: LoopState, cfg: C.Config) -> dict | None:
    """On resume from a checkpoint that ended the run (early stopping, or max_epochs reached) and with a
    config that would not train further: the run's summary with a `note` on how to go on, and nothing
    touched. None when `cfg` lets it continue (train.max_epochs raised past the epochs run; after early
    stopping, train.patience raised past the epochs since the best one) or no summary was written."""
    stopped = state.stop_reason or ("max_epochs" if state.epoch >= cfg.train.max_epochs else None)
    if stopped not in ("early_stopping", "max_epochs"):
        return None
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None  # killed between the last checkpoint and the summary: finishing writes it
    needed = []
    if stopped == "early_stopping" and state.early.should_stop(cfg.train.patience):
        needed.append(f"--set train.patience=N (N > {state.early.bad_epochs}, the epochs since the best)")
    if state.epoch >= cfg.train.max_epochs:
        needed.append(f"--set train.max_epochs=N (N > {state.epoch})")
    if not needed:
        return None
    summary["note"] = (f"{run_dir} finished already (stopped: {stopped} after {state.epoch} epochs, best epoch "
                       f"{state.early.best_epoch + 1}); nothing was changed. To train it further: "
                       f"rnnkit train --resume {run_dir} {' '.join(needed)}")
    summary["already_finished"] = True
    return summary


def fit(cfg: C.Config, data: PreparedData, task: Task, run_dir: Path, *, resume: bool = False,
        callbacks=(), preflight=None) -> dict:
    """Train, early-stop, restore the best weights and score every split. Returns summary.json's content.

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
    optimizer = make_optimizer(model, cfg)
    if dist.rank > 0:  # same initial weights on every rank (built above), then its own dropout masks
        torch.manual_seed(distributed.rank_seed(cfg.train.seed, dist.rank))
    train_set = data.datasets["train"]
    sampler = BucketBatchSampler(train_set.lengths, cfg.data.batch_size, bucketing=cfg.data.bucketing,
                                 chunk_batches=cfg.data.bucket_chunk, shuffle=True, seed=cfg.train.seed,
                                 num_replicas=dist.world, rank=dist.rank)
    fingerprint = data_fingerprint(data.datasets)
    state = LoopState()
    log = None
    unused: list[str] = []  # parameters without a gradient (the preflight's finding); DDP must know them
    try:  # under torchrun every rank learns whether any rank's set-up failed, and all stop together
        if resume:
            loaded = ckpt.load_latest_valid(ckpt_dir, map_location="cpu")
            saved_cfg = C.from_dict(loaded.state["config"])
            # every refusal comes before metrics.jsonl is touched: a refused resume changes nothing in the run
            _check_resume_config(saved_cfg, cfg, None)
            if loaded.state["data_fingerprint"] != fingerprint:
                raise CheckpointError(f"cannot resume from {loaded.path}: the training data differ from the data the "
                                      "run started with (ids, lengths or values changed). Start a new run.")
            saved_world = int(loaded.state["sampler"].get("num_replicas", 1))
            if saved_world != dist.world and loaded.state["loop"]["batch_in_epoch"]:
                raise CheckpointError(
                    f"cannot resume from {loaded.path} with {dist.world} process(es): it was written by "
                    f"{saved_world} in the middle of epoch {loaded.state['loop']['epoch'] + 1}, and its position "
                    f"counts per-process batches. Resume with {saved_world} process(es) (torchrun "
                    "--nproc_per_node), or from a checkpoint written at an epoch end.")
            finished = finished_summary(run_dir, LoopState.from_dict(loaded.state["loop"]), cfg)
            if finished is not None:  # every rank read the same checkpoint, so every rank returns here
                return finished
            log = MetricsLog(run_dir / "metrics.jsonl", resume_step=loaded.state["loop"]["step"]) if dist.is_main \
                else _NoLog()
            _check_resume_config(saved_cfg, cfg, log if dist.is_main else None)
            if saved_world != dist.world:
                if dist.is_main:
                    warnings.warn(f"resuming a run of {saved_world} process(es) with {dist.world}: each optimizer "
                                  "step now averages a different number of batches, and the random streams of "
                                  "the new ranks start afresh (not bit-identical to an uninterrupted run)",
                                  stacklevel=2)
                log.write({"event": "world_size_changed_on_resume", "from": saved_world, "to": dist.world})
            model.load_state_dict(loaded.model_state)
            optimizer.load_state_dict(loaded.state["optimizer"])
            precision.load_state_dict(loaded.state.get("scaler"))
            state = LoopState.from_dict(loaded.state["loop"])
            state.session_seconds = 0.0
            if state.stop_reason == "early_stopping" and not state.early.should_stop(cfg.train.patience):
                state.stop_reason = None  # train.patience was raised on this resume: train on
            if not dist.enabled:
                torch.set_rng_state(loaded.state["rng"]["torch"])
                if device.type == "cuda" and loaded.state["rng"].get("cuda") is not None:
                    torch.cuda.set_rng_state(loaded.state["rng"]["cuda"], device)
            else:
                _restore_rank_rng(loaded.state["rng"], dist, device, cfg.train.seed, state.step)
            log.write({"event": "resume", "step": state.step, "epoch": state.epoch, "from": loaded.path.name})
        else:
            log = MetricsLog(run_dir / "metrics.jsonl") if dist.is_main else _NoLog()
            if dist.is_main:
                log.path.write_text("")
        if preflight is not None and (not resume or dist.enabled):
            first = task.collate([train_set[i] for i in sampler.epoch_batches(0)[0]]).to(device)  # step 1's batch
            with precision.autocast():
                evidence = preflight(model, first, task, data.prep)  # evidence for the doctor; changes nothing
            if not resume:
                log.write(evidence)
            unused = evidence.get("no_grad") or []
    except Exception as exc:  # noqa: BLE001 - re-raised on this rank; the other ranks raise it too
        dist.agree(exc)
    dist.agree(None)
    ddp = None
    if dist.enabled:
        ddp = distributed.wrap(model, task.forward, find_unused_parameters=bool(unused))
        if not resume:
            log.write({"event": "distributed", "world_size": dist.world, "backend": dist.backend,
                       "batch_size_per_process": cfg.data.batch_size,
                       "examples_per_step": cfg.data.batch_size * dist.world * cfg.optim.accumulate})
    steps_per_epoch = math.ceil(len(sampler) / cfg.optim.accumulate)
    sched = dict(base_lr=cfg.optim.lr, warmup_steps=round(cfg.optim.warmup_epochs * steps_per_epoch),
                 total_steps=cfg.train.max_epochs * steps_per_epoch,
                 cooldown_steps=cfg.optim.cooldown_epochs * steps_per_epoch, min_lr=cfg.optim.min_lr,
                 factor=cfg.optim.plateau_factor)

    def write(path: Path, payload: dict) -> Path:
        try:
            ckpt.save_checkpoint(ckpt_dir, path.name, model.state_dict(), payload, step=state.step, epoch=state.epoch)
            ckpt.write_pointer(ckpt_dir, "last", path, step=state.step, epoch=state.epoch)
        except Exception as exc:  # noqa: BLE001 - a full disk surfaces as OSError, SafetensorError or RuntimeError
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            with contextlib.suppress(OSError):  # torch.save reports a full disk as "unexpected pos ...": show the room
                why += f" ({shutil.disk_usage(ckpt_dir).free / 2**20:.1f} MiB free there)"
            raise CheckpointError(f"cannot write checkpoint step-{state.step:08d} in {ckpt_dir}: {why}. Earlier "
                                  "checkpoints are untouched; free disk space (or fix permissions), then continue "
                                  f"with `rnnkit train --resume {ckpt_dir.parent}`.") from exc
        return path

    def save(name_reason: str) -> Path:
        rng = {"torch": torch.get_rng_state(),
               "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}
        if dist.enabled:  # every rank's stream (rank 0's is also the top level one, for a single-process resume)
            rng["ranks"] = dist.all_gather_object(dict(rng))
        payload = {
            "loop": state.to_dict(), "optimizer": optimizer.state_dict(), "sampler": sampler.state_dict(),
            "rng": rng, "scaler": precision.state_dict(), "config": cfg.to_dict(), "data_fingerprint": fingerprint,
            "reason": name_reason,
        }
        # the unwrapped model's weights (no DDP "module." prefix): a checkpoint loads with any number of processes
        path = dist.main_only(write, ckpt_dir / f"step-{state.step:08d}", payload)
        fire(callbacks, "on_checkpoint", state, path)
        return path

    progress = Progress(cfg.train.progress if dist.is_main else "none",
                        total=cfg.train.max_epochs * steps_per_epoch)
    progress.step(state.step, float("nan"), 0.0, 0.0)
    fire(callbacks, "on_fit_start", state)
    model.train()
    try:
        with _SignalFlag() as flag:
            while state.epoch < cfg.train.max_epochs and state.stop_reason is None:
                _train_epoch(cfg, model, optimizer, sampler, train_set, task, state, sched, precision, device,
                             log, progress, flag, save, callbacks, run_dir, steps_per_epoch, ddp=ddp, dist=dist)
                if state.stop_reason is not None:
                    break
                _end_epoch(cfg, model, data, task, state, precision, device, log, progress, save, callbacks,
                           sched, steps_per_epoch, t_start, dist=dist)
                dist.main_only(ckpt.prune, ckpt_dir, cfg.train.keep_checkpoints)
    finally:
        progress.close()
    if state.stop_reason is None:
        state.stop_reason = "max_epochs"
    summary = dist.main_only(_finish, cfg, model, data, task, state, precision, device, log, run_dir, t_start, dist)
    fire(callbacks, "on_fit_end", state, summary)
    return summary


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


def _train_epoch(cfg, model, optimizer, sampler, train_set, task, state, sched, precision, device, log,
                 progress, flag, save, callbacks, run_dir, steps_per_epoch, *, ddp=None,
                 dist: distributed.Dist = distributed.SINGLE) -> None:
    """One epoch of steps, from `state.batch_in_epoch` (mid-epoch after a resume).

    With `ddp` (torchrun), the forward goes through DistributedDataParallel, which averages the
    gradients of all ranks in the backward of each optimizer step's last batch; the facts of every
    micro-batch (loss, sizes, a pending signal) are gathered from all ranks, so the logged loss is the
    ranks' mean and all ranks stop at the same step."""
    if state.batch_in_epoch == 0:
        fire(callbacks, "on_epoch_start", state)
    sampler.set_epoch(state.epoch, start=state.batch_in_epoch)
    n_batches = len(sampler)
    acc = cfg.optim.accumulate
    # records of every batch of this optimizer step; a window starts empty because checkpoints are
    # written only after a step
    window_ids: list[str] = []
    signum = None  # DDP: the signal any rank had pending at the last gather
    t_data = time.perf_counter()
    for idx in sampler:
        batch = task.collate([train_set[i] for i in idx]).to(device)
        window_ids += batch.ids
        t0 = time.perf_counter()
        state.data_seconds += t0 - t_data
        window_start = state.batch_in_epoch - state.batch_in_epoch % acc
        window = min(acc, n_batches - window_start)  # the epoch's last window may be short
        # DDP all-reduces the gradients only in the backward of a window's last batch
        syncs = ddp is None or state.batch_in_epoch + 1 == window_start + window
        with contextlib.nullcontext() if syncs else ddp.no_sync():
            with precision.autocast():
                out = task.forward(model, batch, state.step) if ddp is None else ddp(batch, state.step)
                loss, _ = task.loss(out, batch)
            lr = lr_at(state.step, reductions=state.plateau.reductions, **sched)
            if ddp is None:
                if not torch.isfinite(loss):
                    _stop_nonfinite(state, "loss", loss.item(), batch.ids, lr, run_dir, log)
            else:  # before backward: a rank that stopped would leave the others waiting in the all-reduce
                facts = dist.batch_facts(loss.item(), len(idx), batch.real_tokens, batch.padded_positions,
                                         flag.signum)
                bad = [r for r in range(dist.world) if not math.isfinite(facts[r, 0])]
                if bad:
                    ids = dist.all_gather_object(batch.ids)[bad[0]]
                    _stop_nonfinite(state, "loss", float(facts[bad[0], 0]), ids, lr, run_dir, log, dist, bad[0])
                signum = int(facts[:, 4].max()) or None
            precision.backward(loss / window)
        state.batch_in_epoch += 1
        if ddp is None:
            loss_value = loss.item()
            state.epoch_loss_sum += loss_value * len(idx)
            state.epoch_examples += len(idx)
            state.epoch_real += batch.real_tokens
            state.epoch_positions += batch.padded_positions
            state.real_tokens += batch.real_tokens
        else:  # every rank adds every rank's batch: the same LoopState everywhere, rank 0 saves it
            loss_value = float(facts[:, 0].mean())  # DDP weighs the ranks' mean losses alike too
            state.epoch_loss_sum += float((facts[:, 0] * facts[:, 1]).sum())
            state.epoch_examples += int(facts[:, 1].sum())
            state.epoch_real += int(facts[:, 2].sum())
            state.epoch_positions += int(facts[:, 3].sum())
            state.real_tokens += int(facts[:, 2].sum())
        state.last_finite_loss = loss_value
        if state.batch_in_epoch % acc and state.batch_in_epoch < n_batches:
            state.compute_seconds += time.perf_counter() - t0
            t_data = time.perf_counter()
            continue
        # ---- optimizer step: unscale, clip, step, schedule ----
        precision.unscale(optimizer)
        params = [p for g in optimizer.param_groups for p in g["params"]]
        clip = cfg.optim.clip_norm if cfg.optim.clip_norm is not None else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, clip))  # pre-clip norm
        if dist.enabled and (cfg.train.log_every == 1 or not math.isfinite(grad_norm)):
            # the step's records on every rank, rank 0's first (the gradients, hence the norm, are the same
            # on every rank after the all-reduce, so all ranks are here together)
            window_ids = [i for ids in dist.all_gather_object(window_ids) for i in ids]
        if not math.isfinite(grad_norm) and not precision.skips_nonfinite:
            _stop_nonfinite(state, "gradient norm", grad_norm, window_ids, lr, run_dir, log, dist)
        for g in optimizer.param_groups:
            g["lr"] = lr
        precision.step(optimizer)
        optimizer.zero_grad(set_to_none=True)
        state.step += 1
        state.last_grad_norm = grad_norm
        state.compute_seconds += time.perf_counter() - t0
        tps = state.real_tokens / max(state.compute_seconds, 1e-9)
        record = {"kind": "step", "step": state.step, "epoch": state.epoch, "loss": loss_value, "lr": lr,
                  "grad_norm": grad_norm, "clipped": grad_norm > clip, "ids": window_ids}
        window_ids = []
        if state.step % cfg.train.log_every == 0:
            # log_every=1 makes metrics.jsonl a full record of the training order (ids per step); sparser
            # logging leaves the ids out, which a sample of steps could not use anyway
            kept = record if cfg.train.log_every == 1 else {k: v for k, v in record.items() if k != "ids"}
            log.write(kept | {"real_tokens_per_second": tps})
        progress.step(1, loss_value, lr, tps)
        fire(callbacks, "on_step_end", state, record)
        if state.stop_reason is not None:
            return
        if ddp is None:
            signum = flag.signum
        if signum is not None:
            path = save(f"signal {signum}")
            log.write({"event": "interrupted", "step": state.step, "signal": signum})
            raise Interrupted(signum, path)
        if state.step % cfg.train.checkpoint_every == 0 and state.batch_in_epoch < n_batches:
            save("periodic")
        t_data = time.perf_counter()


def _stop_nonfinite(state, what, value, ids, lr, run_dir, log, dist: distributed.Dist = distributed.SINGLE,
                    rank: int | None = None) -> None:
    where = f" on rank {rank} of {dist.world}" if rank is not None else ""
    msg = (f"non-finite {what} ({value}){where} at step {state.step + 1} (epoch {state.epoch + 1}); batch records: "
           f"{', '.join(ids[:10])}{' ...' if len(ids) > 10 else ''}; last finite loss "
           f"{state.last_finite_loss}, learning rate {lr:.3g}, last gradient norm {state.last_grad_norm}. "
           "The last valid checkpoint is untouched. Try a 10x lower learning rate (--set optim.lr=...), keep "
           "gradient clipping on, and check those records for extreme values; then continue with "
           f"`rnnkit train --resume {run_dir} --set optim.lr=...`.")
    log.write({"event": "nonfinite", "what": what, "step": state.step + 1, "ids": ids, "lr": lr,
               "last_finite_loss": state.last_finite_loss, "grad_norm": state.last_grad_norm}
              | ({"rank": rank} if rank is not None else {}))
    state.stop_reason = f"nonfinite_{what.replace(' ', '_')}"
    summary = {"stopped": state.stop_reason, "error": msg, "step": state.step, "epoch": state.epoch}
    if dist.is_main:
        (Path(run_dir) / "summary.json").write_text(json.dumps(summary, indent=1))
    raise TrainingError(msg)


def _end_epoch(cfg, model, data, task, state, precision, device, log, progress, save, callbacks, sched,
               steps_per_epoch, t_start, *, dist: distributed.Dist = distributed.SINGLE) -> None:
    """Validate, update plateau and early-stopping state, checkpoint, decide whether to stop.

    DDP: rank 0 validates on the whole validation set and hands its metrics to every rank, so the
    plateau, early-stopping and best-checkpoint decisions are the same everywhere by construction."""
    val = dist.main_only(lambda: evaluate(model, data.datasets["val"], task, data.prep, cfg, device=device,
                                          precision=precision)[0])
    train_loss = state.epoch_loss_sum / max(state.epoch_examples, 1)
    pad_share = 1 - state.epoch_real / max(state.epoch_positions, 1)
    lr = lr_at(state.step, reductions=state.plateau.reductions, **sched)
    state.plateau = state.plateau.update(val["loss"], patience=cfg.optim.plateau_patience)
    state.early, improved = state.early.update(val["loss"], state.epoch)
    if improved:
        state.best_step = state.step
    record = {"kind": "epoch", "epoch": state.epoch + 1, "step": state.step, "train_loss": train_loss,
              **{f"val_{k}": v for k, v in val.items() if isinstance(v, (int, float))},
              "lr": lr, "padding_share": pad_share,
              "grad_norm": state.last_grad_norm, "improved": improved,
              "real_tokens_per_second": state.real_tokens / max(state.compute_seconds, 1e-9),
              "data_wait_share": state.data_seconds / max(state.data_seconds + state.compute_seconds, 1e-9)}
    log.write(record)
    shown = "".join(f"  val_{k} {val[k]:.4f}" for k in task.metric_names[:1] if isinstance(val.get(k), float))
    progress.line(f"epoch {state.epoch + 1:>3}  train_loss {train_loss:.4f}  val_loss {val['loss']:.4f}{shown}  "
                  f"lr {lr:.2e}  pad {pad_share:.1%}{'  *best' if improved else ''}")
    state.epoch += 1
    state.batch_in_epoch = 0
    state.epoch_loss_sum, state.epoch_examples, state.epoch_real, state.epoch_positions = 0.0, 0, 0, 0
    now = time.perf_counter() - t_start
    state.wall_seconds += now - state.session_seconds
    state.session_seconds = now
    if state.early.should_stop(cfg.train.patience):
        state.stop_reason = "early_stopping"
    fire(callbacks, "on_epoch_end", state, record)
    path = save("epoch")
    if improved:
        dist.main_only(ckpt.write_pointer, path.parent, "best", path, step=state.step, epoch=state.epoch,
                       val_loss=val["loss"])


def _finish(cfg, model, data, task, state, precision, device, log, run_dir, t_start,
            dist: distributed.Dist = distributed.SINGLE) -> dict:
    """Restore the best weights, score every split, write summary.json (DDP: on rank 0 only, which
    hands the summary to the other ranks; their model keeps the last weights)."""
    ckpt_dir = run_dir / "checkpoints"
    best = ckpt.read_pointer(ckpt_dir, "best")
    if best is not None:
        model.load_state_dict(ckpt.load_checkpoint(best).model_state)
    metrics = {}
    for split, ds in data.datasets.items():
        metrics[split], _ = evaluate(model, ds, task, data.prep, cfg, device=device, precision=precision)
    if task.baselines is not None and "test" in metrics:
        metrics["test"]["baselines"] = task.baselines(data, cfg)
    positions = sum(ex.inputs.shape[0] for ex in data.datasets["train"].examples)
    sampler = BucketBatchSampler(data.datasets["train"].lengths, cfg.data.batch_size, bucketing=cfg.data.bucketing,
                                 chunk_batches=cfg.data.bucket_chunk, seed=cfg.train.seed)
    summary = {
        "task": cfg.task,
        "metrics": metrics,
        "best_epoch": state.early.best_epoch + 1,
        "best_step": state.best_step,
        "epochs_run": state.epoch,
        "steps": state.step,
        "stopped": state.stop_reason,
        "padding_share": padding_share(data.datasets["train"].lengths, sampler.epoch_batches(0)),
        "real_tokens_per_second": state.real_tokens / max(state.compute_seconds, 1e-9),
        "data_wait_share": state.data_seconds / max(state.data_seconds + state.compute_seconds, 1e-9),
        "train_real_tokens": positions,
        "device": str(device),
        "precision": precision.name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "data": data.report,
        "config_warnings": C.guide_warnings(cfg),
    }
    from rnnkit import threads as thread_policy

    summary.update(thread_policy.report())  # threads, threads_reason, cpu: the doctor's slow.threads evidence
    if dist.enabled:
        summary["distributed"] = {"world_size": dist.world, "backend": dist.backend,
                                  "batch_size_per_process": cfg.data.batch_size,
                                  "examples_per_step": cfg.data.batch_size * dist.world * cfg.optim.accumulate}
    # wall time over every session of this run (a resumed run adds to what the checkpoint recorded)
    summary["wall_seconds"] = state.wall_seconds + (time.perf_counter() - t_start) - state.session_seconds
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    log.write({"event": "finished", "step": state.step, "stopped": state.stop_reason})
    return summary
