"""What a user sees from the command line (issue 8): help texts (item 20), the final line (item 14) and
one output convention: results on stdout, progress and notes on stderr (item 20)."""

from __future__ import annotations

import json

import pytest

from fakedata import write_numeric_jsonl, write_reversal_tsv
from rnnkit.cli import build_parser, main

FAST = ["--set", "model.hidden_size=16", "--set", "model.embedding_dim=16", "--set", "model.num_layers=1",
        "--set", "train.max_epochs=1", "--set", "train.threads=1"]


@pytest.mark.parametrize("command", ["train", "tune", "evaluate", "predict", "diagnose", "report", "datasets",
                                     "config"])
def test_item20_every_command_has_a_description_and_an_example(command, capsys):
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    usage, _, rest = text.partition("\n\n")
    description = rest.split("\n\n")[0]
    assert not description.startswith(("positional arguments", "options")), f"{command}: no description"
    assert len(description.split()) >= 8, description
    assert "example" in text, f"{command} --help has no example"


def test_item20_evaluate_says_it_prints_json(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate", "--help"])
    assert "JSON" in capsys.readouterr().out


def test_item20_results_on_stdout_progress_on_stderr(tmp_path, capsys):
    data = write_numeric_jsonl(tmp_path / "s.jsonl")
    run = tmp_path / "run"
    assert main(["train", str(data), "--out", str(run), *FAST, "--set", "train.progress=plain"]) == 0
    out, err = capsys.readouterr()
    # 240 rows fill fewer than train.min_epoch_steps batches: each progress line is a pass
    assert out.startswith("done: test ") and "pass   1" not in out and "run directory" not in out
    assert "pass   1" in err and f"run directory {run}" in err and "done:" not in err
    assert main(["evaluate", str(run), "--data", str(data)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["rows"] == 240 and err == ""
    assert main(["predict", str(run), "--data", str(data), "--output", str(tmp_path / "p.csv")]) == 0
    assert capsys.readouterr().out == f"wrote 240 predictions to {tmp_path / 'p.csv'}\n"


def test_item14_the_final_line_shows_counts_as_counts(tmp_path, capsys):
    data = write_reversal_tsv(tmp_path / "rev.tsv", n=120)
    run = tmp_path / "run"
    assert main(["train", str(data), "--task", "seq2seq", "--out", str(run), *FAST, "--set", "seq2seq.beam=2",
                 "--set", "train.progress=none"]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert "decode_beam 2" in line and "sources 12" in line, line
    assert "decode_beam 2.0000" not in line and "sources 12.0000" not in line
    assert "wer " in line


def test_item11_the_readme_setup_is_what_ci_runs_and_says_how_to_install_cpu_only():
    """Issue 8, item 11: the local set-up command keeps working (CI runs it verbatim) and a CPU-only user is
    told to take PyTorch's CPU wheel index instead of the constraints pin."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme, ci = (root / "README.md").read_text(), (root / ".ci" / "run").read_text()
    setup = next(line for line in readme.splitlines() if line.startswith("python3 -m venv .venv && "))
    assert setup.replace("pip install -c", "pip install -q -c").replace("--no-deps -c", "-q --no-deps -c") in ci
    cpu = next(line for line in readme.splitlines() if "--index-url" in line)
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in cpu
    assert "constraints.txt" not in cpu


def test_a_long_list_of_bad_rows_says_on_the_command_line_where_all_of_them_go(tmp_path, capsys):
    """Past the first 50 problems the message pointed at "the error's .problems", which a shell user cannot
    read; the command line names --bad-rows skip and the rejects file, and that file does hold every row."""
    path = tmp_path / "train.csv"
    rows = [f"word{i} other{i % 3},{'pos' if i % 2 else 'neg'}" for i in range(200)]
    for i in range(0, 120, 2):
        rows[i] = f"word{i},"  # 60 rows without a label
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    run = tmp_path / "run"
    assert main(["train", str(path), "--out", str(run), "--set", "train.max_epochs=1"]) == 2
    err = capsys.readouterr().err
    assert "... and 10 more (`--bad-rows skip` writes every bad row, with its problems, to DIR/rejects.jsonl)" in err
    assert ".problems" not in err
    assert main(["train", str(path), "--out", str(run), "--bad-rows", "skip", "--set", "train.max_epochs=1"]) == 2
    assert len((run / "rejects.jsonl").read_text().splitlines()) == 60
