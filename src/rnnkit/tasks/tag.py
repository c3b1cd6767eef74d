"""Sequence labeling (many-to-many): one tag per token.

Data path: `rnnkit.data.conll.read_tagged` (CoNLL, CoNLL-U, JSONL) -> unseen-tag check -> the shared
bad-row policy (`validate_splits`) -> seeded splits when val/test files are missing -> word vocabulary,
tag map and character vocabulary fitted on train -> examples ``inputs (T,) word ids, target (T,) tag
ids, extra chars (T, C)``. Only the training split is truncated to data.max_length: every val/test/
predict token is scored and tagged.

Unseen tags: a val/test (or `evaluate`) sentence with a tag the training data never shows is a bad
row (DataError naming each token's file:line under --bad-rows error; skipped to rejects.jsonl under
--bad-rows skip). The model has no output unit for such a tag, so scoring it silently would be wrong.

Metrics: token ``accuracy``, ``macro_f1`` over tags, ``oov_accuracy`` (tokens whose word is outside the
vocabulary), and for BIO/BIOES tag sets (tag.scheme) entity-level ``entity_precision``/``recall``/``f1``
with conlleval's chunk rules.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from rnnkit.config import Config, register_section
from rnnkit.data.collate import Batch, Example, SequenceDataset
from rnnkit.data.conll import read_tagged, reject_unseen_tags
from rnnkit.data.datasets import DistributionDataset, get_builtin, register
from rnnkit.data.longseq import Truncation
from rnnkit.data.pipeline import PreparedData, missing_split_fractions, truncation_for
from rnnkit.data.records import Record
from rnnkit.data.splits import save_split, stratified_split
from rnnkit.data.validate import too_few_classes, validate_splits
from rnnkit.data.vocab import LabelMap, Vocab
from rnnkit.errors import ConfigError, DataError
from rnnkit.models.tagger import IGNORE_INDEX, TokenTagger
from rnnkit.tasks import Task
from rnnkit.tasks._estimating import EstimatorSpec, Hooks, InputError, as_list
from rnnkit.tasks._onnx import MASK, TOKENS, OnnxSpec
from rnnkit.training import metrics as M

VOCAB_FILE, TAGS_FILE, CHARS_FILE, META_FILE, SPLITS_FILE = (
    "vocab.json", "labels.json", "chars.json", "tagging.json", "splits.json")
_ENTITY_TAG = re.compile(r"^(O|[BIES]-.+)$")


# ----------------------------------------------------------------------------- config section


@dataclass
class TagConfig:
    """Sequence labeling (task tag)."""

    token_column: str = "tokens"  # JSONL: list of tokens
    tag_column: str = "tags"  # JSONL: list of tags, one per token
    conll_column: str = "upos"  # CoNLL-U: upos | xpos | deprel | a 1-based column number
    crf: bool | None = None  # CRF output layer with Viterbi decoding; null: on for BIO/BIOES entity tags (tag.scheme)
    char_features: bool = True  # character-level word features (unknown words; Turkish UPOS +2 points)
    char_dim: int = 32  # character embedding and char-encoder size
    char_encoder: str = "lstm"  # lstm (a small char BiLSTM) | cnn (char CNN, max-pooled)
    max_word_chars: int = 24  # longer words keep their first and last max_word_chars/2 characters
    word_dropout: float = 0.05  # training: replace word ids by <unk> at this rate (trains the <unk> vector)
    scheme: str = "auto"  # auto | bio | bioes | none: entity-level metrics for BIO/BIOES tags
    format: str = "auto"  # auto (by extension/content) | conll | conllu | jsonl


register_section(
    "tag", TagConfig, task="tag",
    choices={"scheme": ("auto", "bio", "bioes", "none"), "char_encoder": ("lstm", "cnn"),
             "format": ("auto", "conll", "conllu", "jsonl")},
    ranges={"char_dim": (1, None), "max_word_chars": (2, None), "word_dropout": (0.0, 0.99)},
    architecture=("crf", "char_features", "char_dim", "char_encoder", "max_word_chars", "conll_column"))


# ----------------------------------------------------------------------------- built-in data set


@dataclass(frozen=True)
class TreebankDataset(DistributionDataset):
    """turkish-treebanks: CoNLL-U files in a top-level ``data/`` folder of site-packages (found through the
    distribution's file list, see `DistributionDataset`), one file per section; `split_of` maps a
    sentence's 0-based index within its file to a split (the package's own rule)."""

    @staticmethod
    def split_of(index: int) -> str:
        """The package's split: sentence index % 10 < 8 train, == 8 dev (our val), == 9 test."""
        r = index % 10
        return "train" if r < 8 else "val" if r == 8 else "test"



TURKISH = register(TreebankDataset(
    name="turkish_treebanks",
    task="tag",
    package="turkish_treebanks",
    distribution="turkish-treebanks",
    install="pip install --no-deps turkish-treebanks==1.0.0",
    description=("Turkish Web and Wikipedia treebanks (Google, CoNLL-U): 4,851 sentences, 81k tokens (inflectional "
                 "groups), 14 UPOS tags; tag the UPOS column (tag.conll_column); the package's own split"),
    reference="no published figure on this split; compared with a most-frequent-tag baseline on the same split",
    data_files={"web": "data/web.conllu", "wiki": "data/wiki.conllu"},
    reader_options={"format": "conllu"},
))


# ----------------------------------------------------------------------------- preprocessing


@dataclass
class TagPreprocessing:
    """Word vocabulary, tag map and (optional) character vocabulary, fitted on train and saved."""

    vocab: Vocab
    labels: LabelMap  # the tags (named `labels` like the classifier's, for shared tooling)
    chars: Vocab | None
    scheme: str  # "bio" | "bioes" | "none"
    lowercase: bool = False
    max_word_chars: int = 24

    def save(self, run_dir: Path) -> None:
        self.vocab.save(run_dir / VOCAB_FILE)
        self.labels.save(run_dir / TAGS_FILE)
        if self.chars is not None:
            self.chars.save(run_dir / CHARS_FILE)
        (run_dir / META_FILE).write_text(json.dumps({"scheme": self.scheme, "lowercase": self.lowercase,
                                                     "max_word_chars": self.max_word_chars}))

    @classmethod
    def load(cls, run_dir: Path) -> TagPreprocessing:
        run_dir = Path(run_dir)
        meta = json.loads((run_dir / META_FILE).read_text())
        return cls(vocab=Vocab.load(run_dir / VOCAB_FILE), labels=LabelMap.load(run_dir / TAGS_FILE),
                   chars=Vocab.load(run_dir / CHARS_FILE) if (run_dir / CHARS_FILE).exists() else None, **meta)

    def word_chars(self, word: str) -> str:
        """The characters encoded for a word: long words keep their head and tail (suffixes carry tags)."""
        m = self.max_word_chars
        return word if len(word) <= m else word[: m // 2] + word[len(word) - (m - m // 2):]


def detect_scheme(tags, requested: str = "auto") -> str:
    """"bioes", "bio" or "none" for a tag set; `requested` bio/bioes is checked, "none" is kept.

    Raises:
        ConfigError: bio/bioes requested but some tags are not O or PREFIX-TYPE.
    """
    tags = list(tags)
    fits = bool(tags) and all(_ENTITY_TAG.match(t) for t in tags) and any(t != "O" for t in tags)
    if requested == "none":
        return "none"
    if requested in ("bio", "bioes"):
        if not fits:
            bad = [t for t in tags if not _ENTITY_TAG.match(t)][:5]
            raise ConfigError(f"tag.scheme={requested} but these tags are not O or B-/I-/E-/S-TYPE: {bad}; "
                              "use --set tag.scheme=none (or auto).")
        return requested
    if not fits:
        return "none"
    return "bioes" if any(t[:2] in ("E-", "S-") for t in tags) else "bio"


def _builtin(cfg: Config) -> TreebankDataset | None:
    if not cfg.data.dataset:
        return None
    builtin = get_builtin(cfg.data.dataset)
    if builtin.task != "tag":
        raise ConfigError(f"data set {builtin.name!r} is for task {builtin.task!r}, not 'tag'; use --task "
                          f"{builtin.task}.")
    return builtin


def _reader_options(cfg: Config, builtin) -> dict:
    t = cfg.tag
    options = dict(format=t.format, conll_column=t.conll_column, token_column=t.token_column,
                   tag_column=t.tag_column)
    if builtin is not None:
        options.update(builtin.reader_options)
    return options


def _sources(cfg: Config) -> dict[str, list[tuple[Path, object]]]:
    """split -> [(file, sentence filter)]; a built-in contributes every section file to each split."""
    builtin = _builtin(cfg)
    sources: dict[str, list[tuple[Path, object]]] = {}
    if builtin is not None:
        files = builtin.files()
        for split in ("train", "val", "test"):
            sources[split] = [(path, lambda i, s=split: builtin.split_of(i) == s) for path in files.values()]
    elif not cfg.data.train:
        raise ConfigError("no training data: give a TRAIN_FILE, --dataset NAME, or data.train in the config.")
    else:
        sources["train"] = [(Path(cfg.data.train), None)]
    for split in ("val", "test"):  # explicit files win over a built-in's split
        if getattr(cfg.data, split):
            sources[split] = [(Path(getattr(cfg.data, split)), None)]
    return sources


def read_tag_splits(cfg: Config, run_dir: Path | None) -> tuple[dict[str, list[Record]], dict]:
    """Read every file, reject unseen tags outside train, apply the bad-row policy; records per split."""
    sources = _sources(cfg)
    options = _reader_options(cfg, _builtin(cfg))
    results, owner = {}, {}
    for split, items in sources.items():
        for path, keep in items:
            key = split if len(items) == 1 else f"{split}:{path.name}"
            results[key] = read_tagged(path, **options, keep=keep)
            owner[key] = split
    known = {t for key, res in results.items() if owner[key] == "train" for r in res.records for t in r.extra["tags"]}
    results = {k: res if owner[k] == "train" else reject_unseen_tags(res, known) for k, res in results.items()}
    validated = validate_splits(results, policy=cfg.data.bad_rows, max_bad_fraction=cfg.data.max_bad_fraction,
                                rejects_path=(run_dir / "rejects.jsonl") if run_dir else None, check_labels=False)
    splits: dict[str, list[Record]] = {}
    for key, recs in validated.splits.items():
        splits.setdefault(owner[key], []).extend(recs)
    report = {"files": {k: [str(p) for p, _ in v] for k, v in sources.items()}, **validated.report,
              "rejected": validated.rejected}
    return splits, report


def _carve(cfg: Config, splits: dict[str, list[Record]], run_dir: Path | None) -> dict[str, list[Record]]:
    """Seeded random val/test sentences out of train when no file gives them (recorded in splits.json)."""
    fractions = missing_split_fractions(cfg, splits)
    if fractions:
        carved = stratified_split(splits["train"], fractions=fractions, seed=cfg.data.split_seed)
        if run_dir is not None:
            save_split(carved, run_dir / SPLITS_FILE)
        known = {t for r in carved["train"] for t in r.extra["tags"]}
        # not a bad row (--bad-rows skip does not apply): the split itself put the tag's only sentence outside train
        fix = ("add training sentences with this tag, or give separate --val/--test files; the seeded split put "
               "every sentence with this tag outside train")
        problems = [dataclasses.replace(p, fix=fix) for name in fractions
                    for p in reject_unseen_tags(_as_result(carved[name]), known).problems]
        if problems:
            raise DataError(problems, header=f"after the seeded split, some {'/'.join(fractions)} tags have no "
                            "training example (a tag seen in one sentence only); add sentences with these tags, or "
                            "give separate --val/--test files")
        splits = {**splits, **carved}
    if "val" not in splits:
        raise ConfigError("no validation data: give --val FILE or set data.val_fraction > 0 "
                          "(early stopping needs a validation split).")
    return splits


def _as_result(records: list[Record]):
    from rnnkit.data.records import ReadResult

    return ReadResult(records=list(records), problems=[], rows=len(records), bad_rows={})


def fit_preprocessing(cfg: Config, train: list[Record]) -> TagPreprocessing:
    """Vocabularies and tag map from the training split only."""
    lower = cfg.data.lowercase
    vocab = Vocab.build(([t.lower() for t in r.tokens] if lower else r.tokens for r in train),
                        min_freq=cfg.data.min_freq, max_size=cfg.data.max_vocab)
    labels = LabelMap.build(t for r in train for t in r.extra["tags"])
    prep = TagPreprocessing(vocab=vocab, labels=labels, chars=None, scheme=detect_scheme(labels.labels, cfg.tag.scheme),
                            lowercase=lower, max_word_chars=cfg.tag.max_word_chars)
    if cfg.tag.char_features:
        prep.chars = Vocab.build(list(prep.word_chars(t)) for r in train for t in r.tokens)
    return prep


def encode(records: list[Record], prep: TagPreprocessing, *, with_targets: bool = True,
           max_length: int | None = None, keep: str = "head", head: float = 0.25) -> tuple[list[Example], int]:
    """Records -> examples; sentences longer than `max_length` (if given) are cut, keeping `keep` (head | tail |
    head_tail, `head` the head's share or count: `rnnkit.data.longseq.kept_slices`). Returns (examples, cut)."""
    examples, cut = [], 0
    for r in records:
        words = [t.lower() for t in r.tokens] if prep.lowercase else r.tokens
        inputs = torch.tensor(prep.vocab.encode(words), dtype=torch.long)  # (T,)
        target = None
        if with_targets and r.extra.get("tags") is not None:
            target = torch.tensor([prep.labels.encode(t) for t in r.extra["tags"]], dtype=torch.long)  # (T,)
        extra = {}
        if prep.chars is not None:
            ids = [prep.chars.encode(prep.word_chars(t)) for t in r.tokens]
            width = max(len(c) for c in ids)
            extra["chars"] = torch.tensor([c + [0] * (width - len(c)) for c in ids], dtype=torch.long)  # (T, C)
            extra["char_lengths"] = torch.tensor([len(c) for c in ids], dtype=torch.long)  # (T,)
        if max_length is not None and len(inputs) > max_length:
            kept = Truncation(max_length, keep, head)  # the same steps of words, tags and characters
            inputs = kept.cut(inputs)
            target = None if target is None else kept.cut(target)
            extra = {k: kept.cut(v) for k, v in extra.items()}
            cut += 1
        examples.append(Example(id=r.id, inputs=inputs, target=target, extra=extra))
    return examples, cut


def prepare(cfg: Config, run_dir: Path | None = None) -> PreparedData:
    """The whole data path for training; every data problem raises before the first step."""
    records, report = read_tag_splits(cfg, run_dir)
    if not records.get("train"):
        raise DataError([], header="no training sentences left after validation")
    one_tag = too_few_classes(Counter(t for r in records["train"] for t in r.extra["tags"]),
                              rows=len(records["train"]), file=cfg.data.train or str(cfg.data.dataset),
                              column=None, unit="sentence", what="tag", model="a tagger")
    if one_tag:  # before splits.json or anything else is written
        raise DataError(one_tag, header="the training data cannot train a tagger")
    records = _carve(cfg, records, run_dir)
    prep = fit_preprocessing(cfg, records["train"])
    truncation_for(cfg)  # a head+tail cut that cannot keep both ends is a ConfigError naming the key
    datasets, truncated, tokens, oov = {}, {}, {}, {}
    for split, recs in records.items():
        limit = cfg.data.max_length if split == "train" else None  # score and tag every evaluation token
        examples, truncated[split] = encode(recs, prep, max_length=limit, keep=cfg.data.truncate_keep,
                                            head=cfg.data.truncate_head)
        datasets[split] = SequenceDataset(examples)
        n = sum(len(e) for e in examples)
        tokens[split] = n
        oov[split] = round(sum(int((e.inputs == Vocab.UNK).sum()) for e in examples) / max(n, 1), 4)
    report.update(sizes={k: len(v) for k, v in datasets.items()}, tokens=tokens, oov_rate=oov, truncated=truncated,
                  num_classes=len(prep.labels), tags=prep.labels.labels, vocab_size=len(prep.vocab),
                  scheme=prep.scheme)
    if prep.chars is not None:
        report["chars"] = len(prep.chars)
    if cfg.data.dataset:
        report["split_rule"] = ("the package's own split, per file (web.conllu, then wiki.conllu): sentence index "
                                "% 10 < 8 train, == 8 dev (val), == 9 test")
    if run_dir is not None:
        prep.save(run_dir)
    return PreparedData(datasets=datasets, prep=prep, report=report)


# ----------------------------------------------------------------------------- model and batches


def build_model(cfg: Config, prep: TagPreprocessing) -> TokenTagger:
    m = dataclasses.asdict(cfg.model)
    m.pop("pooling")  # a per-token head pools nothing
    m.pop("frontend"), m.pop("frontend_reduction")  # tagging needs one output per input step: never a front-end
    return TokenTagger(vocab_size=len(prep.vocab), num_tags=len(prep.labels),
                       num_chars=len(prep.chars) if prep.chars is not None else None, char_dim=cfg.tag.char_dim,
                       char_encoder=cfg.tag.char_encoder, word_dropout=cfg.tag.word_dropout, crf=use_crf(cfg, prep),
                       **m)


def collate(examples: list[Example]) -> Batch:
    """Pad words with 0, tags with IGNORE_INDEX, characters to (B, T, C) with 0; lengths/mask as usual."""
    lengths = torch.tensor([len(e) for e in examples], dtype=torch.long)
    inputs = pad_sequence([e.inputs for e in examples], batch_first=True, padding_value=0)  # (B, T)
    mask = torch.arange(inputs.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)
    targets = None
    if examples[0].target is not None:
        targets = pad_sequence([e.target for e in examples], batch_first=True, padding_value=IGNORE_INDEX)  # (B, T)
    extra = {}
    if "chars" in examples[0].extra:
        width = max(e.extra["chars"].shape[1] for e in examples)
        chars = torch.zeros(len(examples), inputs.shape[1], width, dtype=torch.long)  # (B, T, C)
        char_lengths = torch.zeros(len(examples), inputs.shape[1], dtype=torch.long)  # (B, T)
        for b, e in enumerate(examples):
            c = e.extra["chars"]
            chars[b, : c.shape[0], : c.shape[1]] = c
            char_lengths[b, : c.shape[0]] = e.extra["char_lengths"]
        extra = {"chars": chars, "char_lengths": char_lengths}
    return Batch(inputs=inputs, lengths=lengths, mask=mask, targets=targets, ids=[e.id for e in examples], extra=extra)


@dataclass
class TagOutputs:
    """Emissions plus the tagger that made them (its CRF, if any, scores and decodes them)."""

    emissions: torch.Tensor  # (B, T, K)
    tagger: TokenTagger


def forward(model: TokenTagger, batch: Batch, step=None) -> TagOutputs:
    return TagOutputs(model(batch.inputs, batch.lengths, batch.mask, batch.extra.get("chars"),
                            batch.extra.get("char_lengths")), model)


def loss(out: TagOutputs, batch: Batch) -> tuple[torch.Tensor, int]:
    return out.tagger.loss(out.emissions, batch.targets, batch.mask)


def loss_count(batch: Batch) -> int:
    """`loss`'s denominator: the batch's real tokens (CRF and cross-entropy alike)."""
    return int(batch.mask.sum())


def predict(model: TokenTagger, batch: Batch, out: TagOutputs, cfg) -> list[torch.Tensor]:
    """Per sentence: predicted tag ids (L,) (Viterbi with a CRF, arg-max otherwise)."""
    tags = model.decode(out.emissions, batch.mask).cpu()  # (B, T)
    return [tags[b, : int(n)] for b, n in enumerate(batch.lengths)]


# ----------------------------------------------------------------------------- metrics


def _split_tag(tag: str) -> tuple[str, str]:
    if tag == "O" or not _ENTITY_TAG.match(tag):
        return "O", ""
    return tag[0], tag[2:]


def entity_spans(tags: list[str]) -> set[tuple[int, int, str]]:
    """Entities (start, end exclusive, type) of a BIO/BIOES tag sequence, with conlleval's rules.

    An I-/E- tag that does not continue an entity of its type starts a new one (as conlleval does);
    E- and S- end an entity; B- and S- always start one. Tags that are not O/PREFIX-TYPE count as O.
    """
    spans, start = set(), None
    prev_p, prev_t = "O", ""
    for i, tag in enumerate([*tags, "O"]):
        p, t = _split_tag(tag)
        ends = prev_p in ("E", "S") or (prev_p in ("B", "I") and p in ("B", "S", "O")) or \
            (prev_p != "O" and prev_t != t)
        starts = p in ("B", "S") or (prev_p in ("E", "S", "O") and p in ("I", "E")) or (p != "O" and prev_t != t)
        if start is not None and ends:
            spans.add((start, i, prev_t))
            start = None
        if starts and p != "O":
            start = i
        prev_p, prev_t = p, t
    return spans


def entity_scores(pred: list[list[str]], gold: list[list[str]]) -> dict[str, float]:
    """Entity-level precision, recall and F1 (exact span and type) over sentences."""
    tp = n_pred = n_gold = 0
    for p, g in zip(pred, gold, strict=True):
        ps, gs = entity_spans(p), entity_spans(g)
        tp += len(ps & gs)
        n_pred += len(ps)
        n_gold += len(gs)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"entity_precision": precision, "entity_recall": recall, "entity_f1": f1}


def tag_scores(preds: list[torch.Tensor], examples: list[Example], prep: TagPreprocessing) -> dict:
    pred = torch.cat([p.long() for p in preds])
    target = torch.cat([e.target for e in examples])
    out = {"accuracy": M.accuracy(pred, target), "macro_f1": M.macro_f1(pred, target, len(prep.labels)),
           **M.class_report(pred, target, prep.labels.labels)}  # per tag, over tokens
    unknown = torch.cat([e.inputs == Vocab.UNK for e in examples])
    if unknown.any():
        out["oov_accuracy"] = M.accuracy(pred[unknown], target[unknown])
    if prep.scheme != "none":
        names = prep.labels.labels
        out.update(entity_scores([[names[i] for i in p.tolist()] for p in preds],
                                 [[names[i] for i in e.target.tolist()] for e in examples]))
    return out


def score(preds: list[torch.Tensor], examples: list[Example], prep: TagPreprocessing, cfg) -> dict:
    return tag_scores(preds, examples, prep)


def baselines(data: PreparedData, cfg, split: str = "test") -> dict:
    """Most-frequent-tag baseline on a split (test, or val): each training word's most frequent training tag
    (ties: the tag more frequent overall), unknown words the most frequent training tag overall."""
    counts: dict[int, Counter] = {}
    overall: Counter = Counter()
    for e in data.datasets["train"].examples:
        for w, t in zip(e.inputs.tolist(), e.target.tolist(), strict=True):
            counts.setdefault(w, Counter())[t] += 1
            overall[t] += 1
    rank = {t: (-n, t) for t, n in overall.items()}
    default = min(overall, key=rank.get)
    best = {w: min(c, key=lambda t, c=c: (-c[t], *rank[t])) for w, c in counts.items()}
    test = data.datasets[split].examples
    preds = [torch.tensor([best.get(w, default) for w in e.inputs.tolist()], dtype=torch.long) for e in test]
    return {"most_frequent_tag": {**tag_scores(preds, test, data.prep),
                                  "rule": "each training word's most frequent training tag; words never seen in "
                                          "training get the most frequent tag overall"}}


# ----------------------------------------------------------------------------- inference files


def load_inference(cfg: Config, prep: TagPreprocessing, path, with_targets: bool, run_dir=None):
    """Read a file for evaluate (tags required, unseen tags are errors) or predict (tags optional)."""
    result = read_tagged(Path(path), **_reader_options(cfg, _builtin(cfg)), require_tags=with_targets)
    if with_targets:
        result = reject_unseen_tags(result, set(prep.labels.labels))
    validated = validate_splits({"data": result}, policy=cfg.data.bad_rows, max_bad_fraction=cfg.data.max_bad_fraction,
                                rejects_path=(Path(run_dir) / "rejects-inference.jsonl") if run_dir else None,
                                check_labels=False)
    records = validated.splits["data"]
    examples, _ = encode(records, prep, with_targets=with_targets)
    return SequenceDataset(examples), records


def write_predictions(output: Path, records: list[Record], preds: list[torch.Tensor], prep: TagPreprocessing,
                      cfg) -> int:
    """CoNLL: ``token<TAB>predicted tag[<TAB>gold tag]`` per line, a blank line after each sentence.

    The gold column is written for every sentence when the input had tags for all of them. Returns the
    number of sentences written.
    """
    names = prep.labels.labels
    with_gold = all(r.extra.get("tags") is not None for r in records)
    with open(output, "w", encoding="utf-8") as fh:
        for rec, pred in zip(records, preds, strict=True):
            gold = rec.extra["tags"] if with_gold else [None] * len(rec.tokens)
            for token, p, g in zip(rec.tokens, pred.tolist(), gold, strict=True):
                fh.write(f"{token}\t{names[p]}" + (f"\t{g}" if g is not None else "") + "\n")
            fh.write("\n")
    return len(records)


def uniform_class_loss(prep) -> float:
    """Cross-entropy of a uniform guess over the C labels: ln C (the doctor's yardstick)."""
    return math.log(len(prep.labels))


def describe_model(cfg: Config) -> str:
    """The report's words for the tagger's own settings."""
    crf = {True: "on", False: "off", None: "auto (on for BIO/BIOES tags)"}[cfg.tag.crf]
    return f", CRF {crf}, char features {'on' if cfg.tag.char_features else 'off'}"


def accuracy_score(metrics: dict) -> float:
    """The estimator's `score`: token accuracy."""
    return metrics["accuracy"]


class TaggerHooks(Hooks):
    """The estimator of tagging: X token lists, y tag lists (the tags as y gave them), token accuracy."""

    _prediction_file = "predictions.conll"
    _y_noun = "tag lists"
    _fitted_names = ("_tags",)

    def _in_memory(self) -> bool:
        return True

    def _input_tags(self, InputTags):  # noqa: N803 - scikit-learn's class, passed in
        return InputTags(two_d_array=False, string=True)

    def _columns(self, cfg: Config) -> tuple[str, ...]:
        return (cfg.tag.token_column,)

    def _sequences(self, X, cfg: Config) -> list:
        out = []
        for i, x in enumerate(as_list(X, self._columns(cfg))):
            tokens = x.split() if isinstance(x, str) else [str(t) for t in x] if np.ndim(x) == 1 else None
            if not tokens or any(not t.strip() or any(c.isspace() for c in t) for t in tokens):
                raise InputError(f"X[{i}] must be a non-empty list of tokens without whitespace, got {x!r}.")
            out.append(tokens)
        return out

    def _input_row(self, x, i: int, cfg: Config) -> dict:
        return {cfg.tag.token_column: x}

    def _targets(self, X: list, y):
        self._check_length(X, y)
        tags = [list(t) for t in y]
        for i, (tokens, t) in enumerate(zip(X, tags, strict=True)):
            if len(t) != len(tokens):
                raise InputError(f"y[{i}] has {len(t)} tags for {len(tokens)} tokens; give one tag per token.")
        return tags

    def _target_row(self, targets, i: int, cfg: Config) -> dict:
        return {cfg.tag.tag_column: [str(t).strip() for t in targets[i]]}

    def _fitted_state(self, targets, run_dir: Path) -> dict:
        return {"_tags": None if targets is None else {str(t).strip(): t for tags in targets for t in tags}}

    @staticmethod
    def _read_tags(out: Path) -> list[list[str]]:
        """CoNLL `token<TAB>tag[<TAB>gold]` lines, a blank line after each sentence -> the tags per sentence."""
        sentences, tags = [], []
        for line in out.read_text(encoding="utf-8").split("\n"):
            if line.strip():
                tags.append(line.split("\t")[1])
            elif tags:
                sentences.append(tags)
                tags = []
        return sentences + ([tags] if tags else [])

    def predict(self, X=None, *, data=None, output=None) -> list[list]:
        """The tags of each sentence of a file (`data=`) or of in-memory X."""
        sentences = self._run_predict(X, data, output, self._read_tags)
        if self._tags is None:
            return sentences
        return [[self._tags.get(t, t) for t in tags] for tags in sentences]

    def _score_in_memory(self, X: list, y, sample_weight) -> float:
        pred = self.predict(X)
        w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, dtype=float).reshape(-1)
        right = total = 0.0
        for p, t, wi in zip(pred, y, w, strict=True):
            t = list(t)
            if len(t) != len(p):
                raise InputError(f"y has {len(t)} tags for a sentence of {len(p)} tokens; give one tag per token.")
            right += wi * sum(a == b for a, b in zip(p, t, strict=True))
            total += wi * len(t)
        return float(right / total)


ESTIMATOR_DOC = """An rnnkit tagger (task tag) with scikit-learn's interface: one tag per token.

    Args: as `SequenceClassifier`. `fit(X, y)`: X a list of token lists (or strings, split on whitespace), y a
    list of tag lists, one tag per token; or files (CoNLL, CoNLL-U, JSONL). `predict` returns a list of tag
    lists (the tags as y gave them; strings for a fit on files); `score` is token accuracy.
    """


def use_crf(cfg, prep) -> bool:
    """`tag.crf`, with null resolved: a CRF for entity tags (their B-/I- structure is what it scores)."""
    return prep.scheme != "none" if cfg.tag.crf is None else bool(cfg.tag.crf)


def monitor(cfg, data) -> tuple[str, str]:
    """`train.monitor=auto`: entity F1 for BIO/BIOES tags (token accuracy rewards tagging everything O), else
    token accuracy."""
    if data.prep.scheme != "none":
        return "entity_f1", f"{data.prep.scheme.upper()} entity tags"
    return "accuracy", "the family's headline"


def _onnx_inputs(model, prep) -> dict:
    inputs = {"inputs": TOKENS, "mask": MASK}
    if model.chars is not None:
        inputs["chars"] = {"dtype": "int64", "axes": {0: "batch", 1: "time", 2: "word_chars"}}
        inputs["char_lengths"] = {"dtype": "int64", "axes": {0: "batch", 1: "time"}}
    return inputs


def _onnx_sidecar(cfg, prep, model) -> dict:
    """Vocabularies, tags and, with a CRF, its scores: a runtime decodes the emissions with Viterbi."""
    side = {"vocab": prep.vocab.to_dict(), "chars": prep.chars.to_dict() if prep.chars is not None else None,
            "tags": list(prep.labels.labels), "scheme": prep.scheme, "lowercase": prep.lowercase,
            "max_word_chars": prep.max_word_chars}
    if model.crf is not None:
        side["crf"] = {"start": model.crf.start.detach().tolist(), "end": model.crf.end.detach().tolist(),
                       "transitions": model.crf.transitions.detach().tolist()}
    return side


ONNX = OnnxSpec(inputs=_onnx_inputs, output="emissions", output_axes={0: "batch", 1: "time"},
                forward=lambda model, inputs, lengths, mask, extra: model(inputs, lengths, mask, extra.get("chars"),
                                                                          extra.get("char_lengths")),
                sizes=lambda prep: {"vocab_size": len(prep.vocab), "channels": 0,
                                    "num_chars": len(prep.chars) if prep.chars is not None else 0},
                check_lengths=lambda cfg: [3, 17, int(cfg.data.max_length) + 9], sidecar=_onnx_sidecar,
                compare_real_steps=True)

TASK = Task(name="tag", prepare=prepare, load_prep=TagPreprocessing.load, build_model=build_model, collate=collate,
            forward=forward, loss=loss, predict=predict, score=score, load_inference=load_inference,
            write_predictions=write_predictions, baselines=baselines, metric_names=("accuracy", "macro_f1"),
            chance_loss=uniform_class_loss, baseline=("accuracy", "most_frequent_tag", True),
            headline_score=accuracy_score, label_noun="tags", describe_model=describe_model,
            estimator=EstimatorSpec("SequenceTagger", TaggerHooks, ESTIMATOR_DOC), monitor=monitor, onnx=ONNX,
            title="token classification", hub_tasks=("token-classification", None),
            rows_independent=True, loss_count=loss_count)
