"""Several processes under `torchrun` (DistributedDataParallel): the environment, the process group,
and the few collective helpers the training loop needs so that every rank takes the same decisions.

    torchrun --nproc_per_node=2 -m rnnkit.cli train data.csv --out runs/x

torchrun starts one process per rank and sets WORLD_SIZE, RANK and LOCAL_RANK. `init_from_env` turns
that into a process group (gloo on CPU, nccl on CUDA with device cuda:LOCAL_RANK); without
WORLD_SIZE > 1 nothing happens and every helper below is the plain single-process operation, so a
single-process run executes exactly the code it executed before DDP support existed.

Rules every rank follows (see docs/distributed.md):

* Rank 0 is the only writer of the run directory; the other ranks read what it wrote, after a
  collective that orders the read after the write (`main_only` is such a point).
* A failure in a part that not every rank runs, or that may fail on one rank only, is *agreed*
  (`agree`, `everywhere`, `main_only`): every rank raises the first failing rank's error, instead of the healthy ranks
  waiting forever in the next collective.
* Per-step facts that decide control flow (a non-finite loss, a signal) are gathered from every
  rank once per optimizer step (`step_facts`), so all ranks stop at the same step.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as tdist

from rnnkit import errors

TIMEOUT_ENV = "RNNKIT_DIST_TIMEOUT"  # seconds a collective may wait for the slowest rank (default 1800)
_owned = False  # True when rnnkit created the process group (and so destroys it)


@dataclass(frozen=True)
class Dist:
    """This process's place in the job. `Dist()` is the single-process case (every helper a no-op)."""

    world: int = 1
    rank: int = 0
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def device(self) -> torch.device:
        """Where small collective tensors live: the rank's GPU for nccl, else the CPU."""
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")

    # ------------------------------------------------------------------ agreement
    def agree(self, error: BaseException | None) -> None:
        """Every rank says whether its part failed; when one did, every rank raises.

        A rank re-raises its own error; a healthy rank raises the first failing rank's error (same
        class when it is an rnnkit error, with its message and exit status). Single process: raises
        `error` when there is one. This is also a barrier.
        """
        if not self.enabled:
            if error is not None:
                raise error
            return
        report = None if error is None else _describe(error)
        reports = self.all_gather_object(report)
        if error is not None:
            raise error
        for rank, rep in enumerate(reports):
            if rep is not None:
                raise _peer_error(rank, *rep)

    def everywhere(self, fn, *args, **kwargs):
        """Run `fn` on every rank; when it fails on any rank, it fails on all (`agree`). Single process:
        `fn(...)`."""
        if not self.enabled:
            return fn(*args, **kwargs)
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - re-raised here and reported to the other ranks
            self.agree(exc)
        self.agree(None)
        return result

    def main_only(self, fn, *args, **kwargs):
        """Run `fn` on rank 0 only, and hand its result to every rank; when it fails, every rank raises.
        Every rank waits here for rank 0 (what it wrote is on disk afterwards). Single process: `fn(...)`."""
        if not self.enabled:
            return fn(*args, **kwargs)
        result, report, error = None, None, None
        if self.is_main:
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - whatever it is, the other ranks must not wait forever
                error, report = exc, _describe(exc)
        result, report = self.broadcast_object((result, report))
        if error is not None:
            raise error
        if report is not None:
            raise _peer_error(0, *report)
        return result

    # ------------------------------------------------------------------ collectives
    def broadcast_object(self, obj, src: int = 0):
        if not self.enabled:
            return obj
        box = [obj]
        tdist.broadcast_object_list(box, src=src)
        return box[0]

    def all_gather_object(self, obj) -> list:
        if not self.enabled:
            return [obj]
        out = [None] * self.world
        tdist.all_gather_object(out, obj)
        return out

    def step_facts(self, losses: list[torch.Tensor], sizes: list[tuple[int, int, int]], grad_norm: torch.Tensor,
                   signum: int | None) -> torch.Tensor:
        """An optimizer step's facts from every rank, in ONE device-to-host transfer (and, under torchrun, one
        small all_gather): a (world, window + 1, 5) float64 CPU tensor. Row k < window is micro-batch k's
        [loss, examples, real tokens, padded positions, pending signal number (0: none)]; the last row holds
        the step's pre-clip gradient norm in column 0. The losses decide a non-finite stop and the signal an
        interrupt, on every rank at the same step (the backward passes have all run by then, so no rank waits
        in a gradient all-reduce for one that stopped). With one process: this process's facts, no collective."""
        device = grad_norm.device
        sig = float(signum or 0)
        rows = torch.tensor([[0.0, e, r, p, sig] for e, r, p in sizes] + [[0.0, 0, 0, 0, sig]], dtype=torch.float64,
                            device=device)
        rows[:, 0] = torch.stack([*(x.detach().reshape(()) for x in losses), grad_norm.detach().reshape(())]
                                 ).to(device=device, dtype=torch.float64)
        if not self.enabled:
            return rows.cpu()[None]
        out = [torch.empty_like(rows) for _ in range(self.world)]
        tdist.all_gather(out, rows)
        return torch.stack(out).cpu()

    def ids_of(self, rank: int, ids: list[str]) -> list[str]:
        """The record ids of `rank`'s batch (one process: `ids`)."""
        return ids if not self.enabled else self.all_gather_object(ids)[rank]

    def all_ids(self, ids: list[str]) -> list[str]:
        """Every rank's record ids, rank 0's first (one process: `ids`)."""
        return ids if not self.enabled else [i for got in self.all_gather_object(ids) for i in got]

    def pending_signal(self, local: int | None, facts: torch.Tensor) -> int | None:
        """The signal to stop for after a step: this process's own flag, or under torchrun the one any rank
        had pending at the step's gather (so every rank stops after the same step)."""
        return local if not self.enabled else (int(facts[:, :, 4].max()) or None)

    def rng_streams(self, rng: dict) -> list[dict] | None:
        """Every rank's random state for a checkpoint (one process: None, its own is the top level)."""
        return None if not self.enabled else self.all_gather_object(dict(rng))


def _describe(error: BaseException) -> tuple[str, str, int]:
    return type(error).__name__, str(error) or type(error).__name__, int(getattr(error, "exit_code", 1))


def _peer_error(rank: int, name: str, message: str, exit_code: int) -> errors.RnnkitError:
    """The error another rank reported, as this rank's exception: the same rnnkit error class where
    there is one (so `except TrainingError` behaves alike on every rank), else a plain RnnkitError."""
    known = {c.__name__: c for c in (errors.DataError, errors.ConfigError, errors.CheckpointError,
                                     errors.TrainingError, errors.MissingExtra, errors.Interrupted)}
    cls = known.get(name, errors.RnnkitError)
    exc = cls.__new__(cls)
    text = message if cls is not errors.RnnkitError else f"rank {rank} failed: {name}: {message}"
    Exception.__init__(exc, text)
    exc.exit_code = exit_code
    if cls is errors.DataError:
        exc.problems = []
    return exc


SINGLE = Dist()


def current() -> Dist:
    """The job this process belongs to: from the initialized default process group, else `SINGLE`."""
    if not (tdist.is_available() and tdist.is_initialized()) or tdist.get_world_size() <= 1:
        return SINGLE
    rank = tdist.get_rank()
    return Dist(world=tdist.get_world_size(), rank=rank, local_rank=int(os.environ.get("LOCAL_RANK", rank)),
                backend=str(tdist.get_backend()))


def launched_world() -> int:
    """WORLD_SIZE as torchrun set it (1 when not launched by torchrun)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise errors.ConfigError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number; start several "
                                 "processes with torchrun, which sets it.") from None


def init_from_env(device_name: str) -> Dist:
    """Create the process group when torchrun started several processes (idempotent); return `current()`.

    Backend: nccl when the run's device (`train.device`, "auto" included) is CUDA, each rank on
    cuda:LOCAL_RANK; gloo on CPU. Collectives time out after RNNKIT_DIST_TIMEOUT seconds (default 1800).

    Raises:
        ConfigError: torchrun variables missing or inconsistent, or fewer GPUs than local ranks.
    """
    global _owned
    world = launched_world()
    if world <= 1 or (tdist.is_available() and tdist.is_initialized()):
        return current()
    if not tdist.is_available():
        raise errors.ConfigError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed.")
    missing = [k for k in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise errors.ConfigError(f"WORLD_SIZE={world} but {', '.join(missing)} not set: start several processes "
                                 "with torchrun (e.g. torchrun --nproc_per_node=2 -m rnnkit.cli train ...).")
    from rnnkit.training.precision import resolve_device

    local_rank = int(os.environ["LOCAL_RANK"])
    kwargs = {}
    if resolve_device(device_name).type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise errors.ConfigError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPUs are visible; "
                                     "start at most one process per GPU (--nproc_per_node).")
        torch.cuda.set_device(local_rank)
        backend = "nccl"
        kwargs["device_id"] = torch.device("cuda", local_rank)
    else:
        backend = "gloo"
    timeout = timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, "1800")))
    store = _attempt_store(world, timeout)
    if store is not None:
        kwargs.update(store=store, rank=int(os.environ["RANK"]), world_size=world)
    tdist.init_process_group(backend, timeout=timeout, **kwargs)
    _owned = True
    _stop_with_launcher()
    return current()


def _attempt_store(world: int, timeout: timedelta):
    """The store a restarted torchrun worker connects through: the agent's store under a prefix of this attempt
    (TORCHELASTIC_RESTART_COUNT), or None (torch's own env:// rendezvous) when that is safe.

    Why: with one agent (a single node, torchrun's static rendezvous), the agent keeps one store for the whole job
    and torch's env:// rendezvous adds no per-attempt prefix to it, so the keys through which the previous
    attempt's workers published their gloo addresses are still there when a restarted worker looks for its
    peers. A worker that reads the store before its peer has written the new address connects to the dead one
    ("Gloo connectFullMesh failed ... Connection refused"; every time when rank 0 comes up a few seconds after
    rank 1, about one restart in three on a loaded 2-core machine). Under the prefix each attempt sees only its
    own keys. Several agents (nodes) keep their restart counts apart, so there torch's rendezvous is kept."""
    restart = os.environ.get("TORCHELASTIC_RESTART_COUNT")
    if (os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True" or restart is None
            or os.environ.get("GROUP_WORLD_SIZE", "1") != "1"):
        return None
    agent = tdist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world, is_master=False,
                           timeout=timeout)
    return tdist.PrefixStore(f"rnnkit/attempt_{restart}", agent)


def shutdown() -> None:
    """Destroy the process group if rnnkit created it (safe to call always, also after an error)."""
    global _owned
    if _owned and tdist.is_available() and tdist.is_initialized():
        gloo = tdist.get_backend() == "gloo"
        tdist.destroy_process_group()
        if gloo:
            # gloo's worker threads drop the buffers of the last collective a moment after it completed, and
            # need the GIL to do so; if the interpreter is already finalizing by then, the process aborts
            # ("terminate called without an active exception", exit -6: measured in about 1 run of 6 here)
            # although training succeeded. The group object outlives destroy_process_group (torch keeps
            # references), so its threads are not joined: give them the GIL for a moment instead.
            time.sleep(0.2)
    _owned = False


def _stop_with_launcher() -> None:
    """Ask Linux to send this worker SIGTERM when its parent, the torchrun launcher, dies.

    torchrun starts each worker in its own session; when the launcher is killed with SIGKILL (an OOM
    killer, a scheduler, `kill -9`), nothing tells the workers, and they would go on training and
    writing the run directory as orphans, racing a `--resume` started afterwards. With this, they
    stop after the current optimizer step like on Ctrl-C: rank 0 writes a checkpoint, all exit 143.
    """
    if not sys.platform.startswith("linux") or "TORCHELASTIC_RUN_ID" not in os.environ:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):  # no prctl here: the launcher's own shutdown still signals us
        return


def rank_seed(seed: int, rank: int, step: int = 0) -> int:
    """The torch seed of rank `rank` > 0 after the model is built: independent dropout masks per rank
    (rank 0 keeps `seed`'s stream, so its draws are the single-process run's). `step` > 0: a fresh
    stream for a rank that joins a resumed run (more processes than the checkpoint had)."""
    return int(np.random.SeedSequence([seed, rank, step] if step else [seed, rank]).generate_state(1)[0])


class _TaskForward(torch.nn.Module):
    """The task's forward function as a module's forward, so that DDP sees the whole forward pass,
    also for task families that call model methods other than `__call__` (seq2seq: `encode`,
    `teacher_forced`). The model is its only submodule: its parameters are DDP's."""

    def __init__(self, model: torch.nn.Module, forward):
        super().__init__()
        self.model = model
        self.task_forward = forward

    def forward(self, batch, step):
        return self.task_forward(self.model, batch, step)


class _Plain:
    """One process: `forward(model, batch, step)` called as `net(batch, step)`, with DDP's `no_sync` a no-op."""

    def __init__(self, model: torch.nn.Module, forward):
        self.model, self.task_forward = model, forward

    def __call__(self, batch, step):
        return self.task_forward(self.model, batch, step)

    def no_sync(self):
        return contextlib.nullcontext()


def net(model: torch.nn.Module, forward, dist: Dist, *, find_unused_parameters: bool = False):
    """What the step loop calls: `wrap(...)` under torchrun, the plain forward with one process."""
    if not dist.enabled:
        return _Plain(model, forward)
    return wrap(model, forward, find_unused_parameters=find_unused_parameters)


def wrap(model: torch.nn.Module, forward, *, find_unused_parameters: bool = False):
    """DistributedDataParallel around `forward(model, batch, step)`; call it as `ddp(batch, step)`.

    The batch is already on the rank's device (no `device_ids`: DDP moves nothing). Rank 0's
    parameters are broadcast to all ranks here. `find_unused_parameters` is needed (and costs a graph
    walk per step) only when some parameters get no gradient, which the preflight tells.
    """
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(_TaskForward(model, forward), find_unused_parameters=find_unused_parameters)


__all__ = ["SINGLE", "TIMEOUT_ENV", "Dist", "current", "init_from_env", "launched_world", "net", "rank_seed",
           "shutdown", "wrap"]
