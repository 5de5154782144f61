"""The results store's SQLite schema (tables in :mod:`.store`'s docstring) and the
migrations that bring an older database to :data:`SCHEMA_VERSION` when it is opened."""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS invocations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    spec TEXT NOT NULL,
    command TEXT,
    overrides TEXT NOT NULL DEFAULT '{}',
    executor TEXT,
    workers INTEGER,
    device TEXT,
    host TEXT,
    started_at REAL NOT NULL,
    finished_at REAL,
    lchannel_version TEXT,
    torch_version TEXT
);
CREATE TABLE IF NOT EXISTS cells (
    spec TEXT NOT NULL,
    cell TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    overrides TEXT NOT NULL DEFAULT '{}',
    position INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (spec, cell, config_hash)
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    config_hash TEXT NOT NULL,
    seed INTEGER NOT NULL,
    config TEXT NOT NULL,
    protocol TEXT NOT NULL CHECK (protocol IN ('full', 'shortened')),
    overrides TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'diverged', 'failed')),
    epochs_planned INTEGER NOT NULL,
    epochs_done INTEGER NOT NULL DEFAULT 0,
    diverged_at INTEGER,
    divergence TEXT,
    final_train_loss REAL,
    final_train_acc REAL,
    final_test_loss REAL,
    final_test_acc REAL,
    population TEXT,
    seconds REAL,
    cpu_seconds REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    created_at REAL NOT NULL,
    finished_at REAL,
    finished_by INTEGER REFERENCES invocations(id),
    device TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_hash ON runs (config_hash, seed);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    epoch INTEGER NOT NULL,
    train_loss REAL, train_acc REAL, test_loss REAL, test_acc REAL,
    lr REAL, seconds REAL,
    PRIMARY KEY (run_id, epoch)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS initial (
    run_id TEXT PRIMARY KEY REFERENCES runs(run_id),
    train_loss REAL, train_acc REAL, test_loss REAL, test_acc REAL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
    run_id TEXT PRIMARY KEY REFERENCES runs(run_id),
    owner TEXT NOT NULL,
    expires REAL NOT NULL,
    acquired REAL NOT NULL,
    invocation INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alignment (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    epoch INTEGER NOT NULL,
    layer INTEGER NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (run_id, epoch, layer, metric)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    epoch INTEGER NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (run_id, metric, epoch)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS arrays (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    name TEXT NOT NULL,
    shape TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (run_id, name)
);
"""


def _add_divergence(c: sqlite3.Connection) -> None:
    """Version 1 -> 2: ``runs.divergence``, why a diverged run diverged (NULL for older runs)."""
    if "divergence" not in {r[1] for r in c.execute("PRAGMA table_info(runs)")}:
        c.execute("ALTER TABLE runs ADD COLUMN divergence TEXT")


# MIGRATIONS[v] brings a database of schema version v to v + 1, in the transaction that
# opens it (so two processes opening an old database migrate it once).
MIGRATIONS = {1: _add_divergence}
