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

This module reads and validates a spec file; the model it builds (:class:`Spec`, its axes,
levels, patches and cells, :class:`Overrides`) is :mod:`.spec_model`, re-exported here, and
the checks it makes are :mod:`.spec_checks`.
"""

from __future__ import annotations

import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from ..plugins import use as use_plugins
from .spec_checks import (
    ALIGNMENT_KEYS,
    AXIS_KEYS,
    BASE_FIELDS,
    BASE_REQUIRED,
    LAYOUTS,
    LEVEL_KEYS,
    PATCH_KEYS,
    REPORT_KEYS,
    REPORT_METRICS,
    SET_FIELDS,
    SPEC_SUFFIXES,
    TOP_KEYS,
    SpecError,
    as_list,
    cell_config,
    check_set,
    check_values,
    is_int,
    labels_exist,
    need_value,
    plain,
    unknown_keys,
)
from .spec_model import (  # noqa: F401  (the model, re-exported: specs are read and used through this module)
    SHORTENING,
    AlignmentOptions,
    Axis,
    Cell,
    Level,
    Overrides,
    Patch,
    ReportLayout,
    Spec,
)


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
                import yaml  # lazy: PyYAML is optional; only .yaml specs need it
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
    """Validate a spec given as nested dicts (what TOML/YAML give) and build it: the top
    level, ``[base]``, ``[[axes]]`` (and their levels' ``only``), ``[[patch]]``,
    ``[report]`` and ``[alignment]``, in that order, then every cell of the grid."""
    name, description, source = _parse_header(data, default_name)
    where = f"spec {name!r}"
    base = _parse_base(data.get("base"), where)
    axes = _parse_axes(data.get("axes", []), where)
    _check_levels(axes, base, where)
    patches = _parse_patches(data.get("patch", []), axes, base, where)
    report = _parse_report(data.get("report", {}), [a.name for a in axes], axes, f"{where}: report")
    alignment = _parse_alignment(data.get("alignment", {}), f"{where}: alignment")
    spec = Spec(name, description, base, tuple(axes), tuple(patches), report, alignment, source, path)
    cells = spec.cells()  # validates every merged cell (channel options included)
    if not cells:
        raise SpecError(f"{where}: the grid is empty (every combination is excluded by 'only')")
    return spec


def _parse_header(data: Any, default_name: str) -> tuple[str, str, str]:
    """The top level: its keys, ``name``, ``description``, ``source``; imports ``plugins``."""
    where = f"spec {default_name!r}"
    if not isinstance(data, dict):
        raise SpecError(f"{where}: a spec must be a table of keys {list(TOP_KEYS)}")
    unknown_keys(data, TOP_KEYS, f"{where}: top level")
    name = data.get("name", default_name)
    need_value(isinstance(name, str) and name.replace("-", "").replace("_", "").isalnum(), f"{where}: name", name,
          "a word of letters, digits, '-' and '_'")
    where = f"spec {name!r}"
    description = data.get("description")
    need_value(isinstance(description, str) and description.strip(), f"{where}: description", description, "a non-empty string")
    source = data.get("source", "")
    need_value(isinstance(source, str), f"{where}: source", source, "a string")
    plugins = data.get("plugins", [])
    need_value(isinstance(plugins, list) and all(isinstance(p, str) and p.strip() for p in plugins), f"{where}: plugins",
          plugins, "a list of module names (each imported first: algorithms from outside lchannel, docs/extending.md)")
    try:
        use_plugins(plugins)  # before the cells are checked: they may name the plugins' algorithms
    except ValueError as err:
        raise SpecError(f"{where}: {err}") from None
    return name, description.strip(), source


def _parse_base(base: Any, where: str) -> dict:
    """``[base]``: the protocol every run starts from, itself a valid config."""
    need_value(isinstance(base, dict), f"{where}: base", base,
          f"a [base] table of TrainConfig fields setting at least {', '.join(BASE_REQUIRED)} (the protocol every "
          "run starts from)")
    missing = [k for k in BASE_REQUIRED if k not in base]
    if missing:
        raise SpecError(f"{where}: base: {', '.join(missing)} missing; [base] must set {', '.join(BASE_REQUIRED)} "
                        "explicitly (otherwise every run would silently train the default: the full MNIST protocol)")
    base = plain(base)
    check_set(base, BASE_FIELDS, f"{where}: base")
    cell_config(base, f"{where}: base")  # the base alone must be a valid config
    return base


def _parse_axes(axes_raw: Any, where: str) -> list[Axis]:
    """``[[axes]]``: each axis's name, title and levels (``only`` is checked once all are read)."""
    need_value(isinstance(axes_raw, list) and all(isinstance(a, dict) for a in axes_raw), f"{where}: axes", axes_raw,
          "an array of tables [[axes]] with keys name and levels")
    axes: list[Axis] = []
    for i, a in enumerate(axes_raw):
        loc = f"{where}: axes[{i}]"
        unknown_keys(a, AXIS_KEYS, loc)
        aname = a.get("name")
        need_value(isinstance(aname, str) and aname.isidentifier(), f"{loc}.name", aname, "an identifier like 'algorithm'")
        loc = f"{where}: axes[{i}] ({aname!r})"
        need_value(aname not in [x.name for x in axes], f"{loc}.name", aname, "a name not used by another axis")
        title = a.get("title")
        need_value(title is None or isinstance(title, str), f"{loc}.title", title, "a string")
        levels_raw = a.get("levels")
        need_value(isinstance(levels_raw, list) and levels_raw and all(isinstance(lv, dict) for lv in levels_raw),
              f"{loc}.levels", levels_raw, "a non-empty array of tables {label = ..., set = {...}}")
        levels: list[Level] = []
        for j, lv in enumerate(levels_raw):
            levels.append(_parse_level(lv, levels, f"{loc}.levels[{j}]"))
        axes.append(Axis(aname, tuple(levels), title))
    return axes


def _parse_level(lv: dict, before: list[Level], lloc: str) -> Level:
    """One level of an axis; ``before``: the axis's levels read so far (labels are unique)."""
    unknown_keys(lv, LEVEL_KEYS, lloc)
    label = lv.get("label")
    need_value(isinstance(label, str) and label.strip(), f"{lloc}.label", label, "a non-empty string")
    need_value(label not in [x.label for x in before], f"{lloc}.label", label,
          "a label not used by another level of this axis")
    value = lv.get("value")
    need_value(value is None or isinstance(value, (int, float, str)) and not isinstance(value, bool),
          f"{lloc}.value", value, "a number or a string")
    s = lv.get("set", {})
    need_value(isinstance(s, dict), f"{lloc}.set", s, "a table of TrainConfig fields")
    s = plain(s)
    check_set(s, SET_FIELDS, f"{lloc}.set")
    only = lv.get("only", {})
    need_value(isinstance(only, dict), f"{lloc}.only", only, "a table {axis = [labels]}")
    return Level(label, value, s, {k: as_list(v) for k, v in only.items()})


def _check_levels(axes: list[Axis], base: dict, where: str) -> None:
    """What a level can only be checked against once every axis is read: ``only`` names
    other axes and their labels; ``set`` on top of the base gives valid values."""
    names = [a.name for a in axes]
    for a in axes:
        for j, lv in enumerate(a.levels):
            for other, labels in lv.only.items():
                loc = f"{where}: axes ({a.name!r}).levels[{j}] ({lv.label!r}).only"
                need_value(other in names and other != a.name, f"{loc}", other,
                      f"another axis, one of {[n for n in names if n != a.name]}")
                labels_exist(labels, next(x for x in axes if x.name == other), f"{loc}.{other}")
            check_values(base, lv.set, f"{where}: axes ({a.name!r}).levels[{j}] ({lv.label!r}).set")


def _parse_patches(patches_raw: Any, axes: list[Axis], base: dict, where: str) -> list[Patch]:
    """``[[patch]]``: which cells (``where``, by axis labels) get which extra settings."""
    names = [a.name for a in axes]
    need_value(isinstance(patches_raw, list) and all(isinstance(p, dict) for p in patches_raw), f"{where}: patch",
          patches_raw, "an array of tables [[patch]] with keys where and set")
    patches = []
    for i, p in enumerate(patches_raw):
        loc = f"{where}: patch[{i}]"
        unknown_keys(p, PATCH_KEYS, loc)
        w = p.get("where")
        need_value(isinstance(w, dict) and w, f"{loc}.where", w, "a non-empty table {axis = label or [labels]}")
        for k, v in w.items():
            need_value(k in names, f"{loc}.where", k, f"an axis name, one of {names}")
            labels_exist(as_list(v), next(x for x in axes if x.name == k), f"{loc}.where.{k}")
        s = p.get("set")
        need_value(isinstance(s, dict) and s, f"{loc}.set", s, "a non-empty table of TrainConfig fields")
        s = plain(s)
        check_set(s, SET_FIELDS, f"{loc}.set")
        check_values(base, s, f"{loc}.set")
        patches.append(Patch({k: as_list(v) for k, v in w.items()}, s))
    return patches


def _parse_report(r: Any, names: list[str], axes: list[Axis], loc: str) -> ReportLayout:
    need_value(isinstance(r, dict), loc, r, f"a table with keys {list(REPORT_KEYS)}")
    unknown_keys(r, REPORT_KEYS, loc)
    layout = r.get("layout", "table")
    need_value(layout in LAYOUTS, f"{loc}.layout", layout, f"one of {list(LAYOUTS)}")
    metric = r.get("metric", "test_acc")
    need_value(metric in REPORT_METRICS, f"{loc}.metric", metric, f"one of {list(REPORT_METRICS)}")
    title = r.get("title")
    need_value(title is None or isinstance(title, str), f"{loc}.title", title, "a string")

    def axis_list(key):
        v = as_list(r.get(key, []))
        for n in v:
            need_value(n in names, f"{loc}.{key}", n, f"axis names, from {names}")
        return tuple(v)

    def one_axis(key):
        v = r.get(key)
        need_value(v is None or v in names, f"{loc}.{key}", v, f"one axis name, one of {names}")
        return v

    rows, columns = axis_list("rows"), axis_list("columns")
    need_value(not set(rows) & set(columns), f"{loc}.columns", list(columns), "axes not already used as rows")
    lines, panels, x = one_axis("lines"), one_axis("panels"), one_axis("x")
    if layout == "final":
        need_value(x is not None, f"{loc}.x", x, f"the axis whose level values go on the x axis, one of {names}")
        ax = next(a for a in axes if a.name == x)
        for lv in ax.levels:
            need_value(isinstance(lv.value, (int, float)), f"{loc}.x: axis {x!r} level {lv.label!r} value", lv.value,
                  "a number (set 'value' on every level of the x axis)")
    if layout == "maps":  # paper 2, Figure 12: rows the algorithms, columns the k of f_k
        need_value(len(rows) == 1, f"{loc}.rows", list(rows), "one axis name (the rows of the grid of maps)")
        need_value(len(columns) == 1, f"{loc}.columns", list(columns), "one axis name (the columns, e.g. k)")
    return ReportLayout(layout, rows, columns, lines, panels, x, metric, title)


def _parse_alignment(a: Any, loc: str) -> AlignmentOptions:
    need_value(isinstance(a, dict), loc, a, f"a table with keys {list(ALIGNMENT_KEYS)}")
    unknown_keys(a, ALIGNMENT_KEYS, loc)
    enabled = a.get("enabled", True)
    need_value(isinstance(enabled, bool), f"{loc}.enabled", enabled, "true or false")
    probe = a.get("probe", 1000)
    need_value(is_int(probe) and probe >= 1, f"{loc}.probe", probe, "an integer >= 1 (examples of the test set)")
    every = a.get("every", 1)
    need_value(is_int(every) and every >= 1, f"{loc}.every", every, "an integer >= 1 (epochs)")
    return AlignmentOptions(enabled, probe, every)
