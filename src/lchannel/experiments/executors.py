"""Executors: where populations train: ``inline`` (this process), a local process pool or
Ray tasks; each hands finished tasks back to the runner, the store's single writer."""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as _q
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

import torch

from .spec import SpecError
from .worker import WORKER, task_seeds, train_population_safe, tune_malloc


def _next_task(todo: list[dict], claim) -> dict | None:
    """The next task of ``todo`` that ``claim`` lets this runner train (it may narrow
    the task to the seeds it could lease), or None when ``todo`` runs out."""
    while todo:
        task = todo.pop(0)
        task = claim(task) if claim is not None else task
        if task is not None:
            return task
    return None


class InlineExecutor:
    """Runs populations one after the other in this process."""

    name = "inline"

    def __init__(self, threads: int | None = None):
        self.threads = threads

    def imap(self, tasks: list[dict], progress=None, claim=None):
        todo = list(tasks)
        while (task := _next_task(todo, claim)) is not None:
            yield task, train_population_safe(task, progress)

    def close(self) -> None:
        pass


def _pool_init(queue, threads: int, parent: int) -> None:
    torch.set_num_threads(threads)
    tune_malloc()
    WORKER["progress"] = queue
    WORKER["parent"] = parent
    WORKER["threads"] = threads


def _pool_task(task: dict) -> dict:
    q = WORKER.get("progress")

    def progress(*event):
        try:
            q.put_nowait(event)
        except Exception:
            pass

    return train_population_safe(task, progress if q is not None else None)


class PoolExecutor:
    """A local process pool (``spawn``): at most ``workers`` populations in flight, each
    worker with ``threads`` torch threads."""

    name = "local"

    def __init__(self, workers: int, threads: int):
        self.workers = workers
        self.threads = threads
        self.ctx = mp.get_context("spawn")
        self.queue = self.ctx.Queue()
        self.pool = None

    def _new_pool(self):
        return ProcessPoolExecutor(self.workers, mp_context=self.ctx, initializer=_pool_init,
                                   initargs=(self.queue, self.threads, os.getpid()))

    def _drain(self, progress) -> None:
        while True:
            try:
                event = self.queue.get_nowait()
            except (_q.Empty, OSError, ValueError):
                return
            if progress is not None:
                progress(*event)

    def imap(self, tasks: list[dict], progress=None, claim=None):
        todo = list(tasks)
        running: dict = {}
        self.pool = self._new_pool()
        while todo or running:
            while len(running) < self.workers and (task := _next_task(todo, claim)) is not None:
                running[self.pool.submit(_pool_task, task)] = task
            if not running:
                break
            done, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
            self._drain(progress)
            broken = False
            for fut in done:
                task = running.pop(fut)
                try:
                    res = fut.result()
                except BrokenProcessPool:
                    broken = True
                    res = {"id": task["id"], "seeds": task_seeds(task),
                           "error": "a worker process died (killed, or out of memory)"}
                except Exception:
                    res = {"id": task["id"], "seeds": task_seeds(task), "error": traceback.format_exc()}
                yield task, res
            if broken:
                self.pool.shutdown(wait=False, cancel_futures=True)
                for fut, task in list(running.items()):  # every in-flight future is lost too
                    running.pop(fut)
                    yield task, {"id": task["id"], "seeds": task_seeds(task),
                                 "error": "a worker process died (killed, or out of memory)"}
                self.pool = self._new_pool()
        self._drain(progress)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def require_ray():
    """The ``ray`` module, or a SpecError saying how to install it (checked before any work)."""
    try:
        import ray  # lazy: ray is optional (pip install 'lchannel[ray]'); only --executor ray needs it
    except ImportError:
        raise SpecError("--executor ray needs Ray: pip install 'lchannel[ray]' (or pip install ray)") from None
    return ray


class RayExecutor:
    """Ray tasks, one per population, ``threads`` CPUs each (``--executor ray``).

    Uses the Ray instance already initialised in this process, else connects to
    ``address`` (``auto`` or ``ray://host:port``), else starts a local one.  Workers
    compute and return results; this process writes the store.  On a cluster every node
    needs lchannel installed and the data directory at the same path; mid-run
    checkpoints resume only where the checkpoint folder is on a shared file system.
    """

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None):
        self.ray = ray = require_ray()
        self.started = False
        if not ray.is_initialized():
            kwargs = {"include_dashboard": False, "log_to_driver": False}
            if address:
                ray.init(address=address, **kwargs)
            else:
                ray.init(num_cpus=workers or os.cpu_count() or 1, **kwargs)
            self.started = True
        self.configure(workers or self.cpus(), 1)

    def cpus(self) -> int:
        """CPUs of the Ray cluster."""
        return max(1, int(self.ray.cluster_resources().get("CPU", 1)))

    def node_cpus(self) -> int:
        """CPUs of the largest live node (a task cannot span nodes)."""
        cpus = [n.get("Resources", {}).get("CPU", 0) for n in self.ray.nodes() if n.get("Alive", True)]
        return max(1, int(max(cpus, default=1)))

    def configure(self, workers: int, threads: int) -> None:
        """At most ``workers`` populations in flight, ``threads`` CPUs (torch threads) each."""
        threads = min(threads, self.node_cpus())
        self.workers = workers
        self.threads = threads
        self.remote = self.ray.remote(num_cpus=threads, max_retries=0)(train_population_safe)

    def imap(self, tasks: list[dict], progress=None, claim=None):
        ray = self.ray
        limit = self.workers or len(tasks)
        todo = list(tasks)
        running: dict = {}
        while todo or running:
            while len(running) < limit and (task := _next_task(todo, claim)) is not None:
                running[self.remote.remote(task)] = task
            if not running:
                break
            done, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            for ref in done:
                task = running.pop(ref)
                try:
                    res = ray.get(ref)
                except Exception:
                    res = {"id": task["id"], "seeds": task_seeds(task), "error": traceback.format_exc()}
                yield task, res

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
            self.started = False
