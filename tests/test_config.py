import contextlib
import io

import pytest
import yaml

from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.errors import ConfigError


def test_defaults_follow_the_guide():
    cfg = C.Config()
    assert cfg.optim.lr == 1e-3 and cfg.optim.clip_norm == 1.0 and cfg.train.patience == 10
    assert cfg.optim.plateau_factor == 0.5 and 0.3 <= cfg.model.dropout <= 0.5
    assert 0.1 <= cfg.model.recurrent_dropout <= 0.3 and cfg.data.max_length == 512
    assert C.guide_warnings(cfg) == []


def test_overrides_are_typed():
    cfg = C.resolve(None, ["optim.lr=3e-3", "train.max_epochs=20", "train.seed=1", "model.cell=gru",
                           "data.feature_columns=a,b"])
    assert cfg.optim.lr == pytest.approx(3e-3) and isinstance(cfg.optim.lr, float)
    assert cfg.train.max_epochs == 20 and cfg.train.seed == 1 and cfg.model.cell == "gru"
    assert cfg.data.feature_columns == ["a", "b"]


@pytest.mark.parametrize("pair, needle", [
    ("optim.lrr=1", "Did you mean 'optim.lr'"),
    ("modle.cell=gru", "Did you mean 'model'"),
    ("model.cell=transformer", "not one of lstm, gru"),
    ("train.max_epochs=ten", "expected an integer"),
    ("model.bidirectional=maybe", "expected true or false"),
    ("optim.lr=-1", "out of range"),
    ("lr=1", "keys are section.name"),
])
def test_bad_overrides_name_key_and_fix(pair, needle):
    with pytest.raises(ConfigError, match=needle):
        C.resolve(None, [pair])


def test_yaml_file_and_override_order(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  hidden_size: 64\noptim:\n  lr: 0.01\n")
    cfg = C.resolve(f, ["optim.lr=0.002"])
    assert cfg.model.hidden_size == 64 and cfg.optim.lr == 0.002


def test_yaml_is_parsed_safely(tmp_path):
    marker = tmp_path / "pwned"
    f = tmp_path / "evil.yaml"
    f.write_text(f"model: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match="evil.yaml:1"):
        C.resolve(f)
    assert not marker.exists()


def test_commented_default_round_trips():
    text = C.commented_default("classify")
    assert "# AdamW decoupled weight decay" in text
    assert C.from_dict(yaml.safe_load(text)) == C.Config()


@pytest.mark.parametrize("task, dataset", [("forecast", None), ("tag", None), ("forecast", "sunspots"),
                                           ("forecast", "air_passengers")])
def test_printed_config_given_back_runs_what_the_task_and_data_set_would(tmp_path, task, dataset):
    """A file from `rnnkit config` sets every key explicitly; it must hold the task's and data set's
    defaults (e.g. the published split), not the generic ones, or --config would silently drop them."""
    path = tmp_path / "c.yaml"
    args = ["config", "--dataset", dataset] if dataset else ["config", "--task", task]
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(args) == 0
    path.write_text(out.getvalue())
    expected = C.resolve(None, [f"task={task}"] + ([f"data.dataset={dataset}"] if dataset else []))
    assert C.resolve(path, []) == expected
    if dataset == "sunspots":
        assert expected.forecast.test_start == "1921" and expected.forecast.input_length == 11
    text = out.getvalue()
    assert "    # naive / seasonal-naive forecast" in text or task != "forecast"  # a comment's second line


def test_diff_separates_architecture_from_optimisation():
    a = C.Config()
    b = C.resolve(None, ["model.hidden_size=64", "optim.lr=0.01"])
    keys = {k for k, _, _ in C.diff(a, b)}
    assert keys == {"model.hidden_size", "optim.lr"}
    assert C.is_architecture_key("model.hidden_size") and not C.is_architecture_key("optim.lr")


def test_guide_warnings_explain():
    cfg = C.resolve(None, ["model.dropout=0.8", "model.num_layers=6"])
    text = " ".join(C.guide_warnings(cfg))
    assert "underfitting" in text and "vanishing" in text


def test_task_defaults_sit_under_the_users_settings():
    plain = C.resolve(None, ["task=forecast"])
    assert plain.model.bidirectional is False and plain.model.hidden_size == 64  # forecasting's layer
    assert plain.forecast.head == "direct"
    # forecast.auto (issue 11): the protocol keys nobody set are left to the search, and listed
    assert plain.forecast.input_length is None and plain.forecast.transform == "auto"
    assert plain.forecast.auto_keys == ["input_length", "transform", "window_norm", "model.cell", "residual"]
    off = C.resolve(None, ["task=forecast", "forecast.auto=false"])
    assert (off.forecast.input_length, off.forecast.transform, off.forecast.auto_keys) == (24, "none", None)
    mine = C.resolve(None, ["task=forecast", "model.cell=lstm", "forecast.input_length=12"])
    assert mine.forecast.auto_keys == ["transform", "window_norm", "residual"] and mine.forecast.input_length == 12
    # a built-in data set's protocol counts as set: sunspots' is complete, air passengers' leaves three keys
    # (its residual is seasonal)
    assert C.resolve(None, ["data.dataset=sunspots"]).forecast.auto_keys == []
    assert C.resolve(None, ["data.dataset=air_passengers"]).forecast.auto_keys == ["transform", "window_norm",
                                                                                    "model.cell"]
    # an explicit value wins even when it equals the generic default
    explicit = C.resolve(None, ["task=forecast", "model.bidirectional=true", "model.hidden_size=128"])
    assert explicit.model.bidirectional is True and explicit.model.hidden_size == 128
    # a built-in data set brings its protocol; a user-chosen split replaces the protocol's split
    sun = C.resolve(None, ["task=forecast", "data.dataset=sunspots"])
    assert sun.forecast.test_start == "1921" and sun.forecast.input_length == 11
    own = C.resolve(None, ["task=forecast", "data.dataset=sunspots", "forecast.test_size=20"])
    assert own.forecast.test_start is None and own.forecast.test_size == 20
    # classification has no layer; a saved config (resume) is never re-layered
    assert C.resolve(None, []) == C.Config()
    assert C.resolve(None, ["optim.lr=0.01"], base=plain).model.hidden_size == 64


def test_config_file_task_gets_its_layer(tmp_path):
    f = tmp_path / "f.yaml"
    f.write_text("task: forecast\nmodel:\n  dropout: 0.3\n")
    cfg = C.resolve(f)
    assert cfg.model.bidirectional is False and cfg.model.dropout == 0.3


def test_builtin_dataset_implies_its_task():
    assert C.resolve(None, ["data.dataset=cmudict"]).task == "seq2seq"
    assert C.resolve(None, ["data.dataset=sunspots"]).model.bidirectional is False
    assert C.resolve(None, ["data.dataset=japanese_vowels"]).task == "classify"
    with pytest.raises(ConfigError, match="unknown built-in data set 'cmudic'.*did you mean 'cmudict'"):
        C.resolve(None, ["data.dataset=cmudic"])


@pytest.mark.parametrize("pair", ["optim.lr=0", "optim.lr=0.0", "optim.plateau_factor=0"])
def test_item18_values_that_cannot_train_are_rejected_with_the_range(pair):
    """Issue 8, item 18: a learning rate of 0 was accepted and trained nothing."""
    key = pair.split("=")[0]
    with pytest.raises(ConfigError, match=rf"'{key}': 0(\.0)? is out of range; it must be > 0"):
        C.resolve(None, [pair])


def test_item18_the_lr_error_says_where_to_start():
    with pytest.raises(ConfigError, match="the guide starts at 1e-3 to 1e-2"):
        C.resolve(None, ["optim.lr=0"])
    assert C.resolve(None, ["optim.lr=1e-7"]).optim.lr == 1e-7  # tiny but positive: allowed (a warning)
