"""Declarative experiment specs: a base config, a grid of variations, a report layout.

A spec is a TOML (or YAML) file::

    name = "figure9"
    description = "Dropout in the learning channel"
    source = "paper 1, Figure 9"

    [base]                       # a TrainConfig: every run starts from it
    dataset = "mnist"
    epochs = 100
    seeds = [0, 1, 2, 3, 4]

    [[axes]]                     # one axis of the grid: a list of named levels
    name = "algorithm"
    levels = [
      { label = "BP",   set = { algorithm = "bp" } },
      { label = "RBP",  set = { algorithm = "rbp" } },
    ]

    [[axes]]
    name = "dropout"
    levels = [
      { label = "0%" },
      { label = "10%", value = 10, set = { channel = { lc_dropout = 0.1 } } },
    ]

    [[patch]]                    # extra settings for some cells of the grid
    where = { algorithm = "RBP", dropout = "10%" }
    set = { lr = 0.05 }

    [report]
    layout = "curves"            # table | curves | final | maps (f_k heat maps: rows x columns)
    lines = "dropout"
    panels = "algorithm"

The grid is the cartesian product of the axes' levels, minus the combinations a level
excludes with ``only = { other_axis = [labels] }``.  A cell's config is ``base``, then
each level's ``set``, then every matching ``patch`` (``channel`` tables merge key by
key).  A *run* is one cell and one seed.  Every mistake (an unknown key, a bad value, a
label that does not exist) is reported before any work starts, naming where in the spec
it is and what is accepted.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import json
import math
import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..channels import REGISTRY, TRANSFORM_OPTIONS, split_name
from ..plugins import use as use_plugins
from ..channels.feedback import FeedbackInit
from ..config import TrainConfig
from ..data import REGISTRY as DATASETS
from ..train import METRICS

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


# ------------------------------------------------------------------------------ model
@dataclass(frozen=True)
class Level:
    label: str
    value: Any = None
    set: dict = field(default_factory=dict)
    only: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Axis:
    name: str
    levels: tuple[Level, ...]
    title: str | None = None

    def labels(self) -> list[str]:
        return [lv.label for lv in self.levels]


@dataclass(frozen=True)
class Patch:
    where: dict
    set: dict


@dataclass(frozen=True)
class ReportLayout:
    layout: str = "table"
    rows: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    lines: str | None = None
    panels: str | None = None
    x: str | None = None
    metric: str = "test_acc"
    title: str | None = None


@dataclass(frozen=True)
class AlignmentOptions:
    """Alignment angles per epoch (``lchannel.alignment``) on a fixed probe batch: the
    first ``probe`` test examples, every ``every`` epochs (and before training)."""

    enabled: bool = True
    probe: int = 1000
    every: int = 1


# The overrides that change the protocol (a run under them is "shortened": reports mark it
# and never mix it with the spec's own runs); other seeds keep the protocol.
SHORTENING = frozenset({"epochs", "subset", "dataset"})


@dataclass(frozen=True)
class Overrides:
    """Quick-look overrides of the spec's protocol; recorded with every run they touch.

    ``dataset`` trains on another data set with the same inputs and outputs, e.g. the
    shipped 16k-row HIGGS subset (``higgs16k``) where the spec names the full HIGGS."""

    epochs: int | None = None
    seeds: tuple[int, ...] | None = None
    subset: int | None = None
    dataset: str | None = None

    def apply(self, cfg: TrainConfig) -> tuple[TrainConfig, dict]:
        """The overridden config and the overrides that changed it (the record)."""
        changes: dict = {}
        if self.epochs is not None and self.epochs != cfg.epochs:
            changes["epochs"] = self.epochs
        if self.subset is not None and self.subset != cfg.subset:
            changes["subset"] = self.subset
        if self.seeds is not None and list(self.seeds) != list(cfg.seeds):
            changes["seeds"] = list(self.seeds)
        if self.dataset is not None and self.dataset != cfg.dataset:
            changes["dataset"] = self.dataset
        return (cfg.replace(**changes) if changes else cfg), changes

    def validate(self) -> Overrides:
        if self.epochs is not None and not (_is_int(self.epochs) and self.epochs >= 1):
            raise SpecError(f"--epochs: {self.epochs!r} is not accepted; expected an integer >= 1")
        if self.subset is not None and not (_is_int(self.subset) and self.subset >= 1):
            raise SpecError(f"--subset: {self.subset!r} is not accepted; expected an integer >= 1")
        if self.dataset is not None and self.dataset not in DATASETS:
            raise SpecError(f"--dataset: {self.dataset!r} is not accepted; expected one of {sorted(DATASETS)}")
        if self.seeds is not None:
            s = list(self.seeds)
            seeds = TrainConfig.params()["seeds"][1].constraints[0]  # the same constraint as TrainConfig.seeds
            if not seeds.accepts(s):
                shown = ",".join(map(str, s)) if all(isinstance(x, int) for x in s) else repr(self.seeds)
                raise SpecError(f"--seeds: {shown!r} is not accepted; expected distinct integers in "
                                f"{seeds.item.describe().removeprefix('an integer in ')} like 0,1,2")
        return self

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in
                (("epochs", self.epochs), ("seeds", self.seeds), ("subset", self.subset),
                 ("dataset", self.dataset)) if v is not None}


@dataclass
class Cell:
    """One point of the grid: its labels on every axis and its config (all seeds)."""

    labels: dict[str, str]
    values: dict[str, Any]
    config: TrainConfig
    overrides: dict = field(default_factory=dict)
    position: int = 0

    @property
    def key(self) -> str:
        return self.config.key()

    @property
    def cell_id(self) -> str:
        """The labels as a canonical JSON string (the store's cell column)."""
        return json.dumps(self.labels, ensure_ascii=False)

    @property
    def title(self) -> str:
        return " / ".join(self.labels.values()) or "all"

    @property
    def shortened(self) -> bool:
        return bool(SHORTENING & set(self.overrides))


@dataclass
class Spec:
    name: str
    description: str
    base: dict
    axes: tuple[Axis, ...]
    patches: tuple[Patch, ...] = ()
    report: ReportLayout = ReportLayout()
    alignment: AlignmentOptions = AlignmentOptions()
    source: str = ""
    path: str | None = None

    def axis(self, name: str) -> Axis:
        for a in self.axes:
            if a.name == name:
                return a
        raise KeyError(name)

    @property
    def axis_names(self) -> list[str]:
        return [a.name for a in self.axes]

    def cells(self, overrides: Overrides | None = None, where: dict | None = None) -> list[Cell]:
        """Every cell of the grid, in axis order, with ``overrides`` applied; ``where``
        ({axis: [labels]}, see :meth:`check_where`) keeps only the matching cells."""
        overrides = (overrides or Overrides()).validate()
        where = self.check_where(where)
        out = []
        for combo in itertools.product(*(a.levels for a in self.axes)):
            labels = {a.name: lv.label for a, lv in zip(self.axes, combo)}
            if not _allowed(combo, labels) or not _matches(where, labels):
                continue
            d = copy.deepcopy(self.base)
            for lv in combo:
                _merge(d, lv.set)
            for p in self.patches:
                if _matches(p.where, labels):
                    _merge(d, p.set)
            cfg = _config(d, f"{self._where()}cell {_fmt_labels(labels)}")
            try:
                cfg, changed = overrides.apply(cfg)
            except ValueError as err:  # e.g. --dataset with other inputs than the spec's architecture
                raise SpecError(f"the overrides {overrides.to_dict()} do not fit cell {_fmt_labels(labels)}: {err}") from None
            values = {a.name: lv.value for a, lv in zip(self.axes, combo)}
            out.append(Cell(labels, values, cfg, changed, len(out)))
        return out

    def n_runs(self, overrides: Overrides | None = None) -> int:
        return sum(len(c.config.seeds) for c in self.cells(overrides))

    def check_where(self, where: dict | None) -> dict:
        """Validate a cell filter ``{axis: label or [labels]}`` (``--where axis=label``)."""
        out = {}
        for k, v in (where or {}).items():
            if k not in self.axis_names:
                raise SpecError(f"--where: axis {k!r} is not accepted; spec {self.name!r} has axes {self.axis_names}")
            labels = _as_list(v)
            _labels_exist(labels, self.axis(k), f"--where {k}")
            out[k] = labels
        return out

    def _where(self) -> str:
        return f"spec {self.name!r}: "


# ------------------------------------------------------------------------------ loading
def shipped_specs() -> dict[str, Path]:
    """Name -> path of every spec shipped in ``lchannel/experiments/specs``."""
    root = resources.files("lchannel.experiments") / "specs"
    out = {}
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".toml"):
            out[entry.name[:-5]] = Path(str(entry))
    return out


def resolve_spec(name_or_path: str | os.PathLike) -> Path:
    """A shipped spec name (``table1``) or a path to a spec file."""
    text = str(name_or_path)
    p = Path(text)
    if p.suffix in SPEC_SUFFIXES or os.sep in text or "/" in text:
        if p.is_dir():
            raise SpecError(f"spec file {text!r} is a folder; expected a .toml or .yaml spec file")
        if not p.is_file():
            raise SpecError(f"spec file {text!r} does not exist")
        return p
    shipped = shipped_specs()
    if text in shipped:
        return shipped[text]
    if p.is_file():
        return p
    raise SpecError(f"spec {text!r} is neither a shipped spec nor a file; shipped specs: {sorted(shipped)}")


def load_spec(name_or_path: str | os.PathLike) -> Spec:
    """Read, validate and return a spec (shipped name or path to .toml/.yaml)."""
    path = resolve_spec(name_or_path)
    raw = path.read_bytes()
    try:
        if path.suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:  # pragma: no cover - PyYAML is optional
                raise SpecError(f"{path}: reading YAML specs needs PyYAML (pip install pyyaml); or use TOML") from None
            data = yaml.safe_load(raw.decode())
        else:
            data = tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise SpecError(f"{path}: not valid TOML ({err})") from None
    except Exception as err:  # yaml.YAMLError without importing yaml at module level
        if type(err).__module__.startswith("yaml"):
            raise SpecError(f"{path}: not valid YAML ({err})") from None
        raise
    return parse_spec(data, default_name=path.stem, path=str(path))


def parse_spec(data: Any, default_name: str = "spec", path: str | None = None) -> Spec:
    """Validate a spec given as nested dicts (what TOML/YAML give) and build it."""
    where = f"spec {default_name!r}"
    if not isinstance(data, dict):
        raise SpecError(f"{where}: a spec must be a table of keys {list(TOP_KEYS)}")
    _unknown(data, TOP_KEYS, f"{where}: top level")
    name = data.get("name", default_name)
    _need(isinstance(name, str) and name.replace("-", "").replace("_", "").isalnum(), f"{where}: name", name,
          "a word of letters, digits, '-' and '_'")
    where = f"spec {name!r}"
    description = data.get("description")
    _need(isinstance(description, str) and description.strip(), f"{where}: description", description, "a non-empty string")
    source = data.get("source", "")
    _need(isinstance(source, str), f"{where}: source", source, "a string")
    plugins = data.get("plugins", [])
    _need(isinstance(plugins, list) and all(isinstance(p, str) and p.strip() for p in plugins), f"{where}: plugins",
          plugins, "a list of module names (each imported first: algorithms from outside lchannel, docs/extending.md)")
    try:
        use_plugins(plugins)  # before the cells are checked: they may name the plugins' algorithms
    except ValueError as err:
        raise SpecError(f"{where}: {err}") from None

    # [base]
    base = data.get("base")
    _need(isinstance(base, dict), f"{where}: base", base,
          f"a [base] table of TrainConfig fields setting at least {', '.join(BASE_REQUIRED)} (the protocol every "
          "run starts from)")
    missing = [k for k in BASE_REQUIRED if k not in base]
    if missing:
        raise SpecError(f"{where}: base: {', '.join(missing)} missing; [base] must set {', '.join(BASE_REQUIRED)} "
                        "explicitly (otherwise every run would silently train the default: the full MNIST protocol)")
    base = _plain(base)
    _check_set(base, BASE_FIELDS, f"{where}: base")
    _config(base, f"{where}: base")  # the base alone must be a valid config

    # [[axes]]
    axes_raw = data.get("axes", [])
    _need(isinstance(axes_raw, list) and all(isinstance(a, dict) for a in axes_raw), f"{where}: axes", axes_raw,
          "an array of tables [[axes]] with keys name and levels")
    axes: list[Axis] = []
    for i, a in enumerate(axes_raw):
        loc = f"{where}: axes[{i}]"
        _unknown(a, AXIS_KEYS, loc)
        aname = a.get("name")
        _need(isinstance(aname, str) and aname.isidentifier(), f"{loc}.name", aname, "an identifier like 'algorithm'")
        loc = f"{where}: axes[{i}] ({aname!r})"
        _need(aname not in [x.name for x in axes], f"{loc}.name", aname, "a name not used by another axis")
        title = a.get("title")
        _need(title is None or isinstance(title, str), f"{loc}.title", title, "a string")
        levels_raw = a.get("levels")
        _need(isinstance(levels_raw, list) and levels_raw and all(isinstance(lv, dict) for lv in levels_raw),
              f"{loc}.levels", levels_raw, "a non-empty array of tables {label = ..., set = {...}}")
        levels = []
        for j, lv in enumerate(levels_raw):
            lloc = f"{loc}.levels[{j}]"
            _unknown(lv, LEVEL_KEYS, lloc)
            label = lv.get("label")
            _need(isinstance(label, str) and label.strip(), f"{lloc}.label", label, "a non-empty string")
            _need(label not in [x.label for x in levels], f"{lloc}.label", label,
                  "a label not used by another level of this axis")
            value = lv.get("value")
            _need(value is None or isinstance(value, (int, float, str)) and not isinstance(value, bool),
                  f"{lloc}.value", value, "a number or a string")
            s = lv.get("set", {})
            _need(isinstance(s, dict), f"{lloc}.set", s, "a table of TrainConfig fields")
            s = _plain(s)
            _check_set(s, SET_FIELDS, f"{lloc}.set")
            only = lv.get("only", {})
            _need(isinstance(only, dict), f"{lloc}.only", only, "a table {axis = [labels]}")
            levels.append(Level(label, value, s, {k: _as_list(v) for k, v in only.items()}))
        axes.append(Axis(aname, tuple(levels), title))
    names = [a.name for a in axes]
    for a in axes:
        for j, lv in enumerate(a.levels):
            for other, labels in lv.only.items():
                loc = f"{where}: axes ({a.name!r}).levels[{j}] ({lv.label!r}).only"
                _need(other in names and other != a.name, f"{loc}", other,
                      f"another axis, one of {[n for n in names if n != a.name]}")
                _labels_exist(labels, next(x for x in axes if x.name == other), f"{loc}.{other}")
            _check_values(base, lv.set, f"{where}: axes ({a.name!r}).levels[{j}] ({lv.label!r}).set")

    # [[patch]]
    patches_raw = data.get("patch", [])
    _need(isinstance(patches_raw, list) and all(isinstance(p, dict) for p in patches_raw), f"{where}: patch",
          patches_raw, "an array of tables [[patch]] with keys where and set")
    patches = []
    for i, p in enumerate(patches_raw):
        loc = f"{where}: patch[{i}]"
        _unknown(p, PATCH_KEYS, loc)
        w = p.get("where")
        _need(isinstance(w, dict) and w, f"{loc}.where", w, "a non-empty table {axis = label or [labels]}")
        for k, v in w.items():
            _need(k in names, f"{loc}.where", k, f"an axis name, one of {names}")
            _labels_exist(_as_list(v), next(x for x in axes if x.name == k), f"{loc}.where.{k}")
        s = p.get("set")
        _need(isinstance(s, dict) and s, f"{loc}.set", s, "a non-empty table of TrainConfig fields")
        s = _plain(s)
        _check_set(s, SET_FIELDS, f"{loc}.set")
        _check_values(base, s, f"{loc}.set")
        patches.append(Patch({k: _as_list(v) for k, v in w.items()}, s))

    report = _parse_report(data.get("report", {}), names, axes, f"{where}: report")
    alignment = _parse_alignment(data.get("alignment", {}), f"{where}: alignment")
    spec = Spec(name, description.strip(), base, tuple(axes), tuple(patches), report, alignment, source, path)
    cells = spec.cells()  # validates every merged cell (channel options included)
    if not cells:
        raise SpecError(f"{where}: the grid is empty (every combination is excluded by 'only')")
    return spec


def _parse_report(r: Any, names: list[str], axes: list[Axis], loc: str) -> ReportLayout:
    _need(isinstance(r, dict), loc, r, f"a table with keys {list(REPORT_KEYS)}")
    _unknown(r, REPORT_KEYS, loc)
    layout = r.get("layout", "table")
    _need(layout in LAYOUTS, f"{loc}.layout", layout, f"one of {list(LAYOUTS)}")
    metric = r.get("metric", "test_acc")
    _need(metric in REPORT_METRICS, f"{loc}.metric", metric, f"one of {list(REPORT_METRICS)}")
    title = r.get("title")
    _need(title is None or isinstance(title, str), f"{loc}.title", title, "a string")

    def axis_list(key):
        v = _as_list(r.get(key, []))
        for n in v:
            _need(n in names, f"{loc}.{key}", n, f"axis names, from {names}")
        return tuple(v)

    def one_axis(key):
        v = r.get(key)
        _need(v is None or v in names, f"{loc}.{key}", v, f"one axis name, one of {names}")
        return v

    rows, columns = axis_list("rows"), axis_list("columns")
    _need(not set(rows) & set(columns), f"{loc}.columns", list(columns), "axes not already used as rows")
    lines, panels, x = one_axis("lines"), one_axis("panels"), one_axis("x")
    if layout == "final":
        _need(x is not None, f"{loc}.x", x, f"the axis whose level values go on the x axis, one of {names}")
        ax = next(a for a in axes if a.name == x)
        for lv in ax.levels:
            _need(isinstance(lv.value, (int, float)), f"{loc}.x: axis {x!r} level {lv.label!r} value", lv.value,
                  "a number (set 'value' on every level of the x axis)")
    if layout == "maps":  # paper 2, Figure 12: rows the algorithms, columns the k of f_k
        _need(len(rows) == 1, f"{loc}.rows", list(rows), "one axis name (the rows of the grid of maps)")
        _need(len(columns) == 1, f"{loc}.columns", list(columns), "one axis name (the columns, e.g. k)")
    return ReportLayout(layout, rows, columns, lines, panels, x, metric, title)


def _parse_alignment(a: Any, loc: str) -> AlignmentOptions:
    _need(isinstance(a, dict), loc, a, f"a table with keys {list(ALIGNMENT_KEYS)}")
    _unknown(a, ALIGNMENT_KEYS, loc)
    enabled = a.get("enabled", True)
    _need(isinstance(enabled, bool), f"{loc}.enabled", enabled, "true or false")
    probe = a.get("probe", 1000)
    _need(_is_int(probe) and probe >= 1, f"{loc}.probe", probe, "an integer >= 1 (examples of the test set)")
    every = a.get("every", 1)
    _need(_is_int(every) and every >= 1, f"{loc}.every", every, "an integer >= 1 (epochs)")
    return AlignmentOptions(enabled, probe, every)


# ------------------------------------------------------------------------------ helpers
def _need(cond: Any, loc: str, value: Any, accepted: str) -> None:
    if not cond:
        raise SpecError(f"{loc}: {value!r} is not accepted; expected {accepted}")


def _unknown(d: dict, accepted, loc: str) -> None:
    bad = [k for k in d if k not in accepted]
    if bad:
        s = "s" if len(bad) > 1 else ""
        raise SpecError(f"{loc}: unknown key{s} {', '.join(repr(k) for k in bad)}; accepted keys: {list(accepted)}")


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _as_list(v) -> list:
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _plain(d):
    """TOML/YAML values as plain Python (tomllib gives plain dicts and lists already)."""
    if isinstance(d, dict):
        return {str(k): _plain(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_plain(v) for v in d]
    return d


def _labels_exist(labels: list, axis: Axis, loc: str) -> None:
    for lab in labels:
        _need(lab in axis.labels(), loc, lab, f"labels of axis {axis.name!r}, from {axis.labels()}")


def _check_set(s: dict, fields: tuple, loc: str) -> None:
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
    _need(isinstance(ch, dict), f"{loc}.channel", ch, "a table of learning-channel options")
    accepted = channel_option_names()
    bad = [k for k in ch if k not in accepted]
    if bad:
        raise SpecError(f"{loc}.channel: unknown option{'s' if len(bad) > 1 else ''} {', '.join(repr(k) for k in bad)}; "
                        f"accepted options: {accepted}")
    topo = ch.get("topology")
    if isinstance(topo, dict):
        # {h: [k, ...]}: TOML keys are strings; the config reads them with int().
        for h, ks in topo.items():
            _need(str(h).strip().isdigit(), f"{loc}.channel.topology", h,
                  "hidden-layer numbers as keys, like { 1 = [3], 2 = [3] } (layer h receives from layers k)")
            _need(isinstance(ks, list) and all(_is_int(k) or (isinstance(k, str) and k.strip().isdigit()) for k in ks),
                  f"{loc}.channel.topology.{h}", ks, "a list of layer numbers, like [3]")
    fb = ch.get("feedback")
    if fb is not None:
        _need(isinstance(fb, dict), f"{loc}.channel.feedback", fb, "a table {distribution = ..., n = ..., mean = ...}")
        fields_fb = list(FeedbackInit.__dataclass_fields__)
        bad = [k for k in fb if k not in fields_fb]
        if bad:
            raise SpecError(f"{loc}.channel.feedback: unknown key{'s' if len(bad) > 1 else ''} "
                            f"{', '.join(repr(k) for k in bad)}; accepted keys: {fields_fb}")


def _check_values(base: dict, s: dict, loc: str) -> None:
    """Validate a level's or patch's plain (non-channel) values on top of the base, so a bad
    value is blamed on the table that sets it."""
    plain = {k: v for k, v in s.items() if k not in ("channel", "algorithm")}
    if not plain:
        return
    d = {k: v for k, v in base.items() if k not in ("channel", "algorithm")}
    d.update(plain)
    _config(d, loc)


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


def _config(d: dict, loc: str) -> TrainConfig:
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


def _merge(dst: dict, src: dict) -> dict:
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


def _allowed(combo, labels: dict) -> bool:
    for lv in combo:
        for other, ok in lv.only.items():
            if labels[other] not in ok:
                return False
    return True


def _matches(where: dict, labels: dict) -> bool:
    return all(labels[k] in v for k, v in where.items())


def _fmt_labels(labels: dict) -> str:
    return "{" + ", ".join(f"{k}={v!r}" for k, v in labels.items()) + "}"


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


def is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
