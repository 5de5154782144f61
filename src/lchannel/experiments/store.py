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
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..engine.train import METRICS
from .owners import owner_is_dead
from .schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION

FINISHED = ("done", "diverged")
STATUSES = ("pending", "done", "diverged", "failed")
METRIC_COLUMNS = METRICS  # the per-epoch metrics a Trainer records, one column each

class StoreError(RuntimeError):
    """A results database that cannot be used (not SQLite, another schema, a folder)."""


def run_id(config_hash: str, seed: int) -> str:
    return f"{config_hash}-s{int(seed)}"


def _num(x) -> float | None:
    """NaN/inf -> NULL; everything else a float."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _nan(x) -> float:
    return math.nan if x is None else float(x)


def _locked(err: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused because another connection holds the file."""
    return "locked" in str(err) or "busy" in str(err)


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
        memory = str(self.path) == ":memory:"
        if not memory and self.path.is_dir():
            raise StoreError(f"{str(self.path)!r} is a folder; expected a results database file like results/lchannel.db")
        try:
            if not memory:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as err:
            raise StoreError(f"{str(self.path)!r} cannot be opened ({err})") from None
        try:
            self._open(timeout)
        except sqlite3.OperationalError as err:
            self.conn.close()
            if _locked(err):
                raise StoreError(f"{str(self.path)!r} stayed locked by another process for over {timeout:g} s "
                                 f"({err}); try again when it is done") from None
            raise StoreError(f"{str(self.path)!r} cannot be opened as an SQLite results database ({err})") from None
        except sqlite3.DatabaseError as err:
            self.conn.close()
            raise StoreError(f"{str(self.path)!r} is not an SQLite results database ({err})") from None
        except StoreError:
            self.conn.close()
            raise

    def _open(self, timeout: float) -> None:
        self.conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        self._enter_wal(timeout)
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("PRAGMA foreign_keys = ON")
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "meta" not in tables:
            # Someone else's SQLite file: do not add our tables to it.
            raise StoreError(f"{str(self.path)!r} is an SQLite database but not an lchannel results store "
                             f"(it has tables {sorted(tables)[:5]}); choose another --db")
        with self.transaction() as c:
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    c.execute(stmt)
            row = c.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                c.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif row[0] != str(SCHEMA_VERSION):
                version = int(row[0]) if row[0].isdigit() else None
                if version is None or version > SCHEMA_VERSION or version not in MIGRATIONS:
                    raise StoreError(f"{str(self.path)!r} has results schema version {row[0]}; this lchannel reads "
                                     f"versions 1 to {SCHEMA_VERSION} (a newer lchannel wrote it?)")
                while version < SCHEMA_VERSION:
                    MIGRATIONS[version](c)
                    version += 1
                c.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))

    def _enter_wal(self, timeout: float) -> None:
        """Switch the file to WAL, retrying while another process does the same.

        Changing the journal mode needs an exclusive lock, and SQLite answers "database is
        locked" at once, without calling the busy handler, when another connection holds
        the file mid-switch (two ``lchannel run`` started together on a new database hit
        this). So wait here, with backoff, up to the same timeout as every other write.
        """
        deadline = time.monotonic() + timeout
        pause = 0.005
        while True:
            try:
                self.conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as err:
                if not _locked(err) or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.2)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextmanager
    def transaction(self):
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): all or nothing."""
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
        except BaseException:
            c.execute("ROLLBACK")
            raise
        else:
            c.execute("COMMIT")

    # -- writing ---------------------------------------------------------------------
    def start_invocation(self, spec: str, command: str, overrides: dict, executor: str, workers: int,
                         device: str) -> int:
        import torch

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
        seeds = result["seeds"]
        hist = result["history"]
        epochs = hist["epochs"]
        initial = hist.get("initial")
        statuses = []
        now = time.time()
        with self.transaction() as c:
            for e, s in enumerate(seeds):
                rid = run_id(config_hash if keys is None else keys[e], s)
                c.execute("DELETE FROM leases WHERE run_id = ?", (rid,))
                stored = c.execute("SELECT status FROM runs WHERE run_id = ?", (rid,)).fetchone()
                if stored is not None and stored[0] in FINISHED:
                    c.execute("UPDATE runs SET attempts = attempts + 1 WHERE run_id = ?", (rid,))
                    statuses.append(stored[0])
                    continue
                d_at = hist["diverged_at"][e]
                cause = (hist.get("divergence") or [None] * len(seeds))[e] if d_at is not None else None
                status = "diverged" if d_at is not None else "done"
                statuses.append(status)
                # A diverged run has no final metrics (its last accuracy is argmax of NaN).
                final = {m: (_num(hist["metrics"][m][-1][e]) if epochs and d_at is None else None)
                         for m in METRIC_COLUMNS}
                c.execute(
                    "UPDATE runs SET status = ?, epochs_done = ?, diverged_at = ?, divergence = ?, "
                    "final_train_loss = ?, final_train_acc = ?, final_test_loss = ?, final_test_acc = ?, "
                    "population = ?, seconds = ?, cpu_seconds = ?, error = NULL, attempts = attempts + 1, "
                    "finished_at = ?, finished_by = ?, device = ? WHERE run_id = ?",
                    (status, len(epochs), d_at, None if cause is None else json.dumps(cause, ensure_ascii=False),
                     final["train_loss"], final["train_acc"], final["test_loss"],
                     final["test_acc"], json.dumps(seeds), result.get("seconds"), result.get("cpu_seconds"), now,
                     invocation, device, rid))
                c.execute("DELETE FROM epochs WHERE run_id = ?", (rid,))
                c.executemany(
                    "INSERT INTO epochs VALUES (?,?,?,?,?,?,?,?)",
                    [(rid, ep, *(_num(hist["metrics"][m][i][e]) for m in METRIC_COLUMNS),
                      hist["lr"][i][e] if isinstance(hist["lr"][i], list) else hist["lr"][i],  # per-member rates
                      hist["seconds"][i]) for i, ep in enumerate(epochs)])
                c.execute("DELETE FROM initial WHERE run_id = ?", (rid,))
                if initial is not None:
                    c.execute("INSERT INTO initial VALUES (?,?,?,?,?)",
                              (rid, *(_num(initial[m][e]) for m in METRIC_COLUMNS)))
                c.execute("DELETE FROM alignment WHERE run_id = ?", (rid,))
                c.executemany(
                    "INSERT INTO alignment VALUES (?,?,?,?,?)",
                    [(rid, ep, layer, metric, _num(vals[e])) for ep, layer, metric, vals in result.get("alignment", [])])
                c.execute("DELETE FROM metrics WHERE run_id = ?", (rid,))
                extra = [(rid, 0, m, _num(v[e])) for m, v in (initial or {}).items() if m not in METRIC_COLUMNS]
                extra += [(rid, ep, m, _num(vals[i][e])) for m, vals in (hist.get("extra") or {}).items()
                          for i, ep in enumerate(epochs)]
                stopped = (hist.get("stopped_at") or [None] * len(seeds))[e]
                if stopped is not None:  # early stopping: the epoch this member stopped
                    extra.append((rid, stopped, "stopped_early", 1.0))
                c.executemany("INSERT INTO metrics VALUES (?,?,?,?)", extra)
                c.execute("DELETE FROM arrays WHERE run_id = ?", (rid,))
                for name, arr in (result.get("arrays") or {}).items():
                    a = np.ascontiguousarray(arr[e], dtype="<f4")
                    c.execute("INSERT INTO arrays VALUES (?,?,?,?)", (rid, name, json.dumps(list(a.shape)), a.tobytes()))
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
