"""Issue 9: one seam for task families.

A family is one module of `rnnkit.tasks` that owns its config section, defaults, baselines, report
wording and estimator hooks; nothing outside `rnnkit/tasks/` names a family. The first test holds
that line in the source; the others add a throwaway family in memory and check that the config,
the doctor's checklist, the report and the estimator's score pick it up through the seam alone.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

import rnnkit
import rnnkit.tasks as T
from rnnkit import config as C
from rnnkit.errors import ConfigError

SRC = Path(rnnkit.__file__).parent

# (file under src/rnnkit, literal): a family's name used as an ordinary word, not as the family.
ALLOWED = {
    ("data/conll.py", "tag"),  # the CoNLL reader's word for a token's label (a column in its error messages)
}


def _family_words() -> set[str]:
    C.load_families()
    return set(T.available()) | {name for name in C.SECTIONS if name not in C.CORE_SECTIONS}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _mentions(path: Path, words: set[str]) -> list[tuple[int, str, str]]:
    """(line, kind, word) for each string constant, attribute or keyword argument equal to a family word."""
    tree = ast.parse(path.read_text(), filename=str(path))
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if node.value in words:
                found.append((node.lineno, "string", node.value))
        elif isinstance(node, ast.Attribute) and node.attr in words:
            found.append((node.lineno, "attribute", node.attr))
        elif isinstance(node, ast.keyword) and node.arg in words:
            found.append((node.lineno, "keyword", node.arg))
    return found


def test_nothing_outside_tasks_names_a_family():
    words = _family_words()
    assert {"classify", "tag", "seq2seq", "forecast"} <= words  # the scan looks for something real
    offences, used = [], set()
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("tasks/"):
            continue
        for line, kind, word in _mentions(path, words):
            if (rel, word) in ALLOWED:
                used.add((rel, word))
                continue
            offences.append(f"src/rnnkit/{rel}:{line}: {kind} {word!r}")
    assert not offences, "a family is named outside rnnkit/tasks/ (give the family a hook instead):\n" + \
        "\n".join(offences)
    stale = sorted(ALLOWED - used)
    assert not stale, f"these ALLOWED entries no longer occur; remove them from the list: {stale}"


def test_the_scan_sees_strings_attributes_and_keywords_but_not_docstrings(tmp_path):
    f = tmp_path / "m.py"
    f.write_text('"""Docs may say tag."""\n\n\ndef g(cfg):\n    """forecast"""\n'
                 '    return cfg.forecast, "tag", h(seq2seq=1), "tag.crf"  # tag\n')
    assert sorted(_mentions(f, {"tag", "forecast", "seq2seq"})) == [
        (6, "attribute", "forecast"), (6, "keyword", "seq2seq"), (6, "string", "tag")]


def test_config_keeps_no_family_module_level_import():
    paths = sorted((SRC / "config").glob("*.py"))  # the rnnkit.config package's modules
    assert paths
    for path in paths:
        tree = ast.parse(path.read_text())
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
        assert not [n for n in names if n.startswith(("rnnkit.tasks", "rnnkit.data"))], path.name


def test_families_are_the_modules_of_the_package():
    assert {"classify", "tag", "seq2seq", "forecast", "regress"} <= set(T.available())
    assert T.available() == sorted(T.available())
    assert tuple(T.available()) == C.TASKS
    for name in T.available():
        assert T.get_task(name).name == name
    with pytest.raises(ConfigError, match="unknown task 'nope'; tasks: classify"):
        T.get_task("nope")


def test_a_config_always_has_every_family_section():
    cfg = C.Config()
    for name in C.SECTIONS:
        assert dataclasses.is_dataclass(getattr(cfg, name))
    assert cfg.tag.crf is None and cfg.forecast.horizon is None and cfg.seq2seq.beam == 5
    assert C.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


# ----------------------------------------------------------------------------- a throwaway family


@dataclass
class DummyConfig:
    """A family's own settings (task dummy)."""

    knob: int = 3  # how far to turn it
    mode: str = "soft"  # soft | hard
    width: int = 8  # changes what the weights mean


def _dummy_task() -> T.Task:
    def never(*args, **kwargs):
        raise AssertionError("not called in these tests")

    return T.Task(name="dummy", prepare=never, load_prep=never, build_model=never, collate=never, forward=never,
                  loss=never, predict=never, score=never, load_inference=never, write_predictions=never,
                  metric_names=("hits", "misses"), baseline=("hits", "coin_flip", True),
                  headline_score=lambda m: m["hits"], label_noun="buckets",
                  describe_model=lambda cfg: f"; knob {cfg.dummy.knob}",
                  metric_notes=("hits are counted per sequence",),
                  long_sequence_advice=("shorter sequences: --set dummy.width=4",))


@pytest.fixture
def dummy(monkeypatch):
    """The family `dummy`, in memory: its Task registered, its section too; both undone afterwards."""
    C.load_families()
    for name in ("SECTIONS", "_OWNERS", "CHOICES", "RANGES"):
        monkeypatch.setattr(C, name, dict(getattr(C, name)))
    monkeypatch.setattr(C, "ARCHITECTURE_KEYS", C.ARCHITECTURE_KEYS)
    monkeypatch.setattr(T, "_REGISTERED", dict(T._REGISTERED))
    before = C.Config()  # built before the family existed
    task = T.register(_dummy_task())
    C.register_section("dummy", DummyConfig, task="dummy", choices={"mode": ("soft", "hard")},
                       ranges={"knob": (1, 10)}, architecture=("width",))
    return task, before


def test_config_picks_up_a_new_family(dummy):
    task, before = dummy
    assert "dummy" in C.TASKS and "dummy" in C.SECTIONS
    assert before.dummy.knob == 3  # a Config made earlier does not silently lack the section
    cfg = C.resolve(None, ["task=dummy", "dummy.knob=5"])
    assert cfg.task == "dummy" and cfg.dummy.knob == 5 and cfg.tag.crf is None
    assert C.from_dict(C.Config().to_dict()).dummy == DummyConfig()
    with pytest.raises(ConfigError, match="unknown key 'dummy.knbo'. Did you mean 'dummy.knob'"):
        C.resolve(None, ["task=dummy", "dummy.knbo=5"])
    with pytest.raises(ConfigError, match="'dummy.mode': 'loud' is not one of soft, hard"):
        C.resolve(None, ["dummy.mode=loud"])
    with pytest.raises(ConfigError, match="'dummy.knob': 11 is out of range"):
        C.resolve(None, ["dummy.knob=11"])
    assert C.is_architecture_key("dummy.width") and not C.is_architecture_key("dummy.knob")
    keys = {k for k, _, _ in C.diff(C.Config(), C.resolve(None, ["dummy.width=4"]))}
    assert keys == {"dummy.width"}
    text = C.commented_default("dummy")
    assert "task: dummy\n" in text and "dummy:\n  knob: 3  # how far to turn it" in text
    assert "\ntag:" not in text and "dummy:" not in C.commented_default("tag")


def test_register_section_refuses_what_cannot_work(dummy):
    with pytest.raises(ValueError, match="reserved"):
        C.register_section("model", DummyConfig)
    with pytest.raises(ValueError, match="registered by task 'dummy'"):
        C.register_section("dummy", DummyConfig, task="other")
    with pytest.raises(ValueError, match="not a field"):
        C.register_section("dummy", DummyConfig, task="dummy", ranges={"knobb": (1, None)})
    with pytest.raises(ValueError, match="a module of rnnkit.tasks"):
        T.register(dataclasses.replace(_dummy_task(), name="tag"))


def _evidence(tmp_path, test_metrics: dict):
    from rnnkit.doctor.evidence import Evidence

    cfg = C.resolve(None, ["task=dummy"])
    summary = {"metrics": {"test": test_metrics}, "data": {"sizes": {"train": 8}, "num_classes": 3}}
    return Evidence(tmp_path, cfg, summary)


@pytest.mark.parametrize("hits, verdict", [(0.9, "pass"), (0.4, "fail")])
def test_checklist_uses_the_new_familys_baseline(dummy, tmp_path, hits, verdict):
    from rnnkit.doctor.checklist import _predictions

    check = _predictions(_evidence(tmp_path, {"hits": hits, "baselines": {"coin_flip": {"hits": 0.5}}}))
    assert check.verdict == verdict and "coin flip baseline 0.5" in check.detail
    assert check.evidence == {"metric": "hits", "model": hits, "coin_flip": 0.5}


def test_checklist_without_a_yardstick_is_unknown_not_an_error(dummy, tmp_path, monkeypatch):
    from rnnkit.doctor.checklist import _predictions

    monkeypatch.setitem(T._REGISTERED, "dummy", dataclasses.replace(dummy[0], baseline=None))
    assert _predictions(_evidence(tmp_path, {"hits": 0.9})).verdict == "unknown"
    judged = dataclasses.replace(dummy[0], baseline=None, judge_predictions=lambda t: ("pass", "fine", {"n": 1}))
    monkeypatch.setitem(T._REGISTERED, "dummy", judged)
    check = _predictions(_evidence(tmp_path, {"hits": 0.9}))
    assert (check.verdict, check.detail, check.evidence) == ("pass", "fine", {"n": 1})


def test_report_uses_the_new_familys_words(dummy, tmp_path):
    from rnnkit.report import page as R

    ev = _evidence(tmp_path, {"misses": 0.25, "hits": 0.75, "loss": 0.5})
    assert "3 buckets" in R._sizes(ev)
    line = R._model_line(ev)
    assert "; knob 3" in line and "pooling" not in line
    assert R._metric_columns(ev, ev.summary["metrics"]) == ["hits", "misses", "loss"]
    assert "hits are counted per sequence" in R._metrics(ev)


def test_the_four_families_keep_their_hooks():
    """What the doctor, report and estimator read from each family (formerly tables outside tasks/)."""
    get = T.get_task
    assert get("classify").baseline == ("accuracy", "majority_class", True)
    assert get("tag").baseline == ("accuracy", "most_frequent_tag", True)
    assert get("forecast").baseline == ("mse", "naive", False)
    assert get("seq2seq").baseline is None and get("seq2seq").judge_predictions({"wer": 0.25})[0] == "pass"
    assert get("seq2seq").judge_predictions({"wer": 1.0})[0] == "fail"
    metrics = {"accuracy": 0.8, "wer": 0.3, "mse": 2.0}
    assert [get(n).headline_score(metrics) for n in ("classify", "tag", "seq2seq", "forecast")] == \
        [0.8, 0.8, pytest.approx(0.7), -2.0]
    assert {n: get(n).estimator.name for n in T.available() if get(n).estimator} == {
        "classify": "SequenceClassifier", "regress": "SequenceRegressor", "tag": "SequenceTagger"}
    assert [n for n in T.available() if get(n).uses_pooling] == ["classify", "regress"]  # many-to-one families
    assert get("tag").label_noun == "tags" and get("classify").label_noun == "classes"
    cfg = C.Config()
    assert get("tag").describe_model(cfg) == ", CRF auto (on for BIO/BIOES tags), char features on"
    assert get("seq2seq").describe_model(cfg) == "; decoder with additive attention, 1 layer(s), beam 5"
    assert get("forecast").describe_model(cfg) == "; auto head, input length None, horizon None"
    assert "forecast.input_length=512" in get("forecast").long_sequence_advice[0]


def test_builtin_data_sets_come_from_their_families():
    from rnnkit.data.datasets import DistributionDataset, get_builtin

    assert get_builtin("japanese_vowels").task == "classify"
    assert get_builtin("sunspots").task == "forecast" and get_builtin("cmudict").task == "seq2seq"
    treebank = get_builtin("turkish_treebanks")
    assert treebank.task == "tag" and isinstance(treebank, DistributionDataset)
    assert [treebank.split_of(i) for i in (0, 7, 8, 9, 18)] == ["train", "train", "val", "test", "val"]


def test_a_new_family_brings_its_estimator_through_its_spec(dummy, monkeypatch):
    """`Estimator(task=...)` takes the family's hooks from its EstimatorSpec; nothing in rnnkit.estimator changes."""
    from sklearn.base import clone, is_classifier

    from rnnkit.estimator import Estimator
    from rnnkit.tasks._estimating import EstimatorSpec, Hooks

    class DummyHooks(Hooks):
        def _kind(self):
            return "classifier"

        def _in_memory(self):
            return True

    task, _ = dummy
    plain = Estimator(task="dummy")
    assert type(plain) is Estimator and not is_classifier(plain)  # no spec: files only
    with pytest.raises(ConfigError, match="in-memory X, y is supported for classify, regress, tag; for dummy"):
        plain._sequences([[1.0, 2.0]], plain.config())
    spec = EstimatorSpec("DummyEst", DummyHooks)
    monkeypatch.setitem(T._REGISTERED, "dummy", dataclasses.replace(task, estimator=spec))
    est = Estimator(task="dummy", dummy__knob=4)
    assert isinstance(est, DummyHooks) and isinstance(est, Estimator) and is_classifier(est)
    assert repr(est) == "Estimator(task='dummy', dummy__knob=4)" and est._sequences([[1.0, 2.0]], est.config())
    again = clone(est)
    assert type(again) is type(est) and again.get_params() == est.get_params()
    est.set_params(task="classify")  # another family: its hooks from now on
    assert type(est).__mro__[1].__name__ == "ClassifierHooks" and est.config().task == "classify"
