"""The run report: one self-contained HTML file (DIR/report.html) to open after a run.

    write_report(run_dir) -> Path of DIR/report.html

It reads only what every run writes (config.yaml, summary.json, metrics.jsonl) and asks the doctor
for its verdict, so any run can be reported on later, also one that a NaN stopped, one still
running, or one from before the preflight existed. Plots are PNGs drawn with matplotlib and
embedded as base64 data URIs: the file needs no other file and no network to open.

matplotlib is an optional extra (`pip install 'rnnkit[report]'`), imported only here and only when
a report is written; training never needs it. Every string that comes from the run directory (file
names, labels, error messages, the doctor's text) is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import time
from pathlib import Path

from rnnkit import __version__
from rnnkit.errors import MissingExtra, RnnkitError

REPORT_FILE = "report.html"
INSTALL_HINT = "pip install 'rnnkit[report]'"


def _matplotlib():
    """(Figure, FigureCanvasAgg, matplotlib.ticker), imported lazily. The object-oriented API with the
    Agg canvas draws off-screen and leaves pyplot's global backend (a notebook's, say) untouched."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib import ticker
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingExtra(f"`rnnkit report` draws its plots with matplotlib, which is not installed "
                           f"({exc}); install it with: {INSTALL_HINT}") from exc
    return Figure, FigureCanvasAgg, ticker


def write_report(run_dir: str | Path) -> Path:
    """Write DIR/report.html for a run directory and return its path.

    The report holds the run header (task, data, sizes, model, device, wall time, why it stopped,
    best epoch), the metrics per split with the task's baselines, five plots (loss, the headline
    validation metric, learning rate, gradient norm, padding share), and the doctor's debugging
    checklist and findings. The doctor runs read-only here (findings.json / checklist.json are left
    as they are).

    Raises:
        MissingExtra: matplotlib is not installed (exit status 2).
        ConfigError: not a run directory (no config.yaml), or a damaged metrics log.
    """
    from rnnkit.doctor import diagnose, load_evidence

    mpl = _matplotlib()
    run_dir = Path(run_dir)
    ev = load_evidence(run_dir)
    diag = diagnose(run_dir, write=False)
    page = _page(ev, diag, _plots(ev, *mpl))
    out = run_dir / REPORT_FILE
    tmp = run_dir / f".tmp-{REPORT_FILE}-{os.getpid()}"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out)  # atomic: a reader sees the old report or the new one
    return out


# ---------------------------------------------------------------- numbers and words


def _e(value) -> str:
    """HTML-escape anything (quotes too, so the text is safe inside attributes)."""
    return html.escape(str(value), quote=True)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _fmt(v) -> str:
    if isinstance(v, bool) or not _is_number(v):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if not math.isfinite(v):
        return str(v)
    return f"{v:.4g}"


def _duration(seconds) -> str:
    if not _is_number(seconds):
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


def _best_epoch(ev) -> int | None:
    """summary.json's best epoch; for an unfinished run, the epoch with the lowest validation loss."""
    if _is_number(ev.summary.get("best_epoch")):
        return int(ev.summary["best_epoch"])
    scored = [e for e in ev.epochs if _finite(e.get("val_loss")) and _is_number(e.get("epoch"))]
    return int(min(scored, key=lambda e: e["val_loss"])["epoch"]) if scored else None


def _finite(v) -> bool:
    return _is_number(v) and math.isfinite(v)


def _family(ev):
    """The run's task family (its hooks name the family's metrics, labels and settings), or None when
    that family is not installed here."""
    from rnnkit.tasks import get_task

    try:
        return get_task(ev.cfg.task)
    except RnnkitError:
        return None


def _headline(ev) -> str | None:
    """The first of the task's metric names logged as val_<name> in the epoch records."""
    task = _family(ev)
    if task is None:
        return None
    for name in task.metric_names:
        if any(_finite(e.get(f"val_{name}")) for e in ev.epochs):
            return name
    return None


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
        task = _family(ev)
        extras.append(f"{data['num_classes']} {task.label_noun if task is not None else 'classes'}")
    for key, words in (("vocab_size", "vocabulary"), ("target_vocab_size", "target vocabulary"),
                       ("series", "series")):
        if _is_number(data.get(key)):
            extras.append(f"{words} {_fmt(data[key])}")
    if data.get("rejected"):
        extras.append(f"{data['rejected']} bad rows skipped (listed in {data.get('rejects_file')})")
    truncated = {k: v for k, v in (data.get("truncated") or {}).items() if v}
    if truncated:
        extras.append("truncated: " + ", ".join(f"{v} {k} rows" for k, v in truncated.items()))
    return text + ("; " + "; ".join(extras) if extras else "")


def _model_line(ev) -> str:
    cfg = ev.cfg
    m, o = cfg.model, cfg.optim
    line = (f"{m.num_layers}-layer {'bidirectional ' if m.bidirectional else ''}{m.cell.upper()}, hidden "
            f"{m.hidden_size}, embedding {m.embedding_dim}, dropout {m.dropout}, recurrent dropout "
            f"{m.recurrent_dropout}")
    task = _family(ev)
    if task is not None and task.uses_pooling:
        line += f", pooling {m.pooling}"
    if task is not None and task.describe_model is not None:
        line += task.describe_model(cfg)
    if _is_number(ev.summary.get("parameters")):
        line += f"; {ev.summary['parameters']:,} parameters"
    return (line + f". AdamW lr {o.lr:g}, weight decay {o.weight_decay:g}, clip {o.clip_norm}, batch "
            f"{cfg.data.batch_size}, at most {cfg.train.max_epochs} epochs, patience {cfg.train.patience}")


# ---------------------------------------------------------------- plots


def _png(fig, canvas_cls) -> str:
    canvas_cls(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _series(records: list[dict], x: str, y: str, *, positive: bool = False) -> tuple[list, list]:
    pts = [(r[x], r[y]) for r in records if _finite(r.get(x)) and _finite(r.get(y)) and (r[y] > 0 or not positive)]
    return [p[0] for p in pts], [p[1] for p in pts]


_NICE = (1.0, 2.0, 5.0)  # log-axis ticks at 1, 2, 5 x 10^k: at most three labels a decade, never crowded


def _nice_below(v: float) -> float:
    k = math.floor(math.log10(v))
    return max(m * 10.0**k for m in (*_NICE, 10.0) if m * 10.0**k <= v * (1 + 1e-9))


def _nice_above(v: float) -> float:
    k = math.floor(math.log10(v))
    return min(m * 10.0**k for m in (*_NICE, 10.0) if m * 10.0**k >= v * (1 - 1e-9))


def log_axis(ax, ticker, values: list[float]) -> None:
    """A log-scaled y axis whose ends are labelled ticks: limits rounded out to 1, 2, 5 x 10^k around
    `values`, major ticks (labelled `0.5`, not 5x10^-1) at those steps only, minor ticks unlabelled."""
    values = [v for v in values if v > 0 and math.isfinite(v)]
    ax.set_yscale("log")
    if values:
        low, high = _nice_below(min(values)), _nice_above(max(values))
        if high <= low:
            high = _nice_above(low * 1.01)
        decades = math.log10(high / low)
        if decades > 2.5:  # a long range: whole decades at both ends
            low, high = 10.0 ** math.floor(math.log10(low)), 10.0 ** math.ceil(math.log10(high))
        ax.set_ylim(low, high)
    else:
        decades = 1.0
    # 1-2-5 steps over a short range; decades only over a long one (labels would otherwise collide)
    ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=_NICE if decades <= 2.5 else (1.0,),
                                                 numticks=12))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_locator(ticker.LogLocator(base=10, subs=tuple(range(1, 10))))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())


def _plots(ev, figure_cls, canvas_cls, ticker) -> list[dict]:
    """Each plot: title, alt text, and either a base64 PNG or why it is missing."""
    from rnnkit.doctor.rules import PADDING_SHARE

    best = _best_epoch(ev)
    plots = []

    def figure(title: str, xlabel: str, ylabel: str):
        fig = figure_cls(figsize=(6.4, 3.0), layout="constrained")
        ax = fig.subplots()
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))  # epochs and steps are whole numbers
        ax.set_title(title, fontsize=11)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        return fig, ax

    def mark_best(ax):
        if best is not None:
            ax.axvline(best, color="tab:green", linestyle="--", linewidth=1, label=f"best epoch {best}")

    def add(title: str, alt: str, fig=None, missing: str | None = None):
        plots.append({"title": title, "alt": alt, "png": _png(fig, canvas_cls) if fig is not None else None,
                      "missing": missing})

    no_epochs = "no epoch records: the run stopped before its first epoch ended"
    # 1. train and validation loss per epoch
    tx, ty = _series(ev.epochs, "epoch", "train_loss")
    vx, vy = _series(ev.epochs, "epoch", "val_loss")
    if tx or vx:
        fig, ax = figure("Loss per epoch", "epoch", "loss")
        ax.plot(tx, ty, marker="o", markersize=3, label="train loss")
        ax.plot(vx, vy, marker="o", markersize=3, label="validation loss")
        mark_best(ax)
        ax.legend(fontsize=8)
        add("Loss per epoch", "training and validation loss per epoch, best epoch marked", fig)
    else:
        add("Loss per epoch", "", missing=no_epochs)

    # 2. the headline validation metric
    name = _headline(ev)
    if name is not None:
        mx, my = _series(ev.epochs, "epoch", f"val_{name}")
        fig, ax = figure(f"Validation {name} per epoch", "epoch", name)
        ax.plot(mx, my, marker="o", markersize=3, color="tab:purple", label=f"val_{name}")
        mark_best(ax)
        ax.legend(fontsize=8)
        add(f"Validation {name} per epoch", f"validation {name} per epoch, best epoch marked", fig)
    else:
        add("Validation metric per epoch", "", missing=no_epochs if not ev.epochs else
            "no validation metric of this task in the epoch records")

    # 3. learning rate per epoch
    lx, ly = _series(ev.epochs, "epoch", "lr")
    if lx:
        fig, ax = figure("Learning rate per epoch (at its end)", "epoch", "learning rate")
        ax.plot(lx, ly, marker="o", markersize=3, color="tab:orange")
        ax.set_ylim(bottom=0)  # a constant rate reads as constant, a warm-up or a decay as a share of the peak
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        add("Learning rate per epoch", "learning rate at the end of each epoch", fig)
    else:
        add("Learning rate per epoch", "", missing=no_epochs)

    # 4. gradient norm per logged step (log scale), with the clipping threshold; without logged steps (a short
    # run under train.log_every), the norm of each epoch's last step from the epoch records
    gx, gy = _series(ev.steps, "step", "grad_norm", positive=True)
    where, why = "per logged step", ""
    if not gx:
        gx, gy = _series(ev.epochs, "step", "grad_norm", positive=True)
        where = "at each epoch's last step"
        why = f" (no step was logged: train.log_every={ev.cfg.train.log_every})"
    if gx:
        fig, ax = figure(f"Gradient norm {where} (before clipping)", "step", "gradient norm")
        ax.plot(gx, gy, linewidth=1, marker="." if len(gx) < 200 else None, color="tab:blue")
        clip = ev.cfg.optim.clip_norm
        if clip is not None:
            ax.axhline(clip, color="tab:red", linestyle=":", linewidth=1, label=f"clip at {clip:g}")
            ax.legend(fontsize=8)
        log_axis(ax, ticker, [*gy, *([clip] if clip is not None else [])])
        add(f"Gradient norm {where}{why}", f"global gradient norm {where}, log scale", fig)
    else:
        add("Gradient norm per logged step", "", missing=f"no step or epoch records with a gradient norm (steps "
            f"are logged every {ev.cfg.train.log_every} steps: train.log_every)")

    # 5. padding share per epoch, with the doctor's threshold
    px, py = _series(ev.epochs, "epoch", "padding_share")
    if px:
        fig, ax = figure("Padding share of training positions per epoch", "epoch", "padding")
        ax.plot(px, [100 * p for p in py], marker="o", markersize=3, color="tab:brown")
        ax.axhline(100 * PADDING_SHARE, color="tab:red", linestyle=":", linewidth=1,
                   label=f"doctor's slow.padding threshold {PADDING_SHARE:.0%}")
        ax.set_ylim(0, max(100 * max(py), 100 * PADDING_SHARE) * 1.15)
        ax.yaxis.set_major_formatter("{x:.0f}%")
        ax.legend(fontsize=8)
        add("Padding share per epoch", "share of padded positions in the training batches per epoch", fig)
    else:
        add("Padding share per epoch", "", missing=no_epochs)
    return plots


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
"""


def _header(ev) -> str:
    s, cfg = ev.summary, ev.cfg
    epochs_run = s.get("epochs_run", len(ev.epochs))
    best = _best_epoch(ev)
    rows = [
        ("Task", cfg.task),
        ("Data", _data_source(ev)),
        ("Sizes", _sizes(ev)),
        ("Model", _model_line(ev)),
        ("Device", f"{s['device']}, {s.get('precision', '?')}" if s.get("device") else
         f"not recorded (configured: train.device={cfg.train.device})"),
        ("Wall time", _duration(s.get("wall_seconds"))),
        ("Stopped", _stopped_words(s.get("stopped"), cfg)),
        ("Epochs", f"{epochs_run} run, best epoch {best if best is not None else 'none yet'}"
         + (f", {s['steps']:,} steps" if _is_number(s.get("steps")) else "")),
    ]
    if _finite(s.get("padding_share")):
        tps, wait = s.get("real_tokens_per_second"), s.get("data_wait_share")
        rows.append(("Throughput", (f"{tps:,.0f} real tokens/s; " if _finite(tps) else "")
                     + f"padding {s['padding_share']:.1%} of training positions"
                     + (f"; waiting for data {wait:.1%} of step time" if _finite(wait) else "")))
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


def _metric_columns(ev, metrics: dict) -> list[str]:
    """Float metrics (and the task's named ones) present in any split, the task's headline first, loss last."""
    task = _family(ev)
    names = list(task.metric_names) if task is not None else []
    seen: list[str] = []
    for split in metrics.values():
        for k, v in (split or {}).items():
            if k not in seen and k != "baselines" and (isinstance(v, float) or (k in names and _is_number(v))):
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
        cells = "".join(f'<td class="num">{_e(_fmt(values[c])) if _is_number(values.get(c)) else "&ndash;"}</td>'
                        for c in cols)
        attr = f' class="{cls}"' if cls else ""
        return f"<tr{attr}><td>{_e(label)}</td>{cells}</tr>"

    order = [k for k in ("test", "val", "train") if k in metrics] + [k for k in metrics if k not in
                                                                     ("test", "val", "train")]
    for split in order:
        values = metrics[split] or {}
        rows.append(row(split, values))
        extra = {k: v for k, v in values.items() if k not in cols and k != "baselines"}
        if extra:
            notes.append(f"{split}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in extra.items()))
        for name, base in (values.get("baselines") or {}).items():
            if not isinstance(base, dict):
                continue
            rows.append(row(f"{split} baseline: {name}", base, "baseline"))
            extra = {k: v for k, v in base.items() if k not in cols}
            if extra:
                notes.append(f"baseline {name}: " + "; ".join(f"{k} {_fmt(v)}" for k, v in extra.items()))
    task = _family(ev)
    notes += list(task.metric_notes) if task is not None else []
    text = f"<table>{head}{''.join(rows)}</table>"
    if notes:
        text += "<ul class=\"evidence\">" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>"
    return text


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
        return '<div class="box ok">No findings: the run looks healthy.</div>'
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
                      + _e(", ".join(f"{k} {_fmt(v) if _is_number(v) else json.dumps(v, default=str)}"
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


def _page(ev, diag, plots: list[dict]) -> str:
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
        '<h2 id="metrics">Metrics</h2>', _metrics(ev),
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


__all__ = ["INSTALL_HINT", "REPORT_FILE", "MissingExtra", "write_report"]
