"""Item 5: resuming with a changed config. Architecture (and input encoding) changes are refused with a
key-by-key diff, and so is other training data; a refused resume changes nothing in the run directory.
Optimisation changes (here the learning rate) are warned about, logged, used, and kept for later resumes."""

from __future__ import annotations

import warnings

import pytest
import yaml
from relsupport import BASE, assert_same_run, records, step_records, tree_digest

from rnnkit import api
from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.training import checkpoint as ckpt
from rnnkit.training.callbacks import Callback


@pytest.fixture
def crashed_run(series, tmp_path):
    """A run that died after step 11 (last checkpoint: step 9), as a crash or kill leaves it."""

    class Crash(Callback):
        def on_step_end(self, state, record):
            if state.step == 11:
                raise RuntimeError("simulated crash")

    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated crash"):
        api.train(C.resolve(None, [f"data.train={series}", *BASE]), run, callbacks=[Crash()])
    assert max(step_records(run)) == 11 and ckpt.load_latest_valid(run / "checkpoints").manifest["step"] == 9
    return run


def test_architecture_change_is_refused_with_a_diff_and_changes_nothing(crashed_run, reference, capsys):
    before = tree_digest(crashed_run)
    changes = ["model.hidden_size=32", "model.cell=gru", "model.bidirectional=false", "data.standardize=false"]
    assert main(["train", "--resume", str(crashed_run), *[x for c in changes for x in ("--set", c)]]) == 3
    err = capsys.readouterr().err
    assert "cannot resume: the architecture or input encoding changed" in err
    for line in ("  data.standardize: checkpoint True -> now False",
                 "  model.bidirectional: checkpoint True -> now False",
                 "  model.cell: checkpoint 'lstm' -> now 'gru'",
                 "  model.hidden_size: checkpoint 16 -> now 32"):
        assert line in err.splitlines()
    assert tree_digest(crashed_run) == before  # metrics.jsonl, vocabulary, config, checkpoints: all untouched
    assert main(["train", "--resume", str(crashed_run)]) == 0  # and the run is still resumable as it was
    assert_same_run(crashed_run, reference)


def test_other_training_data_is_refused_and_changes_nothing(crashed_run, capsys):
    before = tree_digest(crashed_run)
    assert main(["train", "--resume", str(crashed_run), "--set", "data.split_seed=7"]) == 3
    assert "the training data differ from the data the run started with" in capsys.readouterr().err
    # the other split is not allowed to overwrite splits.json or the standardizer fitted on the first one
    assert tree_digest(crashed_run) == before


def test_changed_learning_rate_is_warned_logged_and_continued(crashed_run, reference):
    old = C.from_dict(C.load_yaml(reference / "config.yaml")).optim.lr
    new = old / 2
    with pytest.warns(UserWarning, match=rf"resuming with optim.lr changed from {old!r} to {new!r}"):
        assert main(["train", "--resume", str(crashed_run), "--set", f"optim.lr={new}"]) == 0
    logged = [r for r in records(crashed_run) if r.get("event") == "config_changed_on_resume"]
    assert logged == [{"event": "config_changed_on_resume", "changes": [["optim.lr", old, new]]}]
    got, want = step_records(crashed_run), step_records(reference)
    assert sorted(got) == sorted(want)
    assert all(got[s]["lr"] == want[s]["lr"] for s in range(1, 10))  # before the checkpoint: as it was
    assert all(got[s]["lr"] == pytest.approx(want[s]["lr"] / 2, rel=1e-12) for s in range(10, 25))  # then halved
    assert ckpt.load_latest_valid(crashed_run / "checkpoints").state["config"]["optim"]["lr"] == new
    # the accepted change is the run's config now: a later resume neither warns nor reverts it
    assert yaml.safe_load((crashed_run / "config.yaml").read_text())["optim"]["lr"] == new
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["train", "--resume", str(crashed_run)]) == 0
    assert not [w for w in caught if "resuming with" in str(w.message)]
