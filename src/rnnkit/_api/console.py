"""What `rnnkit.api.train` tells the user on stderr before the first step (`describe_run`)."""

from __future__ import annotations

import sys
from pathlib import Path

from rnnkit import config as C
from rnnkit._api.rundirs import CONFIG_FILE
from rnnkit.data.longseq import WINDOWED, Truncation, Windows
from rnnkit.models.frontend import FrontendChoice
from rnnkit.tasks import get_task
from rnnkit.training import distributed


def storage_words(storage: dict | None) -> str:
    """The data line's words on data.storage (nothing for memory)."""
    if not storage:
        return ""
    if storage["mode"] == "stream":
        units = storage.get("units", "row groups")
        return (f"; streamed (data.storage): {storage['rows']:,} rows in {storage['row_groups']} {units}, read "
                f"by {units} through a shuffle buffer of {storage['shuffle_buffer']:,} rows; train figures "
                f"of the final scoring and the doctor's checks on a sample of {storage['train_sample']:,}")
    return (f"; on disk (data.storage): {storage['bytes'] / 2**20:,.1f} MiB of arrays in {storage['directory']}, "
            "memory-mapped, removed at exit")


def describe_run(cfg: C.Config, report: dict, run_dir: Path,
                 dist: distributed.Dist = distributed.SINGLE) -> list[str]:
    """What the user should know before the first step: data sizes, skipped and truncated rows, the model
    (and, under torchrun, the processes and what a batch means there)."""
    sizes = ", ".join(f"{k} {v}" for k, v in report.get("sizes", {}).items())
    lines = [f"run directory {run_dir} (resolved config in {run_dir / CONFIG_FILE})",
             f"data: {sizes}" + (f"; {report['num_classes']} {get_task(cfg.task).label_noun}"
                                 if report.get("num_classes") else "")
             + (f"; vocabulary {report['vocab_size']}" if "vocab_size" in report else "")
             + storage_words(report.get("storage"))]
    if report.get("rejected"):
        lines.append(f"skipped {report['rejected']} bad rows (--bad-rows skip); each is listed with its problems "
                     f"in {report.get('rejects_file')}")
    long = report.get("long_sequences")
    if long:
        lines.append(long_sequences_line(long))
    truncated = {k: v for k, v in report.get("truncated", {}).items() if v}
    if truncated:
        lines.append(truncation_line(cfg, report.get("truncation"), truncated))
    if report.get("constant_channels"):
        lines.append(f"constant input channels {report['constant_channels']} carry no information")
    m, o = cfg.model, cfg.optim
    lines.append(f"model: {m.num_layers}-layer {'bidirectional ' if m.bidirectional else ''}{m.cell.upper()} "
                 f"hidden {m.hidden_size}, dropout {m.dropout}, recurrent dropout {m.recurrent_dropout}"
                 + (f", pooling {m.pooling}" if get_task(cfg.task).uses_pooling else "")
                 + (f", {FrontendChoice(**report['frontend']).describe()}" if report.get("frontend") else "")
                 + _balance_words(report) + "; "
                 + f"AdamW lr {o.lr:g}, clip {o.clip_norm}, batch {cfg.data.batch_size}"
                 + (" per process" if dist.enabled else ""))
    if dist.enabled:
        per_step = cfg.data.batch_size * dist.world * o.accumulate
        lines.append(f"distributed: {dist.world} processes ({dist.backend}, DistributedDataParallel); each takes "
                     f"batches of data.batch_size={cfg.data.batch_size}, so an optimizer step averages "
                     f"{per_step} examples ({dist.world} x {cfg.data.batch_size}"
                     + (f" x accumulate {o.accumulate}" if o.accumulate > 1 else "")
                     + "); rank 0 writes the run directory")
    return lines


def long_sequences_line(long: dict) -> str:
    """E.g. "long sequences: window (auto: 23% of the training rows ... >= 10%); windows of 512 steps, ...;
    train 2,345 windows for 900 documents (mean 2.6, most 8)"."""
    line = f"long sequences: {long['mode']} ({long.get('reason')})"
    if long["mode"] in WINDOWED:
        win = Windows(long["window_length"], long["window_stride"], long["max_windows"], long["combine"])
        train = (long.get("splits") or {}).get("train")
        line += f"; {win.describe()}" + (
            f"; train {train['windows']:,} windows for {train['documents']:,} documents (mean "
            f"{train['mean_windows']:.1f}, most {train['max_windows']})" if train else "")
    return line


def truncation_line(cfg: C.Config, truncation: dict | None, truncated: dict[str, int]) -> str:
    """E.g. "truncated to data.max_length=512 (head 128 + tail 384 kept): 120 train rows (13%; 50,000 of 600,000
    positions, 8.3%, dropped), 4 val rows (...)": rows cut and positions dropped per split."""
    if not truncation:  # a family that counts rows only
        return (f"truncated to data.max_length={cfg.data.max_length} ({cfg.data.truncate_keep} kept): "
                + ", ".join(f"{v} {k} rows" for k, v in truncated.items()))
    cut = Truncation(truncation["limit"], truncation["keep"], truncation.get("head", cfg.data.truncate_head),
                     by=truncation["by"])
    where = (f"data.max_length={cut.limit}" if cut.by == "data.max_length" else
             f"the {cut.limit} steps of data.max_windows={cfg.data.max_windows} windows")
    splits = truncation.get("splits") or {}
    parts = []
    for split, rows in truncated.items():
        c = splits.get(split)
        parts.append(f"{rows} {split} rows" + (
            f" ({c['cut_rows_share']:.0%}; {c['dropped_positions']:,} of {c['positions']:,} positions, "
            f"{c['dropped_share']:.1%}, dropped)" if c else ""))
    return f"truncated to {where} ({cut.describe()}): " + ", ".join(parts)


def _balance_words(report: dict) -> str:
    balance = report.get("class_balance") or {}
    return f", logit-adjusted loss ({balance.get('reason')})" if balance.get("kind") == "logit_adjust" else ""


def print_run(cfg: C.Config, report: dict, run_dir: Path, dist: distributed.Dist = distributed.SINGLE) -> None:
    """`describe_run`'s lines on stderr, each as "rnnkit: LINE"."""
    for line in describe_run(cfg, report, run_dir, dist):
        print(f"rnnkit: {line}", file=sys.stderr, flush=True)
