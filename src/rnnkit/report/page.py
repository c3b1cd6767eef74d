"""The report's HTML page: the run header, the metrics table, the figures, the doctor's checklist and
findings, in one self-contained file. Every string from the run directory (file names, labels, error
messages, the doctor's text) is HTML-escaped (`_e`)."""

from __future__ import annotations

import contextlib
import html
import json
import math
import time

from rnnkit import __version__
from rnnkit.data.longseq import WINDOWED, Windows
from rnnkit.models.frontend import FrontendChoice
from rnnkit.report.facts import best_epoch, family, finite, is_number
from rnnkit.training.metrics import DETAIL_KEYS


def _e(value) -> str:
    """HTML-escape anything (quotes too, so the text is safe inside attributes)."""
    return html.escape(str(value), quote=True)


def _fmt(v) -> str:
    if isinstance(v, bool) or not is_number(v):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if not math.isfinite(v):
        return str(v)
    return f"{v:.4g}"


def _duration(seconds) -> str:
    if not is_number(seconds):
        return "not recorded"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {sec} s"


def _stopped_words(stopped, cfg) -> str:
    if not stopped:
        return "not finished: no summary.json yet (still running, or killed before its end)"
    words = {"max_epochs": f"reached train.max_epochs ({cfg.train.max_epochs})",
             "early_stopping": f"early stopping: no validation improvement for {cfg.train.patience} epochs "
                               "(train.patience)",
             "nonfinite_loss": "a non-finite (NaN/Inf) loss stopped it",
             "nonfinite_gradient_norm": "a non-finite (NaN/Inf) gradient norm stopped it"}
    return words.get(stopped, str(stopped))


def _data_source(ev) -> str:
    cfg, data = ev.cfg, ev.summary.get("data") or {}
    parts = []
    if cfg.data.dataset:
        parts.append(f"built-in data set {cfg.data.dataset}")
    files = data.get("files")
    if isinstance(files, dict) and files:
        for split, f in files.items():
            parts.append(f"{split}: {', '.join(map(str, f)) if isinstance(f, list) else f}")
    elif data.get("file"):
        parts.append(str(data["file"]))
    elif not cfg.data.dataset:
        parts += [f"{split}: {f}" for split, f in
                  (("train", cfg.data.train), ("val", cfg.data.val), ("test", cfg.data.test)) if f]
    return "; ".join(parts) or "not recorded"


def _sizes(ev) -> str:
    data = ev.summary.get("data") or {}
    sizes = data.get("sizes") or {}
    if not sizes:
        return "not recorded (the run did not finish)"
    text = ", ".join(f"{k} {_fmt(v)}" for k, v in sizes.items())
    extras = []
    if data.get("num_classes"):
        task = family(ev)
        extras.append(f"{data['num_classes']} {task.label_noun if task is not None else 'classes'}")
    for key, words in (("vocab_size", "vocabulary"), ("target_vocab_size", "target vocabulary"),
                       ("series", "series")):
        if is_number(data.get(key)):
            extras.append(f"{words} {_fmt(data[key])}")
    if data.get("rejected"):
        extras.append(f"{data['rejected']} bad rows skipped (listed in {data.get('rejects_file')})")
    truncated = {k: v for k, v in (data.get("truncated") or {}).items() if v}
    if truncated:
        counts = (data.get("truncation") or {}).get("splits") or {}
        extras.append("truncated: " + ", ".join(
            f"{v} {k} rows" + (f" ({counts[k]['dropped_share']:.1%} of the positions dropped)"
                               if is_number((counts.get(k) or {}).get("dropped_share")) else "")
            for k, v in truncated.items()))
    return text + ("; " + "; ".join(extras) if extras else "")


def _long_sequences(ev) -> str | None:
    """The report's "Long sequences" row: what data.long_sequences resolved to and why, the windows, the cut."""
    data = ev.summary.get("data") or {}
    long = data.get("long_sequences")
    if not isinstance(long, dict) or not long.get("mode"):
        return None
    line = f"{long['mode']} ({long.get('reason')})"
    if long["mode"] in WINDOWED:
        with contextlib.suppress(KeyError, TypeError, ValueError):  # a summary written by another version
            line += "; " + Windows(long["window_length"], long["window_stride"], long["max_windows"],
                                   long["combine"]).describe()
    cut = data.get("truncation") or {}
    train = (cut.get("splits") or {}).get("train") or {}
    if train.get("cut_rows"):
        limit = cut.get("limit") if cut.get("by") == "data.max_length" else ev.cfg.data.max_windows
        line += (f"; {cut.get('by')}={limit}"
                 f" cut {train['cut_rows']} of {train['rows']} training rows ({train['cut_rows_share']:.0%}; "
                 f"{train['dropped_share']:.1%} of the training positions dropped), keeping the {cut.get('keep')}")
    return line


def _model_line(ev) -> str:
    cfg = ev.cfg
    m, o = cfg.model, cfg.optim
    line = (f"{m.num_layers}-layer {'bidirectional ' if m.bidirectional else ''}{m.cell.upper()}, hidden "
            f"{m.hidden_size}, embedding {m.embedding_dim}, dropout {m.dropout}, recurrent dropout "
            f"{m.recurrent_dropout}")
    task = family(ev)
    if task is not None and task.uses_pooling:
        line += f", pooling {m.pooling}"
    frontend = (ev.summary.get("data") or {}).get("frontend")
    if isinstance(frontend, dict):
        with contextlib.suppress(TypeError):  # a summary written by another version
            line += f", {FrontendChoice(**frontend).describe()}"
    balance = (ev.summary.get("data") or {}).get("class_balance") or {}
    if balance.get("kind") == "logit_adjust":
        line += f", logit-adjusted loss ({balance.get('reason')})"
    if task is not None and task.describe_model is not None:
        line += task.describe_model(cfg)
    if is_number(ev.summary.get("parameters")):
        line += f"; {ev.summary['parameters']:,} parameters"
    return (line + f". AdamW lr {o.lr:g}, weight decay {o.weight_decay:g}, clip {o.clip_norm}, batch "
            f"{cfg.data.batch_size}, at most {cfg.train.max_epochs} epochs, patience {cfg.train.patience}")


# ---------------------------------------------------------------- HTML

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 62rem; margin: 1.5rem auto;
       padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin-top: 2rem;
     border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
.sub { color: #666; margin-top: 0; } code { background: #f3f3f3; padding: 0 .2rem; border-radius: 3px; }
table { border-collapse: collapse; margin: .5rem 0; } td, th { padding: .25rem .6rem; text-align: left;
        vertical-align: top; border-bottom: 1px solid #eee; }
th { background: #fafafa; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.header th { width: 10rem; background: none; color: #555; font-weight: 600; }
tr.baseline td { color: #555; font-style: italic; }
.box { padding: .6rem .9rem; border-radius: 6px; margin: .8rem 0; }
.error { background: #fdecea; border-left: 4px solid #c62828; } .ok { background: #edf7ed; border-left: 4px solid
 #2e7d32; } .warn { background: #fff4e5; border-left: 4px solid #ef6c00; }
.verdict { font-weight: 700; font-family: ui-monospace, monospace; }
.pass { color: #2e7d32; } .fail { color: #c62828; } .unknown { color: #777; }
.sev { font-weight: 700; text-transform: uppercase; font-size: .8rem; padding: .1rem .4rem; border-radius: 3px;
       color: #fff; } .sev-error { background: #c62828; } .sev-warning { background: #ef6c00; }
.sev-info { background: #1565c0; }
.finding { border: 1px solid #e3e3e3; border-radius: 6px; padding: .4rem .9rem; margin: .8rem 0; }
.finding h3 { font-size: 1rem; margin: .4rem 0; } .evidence { color: #555; font-size: .85rem; }
figure { margin: 1rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9rem; } .missing { color: #777; font-style: italic; }
footer { color: #888; font-size: .8rem; margin-top: 2.5rem; }
.side { display: flex; flex-wrap: wrap; gap: 0 2.5rem; align-items: flex-start; } .side figure { max-width: 30rem; }
table.samples td { font-family: ui-monospace, monospace; font-size: .85rem; }
"""


def _header(ev) -> str:
    s, cfg = ev.summary, ev.cfg
    epochs_run = s.get("epochs_run", len(ev.epochs))
    best = best_epoch(ev)
    rows = [
        ("Task", cfg.task),
        ("Data", _data_source(ev)),
        ("Sizes", _sizes(ev)),
        ("Model", _model_line(ev)),
        *([("Long sequences", _long_sequences(ev))] if _long_sequences(ev) else []),
        ("Device", f"{s['device']}, {s.get('precision', '?')}" if s.get("device") else
         f"not recorded (configured: train.device={cfg.train.device})"),
        ("Wall time", _duration(s.get("wall_seconds"))),
        ("Stopped", _stopped_words(s.get("stopped"), cfg)),
        ("Epochs", (f"{epochs_run} run" if (s.get("epoch_scale") or 1) <= 1 or not isinstance(epochs_run, int) else
                    f"{epochs_run} passes run ({epochs_run / s['epoch_scale']:g} epochs of {s['epoch_scale']} passes: "
                    "small data)") + f", best {'pass' if (s.get('epoch_scale') or 1) > 1 else 'epoch'} "
                   f"{best if best is not None else 'none yet'}"
         + (f", {s['steps']:,} steps" if is_number(s.get("steps")) else "")),
    ]
    if finite(s.get("padding_share")):
        tps, wait = s.get("real_tokens_per_second"), s.get("data_wait_share")
        rows.append(("Throughput", (f"{tps:,.0f} real tokens/s; " if finite(tps) else "")
                     + f"padding {s['padding_share']:.1%} of training positions"
                     + (f"; waiting for data {wait:.1%} of step time" if finite(wait) else "")))
    search = _search_line((s.get("data") or {}).get("auto"))
    if search:
        rows.append(("Protocol search", search))
    notes = (s.get("data") or {}).get("notes") or []
    if notes:
        rows.append(("Notes", "; ".join(map(str, notes))))
    notable = [e for e in ev.events if e.get("event") not in ("preflight", "finished", None)]
    if notable:
        rows.append(("Events", "; ".join(
            f"{e['event']}" + (f" at step {e['step']}" if "step" in e else "")
            + (f" ({' '.join(map(str, e['set']))})" if isinstance(e.get("set"), list) else "") for e in notable)))
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    html_ = f'<table class="header">{body}</table>'
    if s.get("error"):
        html_ += f'<div class="box error"><strong>Training stopped with an error.</strong> {_e(s["error"])}</div>'
    return html_


def _search_line(auto) -> str:
    """A family's protocol search (summary.json data.auto: chosen, metric, val, ranking), in one line."""
    if not isinstance(auto, dict) or not isinstance(auto.get("chosen"), dict):
        return ""
    metric = auto.get("metric", "?")
    val = auto.get("val") or {}

    def words(row: dict) -> str:
        return ", ".join(f"{k}={row.get(k)}" for k in auto["chosen"])

    top = [f"{words(r)}: {_fmt(r.get('val_' + metric))}" for r in (auto.get("ranking") or [])[:3]]
    base = (val.get("seasonal_naive") or {}).get(metric)
    return (f"chose {words(auto['chosen'])} by validation {metric} {_fmt(val.get(metric))} over "
            f"{auto.get('origins', '?')} origin(s) before the test span (seasonal naive {_fmt(base)}); "
            f"{auto.get('tried', '?')} of {auto.get('candidates', '?')} candidates tried in "
            f"{_duration(auto.get('seconds'))}" + ("; budget exhausted" if auto.get("budget_exhausted") else "")
            + (f"; best three: {'; '.join(top)}" if top else ""))


def _metric_columns(ev, metrics: dict) -> list[str]:
    """Float metrics (and the task's named ones) present in any split, the task's headline first, loss last."""
    task = family(ev)
    names = list(task.metric_names) if task is not None else []
    seen: list[str] = []
    for split in metrics.values():
        for k, v in (split or {}).items():
            if k not in seen and k != "baselines" and (isinstance(v, float) or (k in names and is_number(v))):
                seen.append(k)
    ordered = [n for n in names if n in seen] + [k for k in seen if k not in names and k != "loss"]
    return ordered + (["loss"] if "loss" in seen else [])


def _metrics(ev) -> str:
    metrics = ev.summary.get("metrics")
    if not metrics:
        why = ("the run stopped before it was scored (see why above)" if ev.summary
               else "the run has not finished")
        return f'<p class="missing">No metrics: {_e(why)}.</p>'
    cols = _metric_columns(ev, metrics)
    head = "<tr><th>split</th>" + "".join(f"<th>{_e(c)}</th>" for c in cols) + "</tr>"
    rows, notes = [], []

    def row(label: str, values: dict, cls: str = "") -> str:
        cells = "".join(f'<td class="num">{_e(_fmt(values[c])) if is_number(values.get(c)) else "&ndash;"}</td>'
                        for c in cols)
        attr = f' class="{cls}"' if cls else ""
        return f"<tr{attr}><td>{_e(label)}</td>{cells}</tr>"

    order = [k for k in ("test", "val", "train") if k in metrics] + [k for k in metrics if k not in
                                                                     ("test", "val", "train")]
    sample = ev.summary.get("train_eval") or {}
    refit = (ev.summary.get("refit") or {}).get("on")  # test: the refit model; train and val: the first model
    for split in order:
        values = metrics[split] or {}
        label = split
        if split == "train" and sample.get("sampled"):
            label = f"train (a sample of {sample['rows']:,} of {sample['of']:,} rows)"
        if refit and split in ("train", "val", "test"):
            label += " (refit model)" if split == "test" else " (first model)"
        rows.append(row(label, values))
        extra = {k: v for k, v in values.items() if k not in cols and k != "baselines" and k not in DETAIL_KEYS}
        if extra:
            notes.append(f"{split}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in extra.items()))
        for name, base in (values.get("baselines") or {}).items():
            if not isinstance(base, dict):
                continue
            rows.append(row(f"{split} baseline: {name}", base, "baseline"))
            extra = {k: v for k, v in base.items() if k not in cols and k not in DETAIL_KEYS}
            if extra:
                notes.append(f"baseline {name}: " + "; ".join(f"{k} {_fmt(v)}" for k, v in extra.items()))
    task = family(ev)
    notes += list(task.metric_notes) if task is not None else []
    text = f"<table>{head}{''.join(rows)}</table>"
    if notes:
        text += "<ul class=\"evidence\">" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>"
    return text


def _per_class(ev) -> str:
    """The test split per class (classify) or per tag (tag): precision, recall, F1, support; the most frequent
    confusions; the confusion matrix as a shaded table. Empty for families without classes."""
    test = (ev.summary.get("metrics") or {}).get("test") or {}
    per = test.get("per_class")
    if not isinstance(per, dict) or not per:
        return ""
    fam = family(ev)
    noun = fam.label_noun if fam is not None else "classes"
    unit = noun[:-2] if noun.endswith("sses") else noun[:-1] if noun.endswith("s") else noun  # classes -> class
    rows = "".join(f'<tr><td>{_e(name)}</td><td class="num">{_fmt(v["precision"])}</td><td class="num">'
                   f'{_fmt(v["recall"])}</td><td class="num">{_fmt(v["f1"])}</td><td class="num">{v["support"]}</td>'
                   "</tr>" for name, v in sorted(per.items(), key=lambda kv: kv[1]["f1"]))
    word = _e(unit.split()[0])
    per_table = (f"<div><p>Sorted by F1, the weakest first.</p><table><tr><th>{word}</th><th>precision</th>"
                 f"<th>recall</th><th>F1</th><th>support</th></tr>{rows}</table></div>")
    confused = _confused_pairs(test)
    if confused:
        support = {name: v["support"] for name, v in per.items()}
        pairs = "".join(
            f'<tr><td>{_e(t)}</td><td>{_e(p)}</td><td class="num">{n}</td><td class="num">'
            f'{f"{n / support[t]:.1%}" if support.get(t) else "-"}</td></tr>' for t, p, n in confused)
        per_table += (f'<div><p>Most confused {word} pairs, the most frequent first (true &rarr; predicted).</p>'
                      f'<table aria-label="most confused pairs, test split"><tr><th>true</th><th>predicted as</th>'
                      f"<th>count</th><th>share of true</th></tr>{pairs}</table></div>")
    parts = [f'<h2 id="per-class">Per {_e(unit)}, test split</h2>', f'<div class="side">{per_table}</div>']
    matrix = test.get("confusion")
    if isinstance(matrix, dict) and matrix.get("counts"):
        labels, counts = matrix["labels"], matrix["counts"]
        keep = [i for i, lab in enumerate(labels) if lab in per]  # classes seen in test or predicted
        peak = max((counts[i][j] for i in keep for j in keep), default=1) or 1
        head = r"<tr><th>true \ predicted</th>" + "".join(f"<th>{_e(labels[j])}</th>" for j in keep) + "</tr>"
        body = "".join(
            f"<tr><th>{_e(labels[i])}</th>" + "".join(
                f'<td class="num cm" style="background: rgba(31, 119, 180, {counts[i][j] / peak:.2f})">'
                f"{counts[i][j]}</td>" for j in keep) + "</tr>" for i in keep)
        parts.append(f'<table class="confusion" aria-label="confusion matrix, test split">{head}{body}</table>')
    return "".join(parts)


CONFUSED_PAIRS = 10  # rows of the "most confused pairs" table


def _confused_pairs(test: dict) -> list[tuple[str, str, int]]:
    """(true, predicted, count) of the most frequent confusions of the test split: from the confusion matrix when
    summary.json keeps one (up to CONFUSED_PAIRS), else its short `confused` list; ties in the matrix' order."""
    matrix = test.get("confusion")
    if isinstance(matrix, dict) and matrix.get("counts"):
        labels, counts = matrix["labels"], matrix["counts"]
        cells = [(counts[i][j], i, j) for i in range(len(labels)) for j in range(len(labels))
                 if i != j and counts[i][j] > 0]
        cells.sort(key=lambda c: -c[0])  # stable: equal counts stay in row, then column order
        return [(labels[i], labels[j], n) for n, i, j in cells[:CONFUSED_PAIRS]]
    return [(t, p, n) for t, p, n in test.get("confused") or []]


def _figures(plots: list[dict]) -> str:
    parts = []
    for p in plots:
        if p["png"] is None:
            parts.append(f'<figure><figcaption><strong>{_e(p["title"])}</strong></figcaption>'
                         f'<p class="missing">{_e(p["missing"])}</p></figure>')
        else:
            parts.append(f'<figure><img src="data:image/png;base64,{p["png"]}" alt="{_e(p["alt"])}">'
                         f'<figcaption>{_e(p["title"])}</figcaption></figure>')
    return "".join(parts)


_MARK = {"pass": "pass", "fail": "FAIL", "unknown": "unknown"}


def _checklist(diag) -> str:
    rows = "".join(f'<tr><td class="verdict {_e(c.verdict)}">{_e(_MARK.get(c.verdict, c.verdict))}</td>'
                   f"<td>{_e(c.item)}</td><td>{_e(c.detail)}</td></tr>" for c in diag.checklist)
    return f"<table><tr><th>verdict</th><th>item</th><th>detail</th></tr>{rows}</table>"


def _findings(diag) -> str:
    if not diag.findings:
        text = diag.no_findings_text()
        return f'<div class="box {"ok" if not diag.unknown else "warn"}">{_e(text[0].upper() + text[1:])}</div>'
    parts = []
    for f in diag.findings:
        sev = f.severity if f.severity in ("error", "warning", "info") else "info"
        block = (f'<div class="finding"><h3><span class="sev sev-{sev}">{_e(f.severity)}</span> '
                 f"<code>{_e(f.code)}</code> {_e(f.title)}</h3><p>{_e(f.explanation)}</p>")
        if f.action:
            block += f"<p><strong>Done:</strong> {_e(f.action)}</p>"
        if f.advice:
            block += "<p><strong>Try:</strong></p><ul>" + "".join(f"<li>{_e(a)}</li>" for a in f.advice) + "</ul>"
        if f.repair:
            block += ("<p><code>rnnkit diagnose --repair</code> applies: <code>"
                      + _e(" ".join(f"--set {s}" for s in f.repair.get("set", []))) + "</code></p>")
        if f.evidence:
            block += ('<p class="evidence">evidence: '
                      + _e(", ".join(f"{k} {_fmt(v) if is_number(v) else json.dumps(v, default=str)}"
                                     for k, v in f.evidence.items())) + "</p>")
        parts.append(block + "</div>")
    return "".join(parts)


def _verdict_box(diag) -> str:
    by = {s: sum(f.severity == s for f in diag.findings) for s in ("error", "warning", "info")}
    passed = sum(c.verdict == "pass" for c in diag.checklist)
    failed = [c.item for c in diag.checklist if c.verdict == "fail"]
    cls = "error" if by["error"] else "warn" if by["warning"] or failed else "ok"
    found = ", ".join(f"{n} {s}{'s' if n != 1 else ''}" for s, n in by.items() if n) or "no findings"
    text = (f"Doctor: {found}"
            + (f" ({', '.join(diag.codes)})" if diag.codes else "")
            + f"; checklist {passed}/{len(diag.checklist)} passed"
            + (f", failed: {'; '.join(failed)}" if failed else "") + ".")
    return f'<div class="box {cls}">{_e(text)}</div>'


def render_page(ev, diag, plots: list[dict], samples: str = "") -> str:
    """The page; `samples` is the "Test predictions" section's HTML (`rnnkit.report.samples`), "" for none."""
    title = f"rnnkit report: {ev.run_dir.name or ev.run_dir}"
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>",
        "<body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="sub">{_e(ev.run_dir.resolve())}</p>',
        _verdict_box(diag),
        '<h2 id="run">Run</h2>', _header(ev),
        '<h2 id="metrics">Metrics</h2>', _metrics(ev), _per_class(ev), samples,
        '<h2 id="plots">Training curves</h2>', _figures(plots),
        '<h2 id="checklist">Debugging checklist</h2>', _checklist(diag),
        '<h2 id="findings">Findings</h2>', _findings(diag),
        f"<footer>Written by rnnkit {_e(__version__)} on {_e(time.strftime('%Y-%m-%d %H:%M:%S'))} from "
        "config.yaml, summary.json and metrics.jsonl; the doctor's verdict is recomputed (as "
        "<code>rnnkit diagnose DIR</code> prints it).</footer>",
        "</body>",
        "</html>",
        "",
    ])
