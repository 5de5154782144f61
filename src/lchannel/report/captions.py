"""What a run figure's caption says (:mod:`.plots`): the options that define the
comparison (:func:`describe_runs`), and the lines that coincide by construction, the
registry's declared equivalences (:func:`coinciding_runs`), stated only where the
recorded curves are identical (:func:`coincident_lines`, :func:`coincidence_note`)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from ..channels.canonical import coincidence_reason, coincident_form
from ..run.config import TrainConfig
from ..engine.train import History

# Config fields that the caption names in its own words, or that are not the experiment's.
_CAPTION_OWN = ("dataset", "architecture", "seeds", "epochs", "subset", "algorithm", "data_dir", "device")


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def _settings(cfg: TrainConfig) -> dict:
    """A config's settings for a caption: channel options under their own names, the
    output layer resolved, without what the caption names in its own words."""
    d = {k: v for k, v in cfg.to_dict().items() if k not in _CAPTION_OWN and k != "channel"}
    d["output"] = cfg.output_pair
    return _flat({**d, **cfg.channel})


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v).replace(" ", "")


def _count(values: set[int], unit: str) -> str:
    lo, hi = min(values), max(values)
    return f"{lo} {unit}{'s' if lo != 1 else ''}" if lo == hi else f"{lo}-{hi} {unit}s"


def describe_runs(configs: Sequence[TrainConfig]) -> str:
    """The options that define a comparison of ``configs`` (one per line), for a caption:
    data set, architecture, seeds, epochs and subset, then every setting (learning-channel
    options flattened to their own names) that all lines share and that differs from
    lchannel's defaults (paper 1's MNIST protocol), e.g.
    ``mnist, A[784,100,100,100,100,10], 5 seeds, 5 epochs, subset 2000, quantize_bits=3``.
    """
    if not configs:
        return ""
    c0 = configs[0]
    parts = []
    if len({c.dataset for c in configs}) == 1:
        parts.append(c0.dataset)
    if len({str(c.arch) for c in configs}) == 1:
        parts.append(c0.arch if c0.is_conv else "A[" + ",".join(map(str, c0.sizes)) + "]")
    parts.append(_count({len(c.seeds) for c in configs}, "seed"))
    parts.append(_count({c.epochs for c in configs}, "epoch"))
    subsets = {c.subset for c in configs}
    if len(subsets) == 1 and c0.subset:
        parts.append(f"subset {c0.subset}")
    flat = [_settings(c) for c in configs]
    default = _settings(TrainConfig(dataset=c0.dataset))
    for key, v in flat[0].items():
        if all(key in f and json.dumps(f[key], default=str) == json.dumps(v, default=str) for f in flat) \
                and (key not in default or default[key] != v):
            parts.append(f"{key}={_fmt(v)}")
    return ", ".join(parts)


def coinciding_runs(configs: dict[str, TrainConfig]) -> list[tuple[list[str], str]]:
    """Groups of line labels whose runs compute the same thing by construction, with why:
    their configs are equal once each learning channel is replaced by its coincident form
    (:func:`lchannel.channels.canonical.coincident_form`: the registry's declared
    equivalences, such as BP (no f') = SBP (no f')).  ``configs`` maps a line's label to
    the config it was trained with; groups keep the order of ``configs``."""
    groups: dict[str, list[str]] = {}
    for lab, cfg in configs.items():
        d = cfg.to_dict()
        d.pop("data_dir", None)
        d["algorithm"], d["channel"] = coincident_form(cfg.algorithm, cfg.channel)
        groups.setdefault(json.dumps(d, sort_keys=True, default=str), []).append(lab)
    return [(labs, coincidence_reason({configs[lab].named()[0] for lab in labs}))
            for labs in groups.values() if len(labs) > 1]


def same_values(a, b) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))


def identical_curves(curves: dict[str, History], labels: Sequence[str],
                     metrics: Sequence[str] | None = None) -> bool:
    """Whether the runs of ``labels`` recorded exactly the same ``metrics`` (default: every
    metric of the History) at the same epochs, every member (NaN equal to NaN)."""
    if len(labels) < 2 or any(lab not in curves for lab in labels):
        return False
    first = curves[labels[0]]
    for lab in labels[1:]:
        h = curves[lab]
        if list(h.seeds) != list(first.seeds) or list(h.diverged_at) != list(first.diverged_at):
            return False
        for m in (first.metrics if metrics is None else metrics):
            if m not in h.metrics:
                return False
            (xa, va), (xb, vb) = first.curve(m), h.curve(m)
            if list(xa) != list(xb) or not same_values(va, vb):
                return False
    return True


def coincident_lines(curves: dict[str, History], coincide: Sequence[tuple[Sequence[str], str]] | None,
                     metrics: Sequence[str] | None = None) -> list[tuple[list[str], str]]:
    """The groups of ``coincide`` (:func:`coinciding_runs`) whose recorded curves really
    are identical: a declared equivalence is only stated where the numbers show it."""
    return [(list(labs), why) for labs, why in (coincide or ())
            if identical_curves(curves, list(labs), metrics)]


def _and(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def coincidence_note(groups: Sequence[tuple[Sequence[str], str]], drawn: bool = True) -> str:
    """The caption's (or a table's) sentence on lines that coincide by construction."""
    out = []
    for labs, why in groups:
        text = f"{_and(labs)} coincide by construction ({why}): identical numbers"
        if drawn:
            text += f"; {_and(labs[:-1])} drawn wider underneath {labs[-1]}"
        out.append(text + ".")
    return " ".join(out)
