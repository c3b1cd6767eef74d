"""The report's plots: PNGs drawn with matplotlib (the Agg canvas, off-screen) and returned as base64 text.

matplotlib is an optional extra (`pip install 'rnnkit[report]'`), imported only here and only when a
report is written (`load_matplotlib`); training never needs it.
"""

from __future__ import annotations

import base64
import io
import math

from rnnkit.errors import MissingExtra
from rnnkit.report.facts import best_epoch, finite, headline

INSTALL_HINT = "pip install 'rnnkit[report]'"


def load_matplotlib():
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


def _png(fig, canvas_cls) -> str:
    canvas_cls(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _series(records: list[dict], x: str, y: str, *, positive: bool = False) -> tuple[list, list]:
    pts = [(r[x], r[y]) for r in records if finite(r.get(x)) and finite(r.get(y)) and (r[y] > 0 or not positive)]
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


def draw_plots(ev, figure_cls, canvas_cls, ticker) -> list[dict]:
    """Each plot: title, alt text, and either a base64 PNG or why it is missing."""
    from rnnkit.doctor.rules import PADDING_SHARE

    best = best_epoch(ev)
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
    name = headline(ev)
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
