"""The leases' heartbeat (:mod:`.runner`, step 5): a thread that keeps a live runner's
claims on its runs from expiring while it trains them."""

from __future__ import annotations

import os
import sqlite3
import threading

from .store import ResultsStore


class Heartbeat:
    """Renews ``owner``'s leases every ``ttl / 4`` seconds from a thread with its own
    connection, for as long as the runner lives: a population may train for longer than
    the TTL between two results, and the runner's own thread may be busy training it."""

    def __init__(self, db: str | os.PathLike, owner: str, ttl: float):
        self.db, self.owner, self.ttl = db, owner, ttl
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="lchannel-lease-heartbeat", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        store = None
        try:
            while not self.stop.wait(max(0.05, self.ttl / 4)):
                try:
                    store = store or ResultsStore(self.db)
                    store.renew(self.owner, self.ttl)
                except sqlite3.Error:
                    pass  # locked for longer than the busy timeout: try again next beat
        finally:
            if store is not None:
                store.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
