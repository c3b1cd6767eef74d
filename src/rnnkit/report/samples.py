"""The report's "Test predictions" section: the panels of DIR/test_samples.json (`rnnkit.training.samples`),
drawn as PNGs (scatter, lines, heatmap) or written as HTML tables, in the order the family gave them.

The report never loads the model or the data: the run wrote this sample at its end. A run without the file
(trained before it existed, stopped before it was scored, or whose family's hook failed) gets a line saying
so; a damaged file or a panel that cannot be drawn gets a line naming the file and the reason, never a
traceback, and the rest of the report is written as usual."""

from __future__ import annotations

import html
import json
import math

from rnnkit.report.facts import family, is_number
from rnnkit.report.plots import _png
from rnnkit.training.samples import TEST_SAMPLES_FILE, VERSION


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _numbers(values) -> list[float]:
    """A list of JSON numbers (None: no value) as floats, NaN where there is none (matplotlib draws a gap)."""
    return [float(v) if is_number(v) else math.nan for v in values]


def read_panels(ev) -> tuple[list[dict], str | None]:
    """(panels, None), or ([], why there are none) when the family shows test samples but the run has none."""
    task = family(ev)
    if task is None or task.test_samples is None:
        return [], None
    path = ev.run_dir / TEST_SAMPLES_FILE
    if not path.exists():
        if not ev.finished:
            return [], "the run has not been scored on its test split (it has not finished)"
        return [], (f"the run directory has no {TEST_SAMPLES_FILE}: it is written at the end of training (this run "
                    "was trained by an earlier rnnkit, or its samples could not be made: see the warning training "
                    "printed); train the run again to see them")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        panels = doc["panels"]
        if doc.get("version") != VERSION or not isinstance(panels, list):
            raise ValueError(f"version {doc.get('version')!r}, expected {VERSION}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [], f"{path} could not be read ({type(exc).__name__}: {exc}); train the run again to rewrite it"
    return [p for p in panels if isinstance(p, dict)], None


def _scatter(p: dict, figure_cls, canvas_cls) -> str:
    fig = figure_cls(figsize=(5.2, 4.4), layout="constrained")
    ax = fig.subplots()
    lows, highs = [], []
    for s in p["series"]:
        x, y = _numbers(s["x"]), _numbers(s["y"])
        ax.scatter(x, y, s=14, alpha=0.6, label=s.get("label"))
        finite = [v for v in x + y if math.isfinite(v)]
        if finite:
            lows.append(min(finite))
            highs.append(max(finite))
    if p.get("identity") and lows:
        low, high = min(lows), max(highs)
        ax.plot([low, high], [low, high], color="black", linestyle="--", linewidth=1, label="y = x")
    if is_number(p.get("hline")):
        ax.axhline(p["hline"], color="tab:red", linestyle=":", linewidth=1, label=p.get("hline_label"))
    return _finish(p, fig, ax, canvas_cls)


def _finish(p: dict, fig, ax, canvas_cls, *, ncols: int = 1) -> str:
    """A panel's axis labels, title, grid and legend from its description, then the figure as a PNG data URI."""
    ax.set_xlabel(p.get("xlabel", ""))
    ax.set_ylabel(p.get("ylabel", ""))
    ax.set_title(p.get("title", ""), fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncols=ncols)
    return _png(fig, canvas_cls)


_STYLE = {"actual": {"color": "black", "linewidth": 1.6},
          "model": {"color": "tab:blue", "linewidth": 1.4},
          "baseline": {"linestyle": "--", "linewidth": 1.0}}
_BASELINE_COLOURS = ("tab:orange", "tab:green", "tab:purple", "tab:brown")


def _lines(p: dict, figure_cls, canvas_cls) -> str:
    fig = figure_cls(figsize=(7.2, 3.4), layout="constrained")
    ax = fig.subplots()
    x = _numbers(p["x"])
    baselines = iter(_BASELINE_COLOURS)
    for line in p["lines"]:
        style = dict(_STYLE.get(line.get("role"), {}))
        if line.get("role") == "baseline":
            style["color"] = next(baselines, "tab:gray")
        y = _numbers(line["y"])
        ax.plot(x, y, label=line.get("label"), marker="." if len(x) <= 120 else None, markersize=4, **style)
    if is_number(p.get("vline")):
        ax.axvline(p["vline"], color="tab:gray", linestyle=":", linewidth=1, label=p.get("vline_label"))
    return _finish(p, fig, ax, canvas_cls, ncols=2)


def _heatmap(p: dict, figure_cls, canvas_cls) -> str:
    values = [_numbers(row) for row in p["values"]]
    columns, rows = [str(c) for c in p["columns"]], [str(r) for r in p["rows"]]
    if not values or len(values) != len(rows) or any(len(r) != len(columns) for r in values):
        raise ValueError(f"{len(rows)} row labels and {len(columns)} column labels for a "
                         f"{len(values)} x {len(values[0]) if values else 0} matrix")
    wide = max(map(len, columns), default=1) > 2  # whole words: turn their labels
    fig = figure_cls(figsize=(min(12.0, max(3.6, 0.34 * len(columns) + 1.8)),
                              min(10.0, max(2.6, 0.3 * len(rows) + (1.9 if wide else 1.4)))), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(columns)), columns, rotation=90 if wide else 0, fontsize=9)
    ax.set_yticks(range(len(rows)), rows, fontsize=9)
    ax.set_xlabel(p.get("xlabel", ""))
    ax.set_ylabel(p.get("ylabel", ""))
    ax.set_title(p.get("title", ""), fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.8, label="attention weight")
    return _png(fig, canvas_cls)


_DRAW = {"scatter": _scatter, "lines": _lines, "heatmap": _heatmap}


def _table(p: dict) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in p["columns"])
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in p["rows"])
    return (f'<figure class="table"><figcaption><strong>{_e(p.get("title", ""))}</strong></figcaption>'
            f'<table class="samples"><tr>{head}</tr>{body}</table>'
            + (f'<p class="evidence">{_e(p["caption"])}</p>' if p.get("caption") else "") + "</figure>")


def samples_section(ev, figure_cls, canvas_cls) -> str:
    """The section's HTML ("" for a family that shows no test samples)."""
    panels, why = read_panels(ev)
    if why is None and not panels:
        return ""
    parts = ['<h2 id="test-samples">Test predictions</h2>']
    if why is not None:
        parts.append(f'<p class="missing">No test samples: {_e(why)}.</p>')
    heatmaps: list[str] = []  # consecutive heat maps side by side (they are small)
    for n, p in enumerate(panels, start=1):
        if p.get("kind") != "heatmap" and heatmaps:
            parts.append(f'<div class="side">{"".join(heatmaps)}</div>')
            heatmaps = []
        kind = p.get("kind")
        try:
            if kind == "table":
                parts.append(_table(p))
                continue
            if kind not in _DRAW:
                raise ValueError(f"unknown panel kind {kind!r}")
            png = _DRAW[kind](p, figure_cls, canvas_cls)
        except (KeyError, TypeError, ValueError) as exc:
            parts.append(f'<p class="missing">Panel {n} of {TEST_SAMPLES_FILE} could not be drawn '
                         f"({_e(type(exc).__name__)}: {_e(exc)}).</p>")
            continue
        title = p.get("title", "")
        (heatmaps if kind == "heatmap" else parts).append(
            f'<figure><img src="data:image/png;base64,{png}" alt="{_e(title)}">'
            f"<figcaption>{_e(p['caption'] if kind == 'heatmap' and p.get('caption') else title)}"
            + (f". {_e(p['caption'])}" if p.get("caption") and kind != "heatmap" else "") + "</figcaption></figure>")
    if heatmaps:
        parts.append(f'<div class="side">{"".join(heatmaps)}</div>')
    return "".join(parts)
