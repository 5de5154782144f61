"""A spec's stored results per cell (:class:`CellResult`): which runs a report reads
(:func:`collect`: full-protocol runs, else the most complete shortened variant) and
their statistics over seeds."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..run.tables import mean_sd
from ..engine.train import History
from .spec import SHORTENING, Cell, Overrides, Spec
from .store import FINISHED, METRIC_COLUMNS, ResultsStore, RunRow

METRIC_TITLES = {"test_acc": "test accuracy (%)", "train_acc": "training accuracy (%)",
                 "test_loss": "test loss", "train_loss": "training loss"}


@dataclass
class CellResult:
    """What the store holds for one cell of a spec."""

    cell: Cell
    config_hash: str
    overrides: dict
    planned: int
    runs: list[RunRow] = field(default_factory=list)  # every stored run of the chosen variant
    store: ResultsStore | None = None

    @property
    def finished(self) -> list[RunRow]:
        return [r for r in self.runs if r.status in FINISHED]

    @property
    def done(self) -> list[RunRow]:
        return [r for r in self.runs if r.status == "done"]

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.runs)

    def diverged(self) -> list[tuple[int, dict]]:
        """``(seed, cause)`` of every diverged run: the cause as the store holds it
        (``RunRow.divergence``), or just the epoch for runs stored without one."""
        return [(r.seed, r.divergence or {"epoch": r.diverged_at}) for r in self.runs if r.status == "diverged"]

    @property
    def shortened(self) -> bool:
        return bool(SHORTENING & set(self.overrides))

    @property
    def epochs(self) -> int:
        return max((r.epochs_done for r in self.finished), default=0)

    def stats(self, metric: str) -> tuple[float, float, int]:
        """(mean, sample sd, n) of the final ``metric`` over seeds that did not diverge."""
        return mean_sd(r.final[metric] for r in self.done)

    def history(self) -> History | None:
        """Per-epoch metrics of the finished seeds as a :class:`History` (NaN-padded), with
        ``initial`` (epoch 0, the untrained network) from the store when it was recorded."""
        runs = self.finished
        if not runs or self.store is None:
            return None
        per_run = [{row["epoch"]: row for row in self.store.epochs(r.run_id)} for r in runs]
        epochs = sorted(set().union(*per_run))
        h = History([r.seed for r in runs])
        h.diverged_at = [r.diverged_at for r in runs]
        h.divergence = [r.divergence if r.diverged_at is not None else None for r in runs]
        initial = [self.store.initial(r.run_id) for r in runs]
        if any(i is not None for i in initial):
            h.initial = {m: [math.nan if i is None else i[m] for i in initial] for m in METRIC_COLUMNS}
        for ep in epochs:
            vals = {m: [pr[ep][m] if ep in pr else math.nan for pr in per_run] for m in METRIC_COLUMNS}
            lr = next((pr[ep]["lr"] for pr in per_run if ep in pr), math.nan)
            h.append(ep, vals, lr, 0.0)
        return h

    def extra(self, metric: str) -> tuple[list[int], list[list[float]]]:
        """``(epochs, values[epoch][seed])`` of a metric of the store's ``metrics`` table
        (e.g. ``test_auc``; epoch 0 = untrained) over the finished seeds; empty if none."""
        runs = self.finished
        if not runs or self.store is None:
            return [], []
        per_run = [dict(self.store.extra_metrics(r.run_id).get(metric, [])) for r in runs]
        epochs = sorted(set().union(*per_run))
        return epochs, [[pr.get(ep, math.nan) for pr in per_run] for ep in epochs]

    def kept_array(self, name: str) -> tuple[np.ndarray, RunRow] | None:
        """An array kept of the first finished run that has it (e.g. the f_k predictions),
        with that run's row."""
        for r in (self.finished if self.store is not None else []):
            a = self.store.array(r.run_id, name)
            if a is not None:
                return a, r
        return None

    def alignment(self) -> dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]:
        """``{(metric, layer): (epochs, values[epoch, seed])}`` over the finished seeds."""
        runs = self.finished
        if not runs or self.store is None:
            return {}
        data: dict = {}
        for i, r in enumerate(runs):
            for ep, layer, metric, v in self.store.alignment(r.run_id):
                data.setdefault((metric, layer), {}).setdefault(ep, [math.nan] * len(runs))[i] = v
        out = {}
        for key, by_ep in data.items():
            eps = sorted(by_ep)
            out[key] = (np.array(eps), np.array([by_ep[e] for e in eps], dtype=float))
        return out


def collect(spec: Spec, store: ResultsStore, overrides: Overrides | None = None,
            where: dict | None = None) -> list[CellResult]:
    """The stored results of every cell of ``spec`` (see module doc for which runs);
    ``where`` keeps only some cells (``{axis: [labels]}``)."""
    exact = overrides is not None and bool(overrides.to_dict())
    cells = spec.cells(overrides if exact else None, where)
    out = []
    for cell in cells:
        h = cell.key
        runs = store.runs(h, list(cell.config.seeds) if exact else None)
        chosen = CellResult(cell, h, cell.overrides, len(cell.config.seeds), runs, store)
        if not exact and not chosen.finished:
            best = None
            for vh, vo in store.cell_variants(spec.name, cell.cell_id):
                if vh == h:
                    continue
                vruns = store.runs(vh)
                cand = CellResult(cell, vh, vo, len(vo.get("seeds", cell.config.seeds)), vruns, store)
                score = (len(cand.finished), cand.epochs)
                if cand.finished and (best is None or score > best[0]):
                    best = (score, cand)
            if best is not None:
                chosen = best[1]
        out.append(chosen)
    return out


def ordered_keys(spec: Spec, results: list[CellResult], axes: list[str]) -> list[tuple]:
    """The distinct label tuples of ``results`` on ``axes``, in the spec's level order."""
    keys = []
    for res in results:
        k = tuple(res.cell.labels[a] for a in axes)
        if k not in keys:
            keys.append(k)
    order = {a: spec.axis(a).labels() for a in axes}
    return sorted(keys, key=lambda k: [order[a].index(v) for a, v in zip(axes, k)])
