"""Checking values: each against its field's type (`coerce`), a whole Config against the rule tables
(`check`: choices, hard ranges), and the field guide's recommended ranges (`guide_warnings`)."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import TYPE_CHECKING, Any

from rnnkit.config import rules
from rnnkit.config.registry import load_families, task_names
from rnnkit.config.schema import flatten
from rnnkit.errors import ConfigError, shorten

if TYPE_CHECKING:
    from rnnkit.config.runconfig import Config


def field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def nearest(key: str, options) -> str:
    match = difflib.get_close_matches(key, list(options), n=1, cutoff=0.5)
    return f" Did you mean {match[0]!r}?" if match else f" Valid keys: {', '.join(sorted(options))}."


def coerce(key: str, value: Any, annotation: Any) -> Any:
    """Check `value` against the field's type; ints are accepted for floats."""
    args = typing.get_args(annotation)
    is_optional = typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args
    if value is None:
        if is_optional:
            return None
        raise ConfigError(f"config key {key!r}: null is not allowed; give a value.")
    base = next((a for a in args if a is not type(None)), annotation) if is_optional else annotation
    origin = typing.get_origin(base)
    if origin is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"config key {key!r}: expected a list, got {shorten(repr(value))}.")
        (item,) = typing.get_args(base)
        return [coerce(key, v, item) for v in value]
    if base is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r}: expected true or false, got {shorten(repr(value))}.")
    if base is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r}: expected an integer, got {shorten(repr(value))}.")
    if base is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"config key {key!r}: expected a number, got {shorten(repr(value))}.")
    if base is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"config key {key!r}: expected a string, got {shorten(repr(value))}.")
    return value


def check(cfg: Config) -> None:
    load_families()
    flat = flatten(cfg.to_dict())
    for key, options in {"task": task_names(), **rules.CHOICES}.items():
        if flat[key] not in options:
            raise ConfigError(f"config key {key!r}: {shorten(repr(flat[key]))} is not one of {', '.join(options)}.")
    for key, (low, high) in rules.RANGES.items():
        value = flat[key]
        if value is None:
            continue
        strict = key in rules.EXCLUSIVE_LOW
        if (low is not None and (value <= low if strict else value < low)) or (high is not None and value > high):
            bound = f"{'>' if strict else '>='} {low}" + ("" if high is None else f" and <= {high}")
            hint = f" ({rules.GUIDE_RANGES[key][2]})" if key in rules.GUIDE_RANGES else ""
            raise ConfigError(f"config key {key!r}: {shorten(repr(value))} is out of range; it must be {bound}"
                              f"{hint}.")
    refit = cfg.train.refit
    if not (isinstance(refit, bool) or refit == "auto"):  # YAML's false/true are bools; 0 and 1 are not
        raise ConfigError(f"config key 'train.refit': {shorten(repr(refit))} is not one of false, true, auto.")
    positions = cfg.train.max_batch_positions
    if not (positions == "auto" or (isinstance(positions, int) and not isinstance(positions, bool) and positions >= 0)):
        raise ConfigError(f"config key 'train.max_batch_positions': {shorten(repr(positions))} is neither auto nor a "
                          "whole number of padded positions (0 = batches run whole); give e.g. auto or 20000.")
    d = cfg.data
    window = d.window_length or d.max_length
    if d.window_stride is not None and d.window_stride > window:
        raise ConfigError(f"config key 'data.window_stride': {d.window_stride} is longer than the window, "
                          f"{window} steps (data.window_length, null: data.max_length), so the windows would skip the "
                          "steps between them; give a stride of at most the window length (null: no overlap).")
    if d.truncate_head >= 1 and d.truncate_head != int(d.truncate_head):
        raise ConfigError(f"config key 'data.truncate_head': {d.truncate_head:g} is neither a share (below 1) nor a "
                          "whole count of steps (1 or more); give e.g. 0.25 or 128.")
    if d.val_fraction + d.test_fraction >= 0.95:
        raise ConfigError("config keys 'data.val_fraction' + 'data.test_fraction' must leave data for training "
                          f"(sum {d.val_fraction + d.test_fraction:.2f} >= 0.95).")


def guide_warnings(cfg: Config) -> list[str]:
    """Values outside the guide's recommended ranges (allowed, but worth a second look)."""
    flat = flatten(cfg.to_dict())
    out = []
    for key, (low, high, why) in rules.GUIDE_RANGES.items():
        v = flat[key]
        if v is not None and not (low <= v <= high):
            out.append(f"{key}={v} is outside {low}-{high}: {why}.")
    return out
