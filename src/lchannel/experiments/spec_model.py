"""The spec's model: axes of named levels, patches, the report layout and alignment
options, and the grid they span (:meth:`Spec.cells`: base, then each level's ``set``, then
every matching patch, then the quick-look :class:`Overrides`).  :mod:`.spec` reads and
validates a spec file into these."""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from ..run.config import TrainConfig
from ..data import REGISTRY as DATASETS
from .spec_checks import SpecError, allowed, as_list, cell_config, fmt_labels, is_int, labels_exist, matches, merge


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
    """Alignment angles per epoch (``lchannel.report.alignment``) on a fixed probe batch: the
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
        if self.epochs is not None and not (is_int(self.epochs) and self.epochs >= 1):
            raise SpecError(f"--epochs: {self.epochs!r} is not accepted; expected an integer >= 1")
        if self.subset is not None and not (is_int(self.subset) and self.subset >= 1):
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
            if not allowed(combo, labels) or not matches(where, labels):
                continue
            d = copy.deepcopy(self.base)
            for lv in combo:
                merge(d, lv.set)
            for p in self.patches:
                if matches(p.where, labels):
                    merge(d, p.set)
            cfg = cell_config(d, f"{self._where()}cell {fmt_labels(labels)}")
            try:
                cfg, changed = overrides.apply(cfg)
            except ValueError as err:  # e.g. --dataset with other inputs than the spec's architecture
                raise SpecError(f"the overrides {overrides.to_dict()} do not fit cell {fmt_labels(labels)}: {err}") from None
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
            labels = as_list(v)
            labels_exist(labels, self.axis(k), f"--where {k}")
            out[k] = labels
        return out

    def _where(self) -> str:
        return f"spec {self.name!r}: "
