"""The results store: one SQLite file holding every run of every sweep.

Schema (``SCHEMA_VERSION`` 2)::

    invocations(id, spec, command, overrides, executor, workers, device, host,
                started_at, finished_at, lchannel_version, torch_version)
    cells(spec, cell, config_hash, overrides, position)      -- which runs a spec's cells use
    runs(run_id, config_hash, seed, config, protocol, overrides, status, epochs_planned,
         epochs_done, diverged_at, divergence, final_train_loss, final_train_acc, final_test_loss,
         final_test_acc, population, seconds, cpu_seconds, attempts, error, created_at, finished_at,
         finished_by, device)
    epochs(run_id, epoch, train_loss, train_acc, test_loss, test_acc, lr, seconds)
    initial(run_id, train_loss, train_acc, test_loss, test_acc)   -- epoch 0: the untrained network
    alignment(run_id, epoch, layer, metric, value)
    metrics(run_id, epoch, metric, value)       -- per-epoch metrics some runs add (test_auc,
                                                   valid_loss, valid_acc; stopped_early = 1 at the
                                                   epoch early stopping stopped it); epoch 0 = untrained
    arrays(run_id, name, shape, data)           -- arrays kept of a finished run (the f_k
                                                   predictions over the square), float32 bytes
    leases(run_id, owner, expires, acquired, invocation)        -- runs a live runner is training

A run is one (config, seed): ``run_id = "<config_hash>-s<seed>"`` where ``config_hash`` is
:meth:`TrainConfig.key` (everything but seeds, paths and device; ``epochs`` and ``subset``
included, so a shortened run never shares an id with the full protocol).  ``status`` is
``pending``, ``done``, ``diverged`` or ``failed``.  A finished population is written in one
transaction (its runs' rows, every epoch, every alignment angle), so a killed runner
leaves only complete runs behind.  ``attempts`` counts the results delivered for a run
(finished or failed): 1 for a run computed once.  ``epochs`` holds trained epochs 1..n;
the untrained network (epoch 0, ``History.initial``) is in ``initial``.  A diverged run
keeps its per-epoch rows but has no final metrics; ``divergence`` (JSON) says why it
diverged: ``{"epoch", "step", "update", "quantity", "what"}``, the first non-finite
quantity of the step (``History.divergence``; NULL for runs stored before version 2).
A database of an older schema version is migrated when opened (:data:`MIGRATIONS`: version
1 gains ``runs.divergence``); a newer one is refused.  The database is in WAL mode, so
reports can read it while a sweep writes.  NaN metrics (diverged members) are stored as
NULL.

Leases let several runners share one database without computing a run twice: a runner
claims a population's runs in one ``BEGIN IMMEDIATE`` transaction before training it
(:meth:`ResultsStore.claim`), renews its leases while it lives (:meth:`renew`), and
drops them with the population's result.  A lease whose ``expires`` has passed, or whose
owner is a dead process on this host, is free to take over.  See docs/experiments.md.

Opening the file (WAL, schema, migrations, refusals) is :mod:`.store_open`; the rows a
finished member writes are :mod:`.store_rows`.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import torch

from ..engine.train import METRICS
from .owners import owner_is_dead
from .store_open import StoreError, open_database, write_transaction  # noqa: F401  (StoreError re-exported)
from .store_rows import write_member


FINISHED = ("done", "diverged")
STATUSES = ("pending", "done", "diverged", "failed")
METRIC_COLUMNS = METRICS  # the per-epoch metrics a Trainer records, one column each


def run_id(config_hash: str, seed: int) -> str:
    return f"{config_hash}-s{int(seed)}"


def _nan(x) -> float:
    return math.nan if x is None else float(x)


@dataclass
class RunRow:
    run_id: str
    config_hash: str
    seed: int
    config: dict
    protocol: str
    overrides: dict
    status: str
    epochs_planned: int
    epochs_done: int
    diverged_at: int | None
    final: dict
    seconds: float | None
    attempts: int
    error: str | None
    finished_by: int | None
    # Why a diverged run diverged (``History.divergence``'s record), None when not
    # recorded (runs stored before schema version 2) or not diverged.
    divergence: dict | None = None


class ResultsStore:
    """An SQLite results database (created on first use).

    Every write is a transaction; connections use WAL and a busy timeout so that readers
    (``lchannel report`` during a sweep) and the writer do not block each other for long.
    """

    def __init__(self, path: str | os.PathLike, timeout: float = 60.0):
        self.path = Path(path)
        self.conn = open_database(self.path, timeout)  # a StoreError names the file and why not

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def transaction(self):
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): all or nothing."""
        return write_transaction(self.conn)

    # -- writing ---------------------------------------------------------------------
    def start_invocation(self, spec: str, command: str, overrides: dict, executor: str, workers: int,
                         device: str) -> int:
        # lazy: the version lives in the package's top module (lchannel/__init__), above every floor
        from .. import __version__

        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO invocations (spec, command, overrides, executor, workers, device, host, started_at, "
                "lchannel_version, torch_version) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (spec, command, json.dumps(overrides), executor, workers, device, socket.gethostname(), time.time(),
                 __version__, torch.__version__))
            return int(cur.lastrowid)

    def invocations(self, ids) -> dict[int, dict]:
        """The recorded invocations ``ids`` (the ``finished_by`` of runs): command, host,
        device, lchannel and torch versions, start and end times."""
        ids = sorted({int(i) for i in ids if i is not None})
        if not ids:
            return {}
        cols = ("id", "command", "host", "device", "lchannel_version", "torch_version", "started_at", "finished_at")
        q = f"SELECT {', '.join(cols)} FROM invocations WHERE id IN ({', '.join('?' * len(ids))})"
        return {row[0]: dict(zip(cols, row)) for row in self.conn.execute(q, ids)}

    def finish_invocation(self, inv: int) -> None:
        with self.transaction() as c:
            c.execute("UPDATE invocations SET finished_at = ? WHERE id = ?", (time.time(), inv))

    def register(self, spec: str, cells) -> None:
        """Record a spec's cells and create a pending row for every run not yet known."""
        now = time.time()
        with self.transaction() as c:
            for cell in cells:
                h = cell.key
                c.execute("INSERT OR REPLACE INTO cells (spec, cell, config_hash, overrides, position) VALUES (?,?,?,?,?)",
                          (spec, cell.cell_id, h, json.dumps(cell.overrides), cell.position))
                protocol = "shortened" if cell.shortened else "full"
                for s in cell.config.seeds:
                    one = cell.config.to_dict()
                    one["seeds"] = [s]
                    one.pop("data_dir", None)
                    one.pop("device", None)
                    c.execute(
                        "INSERT OR IGNORE INTO runs (run_id, config_hash, seed, config, protocol, overrides, status, "
                        "epochs_planned, created_at) VALUES (?,?,?,?,?,?, 'pending', ?, ?)",
                        (run_id(h, s), h, s, json.dumps(one, sort_keys=True), protocol,
                         json.dumps({k: v for k, v in cell.overrides.items() if k != "seeds"}),
                         cell.config.epochs, now))

    def write_population(self, config_hash: str, result: dict, invocation: int | None, device: str = "cpu",
                         keys: list[str] | None = None) -> list[str]:
        """Write a finished population (see :func:`~lchannel.experiments.worker.train_population`) atomically:
        every member's run row, epoch rows, epoch-0 row and alignment rows, and drop
        their leases.  A run another runner finished meanwhile (its lease had expired)
        keeps the first result; the second only counts in ``attempts``.  Returns the
        statuses.  ``keys``: each member's config hash (a population across variants
        holds members of several cells); None: ``config_hash`` for every member."""
        statuses = []
        now = time.time()
        with self.transaction() as c:
            for e, s in enumerate(result["seeds"]):
                rid = run_id(config_hash if keys is None else keys[e], s)
                c.execute("DELETE FROM leases WHERE run_id = ?", (rid,))
                stored = c.execute("SELECT status FROM runs WHERE run_id = ?", (rid,)).fetchone()
                if stored is not None and stored[0] in FINISHED:
                    c.execute("UPDATE runs SET attempts = attempts + 1 WHERE run_id = ?", (rid,))
                    statuses.append(stored[0])
                    continue
                statuses.append(write_member(c, rid, e, result, invocation, device, now))
        return statuses

    def write_failure(self, config_hash: str, seeds: list[int], error: str, invocation: int | None) -> None:
        with self.transaction() as c:
            c.executemany("DELETE FROM leases WHERE run_id = ?", [(run_id(config_hash, s),) for s in seeds])
            c.executemany("UPDATE runs SET status = 'failed', error = ?, attempts = attempts + 1, finished_at = ?, "
                          "finished_by = ? "
                          "WHERE run_id = ? AND status NOT IN ('done', 'diverged')",
                          [(error[-4000:], time.time(), invocation, run_id(config_hash, s)) for s in seeds])

    # -- leases ----------------------------------------------------------------------
    def claim(self, run_ids: list[str], owner: str, ttl: float, invocation: int | None = None
              ) -> tuple[list[str], list[str]]:
        """Lease the unfinished ``run_ids`` for ``owner`` for ``ttl`` seconds, in one
        ``BEGIN IMMEDIATE`` transaction (so two runners never both get a run).

        Returns ``(claimed, busy)``: the runs now leased to ``owner``, and those leased by
        another runner that is alive (lease not expired, owner not a dead process on this
        host).  Finished runs are in neither.
        """
        claimed, busy = [], []
        now = time.time()
        with self.transaction() as c:
            for rid in run_ids:
                st = c.execute("SELECT status FROM runs WHERE run_id = ?", (rid,)).fetchone()
                if st is None or st[0] in FINISHED:
                    continue
                lease = c.execute("SELECT owner, expires FROM leases WHERE run_id = ?", (rid,)).fetchone()
                if lease is not None and lease[0] != owner and lease[1] > now and not owner_is_dead(lease[0]):
                    busy.append(rid)
                    continue
                c.execute("INSERT OR REPLACE INTO leases (run_id, owner, expires, acquired, invocation) "
                          "VALUES (?,?,?,?,?)", (rid, owner, now + ttl, now, invocation))
                claimed.append(rid)
        return claimed, busy

    def renew(self, owner: str, ttl: float) -> int:
        """Push back the expiry of every lease ``owner`` holds; returns how many."""
        with self.transaction() as c:
            return c.execute("UPDATE leases SET expires = ? WHERE owner = ?", (time.time() + ttl, owner)).rowcount

    def release(self, owner: str) -> None:
        """Drop every lease ``owner`` holds (a runner on its way out)."""
        with self.transaction() as c:
            c.execute("DELETE FROM leases WHERE owner = ?", (owner,))

    def leased_by_others(self, run_ids: list[str], owner: str) -> list[str]:
        """The unfinished ``run_ids`` that another live runner holds right now."""
        now = time.time()
        wanted = set(run_ids)
        out = []
        for rid, who, expires, status in self.conn.execute(
                "SELECT l.run_id, l.owner, l.expires, r.status FROM leases l JOIN runs r USING (run_id)"):
            if rid in wanted and who != owner and expires > now and status not in FINISHED and not owner_is_dead(who):
                out.append(rid)
        return out

    # -- reading ---------------------------------------------------------------------
    def status(self, run_ids: list[str]) -> dict[str, str]:
        out = {}
        for i in range(0, len(run_ids), 500):
            chunk = run_ids[i:i + 500]
            q = f"SELECT run_id, status FROM runs WHERE run_id IN ({','.join('?' * len(chunk))})"
            out.update(dict(self.conn.execute(q, chunk).fetchall()))
        return out

    def runs(self, config_hash: str, seeds: list[int] | None = None) -> list[RunRow]:
        rows = self.conn.execute(
            "SELECT run_id, config_hash, seed, config, protocol, overrides, status, epochs_planned, epochs_done, "
            "diverged_at, final_train_loss, final_train_acc, final_test_loss, final_test_acc, seconds, attempts, "
            "error, finished_by, divergence FROM runs WHERE config_hash = ? ORDER BY seed", (config_hash,)).fetchall()
        out = []
        for r in rows:
            if seeds is not None and r[2] not in seeds:
                continue
            final = dict(zip(METRIC_COLUMNS, (_nan(x) for x in r[10:14])))
            out.append(RunRow(r[0], r[1], r[2], json.loads(r[3]), r[4], json.loads(r[5]), r[6], r[7], r[8], r[9],
                              final, r[14], r[15], r[16], r[17], None if r[18] is None else json.loads(r[18])))
        return out

    def epochs(self, rid: str) -> list[dict]:
        rows = self.conn.execute("SELECT epoch, train_loss, train_acc, test_loss, test_acc, lr, seconds FROM epochs "
                                 "WHERE run_id = ? ORDER BY epoch", (rid,)).fetchall()
        return [{"epoch": r[0], **dict(zip(METRIC_COLUMNS, (_nan(x) for x in r[1:5]))), "lr": r[5], "seconds": r[6]}
                for r in rows]

    def initial(self, rid: str) -> dict | None:
        """The untrained network's metrics (epoch 0) of run ``rid``, or None (not recorded)."""
        row = self.conn.execute("SELECT train_loss, train_acc, test_loss, test_acc FROM initial WHERE run_id = ?",
                                (rid,)).fetchone()
        return None if row is None else dict(zip(METRIC_COLUMNS, (_nan(x) for x in row)))

    def alignment(self, rid: str) -> list[tuple[int, int, str, float]]:
        return [(r[0], r[1], r[2], _nan(r[3])) for r in self.conn.execute(
            "SELECT epoch, layer, metric, value FROM alignment WHERE run_id = ? ORDER BY epoch, layer, metric", (rid,))]

    def extra_metrics(self, rid: str) -> dict[str, list[tuple[int, float]]]:
        """``{metric: [(epoch, value), ...]}`` of the metrics table (epoch 0: untrained)."""
        out: dict[str, list[tuple[int, float]]] = {}
        for ep, m, v in self.conn.execute("SELECT epoch, metric, value FROM metrics WHERE run_id = ? "
                                          "ORDER BY metric, epoch", (rid,)):
            out.setdefault(m, []).append((ep, _nan(v)))
        return out

    def array(self, rid: str, name: str) -> np.ndarray | None:
        """A kept array of run ``rid`` (float32), or None."""
        row = self.conn.execute("SELECT shape, data FROM arrays WHERE run_id = ? AND name = ?", (rid, name)).fetchone()
        if row is None:
            return None
        return np.frombuffer(row[1], dtype="<f4").reshape(json.loads(row[0])).copy()

    def cell_variants(self, spec: str, cell_id: str) -> list[tuple[str, dict]]:
        """Every (config_hash, overrides) a spec's cell was run with."""
        return [(h, json.loads(o)) for h, o in self.conn.execute(
            "SELECT config_hash, overrides FROM cells WHERE spec = ? AND cell = ?", (spec, cell_id))]

    def counts(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
