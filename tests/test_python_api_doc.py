"""docs/python-api.md runs as written (issue 9): its code blocks, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"


def test_the_python_api_tutorial_runs(tmp_path, monkeypatch):
    pytest.importorskip("sklearn")
    monkeypatch.chdir(tmp_path)  # nothing the tutorial does may need (or leave) files here
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 4
    namespace: dict = {}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{DOC.name} block {i + 1}", "exec"), namespace)  # noqa: S102 - our own docs
    assert list(tmp_path.iterdir()) == []  # run=None and the estimator's temporary runs left nothing behind


def test_the_loop_with_run_none_touches_no_disk_and_restores_the_best_weights(tmp_path, monkeypatch):
    import torch

    import rnnkit
    from rnnkit import BucketBatchSampler, Example, SequenceDataset, Steps, collate

    monkeypatch.chdir(tmp_path)
    g = torch.Generator().manual_seed(1)
    data = [Example(id=str(i), inputs=torch.randn(6, 1, generator=g), target=torch.tensor(i % 2)) for i in range(64)]
    train, val = SequenceDataset(data[:48]), SequenceDataset(data[48:])  # labels carry no signal: overfits
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 2))
    seen = []

    class Spy(rnnkit.Callback):
        def on_epoch_end(self, state, record):
            seen.append((record["val_loss"], {k: v.clone() for k, v in model.state_dict().items()}))

    steps = Steps(collate=collate, forward=lambda m, b, s: m(b.inputs), loss=lambda o, b: (
        torch.nn.functional.cross_entropy(o, b.targets), len(b)))
    summary = rnnkit.fit(model, torch.optim.SGD(model.parameters(), lr=0.5), train, val, steps,
                         sampler=BucketBatchSampler(train.lengths, 8, shuffle=True, seed=0), max_epochs=6,
                         patience=10, run=None, callbacks=[Spy()])
    assert summary["epochs_run"] == 6 and summary["stopped"] == "max_epochs"
    best_loss, best_weights = min(seen, key=lambda s: s[0])
    assert summary["best_epoch"] == 1 + [s[0] for s in seen].index(best_loss)
    assert all(torch.equal(model.state_dict()[k], best_weights[k]) for k in best_weights)
    assert summary["val"]["loss"] == pytest.approx(best_loss)
    assert list(tmp_path.iterdir()) == []
