"""A cell's settings as people read them: the line naming a protocol, the settings that
differ from TrainConfig's defaults, and what a spec's cells share (``lchannel
experiments show``, reports' captions)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..run.config import TrainConfig

if TYPE_CHECKING:
    from .spec import Cell

def describe_protocol(cfg: TrainConfig) -> str:
    """One line naming what a config's numbers depend on most."""
    sched = f"lr {cfg.lr:g}" + (f", decay {cfg.decay:g}/update" if cfg.decay else ", no decay")
    data = cfg.dataset + (f" (first {cfg.subset} training examples)" if cfg.subset else "")
    images = "".join(f", {w}" for w, on in (("normalized", cfg.normalize),
                                             ("augmented (shift 10%, flip)", cfg.augment)) if on)
    return (f"{data}{images}, {cfg.arch_text}, {cfg.hidden}, {cfg.output_pair}, batch {cfg.batch_size}, {sched}"
            f"{f', momentum {cfg.momentum:g}' if cfg.momentum else ''}, {cfg.epochs} epochs")


# Settings `experiments show` always lists (the others only where they differ from
# TrainConfig's defaults): what a reader checks first against a paper's protocol.
ALWAYS_SHOWN = ("dataset", "architecture", "algorithm", "lr", "decay", "momentum", "batch_size", "epochs")
# Not settings of a cell: seeds are a column of their own; where data lives and the device
# are the runner's.
NOT_SHOWN = ("seeds", "data_dir", "device")


def _setting_text(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_setting_text(x) for x in v) + "]"
    if v is None:
        return "none"
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True, default=str)
    return str(v)


def _flatten(prefix: str, d: dict, out: dict) -> None:
    for k, v in d.items():
        if isinstance(v, dict) and v:
            _flatten(f"{prefix}.{k}", v, out)
        else:
            out[f"{prefix}.{k}"] = _setting_text(v)


def cell_settings(cfg: TrainConfig, also: set | frozenset = frozenset()) -> dict[str, str]:
    """``{setting: value as text}`` of a cell's config: the ALWAYS_SHOWN fields and those
    in ``also`` (the architecture resolved: the data set's default when the spec names
    none), every other field that differs from TrainConfig's default, and the channel
    options flattened as ``channel.<key>`` (``channel.feedback.distribution``), in
    TrainConfig's field order.  A field that applies only under another (``update_alpha``,
    ``update_lr``... under ``update_bits``) is shown wherever it applies, default or not:
    the reading of a quantized update is part of what a reader checks."""
    out: dict[str, str] = {}
    params, plain = TrainConfig.params(), TrainConfig()
    for name in TrainConfig.fields():
        if name in NOT_SHOWN:
            continue
        value = getattr(cfg, name)
        if name == "channel":
            _flatten("channel", value, out)
        elif name == "architecture":
            out[name] = cfg.arch_text
        elif name in ALWAYS_SHOWN or value != TrainConfig.default(name) or (
                (name in also or _applies_only_when_set(params[name][1], plain)) and _applies(params[name][1], cfg)):
            out[name] = _setting_text(value)
    return out


def _applies(p, cfg: TrainConfig) -> bool:
    return p.applies is None or bool(p.applies[0](cfg))


def _applies_only_when_set(p, plain: TrainConfig) -> bool:
    """A field that applies only under another setting (not under TrainConfig's defaults)."""
    return p.applies is not None and not p.applies[0](plain)


def shared_settings(cells: list[Cell]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The settings every cell has with the same value, and per cell the others (what
    makes the cells differ), from :func:`cell_settings`.  A field some cells set away from
    its default is shown for every cell (k = 1 beside k = 0, 2, 3)."""
    per_cell = [cell_settings(c.config) for c in cells]
    if not per_cell:
        return {}, []
    varied = {k for s in per_cell for k in s} & set(TrainConfig.fields())
    per_cell = [cell_settings(c.config, varied) for c in cells]
    shared = {k: v for k, v in per_cell[0].items() if all(s.get(k) == v for s in per_cell[1:])}
    return shared, [{k: v for k, v in s.items() if k not in shared} for s in per_cell]
