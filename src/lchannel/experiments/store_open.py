"""Opening the results database of :mod:`.store`: the file checked, WAL mode entered
(with retries while another process switches it), the schema created or an older one
migrated (:mod:`.schema`), and an SQLite file that is not a results store refused, each
failure a :class:`StoreError` naming the file; :func:`write_transaction` is every write's
``BEGIN IMMEDIATE ... COMMIT``."""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

from .schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION


class StoreError(RuntimeError):
    """A results database that cannot be used (not SQLite, another schema, a folder)."""


def _locked(err: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused because another connection holds the file."""
    return "locked" in str(err) or "busy" in str(err)


@contextmanager
def write_transaction(c: sqlite3.Connection):
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): all or nothing."""
    c.execute("BEGIN IMMEDIATE")
    try:
        yield c
    except BaseException:
        c.execute("ROLLBACK")
        raise
    else:
        c.execute("COMMIT")


def open_database(path: Path, timeout: float) -> sqlite3.Connection:
    """A connection to the results database at ``path`` (created on first use; ``:memory:``
    for one in memory), ready to read and write, or a :class:`StoreError` saying why not."""
    memory = str(path) == ":memory:"
    if not memory and path.is_dir():
        raise StoreError(f"{str(path)!r} is a folder; expected a results database file like results/lchannel.db")
    try:
        if not memory:
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=timeout, isolation_level=None)
    except (OSError, sqlite3.Error) as err:
        raise StoreError(f"{str(path)!r} cannot be opened ({err})") from None
    try:
        _prepare(conn, path, timeout)
    except sqlite3.OperationalError as err:
        conn.close()
        if _locked(err):
            raise StoreError(f"{str(path)!r} stayed locked by another process for over {timeout:g} s "
                             f"({err}); try again when it is done") from None
        raise StoreError(f"{str(path)!r} cannot be opened as an SQLite results database ({err})") from None
    except sqlite3.DatabaseError as err:
        conn.close()
        raise StoreError(f"{str(path)!r} is not an SQLite results database ({err})") from None
    except StoreError:
        conn.close()
        raise
    return conn


def _prepare(conn: sqlite3.Connection, path: Path, timeout: float) -> None:
    """The connection's settings, then the schema: created, or migrated from an older version."""
    conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    _enter_wal(conn, timeout)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if tables and "meta" not in tables:
        # Someone else's SQLite file: do not add our tables to it.
        raise StoreError(f"{str(path)!r} is an SQLite database but not an lchannel results store "
                         f"(it has tables {sorted(tables)[:5]}); choose another --db")
    with write_transaction(conn) as c:
        for stmt in SCHEMA.split(";"):
            if stmt.strip():
                c.execute(stmt)
        row = c.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            c.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif row[0] != str(SCHEMA_VERSION):
            version = int(row[0]) if row[0].isdigit() else None
            if version is None or version > SCHEMA_VERSION or version not in MIGRATIONS:
                raise StoreError(f"{str(path)!r} has results schema version {row[0]}; this lchannel reads "
                                 f"versions 1 to {SCHEMA_VERSION} (a newer lchannel wrote it?)")
            while version < SCHEMA_VERSION:
                MIGRATIONS[version](c)
                version += 1
            c.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))


def _enter_wal(conn: sqlite3.Connection, timeout: float) -> None:
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
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as err:
            if not _locked(err) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)
