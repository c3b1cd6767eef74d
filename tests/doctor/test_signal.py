"""Issue 10: shuffled labels on a small univariate set read as `underfitting` (the model never memorised them, so
its curves look like a model too weak for the data). The nearest-neighbour permutation test in the preflight
(`rnnkit.doctor.signal`) tells the two apart: no signal in the inputs -> `labels.unpredictable`; signal -> the
model is the suspect."""

from __future__ import annotations

import importlib.util
import json
import math
import random
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from rnnkit import config as C
from rnnkit.doctor import rules as R
from rnnkit.doctor.evidence import Evidence
from rnnkit.doctor.signal import neighbour_check


def _curves(n: int, seed: int) -> tuple[list[torch.Tensor], list[int]]:
    """Two classes of noisy univariate curves of varying length (a bump early or late), like GunPoint's."""
    gen = torch.Generator().manual_seed(seed)
    xs, ys = [], []
    for i in range(n):
        y = i % 2
        length = int(torch.randint(80, 120, (1,), generator=gen))
        t = torch.linspace(0, 1, length)
        centre = 0.3 if y == 0 else 0.7
        x = torch.exp(-((t - centre) ** 2) / 0.01) + 0.4 * torch.randn(length, generator=gen)
        xs.append(x.unsqueeze(1))
        ys.append(y)
    return xs, ys


def _examples(xs, ys):
    return [SimpleNamespace(inputs=x, target=torch.tensor(y)) for x, y in zip(xs, ys, strict=True)]


def test_curves_carry_signal_and_their_shuffled_labels_do_not():
    xs, ys = _curves(60, 0)
    real = neighbour_check(_examples(xs, ys))
    assert real["verdict"] == "signal" and real["accuracy"] > 0.9 and real["p_value"] <= 0.01
    shuffled = ys[:]
    random.Random(1).shuffle(shuffled)
    fake = neighbour_check(_examples(xs, shuffled))
    assert fake["verdict"] == "none" and fake["p_value"] > 0.2


def test_token_sequences_carry_signal_through_a_bag_of_words():
    gen = torch.Generator().manual_seed(0)
    xs, ys = [], []
    for i in range(80):
        y = i % 2
        topic = torch.randint(10, 30, (4,), generator=gen) + 20 * y  # class-specific words...
        common = torch.randint(100, 400, (12,), generator=gen)  # ...among many shared ones
        xs.append(torch.cat([topic, common]))
        ys.append(y)
    assert neighbour_check(_examples(xs, ys))["verdict"] == "signal"
    shuffled = ys[:]
    random.Random(0).shuffle(shuffled)
    assert neighbour_check(_examples(xs, shuffled))["verdict"] in ("none", "unclear")


def test_no_verdict_without_enough_examples_or_for_per_step_labels():
    xs, ys = _curves(10, 0)
    assert neighbour_check(_examples(xs, ys))["verdict"] == "too_few"
    tags = [SimpleNamespace(inputs=torch.tensor([1, 2, 3]), target=torch.tensor([0, 1, 0])) for _ in range(30)]
    assert neighbour_check(tags) is None


def _ev(signal: dict) -> Evidence:
    """A run that learned nothing (training loss flat at the label shares' loss) and tested at the majority."""
    epochs = [{"kind": "epoch", "epoch": i + 1, "train_loss": 0.69, "val_loss": 0.70} for i in range(12)]
    pre = {"event": "preflight", "chance_loss": 0.693, "initial_loss": 0.70, "no_grad": [], "nonfinite_grad": [],
           "shape_problem": None, "parameters": 4, "batch_size": 8, "output_shape": [8, 2], "target_shape": [8],
           "inputs": {"label_entropy": 0.693, "mean": [0.0], "std": [1.0], "constant": [], "label_channels": []},
           "signal": signal}
    summary = {"metrics": {"test": {"accuracy": 0.49, "baselines": {"majority_class": {"accuracy": 0.5}}}},
               "stopped": "early_stopping", "epochs_run": 12}
    return Evidence(Path("run"), C.Config(), summary, epochs, [], [pre])


def test_no_signal_makes_a_model_that_learned_nothing_a_label_problem():
    ev = _ev({"examples": 55, "accuracy": 0.45, "majority": 0.51, "p_value": 0.7, "verdict": "none"})
    found = {f.code: f for f in R.run_rules(ev)}
    assert "labels.unpredictable" in found and "baseline.not_beaten" not in found
    assert "finds no signal" in found["labels.unpredictable"].explanation
    assert found["underfitting"].advice[0].startswith("first check the labels")


def test_signal_makes_a_model_that_learned_nothing_the_suspect():
    ev = _ev({"examples": 55, "accuracy": 0.91, "majority": 0.51, "p_value": 0.001, "verdict": "signal"})
    found = {f.code: f for f in R.run_rules(ev)}
    assert "labels.unpredictable" not in found
    assert "the inputs predict the labels" in found["baseline.not_beaten"].explanation
    assert not found["underfitting"].advice[0].startswith("first check the labels")


def _shuffled_ts(source: Path, out: Path) -> Path:
    """A copy of a labelled .ts file with its cases' labels (class or target) permuted, seeded."""
    lines = source.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().lower() == "@data") + 1
    values = [line.rsplit(":", 1) for line in lines[at:] if line.strip()]
    labels = [lab for _, lab in values]
    random.Random(0).shuffle(labels)
    out.write_text("\n".join(lines[:at] + [f"{v}:{lab}" for (v, _), lab in zip(values, labels, strict=True)]))
    return out


SKTIME = importlib.util.find_spec("sktime")
GUNPOINT = (Path(SKTIME.submodule_search_locations[0]) / "datasets/data/GunPoint") if SKTIME else None


@pytest.mark.skipif(GUNPOINT is None or not GUNPOINT.exists(), reason="sktime's GunPoint files are not installed")
def test_gunpoint_with_shuffled_training_labels_is_named_a_label_problem(tmp_path, capsys):
    """Real GunPoint (50 training series of 150 steps), its training labels permuted: a small model cannot
    memorise them in a few epochs, so only the permutation test can say that the labels are the problem."""
    from rnnkit.cli import main

    shuffled = _shuffled_ts(GUNPOINT / "GunPoint_TRAIN.ts", tmp_path / "train.ts")
    common = ["--set", "train.max_epochs=4", "--set", "model.hidden_size=16", "--set", "model.num_layers=1",
              "--set", "train.progress=none"]
    run = tmp_path / "run"
    assert main(["train", str(shuffled), "--test", str(GUNPOINT / "GunPoint_TEST.ts"), "--out", str(run),
                 *common]) == 0
    pre = next(r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
               if r.get("event") == "preflight")
    assert pre["signal"]["verdict"] == "none" and pre["signal"]["examples"] == 50
    capsys.readouterr()
    main(["diagnose", str(run), "--json"])
    found = {f["code"]: f for f in json.loads(capsys.readouterr().out)["findings"]}
    assert found["labels.unpredictable"]["severity"] == "warning"

    real = tmp_path / "real"
    assert main(["train", str(GUNPOINT / "GunPoint_TRAIN.ts"), "--test", str(GUNPOINT / "GunPoint_TEST.ts"),
                 "--out", str(real), *common, "--set", "train.max_epochs=1"]) == 0
    pre = next(r for r in map(json.loads, (real / "metrics.jsonl").read_text().splitlines())
               if r.get("event") == "preflight")
    assert pre["signal"]["verdict"] == "signal" and pre["signal"]["accuracy"] > 0.8


def test_the_label_entropy_read_from_the_target_column_equals_the_one_read_row_by_row():
    """The preflight reads one class per sequence from the dataset's target column (no Example per row); the
    figure is the one the row-by-row read gives, also past the 5,000-row stride; token inputs have no input
    statistics, found from the first row."""
    from rnnkit.data.collate import Example, SequenceDataset
    from rnnkit.doctor.preflight import input_statistics, label_entropy

    gen = torch.Generator().manual_seed(0)
    for n in (50, 12_001):
        classes = torch.multinomial(torch.tensor([0.6, 0.3, 0.1]), n, replacement=True, generator=gen)
        rows = [Example(id=str(i), inputs=torch.randint(2, 50, (4,), generator=gen), target=classes[i])
                for i in range(n)]
        dataset = SequenceDataset(rows)
        assert dataset.scalar_targets() is not None
        column = label_entropy(dataset)
        assert column == pytest.approx(label_entropy(rows), rel=1e-12)  # a list: read row by row
        assert 0.7 < column < 1.0  # the entropy of shares near 0.6 / 0.3 / 0.1 is 0.898
        assert input_statistics(dataset) is None
    tags = [Example(id="a", inputs=torch.tensor([2, 3]), target=torch.tensor([0, 1])),
            Example(id="b", inputs=torch.tensor([4]), target=torch.tensor([1]))]
    # one tag per token: tags 0, 1, 1
    assert label_entropy(SequenceDataset(tags)) == pytest.approx(-(1 / 3) * math.log(1 / 3) - (2 / 3) * math.log(2 / 3))


def _amplitudes(n: int, seed: int) -> tuple[list[torch.Tensor], list[float]]:
    """Noisy sines whose amplitude is the target (z-scored below): a number the inputs determine."""
    gen = torch.Generator().manual_seed(seed)
    xs, ys = [], []
    for _ in range(n):
        a = float(torch.rand(1, generator=gen)) * 2.5 + 0.5
        t = torch.arange(int(torch.randint(20, 40, (1,), generator=gen)), dtype=torch.float32)
        xs.append((a * torch.sin(t / 2) + 0.1 * torch.randn(len(t), generator=gen)).unsqueeze(1))
        ys.append(a)
    mean, std = sum(ys) / n, torch.tensor(ys).std().item()
    return xs, [(y - mean) / std for y in ys]


def test_numeric_targets_carry_signal_and_shuffled_ones_do_not():
    """A regression's targets: the same permutation test, on the 5 nearest sequences' mean target."""
    xs, ys = _amplitudes(120, 0)
    found = neighbour_check([SimpleNamespace(inputs=x, target=torch.tensor([y])) for x, y in zip(xs, ys, strict=True)])
    assert found["kind"] == "numeric" and found["verdict"] == "signal" and found["skill"] > 0.5
    shuffled = ys[:]
    random.Random(1).shuffle(shuffled)
    found = neighbour_check([SimpleNamespace(inputs=x, target=torch.tensor([y]))
                             for x, y in zip(xs, shuffled, strict=True)])
    assert found["verdict"] == "none" and found["skill"] <= 0 and found["p_value"] > 0.2
    # a forecast window's targets (horizon x channels) are not one row's numbers: no verdict
    assert neighbour_check([SimpleNamespace(inputs=x, target=torch.zeros(12, 1)) for x in xs]) is None


COVID = (Path(SKTIME.submodule_search_locations[0]) / "datasets/data/Covid3Month") if SKTIME else None


@pytest.mark.skipif(COVID is None or not COVID.exists(), reason="sktime's Covid3Month files are not installed")
def test_covid3month_with_shuffled_targets_is_named_a_label_problem(tmp_path, capsys):
    """Real Covid3Month, its training targets permuted: the model ends near the training mean on test either
    way (rmse 0.0440 shuffled, 0.0433 real), so only the permutation test can say the targets are the suspect."""
    from rnnkit.cli import main

    shuffled = _shuffled_ts(COVID / "Covid3Month_TRAIN.ts", tmp_path / "train.ts")
    run = tmp_path / "run"
    assert main(["train", str(shuffled), "--task", "regress", "--test", str(COVID / "Covid3Month_TEST.ts"),
                 "--out", str(run), "--set", "train.max_epochs=6", "--set", "train.progress=none"]) == 0
    capsys.readouterr()
    main(["diagnose", str(run), "--json"])
    report = json.loads(capsys.readouterr().out)
    found = {f["code"]: f for f in report["findings"]}
    assert found["labels.unpredictable"]["severity"] == "warning"
    assert "shuffled targets" in found["labels.unpredictable"]["explanation"]
    sensible = next(c for c in report["checklist"] if c["item"] == "Predictions sensible?")
    assert sensible["verdict"] == "fail"
