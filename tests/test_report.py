"""`rnnkit report DIR`: one self-contained HTML file per run, checked as a user would read it. Tiny runs of
every task family through rnnkit.api, a run stopped by a NaN, a run from before the preflight existed,
hostile strings from the data, and the message when matplotlib is missing."""

from __future__ import annotations

import base64
import csv
import html
import json
import random
import shutil
import sys
from html.parser import HTMLParser

import numpy as np
import pytest

from fakedata import nan_once_at, write_numeric_jsonl
from rnnkit import api
from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.doctor import diagnose
from rnnkit.errors import TrainingError
from rnnkit.report import INSTALL_HINT, REPORT_FILE, write_report

# one pass an epoch (train.min_epoch_steps=1): these tests count the steps of an epoch
SMALL = ["train.progress=none", "train.threads=1", "model.hidden_size=16", "model.embedding_dim=8",
         "model.num_layers=1", "train.log_every=2",
         "train.min_epoch_steps=1"]
HOSTILE_LABEL = '<script>alert("label")</script>'
HOSTILE_FILE = "<img src=x onerror=alert(1)>.jsonl"  # a legal file name on Linux
PLOTS = 5  # loss, headline validation metric, learning rate, gradient norm, padding share


def hostile_data(root):
    """Numeric sequences whose majority label and whose file name are HTML."""
    path = write_numeric_jsonl(root / HOSTILE_FILE, n=120)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for r in rows:  # c0 and c1 -> the hostile label: it is the majority class of the baseline
        r["label"] = HOSTILE_LABEL if r["label"] in ("c0", "c1") else r["label"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def train(out, *sets):
    return api.train(C.resolve(None, [*SMALL, *sets]), out)


@pytest.fixture(scope="module")
def classify_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    data = hostile_data(root)
    # no bucketing: the padding share crosses the doctor's threshold, so there is a finding to show
    summary = train(root / "run", f"data.train={data}", "train.max_epochs=4", "optim.lr=1e-2", "data.bucketing=false")
    return root / "run", summary


class Page(HTMLParser):
    """The tags and attributes of a page, and its text."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.attrs, self.text = [], [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def images(self):
        return [a["src"] for t, a in self.attrs if t == "img"]


def check_document(path):
    """A single, self-contained HTML document; returns (its text, the parsed page)."""
    assert path.name == REPORT_FILE and path.exists()
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    page = Page(text)
    assert page.tags.count("html") == 1 and page.tags.count("body") == 1
    assert not {"script", "link", "iframe", "object", "embed"} & set(page.tags)
    assert "url(" not in text and "@import" not in text  # no CSS fetching anything
    for tag, attrs in page.attrs:
        for name in ("src", "href"):
            assert not attrs.get(name) or attrs[name].startswith(("data:image/png;base64,", "#")), (tag, attrs)
    for src in page.images():
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    return text, page


def copy_run(src, dst):
    """The run's files without its checkpoints (the report never reads them)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("checkpoints", REPORT_FILE))
    return dst


def test_classify_report_shows_metrics_plots_checklist_and_findings(classify_run, capsys):
    run, summary = classify_run
    assert main(["report", str(run)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"wrote {run / REPORT_FILE}", f"wrote {run / 'MODEL_CARD.md'}"]
    text, page = check_document(run / REPORT_FILE)
    assert len(page.images()) == PLOTS
    test = summary["metrics"]["test"]
    for value in (test["accuracy"], test["macro_f1"], test["baselines"]["majority_class"]["accuracy"],
                  summary["metrics"]["val"]["accuracy"]):
        assert f">{value:.4g}<" in text
    assert "test baseline: majority_class" in text
    assert "Validation accuracy per epoch" in text  # the task's headline metric
    assert f"best epoch {summary['best_epoch']}" in text and summary["stopped"] == "max_epochs"
    assert "reached train.max_epochs (4)" in text and "1-layer bidirectional LSTM, hidden 16" in text
    diag = diagnose(run, write=False)
    for check in diag.checklist:
        verdict = {"pass": "pass", "fail": "FAIL", "unknown": "unknown"}[check.verdict]
        assert f">{verdict}</td><td>{html.escape(check.item)}</td>" in text
    assert "slow.padding" in diag.codes
    for f in diag.findings:
        assert f"<code>{f.code}</code>" in text and html.escape(f.explanation) in text
        assert all(html.escape(a) in text for a in f.advice)


def test_strings_from_the_data_are_escaped(classify_run):
    run, summary = classify_run
    assert summary["metrics"]["test"]["baselines"]["majority_class"]["label"] == HOSTILE_LABEL
    text = write_report(run).read_text(encoding="utf-8")
    assert HOSTILE_LABEL not in text and "<img src=x" not in text and "<script" not in text
    assert html.escape(HOSTILE_LABEL) in text  # the baseline's label, shown as text
    assert html.escape(HOSTILE_FILE) in text  # the data file in the run header
    assert HOSTILE_LABEL in "".join(Page(text).text)  # ...and reads as the original string


def test_a_run_stopped_by_a_nan_reports_why_and_the_repair(tmp_path, monkeypatch):
    data = hostile_data(tmp_path)
    nan_once_at(monkeypatch, 4)  # the second epoch (3 steps per epoch)
    with pytest.raises(TrainingError, match="non-finite loss"):
        train(tmp_path / "run", f"data.train={data}", "train.max_epochs=3")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert set(summary) == {"stopped", "error", "step", "epoch"}
    text, page = check_document(write_report(tmp_path / "run"))
    assert "a non-finite (NaN/Inf) loss stopped it" in text
    assert "Training stopped with an error." in text and html.escape(summary["error"]) in text
    assert "No metrics: the run stopped before it was scored" in text
    assert "<code>nonfinite</code>" in text and "--set optim.lr=0.0001" in text
    assert len(page.images()) == PLOTS  # one epoch finished before the NaN: every curve has a point
    assert "<script" not in text and html.escape(HOSTILE_FILE) in text  # the error names the records' file
    assert ">unknown</td><td>Training time reasonable?</td>" in text


def test_a_run_from_before_the_preflight_gets_unknown_setup_checks(classify_run, tmp_path):
    run = copy_run(classify_run[0], tmp_path / "old")
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("".join(x + "\n" for x in lines if '"preflight"' not in x))
    for name in ("findings.json", "checklist.json"):
        (run / name).unlink()
    text, page = check_document(write_report(run))
    for item in ("Shapes match expectations?", "Gradients flowing backwards?", "Loss reasonable magnitude?"):
        assert f">unknown</td><td>{item}</td><td>no preflight record" in text
    assert len(page.images()) == PLOTS
    assert not (run / "findings.json").exists()  # the report reads the doctor's verdict, writes only itself


def write_sine(path, n=120):
    y = 10 + 3 * np.sin(2 * np.pi * np.arange(n) / 12)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["month", "load"])
        w.writerows([i + 1, f"{v:.5f}"] for i, v in enumerate(y))
    return path


def write_names(path, n=120):
    rng = random.Random(0)
    with open(path, "w") as fh:
        for _ in range(n):
            tokens = [rng.choice(["Ann", "Bo", "w1", "w2", "w3", "w4"]) for _ in range(rng.randint(3, 8))]
            tags = ["B-PER" if t[0].isupper() else "O" for t in tokens]
            fh.write(json.dumps({"tokens": tokens, "tags": tags}) + "\n")
    return path


def write_reversal(path, n=120):
    rng = random.Random(0)
    rows = ["source\ttarget"] + [f"{s}\t{' '.join(reversed(s))}" for s in
                                 ("".join(rng.choice("abcd") for _ in range(rng.randint(3, 5))) for _ in range(n))]
    path.write_text("\n".join(rows) + "\n")
    return path


FAMILIES = {  # task: (data writer, file name, settings, headline metric, expected text, test-sample images)
    "forecast": (write_sine, "sine.csv",
                 ["forecast.time_column=month", "forecast.input_length=12", "forecast.horizon=3", "data.batch_size=16",
                  "forecast.auto=false"],
                 "mse", ["test baseline: naive", "test baseline: seasonal_naive", "loss is in standardized units",
                         'alt="Forecasts against actuals, load, test span"'], 1),
    "tag": (write_names, "names.jsonl", ["tag.char_dim=8", "data.batch_size=16"],
            "accuracy", ["test baseline: most_frequent_tag"], 0),
    "seq2seq": (write_reversal, "rev.tsv", ["seq2seq.beam=2"], "wer", ["decode_beam 2", "Sample test predictions"], 3),
}


@pytest.mark.parametrize("task", list(FAMILIES))
def test_each_task_family_gets_its_metrics_and_headline_curve(task, tmp_path):
    writer, name, sets, headline, expected, samples = FAMILIES[task]
    data = writer(tmp_path / name)
    summary = train(tmp_path / "run", f"task={task}", f"data.train={data}", "train.max_epochs=2", *sets)
    text, page = check_document(write_report(tmp_path / "run"))
    assert len(page.images()) == PLOTS + samples  # the training curves, and the test predictions' figures
    assert f"Validation {headline} per epoch" in text
    assert f">{summary['metrics']['test'][headline]:.4g}<" in text
    assert f"<tr><th>Task</th><td>{task}</td></tr>" in text
    for snippet in expected:
        assert snippet in text


def test_missing_matplotlib_exits_2_with_the_install_hint(classify_run, tmp_path, monkeypatch, capsys):
    run = copy_run(classify_run[0], tmp_path / "run")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert INSTALL_HINT == "pip install 'rnnkit[report]'" and INSTALL_HINT in err
    assert not (run / REPORT_FILE).exists()


def test_not_a_run_directory_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "is not a run directory" in capsys.readouterr().err


@pytest.mark.parametrize("values", [
    [0.62, 0.71, 0.95, 1.0],            # one decade: the crowded case ("0.9/0.8/0.7...")
    [0.031, 0.4, 2.7, 1.0],            # two decades
    [1e-4, 3e-2, 12.0, 8e3, 1.0],      # eight decades (a diverging run)
    [1.0, 1.0],                        # flat at the clipping threshold
])
def test_item13_gradient_norm_axis_labels_do_not_overlap_and_the_top_is_labelled(values):
    """Issue 8, item 13: the log axis had overlapping minor labels and an unlabelled top."""
    pytest.importorskip("matplotlib")
    from matplotlib import ticker
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from rnnkit.report import log_axis

    fig = Figure(figsize=(6.4, 3.0), layout="constrained")  # the report's size
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot(range(len(values)), values)
    log_axis(ax, ticker, values)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    low, high = ax.get_ylim()
    shown = [(t.get_loc(), t.label1) for t in ax.yaxis.get_major_ticks() + ax.yaxis.get_minor_ticks()
             if t.label1.get_visible() and t.label1.get_text() and low * (1 - 1e-9) <= t.get_loc() <= high * (1 + 1e-9)]
    assert len(shown) >= 2
    boxes = sorted((label.get_window_extent(renderer) for _, label in shown), key=lambda b: b.y0)
    for below, above in zip(boxes, boxes[1:], strict=False):
        assert below.y1 <= above.y0, "tick labels overlap"
    assert any(abs(loc - high) <= 1e-9 * high for loc, _ in shown), (high, [loc for loc, _ in shown])
    assert any(abs(loc - low) <= 1e-9 * low for loc, _ in shown)
    assert low <= min(values) and high >= max(values)


def test_the_report_shows_each_class_and_the_confusion_matrix_of_the_test_split(classify_run):
    run, summary = classify_run
    test = summary["metrics"]["test"]
    text, page = check_document(write_report(run))
    matrix = test["confusion"]
    assert sum(map(sum, matrix["counts"])) == summary["data"]["sizes"]["test"]
    for label, row in zip(matrix["labels"], matrix["counts"], strict=True):
        assert test["per_class"][label]["support"] == sum(row)
        assert row[matrix["labels"].index(label)] == round(test["per_class"][label]["recall"] * sum(row))
    assert '<h2 id="per-class">Per class, test split</h2>' in text and 'aria-label="confusion matrix' in text
    for label, v in test["per_class"].items():
        assert f"<td>{html.escape(label)}</td><td class=\"num\">{v['precision']:.4g}</td>" in text
    assert "per_class" not in text.split('<h2 id="per-class">')[0]  # no raw dict dumped into the metric notes


def test_a_tagger_report_shows_each_tag_and_the_confused_pairs(tmp_path):
    data = write_names(tmp_path / "names.jsonl")
    summary = train(tmp_path / "run", "task=tag", f"data.train={data}", "train.max_epochs=2", "tag.char_dim=8",
                    "data.batch_size=16")
    text, _ = check_document(write_report(tmp_path / "run"))
    test = summary["metrics"]["test"]
    assert '<h2 id="per-class">Per tag, test split</h2>' in text
    assert set(test["per_class"]) <= {"O", "B-PER", "I-PER"} and test["per_class"]
    tokens = sum(v["support"] for v in test["per_class"].values())
    assert tokens == sum(map(sum, test["confusion"]["counts"]))
    assert test["confused"]  # a briefly trained tagger confuses some tags
    for true, predicted, n in test["confused"]:  # a row each in the "most confused pairs" table
        share = f"{n / test['per_class'][true]['support']:.1%}"
        row = f'<tr><td>{true}</td><td>{predicted}</td><td class="num">{n}</td><td class="num">{share}</td></tr>'
        assert row in text
