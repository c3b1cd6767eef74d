"""The doctor on a run still training (`rnnkit.doctor.live.hopeless`, what `rnnkit tune` prunes on): the log so
far, whole counted epochs on small data, a divergence that recovered does not count, a NaN stop does."""

from __future__ import annotations

import json

from rnnkit import config as C
from rnnkit.doctor.live import hopeless

START = 1.1  # the preflight's loss before training


def _run(tmp_path, train_losses, *, scale=None, preflight=True, events=()):
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    C.resolve(None, ["optim.lr=3.0"]).save(run / "config.yaml")
    lines = [{"event": "preflight", "initial_loss": START}] if preflight else []
    if scale:
        lines.append({"event": "epoch_scale", "scale": scale})
    lines += [{"kind": "epoch", "epoch": i + 1, "step": 6 * (i + 1), "train_loss": loss, "val_loss": loss}
              for i, loss in enumerate(train_losses)]
    lines += list(events)
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return run


def test_a_loss_far_above_its_start_is_hopeless_with_the_doctors_explanation(tmp_path):
    assert hopeless(_run(tmp_path, [1.0, 0.9])) is None  # learning: nothing to say
    found = hopeless(_run(tmp_path, [1.0, 4.0]))
    assert found.code == "divergence" and found.severity == "error"
    assert "rose to 4" in found.explanation and "learning rate 3 is above the guide's range" in found.explanation


def test_on_small_data_only_whole_counted_epochs_are_read(tmp_path):
    # 2 passes make one counted epoch: one spiking pass alone is not read; the pair's mean (2.5) is
    assert hopeless(_run(tmp_path, [1.0, 0.9, 4.1], scale=2)) is None
    assert hopeless(_run(tmp_path, [1.0, 0.9, 4.1, 0.9], scale=2)).code == "divergence"
    assert hopeless(_run(tmp_path, [1.0, 0.9, 2.0, 0.9], scale=2)) is None  # mean 1.45: below 1.5x the start


def test_a_divergence_that_came_back_below_the_start_does_not_count(tmp_path):
    assert hopeless(_run(tmp_path, [3.0, 1.0])) is None  # the doctor's warning, not an error: it recovered


def test_a_nan_stop_is_hopeless_and_a_run_without_a_preflight_is_never_judged(tmp_path):
    nan = {"event": "nonfinite", "what": "loss", "step": 8, "ids": ["d.jsonl:3"], "lr": 3.0,
           "last_finite_loss": 9.0, "grad_norm": 50.0}
    found = hopeless(_run(tmp_path, [1.0], events=[nan]))
    assert found.code == "nonfinite" and found.evidence["step"] == 8
    assert hopeless(_run(tmp_path, [1.0, 40.0], preflight=False)) is None
