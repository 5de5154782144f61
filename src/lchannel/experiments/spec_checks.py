"""What a spec may say and the checks that say what is wrong: the accepted keys, the
fields a spec may set, :class:`SpecError`, and the helpers that merge a cell's tables
into a validated :class:`~lchannel.run.config.TrainConfig`."""

from __future__ import annotations

import copy
import inspect
from typing import TYPE_CHECKING, Any

from ..channels import REGISTRY, TRANSFORM_OPTIONS, split_name
from ..channels.feedback import FeedbackInit
from ..run.config import TrainConfig
from ..engine.train import METRICS

if TYPE_CHECKING:
    from .spec import Axis

TOP_KEYS = ("name", "description", "source", "plugins", "base", "axes", "patch", "report", "alignment")
AXIS_KEYS = ("name", "title", "levels")
LEVEL_KEYS = ("label", "value", "set", "only")
PATCH_KEYS = ("where", "set")
REPORT_KEYS = ("layout", "rows", "columns", "lines", "panels", "x", "metric", "title")
ALIGNMENT_KEYS = ("enabled", "probe", "every")
LAYOUTS = ("table", "curves", "final", "maps")
# Accuracies first, test before train: a report shows test accuracy unless told otherwise.
REPORT_METRICS = tuple(sorted(METRICS, key=lambda m: (m.endswith("loss"), m.startswith("train"))))
# Fields a spec may not set: where the data lives and the device are the runner's business,
# and seeds are a property of the whole spec (set them in [base]).
RUNNER_FIELDS = ("data_dir", "device")
SET_FIELDS = tuple(f for f in TrainConfig.fields() if f not in RUNNER_FIELDS + ("seeds",))
BASE_FIELDS = tuple(f for f in TrainConfig.fields() if f not in RUNNER_FIELDS)
SPEC_SUFFIXES = (".toml", ".yaml", ".yml")
# What [base] must set: without them a spec would silently train TrainConfig's defaults
# (the full MNIST protocol, 100 epochs).
BASE_REQUIRED = ("dataset", "epochs")


class SpecError(ValueError):
    """A spec that does not validate; the message names the bad key and what is accepted."""


def need_value(cond: Any, loc: str, value: Any, accepted: str) -> None:
    if not cond:
        raise SpecError(f"{loc}: {value!r} is not accepted; expected {accepted}")


def unknown_keys(d: dict, accepted, loc: str) -> None:
    bad = [k for k in d if k not in accepted]
    if bad:
        s = "s" if len(bad) > 1 else ""
        raise SpecError(f"{loc}: unknown key{s} {', '.join(repr(k) for k in bad)}; accepted keys: {list(accepted)}")


def is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def as_list(v) -> list:
    return list(v) if isinstance(v, (list, tuple)) else [v]


def plain(d):
    """TOML/YAML values as plain Python (tomllib gives plain dicts and lists already)."""
    if isinstance(d, dict):
        return {str(k): plain(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [plain(v) for v in d]
    return d


def labels_exist(labels: list, axis: Axis, loc: str) -> None:
    for lab in labels:
        need_value(lab in axis.labels(), loc, lab, f"labels of axis {axis.name!r}, from {axis.labels()}")


def check_set(s: dict, fields: tuple, loc: str) -> None:
    """Unknown keys in a config table (and in its channel / channel.feedback tables)."""
    bad = [k for k in s if k not in fields]
    if bad:
        hint = ""
        if any(k in RUNNER_FIELDS for k in bad):
            hint = " (data_dir and device are runner options: --data-dir, --device)"
        elif "seeds" in bad:
            hint = " (seeds belong in [base]; use --seeds for a quick look)"
        raise SpecError(f"{loc}: unknown key{'s' if len(bad) > 1 else ''} {', '.join(repr(k) for k in bad)}{hint}; "
                        f"accepted keys: {list(fields)}")
    ch = s.get("channel")
    if ch is None:
        return
    need_value(isinstance(ch, dict), f"{loc}.channel", ch, "a table of learning-channel options")
    accepted = channel_option_names()
    bad = [k for k in ch if k not in accepted]
    if bad:
        raise SpecError(f"{loc}.channel: unknown option{'s' if len(bad) > 1 else ''} {', '.join(repr(k) for k in bad)}; "
                        f"accepted options: {accepted}")
    topo = ch.get("topology")
    if isinstance(topo, dict):
        # {h: [k, ...]}: TOML keys are strings; the config reads them with int().
        for h, ks in topo.items():
            need_value(str(h).strip().isdigit(), f"{loc}.channel.topology", h,
                  "hidden-layer numbers as keys, like { 1 = [3], 2 = [3] } (layer h receives from layers k)")
            need_value(isinstance(ks, list) and all(is_int(k) or (isinstance(k, str) and k.strip().isdigit()) for k in ks),
                  f"{loc}.channel.topology.{h}", ks, "a list of layer numbers, like [3]")
    fb = ch.get("feedback")
    if fb is not None:
        need_value(isinstance(fb, dict), f"{loc}.channel.feedback", fb, "a table {distribution = ..., n = ..., mean = ...}")
        fields_fb = list(FeedbackInit.__dataclass_fields__)
        bad = [k for k in fb if k not in fields_fb]
        if bad:
            raise SpecError(f"{loc}.channel.feedback: unknown key{'s' if len(bad) > 1 else ''} "
                            f"{', '.join(repr(k) for k in bad)}; accepted keys: {fields_fb}")


def check_values(base: dict, s: dict, loc: str) -> None:
    """Validate a level's or patch's plain (non-channel) values on top of the base, so a bad
    value is blamed on the table that sets it."""
    values = {k: v for k, v in s.items() if k not in ("channel", "algorithm")}
    if not values:
        return
    d = {k: v for k, v in base.items() if k not in ("channel", "algorithm")}
    d.update(values)
    cell_config(d, loc)


def channel_option_names() -> list[str]:
    """Every option name some learning channel accepts (constructor keywords of the
    algorithm classes, plus the transform shortcuts)."""
    names: set[str] = set(TRANSFORM_OPTIONS)
    for cls in {entry.cls for entry in REGISTRY.values() if entry.cls is not None}:
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None:
                continue
            for p in inspect.signature(init).parameters.values():
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                    names.add(p.name)
    names.discard("transforms")  # objects, not something a text file can hold
    return sorted(names)


def _accepted_by(algorithm: str) -> list[str]:
    base, _ = split_name(algorithm)
    cls = REGISTRY[base].cls
    init = cls.__init__
    names = {p.name for p in inspect.signature(init).parameters.values()
             if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    names.discard("transforms")
    return sorted(names | set(TRANSFORM_OPTIONS))


def cell_config(d: dict, loc: str) -> TrainConfig:
    """A validated TrainConfig from a merged table; errors say where they come from."""
    algorithm = d.get("algorithm", TrainConfig.algorithm)
    ch = d.get("channel") or {}
    if isinstance(ch, dict) and isinstance(algorithm, str):
        try:
            accepted = _accepted_by(algorithm)
        except ValueError:
            accepted = None  # a bad algorithm name: TrainConfig.validate names it below
        if accepted is not None:
            bad = [k for k in ch if k not in accepted]
            if bad:
                raise SpecError(f"{loc}: channel option{'s' if len(bad) > 1 else ''} {', '.join(repr(k) for k in bad)} "
                                f"not accepted by algorithm {algorithm!r}; it accepts {accepted}")
    try:
        cfg = TrainConfig.from_dict(copy.deepcopy(d))
    except (ValueError, TypeError) as err:
        raise SpecError(f"{loc}: {err}") from None
    return cfg


def merge(dst: dict, src: dict) -> dict:
    """Merge ``src`` into ``dst``; ``channel`` (and its ``feedback``) merge key by key."""
    for k, v in src.items():
        if k == "channel" and isinstance(v, dict):
            ch = dst.setdefault("channel", {})
            for ck, cv in v.items():
                if ck == "feedback" and isinstance(cv, dict) and isinstance(ch.get("feedback"), dict):
                    ch["feedback"] = {**ch["feedback"], **cv}
                else:
                    ch[ck] = copy.deepcopy(cv)
        else:
            dst[k] = copy.deepcopy(v)
    return dst


def allowed(combo, labels: dict) -> bool:
    for lv in combo:
        for other, ok in lv.only.items():
            if labels[other] not in ok:
                return False
    return True


def matches(where: dict, labels: dict) -> bool:
    return all(labels[k] in v for k, v in where.items())


def fmt_labels(labels: dict) -> str:
    return "{" + ", ".join(f"{k}={v!r}" for k, v in labels.items()) + "}"
