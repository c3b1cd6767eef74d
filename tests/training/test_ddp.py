"""`rnnkit train` under torchrun (DistributedDataParallel, gloo on CPU): real 2-process runs of the CLI,
checked the way a user would check them. Each torchrun run is 2 fresh Python processes on tiny data.

The runs: 240 noisy sine sequences, 192 for training; data.batch_size=12 per process, 2 processes ->
the epoch's 16 batches split 8 / 8, so 8 optimizer steps per epoch of 24 examples each, 3 epochs;
checkpoints every 3 steps and at each epoch end.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fakedata import write_numeric_jsonl, write_reversal_tsv
from rnnkit import api
from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.training import checkpoint as ckpt

HERE = Path(__file__).resolve().parent
TINY = ["model.hidden_size=16", "model.embedding_dim=16", "model.num_layers=1", "data.batch_size=12",
        "train.max_epochs=3", "train.checkpoint_every=3", "train.log_every=1", "train.progress=plain",
        "train.threads=1", "train.keep_checkpoints=2", "train.device=cpu"]
STEPS_PER_EPOCH, TOTAL_STEPS = 8, 24
NO_DROPOUT = ["model.dropout=0.0", "model.recurrent_dropout=0.0"]


# --------------------------------------------------------------------------- helpers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    # a collective that waits longer than this fails instead of hanging the suite (the default is 30 min)
    return {**os.environ, "OMP_NUM_THREADS": "1", "RNNKIT_DIST_TIMEOUT": "60"}


def torchrun(*args, child: list[str] | None = None) -> list[str]:
    """The command `torchrun --nproc_per_node=2 -m rnnkit.cli ARGS` (or the fault-injecting `ddpchild.py`)."""
    head = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}"]
    target = ["-m", "rnnkit.cli"] if child is None else [str(HERE / "ddpchild.py"), *child, "--"]
    return [*head, *target, *map(str, args)]


def run_torchrun(*args, child: list[str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(torchrun(*args, child=child), capture_output=True, text=True, timeout=timeout, env=_env())


def train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", str(data), "--out", str(out), *[x for s in [*TINY, *extra] for x in ("--set", s)]]


def records(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]


def steps(run: Path) -> list[dict]:
    return [r for r in records(run) if r.get("kind") == "step"]


def weights(run: Path, which: str = "last") -> dict[str, torch.Tensor]:
    return load_file(str(ckpt.read_pointer(run / "checkpoints", which) / ckpt.WEIGHTS))


def train_ids(run: Path) -> list[str]:
    return sorted(json.loads((run / "splits.json").read_text())["splits"]["train"])


def assert_each_epoch_sees_every_record_once(run: Path, n_steps: int = TOTAL_STEPS) -> None:
    by_step, ids = {r["step"]: r for r in steps(run)}, train_ids(run)
    for epoch in range(n_steps // STEPS_PER_EPOCH):
        window = range(epoch * STEPS_PER_EPOCH + 1, (epoch + 1) * STEPS_PER_EPOCH + 1)
        assert sorted(i for s in window for i in by_step[s]["ids"]) == ids, f"epoch {epoch + 1}"


def assert_same_run(run: Path, reference: Path) -> None:
    """Bit for bit: last and best weights, and every step's records and loss."""
    for which in ("last", "best"):
        a, b = weights(run, which), weights(reference, which)
        assert sorted(a) == sorted(b)
        assert not [k for k in a if not torch.equal(a[k], b[k])], which
    got, want = steps(run), steps(reference)
    assert [r["step"] for r in got] == [r["step"] for r in want] == list(range(1, TOTAL_STEPS + 1))
    assert [r["ids"] for r in got] == [r["ids"] for r in want]
    assert [r["loss"] for r in got] == [r["loss"] for r in want]


SEQ2SEQ = ["task=seq2seq", "seq2seq.beam=1", "seq2seq.teacher_forcing_start=1.0", "seq2seq.teacher_forcing_end=1.0"]


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> Path:
    return write_numeric_jsonl(tmp_path_factory.mktemp("ddp-data") / "series.jsonl")


@pytest.fixture(scope="module")
def reference(series, tmp_path_factory):
    """One uninterrupted 2-process run with the default dropout and recurrent dropout (so every rank draws
    from its own random stream at every step): (run directory, the finished torchrun process)."""
    run = tmp_path_factory.mktemp("ddp-reference") / "run"
    done = run_torchrun(*train_args(series, run))
    return run, done


# --------------------------------------------------------------------------- the tests


def test_two_processes_finish_and_rank_0_alone_writes_the_run_directory(reference):
    run, done = reference
    assert done.returncode == 0, done.stderr[-3000:]
    assert "done: test accuracy" in done.stdout and "Traceback" not in done.stderr
    # rank 0 alone describes the run and prints the epoch lines
    assert done.stderr.count("rnnkit: distributed: 2 processes (gloo") == 1
    assert [line.split()[1] for line in done.stderr.splitlines() if line.startswith("epoch ")] == ["1", "2", "3"]
    recs = records(run)
    # one writer: every record once, none from a second process
    assert [r["step"] for r in steps(run)] == list(range(1, TOTAL_STEPS + 1))
    assert [r["epoch"] for r in recs if r.get("kind") == "epoch"] == [1, 2, 3]
    events = [r["event"] for r in recs if "event" in r]
    assert events == ["preflight", "distributed", "monitor", "finished"]
    assert all(len(r["ids"]) == 24 for r in steps(run))  # 12 records from each rank per step
    assert_each_epoch_sees_every_record_once(run)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == TOTAL_STEPS and summary["stopped"] == "max_epochs"
    assert summary["distributed"] == {"world_size": 2, "backend": "gloo", "batch_size_per_process": 12,
                                      "examples_per_step": 24}
    names = {p.name for p in (run / "checkpoints").iterdir()}
    assert ckpt.read_pointer(run / "checkpoints", "last").name == "step-00000024"
    best = ckpt.read_pointer(run / "checkpoints", "best").name
    assert names == {"best.json", "last.json", "step-00000021", "step-00000024", best}  # keep_checkpoints=2
    assert sorted(p.name for p in run.iterdir()) == [  # the lock is rank 0's claim on the run (rnnkit.rundir)
        ".rnnkit.lock", "checklist.json", "checkpoints", "config.yaml", "data_fingerprint_cache.json", "findings.json",
        "inputs.json", "labels.json",
        "metrics.jsonl", "splits.json", "standardizer.json", "summary.json"]  # no temporary or per-rank files
    # the unwrapped model's weights: no DDP "module." prefix
    assert all(not k.startswith(("module.", "model.")) for k in weights(run))


@pytest.mark.parametrize(("ddp_sets", "single_sets"), [
    pytest.param([], ["optim.accumulate=2"], id="batch12"),
    pytest.param(["data.batch_size=6", "optim.accumulate=2"], ["data.batch_size=6", "optim.accumulate=4"],
                 id="batch6-accumulate2"),
    # each rank's batch of 12 runs in pieces of 2-3 rows (train.max_batch_positions): only the last piece of a
    # rank's step may all-reduce, and the pieces must add up to the batch's mean gradient
    pytest.param(["train.max_batch_positions=40"], ["optim.accumulate=2"], id="batch-pieces"),
    # its forward calls model.encode / model.teacher_forced, not model(...): DDP must still see it all
    pytest.param(SEQ2SEQ, [*SEQ2SEQ, "optim.accumulate=2"], id="seq2seq", marks=pytest.mark.slow),
])
def test_two_processes_compute_what_one_process_computes_with_accumulation(series, tmp_path, ddp_sets,
                                                                          single_sets):
    """2 ranks x batch b against 1 process x batch b accumulating twice as many batches per step (dropout
    off, so no randomness): the same optimizer steps, so the same weights up to float rounding.

    seq2seq: batch12 for the encoder-decoder (teacher forcing always on: no randomness either).

    Why not 1 process x batch 2b: the sampler cuts the epoch into batches of data.batch_size *before* the
    rank split (rank r takes batches r, r+2, ...), and a batch of 2b is not the union of two batches of b
    (batches are length-sorted within chunks, and their order is shuffled), so it would train on other
    batches. With batch b both runs cut the same batches per epoch, and step k of both takes the same ones:
    batch12 (b=12, 16 batches): batches 2k and 2k+1, one per rank, against accumulate=2;
    batch6-accumulate2 (b=6, 32 batches): rank 0 accumulates 4k and 4k+2, rank 1 4k+1 and 4k+3 (DDP
    synchronises only the window's last backward), against accumulate=4 over 4k..4k+3.
    DDP averages the ranks' gradients, each rank's being the mean over its window of batch-mean losses;
    accumulation back-propagates each batch-mean loss divided by the window. Both give the mean of the
    same batch gradients (all batches hold b records), then clipping, AdamW and the schedule see the same
    gradient at the same step count. Only the order of additions differs (the all-reduce)."""
    ddp_run, single_run = tmp_path / "ddp", tmp_path / "single"
    data = write_reversal_tsv(tmp_path / "reversal.tsv") if ddp_sets == SEQ2SEQ else series
    done = run_torchrun(*train_args(data, ddp_run, *NO_DROPOUT, "train.max_epochs=2", *ddp_sets))
    assert done.returncode == 0, done.stderr[-3000:]
    api.train(C.resolve(None, [f"data.train={data}", *TINY, *NO_DROPOUT, "train.max_epochs=2", *single_sets]),
              single_run)
    a, b = steps(ddp_run), steps(single_run)
    assert len(a) == len(b) == 2 * STEPS_PER_EPOCH
    if "train.max_batch_positions=40" in ddp_sets:  # every batch of 12 rows was cut
        pieces = json.loads((ddp_run / "summary.json").read_text())["batch_pieces"]
        assert pieces["split"] == pieces["batches"] > 0
    if "optim.accumulate=2" not in ddp_sets:  # the same two batches per step, in the same order (rank 0's first)
        assert [r["ids"] for r in a] == [r["ids"] for r in b]
    else:  # the same four batches; DDP lists rank 0's two, then rank 1's two
        assert [sorted(r["ids"]) for r in a] == [sorted(r["ids"]) for r in b]
    assert [r["grad_norm"] for r in a] == pytest.approx([r["grad_norm"] for r in b], rel=1e-4)
    epochs = [[r for r in records(run) if r.get("kind") == "epoch"] for run in (ddp_run, single_run)]
    for key in ("train_loss", "val_loss"):  # train_loss: over both ranks' batches (gathered), like the single run
        assert [r[key] for r in epochs[0]] == pytest.approx([r[key] for r in epochs[1]], rel=1e-5)
    wa, wb = weights(ddp_run), weights(single_run)
    assert sorted(wa) == sorted(wb)
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], atol=1e-5, rtol=0, msg=k)


def test_a_two_process_checkpoint_serves_and_resumes_in_one_process(reference, series, tmp_path, capsys):
    run, done = reference
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    # the validation rows as a file: single-process `rnnkit evaluate` scores them as the 2-process run did
    val_lines = {int(i.rsplit(":", 1)[1]) for i in json.loads((run / "splits.json").read_text())["splits"]["val"]}
    rows = [line for n, line in enumerate(series.read_text().splitlines(), start=1) if n in val_lines]
    (tmp_path / "val.jsonl").write_text("\n".join(rows) + "\n")
    assert main(["evaluate", str(run), "--data", str(tmp_path / "val.jsonl")]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["rows"] == 24
    assert scored["loss"] == pytest.approx(summary["metrics"]["val"]["loss"], rel=1e-5)
    assert scored["accuracy"] == pytest.approx(summary["metrics"]["val"]["accuracy"])
    assert main(["predict", str(run), "--data", str(tmp_path / "val.jsonl"), "--output", str(tmp_path / "p.csv")]) == 0
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 1 + 24

    # and training goes on in one process from the 2-process run's last (epoch-end) checkpoint
    more = tmp_path / "more"
    shutil.copytree(run, more)
    with pytest.warns(UserWarning, match="resuming a run of 2 process"):
        assert main(["train", "--resume", str(more), "--set", "train.max_epochs=4"]) == 0
    recs = records(more)
    assert {"event": "world_size_changed_on_resume", "from": 2, "to": 1} in recs
    # one process takes all 16 batches of 12 per epoch: 16 more steps
    assert [r["step"] for r in steps(more)] == list(range(1, TOTAL_STEPS + 16 + 1))
    assert json.loads((more / "summary.json").read_text())["epochs_run"] == 4

    # a mid-epoch checkpoint counts per-process batches: another process count is refused, nothing changes
    mid = tmp_path / "mid"
    shutil.copytree(run, mid)
    ckpt.write_pointer(mid / "checkpoints", "last", mid / "checkpoints" / "step-00000021", step=21, epoch=2)
    (mid / "checkpoints" / "step-00000024").rename(mid / "step-00000024.aside")  # not the newest any more
    before = (mid / "metrics.jsonl").read_text()
    assert main(["train", "--resume", str(mid)]) == 3
    err = capsys.readouterr().err
    assert "written by 2 in the middle of epoch 3" in err and "Resume with 2 process(es)" in err
    assert (mid / "metrics.jsonl").read_text() == before


class Paused:
    """torchrun with both workers paused after step `at` until the launcher is gone or the file `go` exists.

    `pids` is {rank: pid} of the workers; the launcher's output is read on threads, so nothing blocks."""

    def __init__(self, args: list[str], at: int, go: Path):
        self.proc = subprocess.Popen(torchrun(*args, child=["pause", str(at), str(go)]), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=_env())
        lines: queue.Queue = queue.Queue()
        self._err: list[str] = []
        threading.Thread(target=lambda: [lines.put(x) for x in self.proc.stdout], daemon=True).start()
        self._err_reader = threading.Thread(target=lambda: self._err.extend(self.proc.stderr), daemon=True)
        self._err_reader.start()
        self.pids: dict[int, int] = {}
        deadline = time.monotonic() + 120
        while len(self.pids) < 2:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                self.proc.kill()
                raise AssertionError(f"workers did not pause: {self.stderr(10)[-3000:]}") from None
            for rank, pid in re.findall(r"PAUSED rank=(\d+) pid=(\d+)", line):
                self.pids[int(rank)] = int(pid)

    def stderr(self, timeout: float = 120) -> str:
        """Everything written to stderr, once every process holding the pipe has exited."""
        self._err_reader.join(timeout)
        assert not self._err_reader.is_alive(), f"still running after {timeout} s: {''.join(self._err)[-3000:]}"
        return "".join(self._err)


def _wait_gone(pids: list[int], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while any(Path(f"/proc/{p}").exists() for p in pids):
        if time.monotonic() > deadline:
            for p in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
            raise AssertionError(f"workers {pids} still running {timeout} s after the launcher died")
        time.sleep(0.05)


@pytest.mark.parametrize("killed", ["launcher", "everything"])
def test_kill_9_then_resume_under_torchrun_is_bit_identical(reference, series, tmp_path, killed):
    """`kill -9` of the torchrun launcher mid-epoch: the orphaned workers get SIGTERM (rnnkit asks Linux for it,
    PR_SET_PDEATHSIG), agree to stop after the next step, rank 0 writes a checkpoint, and no orphan keeps
    training. `everything`: the workers die by SIGKILL too (a machine crash): the steps after the last
    checkpoint are lost, dropped from metrics.jsonl and redone on resume. Either way `--resume` under
    torchrun ends bit for bit where the uninterrupted run ends, every step once, with each rank's random
    stream restored (dropout is on: a wrong stream on either rank would change the weights)."""
    ref, _ = reference
    run = tmp_path / "run"
    paused = Paused(train_args(series, run), 11, tmp_path / "go")  # epoch 2; last checkpoint: step 9
    if killed == "everything":
        for pid in paused.pids.values():
            os.kill(pid, signal.SIGKILL)
    paused.proc.kill()
    assert paused.proc.wait(timeout=60) == -signal.SIGKILL
    err = paused.stderr()  # EOF once every worker has exited: no orphan goes on training
    _wait_gone(list(paused.pids.values()))
    last = ckpt.load_latest_valid(run / "checkpoints")
    if killed == "launcher":
        assert err.count("training interrupted by SIGTERM") == 2, err[-3000:]  # both ranks, no traceback
        assert "Traceback" not in err
        assert last.manifest["step"] == 12 and last.state["reason"] == "signal 15"
        assert [r for r in records(run) if r.get("event") == "interrupted"] == [
            {"event": "interrupted", "step": 12, "signal": 15}]
        assert len(last.state["rng"]["ranks"]) == 2
    else:
        assert last.manifest["step"] == 9 and max(r["step"] for r in steps(run)) == 11

    done = run_torchrun("train", "--resume", run)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [(r["step"], r["from"]) for r in records(run) if r.get("event") == "resume"] == [
        (last.manifest["step"], last.path.name)]
    assert_same_run(run, ref)
    assert_each_epoch_sees_every_record_once(run)


def test_sigterm_to_one_rank_stops_every_rank_after_the_same_step(series, tmp_path):
    """A signal reaching one worker only (here rank 1): the ranks agree at the next batch, finish that step,
    rank 0 writes the checkpoint, and both exit 143 with the message, none waiting for the other."""
    run, go = tmp_path / "run", tmp_path / "go"
    paused = Paused(train_args(series, run), 11, go)
    os.kill(paused.pids[1], signal.SIGTERM)
    go.touch()
    err = paused.stderr()
    assert paused.proc.wait(timeout=60) != 0  # torchrun reports the workers' exit status 143
    # both ranks raise at the same step; torchrun, seeing the first exit with 143, may SIGTERM the other before
    # it has printed the same line (its work is done: the checkpoint is written before either raises)
    assert "rnnkit: error: training interrupted by SIGTERM: checkpoint written to" in err, err[-3000:]
    assert "exitcode  : 143" in err and "[rank0]: Traceback" not in err and "[rank1]: Traceback" not in err
    last = ckpt.load_latest_valid(run / "checkpoints")
    assert last.manifest["step"] == 12 and last.state["reason"] == "signal 15"
    assert [r for r in records(run) if r.get("event") == "interrupted"] == [
        {"event": "interrupted", "step": 12, "signal": 15}]
    assert max(r["step"] for r in steps(run)) == 12


def test_nan_on_one_rank_stops_every_rank_with_the_error(series, tmp_path):
    run = tmp_path / "run"
    done = run_torchrun(*train_args(series, run), child=["nan", "1", "5"], timeout=120)  # rank 1, step 6
    assert done.returncode != 0
    message = "non-finite loss (nan) on rank 1 of 2 at step 6 (epoch 1)"
    assert message in done.stderr, done.stderr[-3000:]  # (torchrun may SIGTERM the second rank before it prints)
    assert "[rank0]: Traceback" not in done.stderr and "[rank1]: Traceback" not in done.stderr
    assert done.stderr.count("doctor: nonfinite") == 1  # rank 0 diagnoses the run
    (event,) = [r for r in records(run) if r.get("event") == "nonfinite"]
    assert event["rank"] == 1 and event["step"] == 6 and len(event["ids"]) == 12  # rank 1's batch
    assert max(r["step"] for r in steps(run)) == 5
    assert json.loads((run / "summary.json").read_text())["stopped"] == "nonfinite_loss"
    assert ckpt.load_latest_valid(run / "checkpoints").manifest["step"] == 3  # no checkpoint after the NaN
    assert json.loads((run / "findings.json").read_text())[0]["code"] == "nonfinite"


def test_nan_on_one_rank_is_repaired_on_every_rank(series, tmp_path):
    """train.nonfinite=repair: rank 0 diagnoses and decides, every rank continues from the last checkpoint
    with the lower learning rate (same process group), and the run finishes."""
    run = tmp_path / "run"
    done = run_torchrun(*train_args(series, run, "train.nonfinite=repair"), child=["nan", "1", "5"], timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("repair 1/2: non-finite loss at step 6; continuing from the last valid checkpoint") == 1
    recs = records(run)
    (repair,) = [r for r in recs if r.get("event") == "repair"]
    assert repair["set"] == ["optim.lr=0.0001"] and repair["evidence"]["step"] == 6
    assert [r["step"] for r in steps(run)] == list(range(1, TOTAL_STEPS + 1))  # steps 4-5 dropped, redone once
    assert json.loads((run / "summary.json").read_text())["stopped"] == "max_epochs"
    assert C.from_dict(C.load_yaml(run / "config.yaml")).optim.lr == pytest.approx(1e-4)


def elastic(*args, child: list[str], restarts: int) -> list[str]:
    """torchrun (static rendezvous) with `restarts` restarts. On these machines a restarted pair of gloo workers
    sometimes fails to connect ("Gloo connectFullMesh failed ... Connection refused", about 1 attempt in 3), before
    any training: torchrun then restarts again, and the run directory is untouched by the failed attempt."""
    head = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--max-restarts={restarts}",
            f"--master_port={_free_port()}"]
    return [*head, str(HERE / "ddpchild.py"), *child, "--", *map(str, args)]


def test_a_restarted_pair_of_gloo_workers_connects_when_rank_0_comes_up_late(tmp_path):
    """torchrun's agent keeps one store for the job: a restarted worker must not find the previous attempt's gloo
    addresses there. Rank 1 dies after connecting; in the restart rank 0 starts 3 s late, so rank 1 reads the store
    first (on main: "Gloo connectFullMesh failed ... Connection refused" every time, the job exits 1)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "--max-restarts=1", str(HERE / "gloorestart.py")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**_env(), "RNNKIT_DIST_TIMEOUT": "30"})
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert sorted(re.findall(r"rank (\d) attempt (\d) connected", done.stdout)) == [("0", "1"), ("1", "1")]
    assert "Connection refused" not in done.stderr


def test_a_torchrun_restart_resumes_by_itself_and_ends_bit_identical(reference, series, tmp_path):
    """`torchrun --max-restarts 5`: rank 1 is killed (SIGKILL) after step 11 of 24; torchrun restarts both workers
    with the same fresh-run command, which sees TORCHELASTIC_RESTART_COUNT=1 and a run directory holding this run,
    and continues it from its latest valid checkpoint (step 9): the job finishes, bit for bit the uninterrupted
    run, every step once."""
    ref, _ = reference
    run = tmp_path / "run"
    done = subprocess.run(elastic(*train_args(series, run), child=["die", "1", "11"], restarts=5),
                          capture_output=True, text=True, timeout=400, env=_env())
    assert done.returncode == 0, done.stderr[-3000:]
    assert "torchrun restart 1: " in done.stderr and "holds this run; continuing it" in done.stderr
    resumes = [r for r in records(run) if r.get("event") == "resume"]
    assert [r["step"] for r in resumes] == [9]
    assert_same_run(run, ref)
    assert_each_epoch_sees_every_record_once(run)


def test_with_no_restarts_left_torchrun_exits_non_zero_without_hanging(series, tmp_path):
    run = tmp_path / "run"
    t0 = time.monotonic()
    done = subprocess.run(elastic(*train_args(series, run), child=["die", "1", "5", "always"], restarts=1),
                          capture_output=True, text=True, timeout=240, env=_env())
    assert done.returncode != 0
    assert time.monotonic() - t0 < 200  # two attempts, each stopped by the dead rank, not by a timeout
    assert "holds this run; continuing it" in done.stderr  # the second attempt resumed before it died too


def test_resume_auto_starts_an_empty_directory_and_continues_this_run(series, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", str(series), "--out", str(run), "--resume", "auto",
            *[x for s in [*TINY, "train.max_epochs=1", "train.progress=none"] for x in ("--set", s)]]
    assert main(args) == 0
    first = json.loads((run / "summary.json").read_text())
    assert first["epochs_run"] == 1 and "continuing" not in capsys.readouterr().err
    assert main([*args, "--set", "train.max_epochs=2"]) == 0
    assert "--resume auto: " in capsys.readouterr().err
    assert json.loads((run / "summary.json").read_text())["epochs_run"] == 2
    other = tmp_path / "other.jsonl"
    write_numeric_jsonl(other, n=100, seed=3)
    assert main(["train", str(other), "--out", str(run), "--resume", "auto"]) == 2
    assert "holds another run (data.train:" in capsys.readouterr().err


def test_a_streamed_parquet_file_shards_by_row_group_under_torchrun(tmp_path):
    """data.storage=stream with 2 processes: each rank reads its own row groups, the two ranks take the same number
    of steps, and every epoch's steps (both ranks' ids, logged together) hold every training row."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = 1200
    texts = [" ".join([f"w{(i * 7 + k) % 50}" for k in range(3 + i % 9)] + [f"c{i % 2}"]) for i in range(rows)]
    data = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": texts, "label": [f"c{i % 2}" for i in range(rows)]}), data, row_group_size=100)
    run = tmp_path / "run"
    done = run_torchrun(*train_args(data, run, "data.storage=stream", "data.shuffle_buffer=150", "train.max_epochs=2",
                                    "data.test_fraction=0"), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["distributed"]["world_size"] == 2 and summary["data"]["storage"]["mode"] == "stream"
    train = summary["data"]["sizes"]["train"]
    by_epoch: dict[int, list[str]] = {}
    for r in steps(run):
        by_epoch.setdefault(r["epoch"], []).extend(r["ids"])
    assert sorted(by_epoch) == [0, 1]
    for epoch, ids in by_epoch.items():
        assert len(set(ids)) == train, f"epoch {epoch + 1}"  # every training row; a short rank repeats a few
        assert len(ids) - train < 2 * 12 * 2, f"epoch {epoch + 1}"  # repeats: less than a buffer's short batches
