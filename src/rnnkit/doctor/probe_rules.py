"""Rules on the live probes: the `{"kind": "probe", ...}` records that `rnnkit.training.probes.Probe` writes to
metrics.jsonl every `train.probe_every` steps (they reach `Evidence.events`, being neither steps nor epochs).

    code                 the probe's numbers it reads
    gradients.vanishing  grad_norm of the first recurrent layer / of the last (per probe)
    gradients.exploding  grad_norm_total (pre-clip) against clip_norm, or its growth when clipping is off
    saturation           gate_saturation (share of sigmoid gates < 0.05 or > 0.95, first layer)
    dead_units           dead_output_share (encoder output units constant over the batch)
    updates.too_small    update_ratio (||w_after - w_before|| / ||w_before||, median over the recurrent layers)
    updates.too_large    the same, above the other bound

Each rule wants the condition on most probes (SUSTAINED_SHARE of at least MIN_PROBES), not on one: a single
probe sees one batch of one step. A run without probe records (train.probe_every off, or a run shorter than
its first probe) gets no finding from here. Thresholds are module constants, so tests drive each rule across
them; `PROBE_RULES` is the tuple of rules (each Evidence -> list of Findings), as `rules.RULES` is.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable

from rnnkit.doctor.advice import effective_lr, lr_sets
from rnnkit.doctor.evidence import Evidence
from rnnkit.doctor.finding import Finding

# A condition counts when it holds on at least this share of the probes, and there are this many probes:
# one probe is one batch at one step (an outlier batch, a warm-up step); three agreeing out of five are not.
SUSTAINED_SHARE = 0.6
MIN_PROBES = 3
# Vanishing: the first recurrent layer's gradient norm below this fraction of the last layer's. Healthy stacks
# stay within a factor of 10 or so (the layers differ in size, not in kind); 1e-3 means the first layer learns
# a thousand times slower than the last, which no size difference explains.
VANISHING_RATIO = 1e-3
# Exploding: the pre-clip gradient norm above this many times optim.clip_norm (clipping then throws away over
# 90% of the gradient's length on every such step; a norm just above the threshold is normal and harmless)...
EXPLODING_FACTOR = 10.0
# ...or, with clipping off, above this many times the norm at the first probe.
EXPLODING_GROWTH = 100.0
# Gate saturation: more than half of the sigmoid gates pinned near 0 or 1 (their gradient below 0.05): those
# gates no longer learn, and the cell's memory is stuck open or shut. Healthy runs stay far below (a few %).
SATURATION_SHARE = 0.5
# Dead units: more than half of the encoder's output units give the same value for every position of a batch.
DEAD_SHARE = 0.5
# Update size per step, ||delta w|| / ||w||: the rule of thumb is about 1e-3 (AdamW at the guide's 1e-3 to 1e-2
# gives 1e-3 to 1e-2). Below 1e-6 the weights would need a million steps to change by their own size (the
# learning rate is far too low, or decayed to nothing); above 1e-1 each step rewrites a tenth of the weights.
UPDATE_TOO_SMALL = 1e-6
UPDATE_TOO_LARGE = 1e-1

GRADIENT_TITLE = "Gradients flowing backwards?"


def probes(ev: Evidence) -> list[dict]:
    """The run's probe records, in order."""
    return [e for e in ev.events if e.get("kind") == "probe"]


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _sustained(values: list, holds: Callable[[float], bool]) -> tuple[int, int] | None:
    """(probes where it holds, probes with a value) when `holds` is true on most of at least MIN_PROBES probes
    (SUSTAINED_SHARE), else None."""
    known = [v for v in values if _number(v)]
    hits = sum(1 for v in known if holds(v))
    if len(known) < MIN_PROBES or hits < SUSTAINED_SHARE * len(known):
        return None
    return hits, len(known)


def _lower_lr(ev: Evidence, factor: float) -> str:
    """`factor` x below the rate that runs (optim.min_lr floors optim.lr), lowering the floor with it if needed."""
    return "a lower learning rate: " + " ".join(f"--set {x}" for x in lr_sets(ev.cfg, effective_lr(ev.cfg) / factor))


def _scaling_advice(ev: Evidence) -> list[str]:
    out = []
    if not ev.cfg.data.standardize:
        out.append("standardize numeric inputs: --set data.standardize=true")
    if not ev.cfg.model.layer_norm:
        out.append("normalise each layer's output: --set model.layer_norm=true")
    return out


def _gradient_ratios(record: dict) -> float | None:
    """grad_norm(first recurrent layer) / grad_norm(last) of one probe; None with fewer than two layers."""
    layers, norms = record.get("recurrent") or [], record.get("grad_norm") or {}
    if len(layers) < 2:
        return None
    first, last = norms.get(layers[0]), norms.get(layers[-1])
    if not (_number(first) and _number(last)) or last <= 0:
        return None
    return first / last


def vanishing(ev: Evidence) -> list[Finding]:
    """The first recurrent layer's gradients far below the last layer's on most probes."""
    found = probes(ev)
    ratios = [_gradient_ratios(r) for r in found]
    hit = _sustained(ratios, lambda v: v < VANISHING_RATIO)
    if hit is None:
        return []
    known = [v for v in ratios if _number(v)]
    layers = next(r["recurrent"] for r in found if _gradient_ratios(r) is not None)
    m = ev.cfg.model
    advice = []
    if m.num_layers > 1:
        advice.append(f"fewer layers: --set model.num_layers={m.num_layers - 1} (the guide: 1-2 for simple tasks)")
    if m.residual is not True:
        advice.append("skip connections between layers: --set model.residual=true")
    if not m.layer_norm:
        advice.append("--set model.layer_norm=true")
    advice.append(f"keep the gated cell (model.cell={m.cell}): a vanilla RNN would vanish faster still")
    advice.append("check clipping: it scales every layer alike, so it cannot cause this, but a tiny "
                  f"optim.clip_norm (now {ev.cfg.optim.clip_norm}) hides how small the first layer's share is")
    return [Finding(
        code="gradients.vanishing", severity="warning", title=GRADIENT_TITLE,
        evidence={"first_layer": layers[0], "last_layer": layers[-1], "ratio_median": statistics.median(known),
                  "ratio_min": min(known), "probes_below": hit[0], "probes": hit[1], "threshold": VANISHING_RATIO,
                  "num_layers": m.num_layers, "cell": m.cell},
        explanation=f"on {hit[0]} of {hit[1]} probes the gradient norm of the first recurrent layer ({layers[0]}) "
                    f"was below {VANISHING_RATIO:g} of the last layer's ({layers[-1]}; median ratio "
                    f"{statistics.median(known):.2g}): the gradient vanishes on its way down the stack, and the "
                    "lower layers barely learn.",
        advice=advice)]


def exploding(ev: Evidence) -> list[Finding]:
    """Pre-clip gradient norms far above optim.clip_norm on most probes (or, unclipped, far above where they
    started). About the norms the probes saw; the divergence of the loss is another rule's."""
    found = [r for r in probes(ev) if _number(r.get("grad_norm_total"))]
    if not found:
        return []
    clip = found[-1].get("clip_norm", ev.cfg.optim.clip_norm)
    norms = [r["grad_norm_total"] for r in found]
    if clip is not None:
        limit, against = EXPLODING_FACTOR * clip, f"{EXPLODING_FACTOR:g}x optim.clip_norm={clip:g}"
    else:
        limit, against = EXPLODING_GROWTH * norms[0], f"{EXPLODING_GROWTH:g}x the first probe's norm {norms[0]:.3g}"
    hit = _sustained(norms, lambda v: v > limit)
    if hit is None:
        return []
    clipped = [r.get("clipped_share") for r in found if _number(r.get("clipped_share"))]
    advice = [_lower_lr(ev, 3)]
    if clip is None:
        advice.append("turn gradient clipping on: --set optim.clip_norm=1.0")
    advice += _scaling_advice(ev)
    advice.append(f"shorter sequences: --set data.max_length={max(ev.cfg.data.max_length // 2, 1)} (the gradient "
                  "through time grows with length)")
    return [Finding(
        code="gradients.exploding", severity="warning", title=GRADIENT_TITLE,
        evidence={"grad_norm_median": statistics.median(norms), "grad_norm_max": max(norms), "limit": limit,
                  "clip_norm": clip, "probes_above": hit[0], "probes": hit[1],
                  "clipped_share_mean": statistics.fmean(clipped) if clipped else None},
        explanation=f"on {hit[0]} of {hit[1]} probes the gradient norm before clipping was above {against} "
                    f"(median {statistics.median(norms):.3g}, max {max(norms):.3g}): the gradients explode"
                    + (", and clipping is all that keeps the steps bounded." if clip is not None else
                       ", and nothing bounds the steps."),
        advice=advice,
        action=f"every step was clipped to norm {clip:g}" if clip is not None else None)]


def saturation(ev: Evidence) -> list[Finding]:
    """Most of the first layer's sigmoid gates pinned near 0 or 1 on most probes."""
    found = probes(ev)
    shares = [r.get("gate_saturation") for r in found]
    hit = _sustained(shares, lambda v: v > SATURATION_SHARE)
    if hit is None:
        return []
    known = [v for v in shares if _number(v)]
    return [Finding(
        code="saturation", severity="warning", title="Gates saturated",
        evidence={"gate_saturation_median": statistics.median(known), "gate_saturation_max": max(known),
                  "probes_above": hit[0], "probes": hit[1], "threshold": SATURATION_SHARE, "cell": ev.cfg.model.cell,
                  "lr": ev.cfg.optim.lr},
        explanation=f"on {hit[0]} of {hit[1]} probes more than {SATURATION_SHARE:.0%} of the first layer's sigmoid "
                    f"gates were below 0.05 or above 0.95 (median {statistics.median(known):.0%}): saturated gates "
                    "pass almost no gradient, so they stop learning, and the cell's memory stays stuck open or shut. "
                    "Large weights from a high learning rate or badly scaled inputs drive the gates there.",
        advice=[_lower_lr(ev, 3), *_scaling_advice(ev),
                "check the input scale: values far outside -3..3 after preprocessing push every gate to its limit"])]


def dead_units(ev: Evidence) -> list[Finding]:
    """Most encoder output units constant over the batch on most probes."""
    found = probes(ev)
    shares = [r.get("dead_output_share") for r in found]
    hit = _sustained(shares, lambda v: v > DEAD_SHARE)
    if hit is None:
        return []
    known = [v for v in shares if _number(v)]
    h = ev.cfg.model.hidden_size
    return [Finding(
        code="dead_units", severity="warning", title="Dead units",
        evidence={"dead_output_share_median": statistics.median(known), "dead_output_share_max": max(known),
                  "probes_above": hit[0], "probes": hit[1], "threshold": DEAD_SHARE, "hidden_size": h},
        explanation=f"on {hit[0]} of {hit[1]} probes more than {DEAD_SHARE:.0%} of the encoder's output units gave "
                    f"the same value at every position of the batch (median {statistics.median(known):.0%}): they "
                    "carry no information about the input, so that share of the model is wasted (saturated "
                    "cells, or inputs that do not vary).",
        advice=[_lower_lr(ev, 3), *_scaling_advice(ev),
                "check that the inputs vary: constant or all-padding columns give constant units",
                f"if the task needs fewer units: --set model.hidden_size={max(h // 2, 1)}"])]


def _update_ratio(record: dict) -> float | None:
    """The probe's update/weight ratio: the median over the recurrent layers (all groups when there are none)."""
    ratios = record.get("update_ratio") or {}
    names = [n for n in record.get("recurrent") or [] if n in ratios] or list(ratios)
    values = [ratios[n] for n in names if _number(ratios[n])]
    return statistics.median(values) if values else None


def updates(ev: Evidence) -> list[Finding]:
    """Updates far too small (nothing learns) or far too large (each step rewrites the weights) on most probes."""
    found = probes(ev)
    ratios = [_update_ratio(r) for r in found]
    known = [v for v in ratios if _number(v)]
    o = ev.cfg.optim
    lrs = [r["lr"] for r in found if _number(r.get("lr"))]
    evidence = {"update_ratio_median": statistics.median(known) if known else None,
                "update_ratio_min": min(known, default=None), "update_ratio_max": max(known, default=None),
                "lr": o.lr, "min_lr": o.min_lr, "lr_at_probes": [min(lrs), max(lrs)] if lrs else None}
    small = _sustained(ratios, lambda v: v < UPDATE_TOO_SMALL)
    if small is not None:
        advice = [f"a higher learning rate: --set optim.lr={max(o.lr * 100, 1e-3):.3g} (the guide: 1e-3 to 1e-2)"]
        if o.min_lr < 1e-6:
            advice.append("a floor under the schedule: --set optim.min_lr=1e-5")
        if o.warmup_epochs > 5:
            advice.append("a shorter warm-up: --set optim.warmup_epochs=1")
        return [Finding(
            code="updates.too_small", severity="warning", title="Learning rate too low?",
            evidence=evidence | {"probes_below": small[0], "probes": small[1], "threshold": UPDATE_TOO_SMALL},
            explanation=f"on {small[0]} of {small[1]} probes a step changed the recurrent weights by less than "
                        f"{UPDATE_TOO_SMALL:g} of their size (median {evidence['update_ratio_median']:.2g}; about "
                        "1e-3 is typical): at that pace the weights hardly move, and training learns next to "
                        "nothing however long it runs.",
            advice=advice)]
    large = _sustained(ratios, lambda v: v > UPDATE_TOO_LARGE)
    if large is not None:
        advice = [_lower_lr(ev, 10)]
        if o.clip_norm is None:
            advice.append("turn gradient clipping on: --set optim.clip_norm=1.0")
        if o.warmup_epochs == 0:
            advice.append("a warm-up: --set optim.warmup_epochs=1")
        return [Finding(
            code="updates.too_large", severity="warning", title="Learning rate too high?",
            evidence=evidence | {"probes_above": large[0], "probes": large[1], "threshold": UPDATE_TOO_LARGE},
            explanation=f"on {large[0]} of {large[1]} probes a step changed the recurrent weights by more than "
                        f"{UPDATE_TOO_LARGE:g} of their size (median {evidence['update_ratio_median']:.2g}; about "
                        "1e-3 is typical): each step overwrites much of what the last ones learned, and training "
                        "is unstable.",
            advice=advice)]
    return []


PROBE_RULES: tuple[Callable[[Evidence], list[Finding]], ...] = (vanishing, exploding, saturation, dead_units,
                                                                 updates)

__all__ = ["PROBE_RULES", "dead_units", "exploding", "probes", "saturation", "updates", "vanishing"]
