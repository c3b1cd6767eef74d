"""The run report: one self-contained HTML file (DIR/report.html) to open after a run.

    write_report(run_dir) -> Path of DIR/report.html

It reads only what every run writes (config.yaml, summary.json, metrics.jsonl, and test_samples.json: the
sample of the test predictions the family's `Task.test_samples` hook picked at the end of training) and asks
the doctor for its verdict, so any run can be reported on later, also one that a NaN stopped, one still
running, or one from before the preflight existed. Plots are PNGs drawn with matplotlib and
embedded as base64 data URIs: the file needs no other file and no network to open.

matplotlib is an optional extra (`pip install 'rnnkit[report]'`), imported only here and only when
a report is written; training never needs it. Every string that comes from the run directory (file
names, labels, error messages, the doctor's text) is HTML-escaped.

The modules: `facts` (what is read off the run's evidence), `plots` (the figures, `log_axis`),
`samples` (the "Test predictions" section: test_samples.json's panels), `page` (the HTML); this package
writes the file.
"""

from __future__ import annotations

import os
from pathlib import Path

from rnnkit.errors import MissingExtra
from rnnkit.report.page import render_page
from rnnkit.report.plots import INSTALL_HINT, draw_plots, load_matplotlib, log_axis
from rnnkit.report.samples import samples_section

REPORT_FILE = "report.html"


def write_report(run_dir: str | Path) -> Path:
    """Write DIR/report.html for a run directory and return its path.

    The report holds the run header (task, data, sizes, model, device, wall time, why it stopped,
    best epoch), the metrics per split with the task's baselines, per class or tag the test split's
    precision/recall/F1 beside the most confused pairs and the confusion matrix, the family's test
    predictions (predicted against actual, forecasts against actuals with the baselines, sample
    generations with attention heat maps: DIR/test_samples.json), five plots (loss, the headline
    validation metric, learning rate, gradient norm, padding share), and the doctor's debugging
    checklist and findings. The doctor runs read-only here (findings.json / checklist.json are left
    as they are).

    Raises:
        MissingExtra: matplotlib is not installed (exit status 2).
        ConfigError: not a run directory (no config.yaml), or a damaged metrics log.
    """
    from rnnkit.doctor import diagnose, load_evidence

    mpl = load_matplotlib()
    run_dir = Path(run_dir)
    ev = load_evidence(run_dir)
    diag = diagnose(run_dir, write=False)
    page = render_page(ev, diag, draw_plots(ev, *mpl), samples_section(ev, *mpl[:2]))
    out = run_dir / REPORT_FILE
    tmp = run_dir / f".tmp-{REPORT_FILE}-{os.getpid()}"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out)  # atomic: a reader sees the old report or the new one
    return out


__all__ = ["INSTALL_HINT", "REPORT_FILE", "MissingExtra", "log_axis", "write_report"]
