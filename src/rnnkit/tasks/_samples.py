"""The families' `Task.test_samples` hooks: what the report shows of the test predictions.

Each function takes (model, PreparedData, the test split's predictions in dataset order, cfg, device) at the
end of training and returns a short list of panels in the vocabulary of `rnnkit.training.samples` (scatter,
lines, heatmap, table). They read the prepared data and the predictions the run has just made; only the
sequence-to-sequence hook runs the model again, on a few sources, for their attention weights. Everything is
bounded (a few hundred points, a handful of rows) so that summary-sized files stay summary-sized.
"""

from __future__ import annotations

import numpy as np
import torch

MAX_POINTS = 500  # points of one scatter panel: a seeded sample of the test split beyond this
MAX_STEPS = 400  # steps of the test span drawn per forecast panel (its first ones)
MAX_PANELS = 3  # forecast: series x targets drawn; regression: targets drawn
SAMPLE_ROWS = 8  # generated sequences in the sample table
HEATMAPS = 3  # attention heat maps (the table's first rows)
MAX_TOKENS = 40  # tokens of a source or prediction drawn in a heat map


# --------------------------------------------------------------------------- regression


def regression_panels(model, data, preds: list, cfg, device) -> list[dict]:
    """Per target (at most MAX_PANELS): predicted against actual, in the target's units, with y = x and the
    training mean (the baseline's constant prediction)."""
    prep = data.prep
    examples = data.datasets["test"].examples
    pred = prep.to_units(torch.stack(preds).double().numpy())  # (N, K)
    true = np.stack([np.asarray(ex.extra["y"], dtype=np.float64) for ex in examples])  # (N, K)
    n = len(examples)
    pick = np.arange(n)
    if n > MAX_POINTS:  # seeded: the same run draws the same points
        pick = np.sort(np.random.default_rng(0).choice(n, MAX_POINTS, replace=False))
    panels = []
    for k, name in enumerate(prep.target_columns[:MAX_PANELS]):
        err = pred[:, k] - true[:, k]
        shown = f"{len(pick)} of {n}" if len(pick) < n else f"all {n}"
        panels.append({
            "kind": "scatter", "title": f"Predicted against actual {name}, test split",
            "xlabel": f"actual {name}", "ylabel": f"predicted {name}",
            "series": [{"label": "test sequence", "x": true[pick, k], "y": pred[pick, k]}],
            "identity": True, "hline": float(prep.target_mean[k]), "hline_label": "training mean (baseline)",
            "caption": (f"{shown} test sequences; on the dashed line y = x a prediction is exact; the dotted line is "
                        f"the training-mean baseline. RMSE {float(np.sqrt(np.mean(err ** 2))):.4g} in the "
                        "target's units."),
        })
    return panels


# --------------------------------------------------------------------------- forecasting


def forecast_panels(model, data, preds: list, cfg, device) -> list[dict]:
    """Per series and target (the first MAX_PANELS pairs): the actual values of the test span (and the history
    just before it), the model's forecasts and the naive and seasonal-naive forecasts from the same origins.

    Origins are taken H steps apart (H = forecast.horizon), each forecast covering the H steps after its origin,
    so every test step has one forecast of each kind and none reuses an actual value after its origin."""
    from rnnkit.data.windows import denormalize

    prep = data.prep
    horizon = int(cfg.forecast.horizon)
    history = max(int(cfg.forecast.input_length or 0), 2 * horizon)
    test = data.datasets["test"].examples
    by_series: dict[str, list[int]] = {}
    for i, ex in enumerate(test):
        by_series.setdefault(ex.extra["series"], []).append(i)
    earlier: dict[str, dict[int, np.ndarray]] = {}  # series -> position -> actual values (K,), before the test span
    for split in ("train", "val"):
        for ex in data.datasets[split].examples if split in data.datasets else []:
            seen = earlier.setdefault(ex.extra["series"], {})
            for h, row in enumerate(np.asarray(ex.extra["raw_target"])):
                seen[int(ex.extra["origin"]) + h] = row
    spans = (data.report or {}).get("spans") or {}
    panels = []
    for sid, rows in by_series.items():
        rows = sorted(rows, key=lambda i: test[i].extra["origin"])
        start = int(test[rows[0]].extra["origin"])  # the first test step
        actual: dict[int, np.ndarray] = {}
        for i in rows:
            for h, row in enumerate(np.asarray(test[i].extra["raw_target"])):
                actual[int(test[i].extra["origin"]) + h] = row
        forecasts: dict[str, dict[int, np.ndarray]] = {"model": {}, "naive": {}, "snaive": {}}
        last = -1
        for i in rows:
            ex = test[i]
            o = int(ex.extra["origin"])
            if o <= last or o - start >= MAX_STEPS:
                continue
            model_h = denormalize(preds[i].double().numpy(), prep.scalers[sid], prep.num_targets, prep.transform)
            for h in range(horizon):
                forecasts["model"][o + h] = model_h[h]
                forecasts["naive"][o + h] = np.asarray(ex.extra["naive"])[h]
                forecasts["snaive"][o + h] = np.asarray(ex.extra["snaive"])[h]
            last = o + horizon - 1
        end = min(max(actual) + 1, start + MAX_STEPS)
        before = sorted(p for p in earlier.get(sid, {}) if start - history <= p < start)
        xs = [*before, *range(start, end)]
        series_name = sid or "the series"
        for k, target in enumerate(prep.target_columns):
            if len(panels) >= MAX_PANELS:
                return panels

            def values(points: dict, k=k, xs=xs) -> list:
                return [float(points[p][k]) if p in points else None for p in xs]  # None: a gap in the line

            where = (f" from {spans['test'][0]}" if not panels and isinstance(spans.get("test"), list) else "")
            cut = f" (its first {MAX_STEPS} steps)" if max(actual) + 1 > end else ""
            how = ("one step ahead from every origin" if horizon == 1 else
                   f"{horizon} steps ahead from origins {horizon} steps apart")
            panels.append({
                "kind": "lines",
                "title": f"Forecasts against actuals, {target}" + (f", series {sid}" if sid else "") + ", test span",
                "xlabel": "steps from the start of the test span", "ylabel": target,
                "x": [p - start for p in xs],
                "lines": [{"label": "actual", "role": "actual",
                           "y": values({**earlier.get(sid, {}), **actual})},
                          {"label": "model", "role": "model", "y": values(forecasts["model"])},
                          {"label": "naive (last value)", "role": "baseline", "y": values(forecasts["naive"])},
                          {"label": f"seasonal naive (m={prep.seasonality})", "role": "baseline",
                           "y": values(forecasts["snaive"])}],
                "vline": 0, "vline_label": "test span starts",
                "caption": (f"{series_name}: the test span{where}{cut}, forecast {how}; left of the line, the "
                            "history before it (actual values only)."),
            })
    return panels


# --------------------------------------------------------------------------- sequence to sequence


def _text(tokens: list[str], how: str) -> str:
    from rnnkit.data.pairs import detokenize

    return detokenize(tokens, how)


def seq2seq_panels(model, data, preds: list, cfg, device) -> list[dict]:
    """A table of sample test sources with their references and the model's output (right and wrong ones
    alternating), and the attention heat maps of the first HEATMAPS of them: one row per generated token
    (and the end token), one column per source token."""
    prep = data.prep
    examples = data.datasets["test"].examples
    right, wrong = [], []
    for i, (ex, p) in enumerate(zip(examples, preds, strict=True)):
        refs = ex.extra.get("references") or [tuple(int(t) for t in ex.target[1:-1])]
        (right if tuple(p.ids) in {tuple(r) for r in refs} else wrong).append(i)
    both = min(len(right), len(wrong))
    order = [i for pair in zip(right[:both], wrong[:both], strict=True) for i in pair] + right[both:] + wrong[both:]
    chosen = order[:SAMPLE_ROWS]
    src_how, tgt_how = prep.source_tokenize, prep.target_tokenize
    rows = []
    for i in chosen:
        ex, p = examples[i], preds[i]
        refs = ex.extra.get("references") or [tuple(int(t) for t in ex.target[1:-1])]
        rows.append([_text(prep.source_vocab.decode(ex.inputs.tolist()), src_how),
                     " | ".join(_text(prep.target_vocab.decode(r), tgt_how) for r in refs[:3])
                     + (f" (+{len(refs) - 3} more)" if len(refs) > 3 else ""),
                     _text(prep.target_vocab.decode(p.ids), tgt_how), "yes" if i in right else "no"])
    beam = 0 if cfg.seq2seq.sample else cfg.seq2seq.beam
    decoder = "sampling" if beam == 0 else "greedy decoding" if beam == 1 else f"beam search (beam {beam})"
    panels = [{"kind": "table", "title": "Sample test predictions",
               "columns": ["source", "reference(s)", "prediction", "exact"], "rows": rows,
               "caption": (f"{len(chosen)} of {len(examples)} test sources, exactly right and wrong ones in turn "
                           f"({len(right)} right in all); decoded by {decoder}.")}]
    was_training = model.training
    model.eval()
    try:
        for i in chosen[:HEATMAPS]:
            ex, p = examples[i], preds[i]
            ids = list(p.ids)[:MAX_TOKENS]
            ended = len(p.ids) < model.decode_limit(cfg.seq2seq.max_decode_length) and len(ids) == len(p.ids)
            source = ex.inputs.to(device)[None]  # (1, S): the whole source, as decoding read it
            lengths = torch.tensor([source.shape[1]], dtype=torch.int64)
            mask = torch.ones_like(source, dtype=torch.bool)  # (1, S)
            target_in = torch.tensor([[prep.bos_id, *ids]], dtype=torch.long, device=device)  # (1, L)
            weights = model.attention_weights(source, lengths, mask, target_in)[0].float().cpu()  # (L, S)
            weights = weights[:, :MAX_TOKENS]  # drawn: the first MAX_TOKENS source tokens
            out_tokens = prep.target_vocab.decode(ids) + ["</s>"]
            if not ended:  # cut (at the limit or for the drawing): that last row is not a step that was decoded
                out_tokens, weights = out_tokens[:-1], weights[:-1]
            panels.append({
                "kind": "heatmap", "title": f"Attention: {rows[chosen.index(i)][0]} -> {rows[chosen.index(i)][2]}",
                "xlabel": "source token", "ylabel": "generated token",
                "columns": prep.source_vocab.decode(ex.inputs[:MAX_TOKENS].tolist()), "rows": out_tokens,
                "values": weights.numpy(),
                "caption": ("Each row is one decoding step: where the decoder attended while it generated that "
                            f"token (rows sum to 1); the prediction is {'right' if i in right else 'wrong'}."),
            })
    finally:
        model.train(was_training)
    return panels
