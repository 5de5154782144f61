"""The rows a finished population writes for one member (:meth:`.store.ResultsStore.write_population`,
inside its transaction): the run row with the final metrics, the epoch rows, the epoch-0
row, the alignment angles, the extra metrics and the kept arrays, each replacing whatever
an earlier attempt left.  NaN and inf metrics (diverged members) are stored as NULL."""

from __future__ import annotations

import json
import math
import sqlite3

import numpy as np

from ..engine.train import METRICS as METRIC_COLUMNS  # one column each (store.METRIC_COLUMNS)


def _num(x) -> float | None:
    """NaN/inf -> NULL; everything else a float."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def write_member(c: sqlite3.Connection, rid: str, e: int, result: dict, invocation: int | None, device: str,
                 now: float) -> str:
    """Write member ``e`` of ``result`` (see :func:`~lchannel.experiments.worker.train_population`)
    as run ``rid``; returns its status (``done`` or ``diverged``)."""
    status = _write_run(c, rid, e, result, invocation, device, now)
    hist = result["history"]
    _write_epochs(c, rid, e, hist)
    c.execute("DELETE FROM alignment WHERE run_id = ?", (rid,))
    c.executemany(
        "INSERT INTO alignment VALUES (?,?,?,?,?)",
        [(rid, ep, layer, metric, _num(vals[e])) for ep, layer, metric, vals in result.get("alignment", [])])
    _write_metrics(c, rid, e, hist)
    c.execute("DELETE FROM arrays WHERE run_id = ?", (rid,))
    for name, arr in (result.get("arrays") or {}).items():
        a = np.ascontiguousarray(arr[e], dtype="<f4")
        c.execute("INSERT INTO arrays VALUES (?,?,?,?)", (rid, name, json.dumps(list(a.shape)), a.tobytes()))
    return status


def _write_run(c: sqlite3.Connection, rid: str, e: int, result: dict, invocation: int | None, device: str,
               now: float) -> str:
    """The run row: status, divergence, final metrics, population, time and provenance."""
    seeds = result["seeds"]
    hist = result["history"]
    d_at = hist["diverged_at"][e]
    causes = hist.get("divergence")  # absent in histories from before it was recorded
    cause = (causes[e] if causes else None) if d_at is not None else None
    status = "diverged" if d_at is not None else "done"
    # A diverged run has no final metrics (its last accuracy is argmax of NaN).
    final = {m: (_num(hist["metrics"][m][-1][e]) if hist["epochs"] and d_at is None else None)
             for m in METRIC_COLUMNS}
    c.execute(
        "UPDATE runs SET status = ?, epochs_done = ?, diverged_at = ?, divergence = ?, "
        "final_train_loss = ?, final_train_acc = ?, final_test_loss = ?, final_test_acc = ?, "
        "population = ?, seconds = ?, cpu_seconds = ?, error = NULL, attempts = attempts + 1, "
        "finished_at = ?, finished_by = ?, device = ? WHERE run_id = ?",
        (status, len(hist["epochs"]), d_at, None if cause is None else json.dumps(cause, ensure_ascii=False),
         final["train_loss"], final["train_acc"], final["test_loss"],
         final["test_acc"], json.dumps(seeds), result.get("seconds"), result.get("cpu_seconds"), now,
         invocation, device, rid))
    return status


def _write_epochs(c: sqlite3.Connection, rid: str, e: int, hist: dict) -> None:
    """Trained epochs 1..n, and epoch 0 (the untrained network) when it was recorded."""
    c.execute("DELETE FROM epochs WHERE run_id = ?", (rid,))
    c.executemany(
        "INSERT INTO epochs VALUES (?,?,?,?,?,?,?,?)",
        [(rid, ep, *(_num(hist["metrics"][m][i][e]) for m in METRIC_COLUMNS),
          hist["lr"][i][e] if isinstance(hist["lr"][i], list) else hist["lr"][i],  # per-member rates
          hist["seconds"][i]) for i, ep in enumerate(hist["epochs"])])
    c.execute("DELETE FROM initial WHERE run_id = ?", (rid,))
    initial = hist.get("initial")
    if initial is not None:
        c.execute("INSERT INTO initial VALUES (?,?,?,?,?)",
                  (rid, *(_num(initial[m][e]) for m in METRIC_COLUMNS)))


def _write_metrics(c: sqlite3.Connection, rid: str, e: int, hist: dict) -> None:
    """The metrics table: epoch 0's metrics beyond the columns, the per-epoch extra metrics,
    and the epoch early stopping stopped this member."""
    c.execute("DELETE FROM metrics WHERE run_id = ?", (rid,))
    extra = [(rid, 0, m, _num(v[e])) for m, v in (hist.get("initial") or {}).items() if m not in METRIC_COLUMNS]
    extra += [(rid, ep, m, _num(vals[i][e])) for m, vals in (hist.get("extra") or {}).items()
              for i, ep in enumerate(hist["epochs"])]
    stopped_at = hist.get("stopped_at")
    stopped = stopped_at[e] if stopped_at else None
    if stopped is not None:  # early stopping: the epoch this member stopped
        extra.append((rid, stopped, "stopped_early", 1.0))
    c.executemany("INSERT INTO metrics VALUES (?,?,?,?)", extra)
