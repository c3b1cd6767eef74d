"""DIR/MODEL_CARD.md: what a trained run is, on what data, how good, and where not to use it.

The layout follows the model cards of the Hugging Face Hub (a YAML metadata block with `library_name`, `tags`,
`metrics` and a `model-index` of results, then sections named as theirs are: Model Details, Uses, Bias, Risks and
Limitations, How to Get Started, Training Details, Evaluation, Technical Specifications), so a run directory can
be published as it is. Everything in it is read from the run: config.yaml, summary.json, splits.json and the
doctor's verdict; the source files' sha256 are computed when the card is written (and say so).

    write_model_card(run_dir) -> Path of DIR/MODEL_CARD.md   (`rnnkit export` and `rnnkit report` write it)
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from rnnkit import __version__
from rnnkit.data.longseq import WINDOWED, Windows
from rnnkit.errors import ConfigError

CARD_FILE = "MODEL_CARD.md"
def _sha256(path: Path) -> str | None:
    try:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    except OSError:
        return None


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _metrics_table(metrics: dict) -> list[str]:
    splits = [s for s in ("train", "val", "test") if isinstance(metrics.get(s), dict)]
    names = sorted({k for s in splits for k, v in metrics[s].items() if isinstance(v, (int, float))
                    and not isinstance(v, bool)})
    if not splits or not names:
        return ["No metrics: the run stopped before it was scored."]
    lines = ["| metric | " + " | ".join(splits) + " |", "|---|" + "---:|" * len(splits)]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(_fmt(metrics[s].get(n, "")) for s in splits) + " |")
    return lines


def _baselines(test: dict) -> list[str]:
    base = test.get("baselines") if isinstance(test, dict) else None
    if not isinstance(base, dict) or not base:
        return []
    lines = ["", "Baselines on the same test rows (computed by rnnkit):", ""]
    for name, vals in base.items():
        if isinstance(vals, dict):
            shown = ", ".join(f"{k} {_fmt(v)}" for k, v in vals.items() if isinstance(v, (int, float)))
            lines.append(f"- {name.replace('_', ' ')}: {shown}")
    return lines


def _exported_files(cfg) -> str:
    """What `rnnkit export` writes for this family: one graph, or an encoder and a decoder step."""
    from rnnkit.tasks._onnx import GenerationSpec

    task = family_of(cfg)
    if task is not None and isinstance(task.onnx, GenerationSpec):
        return "model.encoder.onnx + model.decoder_step.onnx + model.onnx.json"
    return "model.onnx + model.onnx.json"


def family_of(cfg):
    """The run's task family, or None when it is not installed here."""
    from rnnkit.errors import RnnkitError
    from rnnkit.tasks import get_task

    try:
        return get_task(cfg.task)
    except RnnkitError:
        return None


def _title(cfg) -> str:
    task = family_of(cfg)
    return (task.title if task is not None and task.title else f"{cfg.task} model")


def _input_kind(run_dir: Path) -> str | None:
    """"text" or "numeric" (inputs.json of classify/regress runs), else None."""
    import json

    try:
        return json.loads((run_dir / "inputs.json").read_text()).get("kind")
    except (OSError, ValueError):
        try:
            return json.loads((run_dir / "regress.json").read_text()).get("kind")
        except (OSError, ValueError):
            return None


def _front_matter(run_dir: Path, cfg, summary: dict) -> str:
    test = (summary.get("metrics") or {}).get("test") or {}
    numbers = {k: v for k, v in test.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
               and k != "loss"}
    data = cfg.data.dataset or ", ".join(Path(p).name for p in (summary.get("data", {}).get("files") or {}).values())
    task = family_of(cfg)
    numeric = _input_kind(run_dir) == "numeric"
    hub_task = task.hub_tasks[1 if numeric else 0] if task is not None else None
    title = _title(cfg)
    meta = {
        "library_name": "rnnkit",
        "tags": ["rnnkit", "pytorch", cfg.model.cell, title.replace(" ", "-")],
        **({"pipeline_tag": hub_task} if hub_task and not numeric else {}),
        "metrics": sorted(numbers),
        "model-index": [{"name": run_dir.name, "results": [{
            "task": {"type": hub_task or title.replace(" ", "-"), "name": title},
            "dataset": {"name": data or "user data", "type": cfg.data.dataset or "local files", "split": "test"},
            "metrics": [{"type": k, "value": float(v), "name": f"test {k}"} for k, v in sorted(numbers.items())],
        }]}] if numbers else [],
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def trained_line(summary: dict) -> str:
    """E.g. "45 passes over the training set (15 epochs of 3 passes: small data, train.min_epoch_steps)", or
    "12 epochs" where a pass is an epoch."""
    run, scale = summary.get("epochs_run", "?"), summary.get("epoch_scale") or 1
    if not isinstance(run, int) or scale <= 1:
        return f"{run} epochs"
    return (f"{run} passes over the training set ({run / scale:g} epochs of {scale} passes: small data, "
            "train.min_epoch_steps)")


def _refit_words(refit) -> str:
    """The Training Procedure's sentence on a refit (`train.refit`); "" when the model was not refit."""
    if not isinstance(refit, dict) or not refit.get("on"):
        return ""
    return (f"This model was then refit: trained again from the same seed on train + validation ({refit.get('rows')} "
            f"rows) for {refit.get('passes')} passes, the first model's best, with the first model's learning-rate "
            "schedule; the test figures below are this model's, the validation figures the first model's "
            f"({refit.get('why')}). ")


def _reading(cfg, data: dict) -> tuple[str, bool]:
    """How the model reads a row (for "Direct Use"), and whether `rnnkit export` takes it."""
    long = data.get("long_sequences") or {}
    if long.get("mode") in WINDOWED:
        try:
            win = Windows(long["window_length"], long["window_stride"], long["max_windows"], long["combine"])
        except (KeyError, TypeError, ValueError):  # a summary written by another version
            return f"read whole in windows (data.long_sequences={long['mode']})", False
        combine = win.describe().split("combined by ", 1)[-1]
        return (f"read whole in windows of {win.length} steps, combined by {combine} (data.long_sequences="
                f"{long['mode']}); rows longer than {win.span} steps keep their {cfg.data.truncate_keep}"), False
    return f"at most {cfg.data.max_length} steps (longer inputs keep their {cfg.data.truncate_keep})", True


def render_model_card(run_dir: Path, ev, diag) -> str:
    """The card's Markdown for a run's evidence (`rnnkit.doctor.load_evidence`) and the doctor's verdict."""
    cfg, summary = ev.cfg, ev.summary
    data = summary.get("data") or {}
    reading, exportable = _reading(cfg, data)
    task = _title(cfg)
    m = cfg.model
    model_line = (f"{m.num_layers}-layer {'bidirectional ' if m.bidirectional else ''}{m.cell.upper()}, hidden "
                  f"{m.hidden_size}, embedding {m.embedding_dim}, dropout {m.dropout}, recurrent dropout "
                  f"{m.recurrent_dropout}, pooling {m.pooling}")
    frontend = (data.get("frontend") or {}).get("kind")
    if frontend and frontend != "none":
        model_line += f", {frontend} front-end (/{data['frontend'].get('reduction')})"
    out = [_front_matter(run_dir, cfg, summary), f"# {run_dir.name}", "",
           f"A {task} model trained with rnnkit {__version__} (LSTM/GRU on PyTorch).", "", "## Model Details", "",
           f"- **Task**: {task} (`task: {cfg.task}`)", f"- **Architecture**: {model_line}",
           f"- **Parameters**: {summary.get('parameters', 'unknown'):,}" if isinstance(summary.get("parameters"), int)
           else "- **Parameters**: unknown",
           f"- **Trained**: {trained_line(summary)}, best "
           f"{'pass' if (summary.get('epoch_scale') or 1) > 1 else 'epoch'} {summary.get('best_epoch', '?')} "
           + ("chosen on the training rows' loss in evaluation mode (too few validation rows)"
              if summary.get("monitor") == "fit_loss" else f"chosen on validation {summary.get('monitor', 'loss')}")
           + f"; stopped by {summary.get('stopped', '?')}",
           f"- **Device / precision**: {summary.get('device', '?')} / {summary.get('precision', '?')}", ""]
    out += ["## Uses", "", "### Direct Use", "",
            f"{task.capitalize()} of inputs like the training data, in the same columns and of the same kind, "
            f"{reading}. `rnnkit predict DIR --data FILE --output OUT` with this directory"
            + (", or the exported ONNX model." if exportable else " (a model that reads windows does not export to "
               "ONNX yet)."), "",
            "### Out-of-Scope Use", "",
            "Inputs unlike the training data (other sources, periods, languages or sensors), labels the model never "
            "saw, and any decision about people made on its output alone.", ""]
    findings = list(diag.findings)
    out += ["## Bias, Risks, and Limitations", ""]
    trunc = data.get("truncated") or {}
    if any(v for v in trunc.values() if isinstance(v, int)):
        cut = data.get("truncation") or {}
        limit, by = cut.get("limit", cfg.data.max_length), cut.get("by", "data.max_length")
        out.append(f"- Truncation at {limit} steps ({by}) cut rows in training: "
                   + ", ".join(f"{k} {v}" for k, v in trunc.items()) + ".")
    sizes = data.get("sizes") or {}
    if sizes.get("val", 99) < 20 or sizes.get("test", 99) < 20:
        out.append(f"- Small splits ({', '.join(f'{k} {v}' for k, v in sizes.items())}): the test figures are "
                   "uncertain by several points.")
    counts = (data.get("label_counts") or {}).get("train")
    if counts:
        most, least = max(counts.values()), max(min(counts.values()), 1)
        if most >= 3 * least:
            out.append(f"- Imbalanced classes in training ({most}:{least}); read macro-F1 beside accuracy.")
    out += [f"- Doctor: {f.code} ({f.severity}): {f.title}." for f in findings]
    if not findings:
        out.append("- The training doctor found no problem in this run.")
    out.append("- Evaluated only on the held-out split below; nothing here measures fairness across groups.")
    suffix = Path(str(next(iter(files.values())))).suffix if (files := data.get("files") or {}) else ".csv"
    out += ["", "## How to Get Started with the Model", "", "```bash",
            f"rnnkit predict {run_dir.name} --data new{suffix} --output predictions.csv",
            *([f"rnnkit export {run_dir.name}            # {_exported_files(cfg)} for onnxruntime"] if exportable
              else []), "```", ""]
    out += ["## Training Details", "", "### Training Data", ""]
    if cfg.data.dataset:
        out.append(f"Built-in data set `{cfg.data.dataset}`" + (f": {data['reference']}" if data.get("reference")
                                                               else "") + ".")
    for split, path in files.items():
        digest = _sha256(Path(path))
        out.append(f"- {split}: `{Path(path).name}`" + (f", sha256 `{digest}` (when this card was written)"
                                                        if digest else " (not found when this card was written)"))
    if sizes:
        out.append("- Rows per split: " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    lengths = data.get("lengths") or {}
    for split, st in lengths.items():
        out.append(f"- Lengths ({split}): min {st['min']}, median {_fmt(st['median'])}, 90th percentile "
                   f"{_fmt(st['p90'])}, max {st['max']}")
    if counts:
        out.append("- Labels (train): " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    out += ["", "### Training Procedure", "",
            f"AdamW, learning rate {cfg.optim.lr}, weight decay {cfg.optim.weight_decay}, warm-up "
            f"{cfg.optim.warmup_epochs} epoch(s), gradient clipping {cfg.optim.clip_norm}, batch "
            f"{cfg.data.batch_size}{', length-bucketed' if cfg.data.bucketing else ''}, at most "
            f"{cfg.train.max_epochs} epochs with early stopping (patience {cfg.train.patience}), seed "
            f"{cfg.train.seed}. " + _refit_words(summary.get("refit"))
            + "The full resolved config is `config.yaml` in this directory.", ""]
    out += ["## Evaluation", "", "### Testing Data, Factors & Metrics", "",
            "The test split above, never seen in training or model selection.", "", "### Results", ""]
    out += _metrics_table(summary.get("metrics") or {})
    out += _baselines((summary.get("metrics") or {}).get("test"))
    out += ["", "## Technical Specifications", "",
            f"rnnkit {__version__}; {summary.get('parameters', '?')} parameters; "
            f"{_fmt(summary.get('real_tokens_per_second', 0))} real tokens/s in training; wall time "
            f"{_fmt(summary.get('wall_seconds', 0))} s on {summary.get('device', '?')}"
            + (f" with {summary['threads']} thread(s)" if summary.get("threads") else "") + ".", ""]
    return "\n".join(out)


def write_model_card(run_dir: str | Path) -> Path:
    """Write DIR/MODEL_CARD.md (see the module docstring) and return its path.

    Raises:
        ConfigError: DIR is not a run directory (no config.yaml).
    """
    from rnnkit.doctor import diagnose, load_evidence

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists():
        raise ConfigError(f"{run_dir} is not a run directory (config.yaml missing).")
    ev = load_evidence(run_dir)
    text = render_model_card(run_dir, ev, diagnose(run_dir, write=False))
    out = run_dir / CARD_FILE
    tmp = out.with_name(f".{CARD_FILE}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out


__all__ = ["CARD_FILE", "render_model_card", "write_model_card"]
