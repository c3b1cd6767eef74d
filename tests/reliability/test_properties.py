"""Item 8: property-based tests of readers and collate/encoder (Hypothesis).

Readers: whatever bytes or rows a user hands over, `read_records` ends in a `ReadResult` that keeps
its invariants (every row is a record or a rejected row with a problem; every record is a finite
float32 (T, C) array or a non-empty token list with T >= 1) or in a `DataError` -- never another
exception. Encoder: for any mix of lengths, the packed path equals the padded path on real positions.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit.data.collate import Example, collate
from rnnkit.data.readers import read_records
from rnnkit.data.records import ReadResult
from rnnkit.errors import DataError
from rnnkit.models.encoder import RNNEncoder

# RNNKIT_FUZZ_EXAMPLES=5000 for a longer hunt than CI's
FUZZ = settings(max_examples=int(os.environ.get("RNNKIT_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _check(result: ReadResult) -> None:
    assert len(result.records) + len(result.bad_rows) == result.rows
    assert not {r.line for r in result.records} & set(result.bad_rows)
    for line in result.bad_rows:
        rid = result.record_ids[line]
        assert any(p.line == line or p.record_id == rid for p in result.problems)
    for r in result.records:
        if r.values is not None:
            assert r.values.dtype == np.float32 and r.values.ndim == 2 and r.values.shape[0] >= 1
            assert np.isfinite(r.values).all()
        else:
            assert r.tokens and all(isinstance(t, str) and t for t in r.tokens)


def _read(path, **options):
    """A ReadResult (checked) or a DataError; any other exception fails the test."""
    try:
        result = read_records(path, **options)
    except DataError as exc:
        assert exc.problems or str(exc)
        return None
    _check(result)
    return result


# ---- arbitrary bytes, every text format -----------------------------------------------------------

SUFFIXES = [".csv", ".tsv", ".jsonl", ".ts"]


@FUZZ
@given(data=st.binary(max_size=400), suffix=st.sampled_from(SUFFIXES), inp=st.sampled_from(["auto", "numeric"]))
def test_arbitrary_bytes_end_in_result_or_data_error(tmp_path, data, suffix, inp):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    _read(path, input=inp)


# ---- arbitrary rows: structured enough to get past the header --------------------------------------

CELL = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12),
    st.sampled_from(["", " ", "NaN", "nan", "inf", "-Infinity", "1e999", "-1e39", "0x10", "1_000", "?", '"',
                     "[", "[]", "[[]]", "[1, 2]", "[[1, 2], [3]]", "[NaN]", "[1e400]", "[true]", "[null]",
                     '[[1, "a"]]', "[[1],[2]]", "{}", "1,2", "a\nb", "\r", "\t"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**400), max_value=10**400).map(str),
)


@FUZZ
@given(rows=st.lists(st.lists(CELL, min_size=0, max_size=4), min_size=1, max_size=8),
       header=st.sampled_from([["text", "label"], ["sequence", "label"], ["label", "sequence", "x"],
                               ["id", "t", "v", "label"]]),
       delimiter=st.sampled_from([",", "\t"]))
def test_arbitrary_csv_rows(tmp_path, rows, header, delimiter):
    path = tmp_path / ("f.csv" if delimiter == "," else "f.tsv")

    def quote(cell: str) -> str:
        return '"' + cell.replace('"', '""') + '"' if any(c in cell for c in ',\t"\n\r') else cell

    lines = [delimiter.join(header)] + [delimiter.join(quote(c) for c in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    options = {"id_column": "id", "time_column": "t"} if "t" in header else {}
    _read(path, **options)


JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**40), max_value=10**40),
                      st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8))
JSON_VALUE = st.recursive(JSON_LEAF, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                              st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                          max_leaves=12)


@FUZZ
@given(objs=st.lists(st.one_of(st.fixed_dictionaries({"sequence": JSON_VALUE, "label": JSON_VALUE}),
                               st.fixed_dictionaries({"text": JSON_VALUE, "label": JSON_VALUE}),
                               st.fixed_dictionaries({"id": JSON_VALUE, "t": JSON_VALUE, "v": JSON_VALUE,
                                                      "label": JSON_VALUE}),
                               JSON_VALUE), min_size=1, max_size=6),
       mode=st.sampled_from(["auto", "numeric", "text", "long"]))
def test_arbitrary_jsonl_rows(tmp_path, objs, mode):
    path = tmp_path / "f.jsonl"
    path.write_text("\n".join(json.dumps(o) for o in objs) + "\n", encoding="utf-8")  # NaN/Infinity literals too
    options = {"id_column": "id", "time_column": "t"} if mode == "long" else {}
    _read(path, input=mode, **options)


TS_HEAD = ("@problemName fuzz\n@timeStamps false\n@missing true\n@univariate false\n@dimensions 2\n"
           "@equalLength false\n@classLabel true a b\n@data\n")


@FUZZ
@given(cases=st.lists(st.lists(st.one_of(CELL, st.sampled_from([":", ",", ":a", ":b", ":c", "(1,2)"])),
                               min_size=1, max_size=6).map("".join), min_size=1, max_size=6))
def test_arbitrary_ts_cases(tmp_path, cases):
    path = tmp_path / "f.ts"
    path.write_text(TS_HEAD + "\n".join(c.replace("\n", " ") for c in cases) + "\n", encoding="utf-8")
    _read(path)


# ---- hostile values: each once found a crash (RecursionError, ValueError, OverflowError) ----------------

DEEP = "[" * 5000 + "]" * 5000  # json.loads raises RecursionError
LONG_INT = "1" * 5000  # json.loads and int() raise ValueError (more than 4300 digits)
FRAGMENTS = [DEEP, LONG_INT, f"[{LONG_INT}]", f"[[{LONG_INT}, 1]]", "1" + "0" * 400, "[[1e400, 1]]", "NaN",
             '"²"', "[[1, 2]]", '"a"', "[]", "null", "{}", "-0", "[[1], [2, 3]]"]
HOSTILE_FILES = [
    ("f.jsonl", '{{"sequence": {0}, "label": {1}}}\n', {}),
    ("f.jsonl", '{{"text": "a b", "label": {0}}}\n{1}\n', {}),
    ("f.jsonl", '{{"id": {0}, "t": {1}, "v": 1, "label": "a"}}\n{{"id": {0}, "t": 2, "v": {1}, "label": "a"}}\n',
     {"id_column": "id", "time_column": "t"}),
    ("f.csv", 'sequence,label\n"{0}",{1}\n', {}),
    ("f.csv", "id,t,v,label\n1,{0},{1},a\n1,2,3,a\n", {"id_column": "id", "time_column": "t"}),
    ("f.ts", "@problemName x\n@timeStamps false\n@univariate false\n@dimensions {0}\n@seriesLength {1}\n"
             "@equalLength true\n@classLabel true a\n@data\n1,2:3,4:a\n", {}),
    ("f.ts", "@problemName x\n@timeStamps false\n@univariate true\n@equalLength false\n@classLabel true a\n"
             "@data\n{0},{1}:a\n", {}),
]


@FUZZ
@given(template=st.sampled_from(HOSTILE_FILES), a=st.sampled_from(FRAGMENTS), b=st.sampled_from(FRAGMENTS))
def test_hostile_values_end_in_result_or_data_error(tmp_path, template, a, b):
    name, text, options = template
    path = tmp_path / name
    path.write_text(text.format(a.strip('"') if name.endswith(".ts") else a, b), encoding="utf-8")
    _read(path, **options)


@pytest.mark.parametrize(("text", "rule"), [
    ('{"sequence": ' + DEEP + ', "label": "a"}\n', "invalid JSON: values nested too deeply"),
    ('{"sequence": [' + LONG_INT + '], "label": "a"}\n', "invalid JSON: Exceeds the limit (4300 digits)"),
])
def test_hostile_json_is_a_named_row_problem(tmp_path, text, rule):
    path = tmp_path / "f.jsonl"
    path.write_text('{"sequence": [1, 2], "label": "a"}\n' + text)
    result = _read(path)
    assert len(result.records) == 1 and [(p.line, p.rule[: len(rule)]) for p in result.problems] == [(2, rule)]


# ---- collate + encoder: packed == padded for any length mix ----------------------------------------


@settings(max_examples=40, deadline=None)
@given(lengths=st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=7),
       cell=st.sampled_from(["lstm", "gru"]), bidirectional=st.booleans(), seed=st.integers(0, 2**16))
def test_packed_equals_padded_for_any_length_mix(lengths, cell, bidirectional, seed):
    gen = torch.Generator().manual_seed(seed)
    examples = [Example(id=f"r{i}", inputs=torch.randn(n, 3, generator=gen)) for i, n in enumerate(lengths)]
    batch = collate(examples, pad_value=float("nan"))  # garbage pads must not matter on either path
    assert batch.lengths.tolist() == lengths and batch.mask.sum(1).tolist() == lengths
    torch.manual_seed(seed)
    padded = RNNEncoder(3, 5, num_layers=2, cell=cell, bidirectional=bidirectional, packing="never").eval()
    packed = RNNEncoder(3, 5, num_layers=2, cell=cell, bidirectional=bidirectional, packing="always").eval()
    packed.load_state_dict(padded.state_dict())
    a = padded(batch.inputs, batch.lengths, batch.mask)
    b = packed(batch.inputs, batch.lengths, batch.mask)
    valid = batch.mask.unsqueeze(-1)
    assert torch.isfinite(a.outputs).all() and torch.isfinite(b.outputs).all()
    torch.testing.assert_close(a.outputs * valid, b.outputs * valid, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a.final, b.final, rtol=1e-5, atol=1e-6)
    assert (a.outputs[~batch.mask] == 0).all() and (b.outputs[~batch.mask] == 0).all()
