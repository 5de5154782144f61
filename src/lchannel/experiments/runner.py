"""The sweep runner: a spec's grid -> runs -> populations -> executors -> the results store.

1. **Plan.**  The spec's cells (with ``--epochs/--seeds/--subset`` overrides) are
   registered in the store; each (cell config, seed) is a run with a pending row.
2. **Pack.**  Pending runs whose configs differ only in the seed (same
   :meth:`TrainConfig.key`) become one population: one :class:`Trainer` with one member
   per seed, trained in one batched pass (member e equals the single run with seed e up
   to float rounding).  Cells whose configs differ only in :data:`lchannel.packing.PACKABLE`
   fields (learning rate, feedback distribution, dropout p, adaptation rate, quantization bits) share
   one population across variants; each member is stored under its own cell's run id.
   When there are fewer populations than workers, the largest are split.
3. **Execute.**  Populations go to an executor: ``inline`` (this process), a local
   process pool (``spawn``; each worker gets cores/workers torch threads) or Ray tasks.
   Workers only compute; this process is the store's single writer, and writes each
   finished population in one transaction.
4. **Resume.**  Workers checkpoint their population after every epoch (trainer state,
   random streams and alignment angles) in a folder next to the database.  Killing the
   runner loses at most the populations in flight; rerunning the same command skips
   finished runs and continues the others from their checkpoints, with the same numbers
   as an uninterrupted sweep.
5. **Share.**  Several runners (processes, on one machine or several sharing the
   database file) can run the same sweep: each claims a population's runs in the store
   (a lease, one ``BEGIN IMMEDIATE`` transaction) just before training it, renews its
   leases from a heartbeat thread, and skips runs another live runner holds.  A dead
   runner's leases expire after ``lease_ttl`` seconds (at once when it was a process on
   this host), and the next runner to reach those runs resumes them from their checkpoints.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..cliutil import writable_dir, writable_file
from ..config import TrainConfig
from ..divergence import divergence_summary, divergence_text
from ..train import History
from .spec import Cell, Overrides, Spec, SpecError
from .store import FINISHED, ResultsStore, owner_id, run_id

EXECUTORS = ("local", "ray")
DEFAULT_DB = "results/lchannel.db"
# How long a runner's claim on its runs outlives its last heartbeat.  Long enough that a
# busy machine (or a slow network file system) never lets a live runner's lease lapse,
# short enough that a dead runner's work is taken over within minutes.
DEFAULT_LEASE_TTL = 300.0


# ------------------------------------------------------------------------------ planning
@dataclass
class Population:
    """Runs trained together as one population: the seeds of one cell (``config``), or,
    packed across variants, the seeds of several cells whose configs differ only in
    :data:`lchannel.packing.PACKABLE` fields (``parts``: ``(cell key, config with that
    cell's seeds)`` in member order; :func:`lchannel.packing.build_packed_trainer`)."""

    config: TrainConfig  # seeds = the members (the first part's config when packed across variants)
    labels: list[str] = field(default_factory=list)  # the cells (titles) that use it
    parts: list[tuple[str, TrainConfig]] | None = None

    @property
    def key(self) -> str:
        if not self.parts or len(self.parts) == 1:
            return self.parts[0][0] if self.parts else self.config.key()
        import hashlib
        text = json.dumps([[k, c.seeds] for k, c in self.parts])
        return "v" + hashlib.sha256(text.encode()).hexdigest()[:15]

    @property
    def members(self) -> list[tuple[str, int]]:
        """``(cell key, seed)`` of every member, in member order."""
        if self.parts:
            return [(k, s) for k, c in self.parts for s in c.seeds]
        return [(self.config.key(), s) for s in self.config.seeds]

    @property
    def seeds(self) -> list[int]:
        return [s for _, s in self.members]

    @property
    def title(self) -> str:
        if not self.labels:
            return self.key
        return " + ".join(self.labels) if self.parts else self.labels[0]

    def sub(self, members: list[tuple[str, int]]) -> "Population":
        """The population of ``members`` (a subset of this one's, in its order)."""
        if not self.parts:
            return Population(self.config.replace(seeds=[s for _, s in members]), self.labels)
        configs = dict((k, c) for k, c in self.parts)
        parts: list[tuple[str, TrainConfig]] = []
        for k, s in members:
            if parts and parts[-1][0] == k:
                parts[-1] = (k, parts[-1][1].replace(seeds=[*parts[-1][1].seeds, s]))
            else:
                parts.append((k, configs[k].replace(seeds=[s])))
        if len(parts) == 1:
            return Population(parts[0][1], self.labels)
        return Population(parts[0][1], self.labels, parts)

    def cost(self) -> float:
        """A rough relative cost, to start the longest populations first (:func:`work`)."""
        return work(self.config, members=len(self.members))


# -------------------------------------------------------------------------- cost model
# Measured (issue 25) with one torch thread (OMP_NUM_THREADS=1) on the 2-core AMD EPYC VM,
# torch 2.13, CPU seconds (time.process_time, /usr/bin/time), while other jobs ran:
# `lchannel compare --epochs 1`, the same resumed to `--epochs 2`, and `--epochs 5` (151
# CPU-s for 9 channels x 5 seeds x 5 epochs), on paper 1's MNIST net
# A[784,100,100,100,100,10] (REFERENCE_MULTIPLY_ADDS per example forward).  One training
# example costs 8.3 us per epoch and member (its minibatch step: forward, learning
# channel, update); one evaluated example 4.6 us (the test set every epoch, both sets
# before training); on top of that ~60 us per layer and minibatch step do not grow with the
# network (per-call overhead, measured on A[2,8,1] and A[2,100,100,100,1] with batch 10).
REFERENCE_MULTIPLY_ADDS = 784 * 100 + 3 * 100 * 100 + 100 * 10
SECONDS_PER_TRAINED_EXAMPLE = 8.3e-6
SECONDS_PER_EVALUATED_EXAMPLE = 4.6e-6
SECONDS_PER_LAYER_STEP = 60e-6
SECONDS_AT_START = 5.0  # imports, data in memory, run folders
# A minibatch step with quantized per-example weight updates (update_bits) costs 3.0-3.3x
# a plain one for five MNIST members (benchmarks/bench_quantized.py).
QUANTIZED_UPDATE_FACTOR = 3.3
# Two torch threads on a quiet 2-core CPU run an MNIST step 1.35x faster than one
# (docs/performance.md, "Sweeps": 3.0 against 4.0 ms); on a busy one they are slower.
TWO_THREAD_SPEEDUP = 1.35


def forward_multiply_adds(cfg: TrainConfig) -> int:
    """Multiply-adds of one example's forward pass through the weighted layers: the dense
    weight count, or for a conv net each conv block's outputs x fan-in."""
    sizes = cfg.sizes
    blocks = getattr(sizes, "weighted", None)
    if blocks is not None:
        return sum(b.multiplications for b in blocks)
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def examples_per_epoch(cfg: TrainConfig) -> int:
    """Training examples per epoch (``epoch_iterations`` minibatches, or the training set)."""
    return cfg.epoch_iterations * cfg.batch_size if cfg.epoch_iterations else cfg.train_size


def work(cfg: TrainConfig, members: int | None = None, epochs: float | None = None) -> float:
    """Training work of a run in example-multiply-adds: epochs x members x examples per
    epoch x forward multiply-adds (quantized updates: x QUANTIZED_UPDATE_FACTOR).  The
    runner's relative cost of a population and the main term of :func:`estimate_seconds`."""
    members = len(cfg.seeds) if members is None else members
    epochs = cfg.epochs if epochs is None else epochs
    factor = QUANTIZED_UPDATE_FACTOR if cfg.update_bits is not None else 1.0
    return epochs * members * examples_per_epoch(cfg) * forward_multiply_adds(cfg) * factor


def estimate_seconds(cfg: TrainConfig, test_examples: int, epochs_done: int = 0, threads: int = 1) -> float:
    """A rough estimate of the seconds a quiet CPU takes to train ``cfg`` (all its seeds,
    one population) from epoch ``epochs_done`` to ``cfg.epochs`` with ``threads`` torch
    threads, with the evaluation of ``test_examples`` every epoch (and of both sets before
    the first), from the measured constants above scaled by the network's multiply-adds.
    Start-up not included (SECONDS_AT_START, once per command).  An estimate: another CPU,
    or other jobs on this one, change it."""
    epochs = max(0, cfg.epochs - epochs_done)
    if epochs == 0:
        return 0.0
    members = len(cfg.seeds)
    scale = forward_multiply_adds(cfg) / REFERENCE_MULTIPLY_ADDS
    train = SECONDS_PER_TRAINED_EXAMPLE * work(cfg, members, epochs) / REFERENCE_MULTIPLY_ADDS
    evaluated = test_examples * epochs + (cfg.train_size + test_examples if epochs_done == 0 else 0)
    if cfg.train_metrics == "full":
        evaluated += cfg.train_size * epochs
    steps = math.ceil(examples_per_epoch(cfg) / cfg.batch_size) * epochs
    seconds = (train + SECONDS_PER_EVALUATED_EXAMPLE * evaluated * members * scale
               + SECONDS_PER_LAYER_STEP * steps * (len(cfg.sizes) - 1))
    return seconds / TWO_THREAD_SPEEDUP if threads >= 2 else seconds


def pack(cells: list[Cell], pending: set[str], packed: bool = True, variants: bool = True) -> list[Population]:
    """Populations for the ``pending`` run ids of ``cells``: one per config hash (all its
    pending seeds), or one per run with ``packed=False``.  With ``variants`` (and
    ``packed``), the populations of cells whose configs share a
    :func:`lchannel.packing.pack_key` (they differ only in the learning rate or the
    feedback distribution) become one population across variants."""
    from ..packing import pack_key

    by_key: dict[str, Population] = {}
    seeds: dict[str, list[int]] = {}
    for cell in cells:
        h = cell.key
        for s in cell.config.seeds:
            if run_id(h, s) not in pending:
                continue
            if h not in by_key:
                by_key[h] = Population(cell.config, [cell.title])
                seeds[h] = []
            elif cell.title not in by_key[h].labels:
                by_key[h].labels.append(cell.title)
            if s not in seeds[h]:
                seeds[h].append(s)
    out = []
    for h, pop in by_key.items():
        ss = sorted(seeds[h])
        if packed:
            out.append(Population(pop.config.replace(seeds=ss), pop.labels))
        else:
            out.extend(Population(pop.config.replace(seeds=[s]), pop.labels) for s in ss)
    if not (packed and variants):
        return out
    groups: dict[str, list[Population]] = {}
    for p in out:
        groups.setdefault(pack_key(p.config), []).append(p)
    merged = []
    for group in groups.values():
        if len(group) == 1:
            merged.append(group[0])
            continue
        parts = [(p.key, p.config) for p in group]
        merged.append(Population(group[0].config, [t for p in group for t in p.labels], parts))
    return merged


def cap_members(pops: list[Population], max_members: int | None) -> list[Population]:
    """Split populations into chunks of at most ``max_members`` members (memory limits)."""
    if not max_members:
        return list(pops)
    out = []
    for p in pops:
        m = p.members
        for i in range(0, len(m), max_members):
            out.append(p.sub(m[i:i + max_members]))
    return out


def split_for_workers(pops: list[Population], workers: int) -> list[Population]:
    """Split the largest populations in halves until every worker has one (or none can
    be split): packing must not leave cores idle."""
    pops = list(pops)
    while len(pops) < workers:
        big = max(range(len(pops)), key=lambda i: (len(pops[i].members), pops[i].cost()), default=None)
        if big is None or len(pops[big].members) < 2:
            break
        p = pops.pop(big)
        m = p.members
        half = len(m) // 2
        pops[big:big] = [p.sub(m[:half]), p.sub(m[half:])]
    return pops


def checkpoint_dir(db: str | os.PathLike) -> Path:
    """Where populations checkpoint: ``results/lchannel.db`` -> ``results/lchannel.checkpoints``."""
    p = Path(db)
    return p.with_name(p.stem + ".checkpoints")


def checkpoint_path(root: Path, pop: Population) -> Path:
    seeds = "-".join(str(s) for s in pop.seeds)
    if len(seeds) > 60:
        import hashlib
        seeds = hashlib.sha256(seeds.encode()).hexdigest()[:16]
    return root / f"{pop.key}-s{seeds}.pt"


def _members_file(ckpt: Path) -> Path:
    """The run ids a checkpoint holds, written beside it before its population trains."""
    return ckpt.with_suffix(".members.json")


def _remove_checkpoint(ckpt: Path) -> None:
    for stale in [ckpt, _members_file(ckpt), *ckpt.parent.glob(f"{ckpt.stem}.*.tmp")]:  # tmp: writers killed mid-save
        stale.unlink(missing_ok=True)


def remove_finished_checkpoints(root: Path, store: ResultsStore) -> int:
    """Delete the checkpoints whose runs are all finished in ``store``: a runner killed
    between storing a population's results and deleting its checkpoint leaves one behind,
    and a later sweep may pack those runs differently (another name), so it is found by
    the run ids written beside it.  Returns how many were removed."""
    removed = 0
    for f in sorted(root.glob("*.members.json")) if root.is_dir() else []:
        try:
            ids = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        status = store.status(ids)
        if ids and all(status.get(r) in FINISHED for r in ids):
            _remove_checkpoint(f.with_name(f.name.removesuffix(".members.json") + ".pt"))
            removed += 1
    return removed


# ------------------------------------------------------------------------------ the worker
def tune_malloc() -> bool:
    """Keep freed memory in this process instead of returning it to the kernel (glibc).

    Training allocates and frees the same large temporaries at every step (quantized
    per-example updates hold E·B·N_h·N_{h-1} floats: 157 MB for five MNIST members).
    glibc serves blocks over 32 MB with mmap and unmaps them on free, so every step
    page-faults them in again: on the 2-core CPU this was two thirds of the time of a
    quantized-update step (1.49 s -> 0.43 s with this tuning).  Called in worker
    processes only; Linux/glibc only, a no-op elsewhere.  Returns whether it applied.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_top_pad, m_mmap_max = -1, -2, -4
        return bool(libc.mallopt(m_mmap_max, 0) and libc.mallopt(m_trim_threshold, 2 ** 31 - 1)
                    and libc.mallopt(m_top_pad, 256 * 2 ** 20))
    except (OSError, AttributeError):
        return False


_DATA: dict = {}
_WORKER: dict = {"progress": None, "parent": None, "threads": None}


def _data(cfg: TrainConfig):
    """Training and test data for ``cfg``, cached per process (workers serve many runs)."""
    from ..run import load_data
    key = cfg.data_key()
    if key not in _DATA:
        if len(_DATA) > 4:
            _DATA.clear()
        _DATA[key] = load_data(cfg)
    return _DATA[key]


def train_population(task: dict, progress=None) -> dict:
    """Train one population described by ``task`` and return its results (plain data).

    ``task``: ``config`` (TrainConfig dict, seeds = members), ``checkpoint`` (path or
    None), ``alignment`` ({enabled, probe, every}), ``id``; a population across variants
    also has ``parts`` ([{key, config}], members part by part) and ``key``.  ``progress(id, epoch,
    epochs, test_acc)`` is called after every epoch, with a fifth argument after an epoch in
    which members diverged: ``[(seed, cause)]`` of those members (``History.divergence``).
    Resumes from the checkpoint when it holds the same config and seeds.
    """
    from ..alignment import AlignmentProbe
    from ..data import REGISTRY
    from ..run import build_trainer, fit_options

    if task.get("threads"):
        torch.set_num_threads(int(task["threads"]))
    if task.get("tune_malloc"):
        tune_malloc()
    cfg = TrainConfig.from_dict(task["config"])
    parts = [TrainConfig.from_dict(p["config"]) for p in task.get("parts") or []]
    train, test = _data(cfg)
    if parts:
        from ..packing import build_packed_trainer
        trainer = build_packed_trainer(parts)
        ident = task["key"]  # the checkpoint's identity: the cells and their seeds
        members = [s for c in parts for s in c.seeds]
    else:
        trainer = build_trainer(cfg, progress=False)
        ident, members = cfg.key(), cfg.seeds
    ckpt = Path(task["checkpoint"]) if task.get("checkpoint") else None
    align_opts = task.get("alignment") or {}
    rows: list = []  # (epoch, layer, metric, [value per member])
    elapsed = cpu = 0.0
    if ckpt is not None and ckpt.exists():
        try:
            state = torch.load(ckpt, weights_only=False, map_location=cfg.device)
        except Exception:  # a damaged checkpoint only costs the time it saved
            state = None
        if state and state.get("config_hash") == ident and state.get("seeds") == members:
            trainer.load_state_dict(state["trainer"])
            rows = list(state.get("alignment", []))
            elapsed = float(state.get("elapsed", 0.0))
            cpu = float(state.get("cpu", 0.0))
    start_epoch = trainer.epoch  # epochs trained before (a checkpoint), not counted in the throughput
    probe = AlignmentProbe(test, align_opts.get("probe", 1000)) if align_opts.get("enabled") else None
    every = int(align_opts.get("every", 1))

    def measure(epoch: int) -> None:
        rows.extend((epoch, h, m, v) for h, m, v in probe(trainer))

    if probe is not None and trainer.epoch == 0 and not rows:
        measure(0)
    t0, c0 = time.perf_counter(), time.process_time()
    parent = _WORKER.get("parent")

    def on_epoch(t) -> None:
        if probe is not None and (t.epoch % every == 0 or t.epoch == cfg.epochs):
            measure(t.epoch)
        if ckpt is not None:
            state = {"config_hash": ident, "seeds": members, "trainer": t.state_dict(), "alignment": rows,
                     "elapsed": elapsed + time.perf_counter() - t0, "cpu": cpu + time.process_time() - c0}
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            tmp = ckpt.with_suffix(f".{os.getpid()}.tmp")  # per process: never two writers on one file
            torch.save(state, tmp)
            os.replace(tmp, ckpt)
        if progress is not None:
            live = [a for a, d in zip(t.history.final("test_acc"), t.history.diverged_at) if d is None]
            newly = [(s, c) for e, s, c in t.history.diverged() if t.history.diverged_at[e] == t.epoch]
            progress(task["id"], t.epoch, cfg.epochs, sum(live) / len(live) if live else math.nan,
                     *([newly] if newly else []))
        if parent is not None and os.getppid() != parent:
            os._exit(3)  # the runner died: stop; the checkpoint lets the next run resume

    trainer.fit(train, test, epochs=cfg.epochs, on_epoch=on_epoch, **fit_options(cfg, train))
    h = trainer.history
    snapshot = REGISTRY[cfg.dataset].snapshot
    arrays = {k: v.numpy() for k, v in snapshot(trainer.net).items()} if snapshot is not None else {}
    out = {"id": task["id"], "seeds": members, "history": h.to_dict(), "alignment": rows, "arrays": arrays,
           "seconds": elapsed + time.perf_counter() - t0, "cpu_seconds": cpu + time.process_time() - c0,
           "member_epochs": len(members) * (trainer.epoch - start_epoch)}
    if parts:
        out["keys"] = [p["key"] for p, c in zip(task["parts"], parts) for _ in c.seeds]  # each member's cell
    return out


def train_population_safe(task: dict, progress=None) -> dict:
    """:func:`train_population`, with an exception turned into ``{"error": traceback}``."""
    try:
        return train_population(task, progress)
    except Exception:
        return {"id": task["id"], "seeds": task_seeds(task), "error": traceback.format_exc()}


def task_members(task: dict) -> list[tuple[str, int]]:
    """``(cell key, seed)`` of every member of a task, in member order."""
    if task.get("parts"):
        return [(p["key"], s) for p in task["parts"] for s in p["config"]["seeds"]]
    return [(task["key"], s) for s in task["config"]["seeds"]]


def task_seeds(task: dict) -> list[int]:
    return [p for part in task["parts"] for p in part["config"]["seeds"]] if task.get("parts") \
        else task["config"]["seeds"]


# ------------------------------------------------------------------------------ executors
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
    _WORKER["progress"] = queue
    _WORKER["parent"] = parent
    _WORKER["threads"] = threads


def _pool_task(task: dict) -> dict:
    q = _WORKER.get("progress")

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
        import multiprocessing as mp
        self.workers = workers
        self.threads = threads
        self.ctx = mp.get_context("spawn")
        self.queue = self.ctx.Queue()
        self.pool = None

    def _new_pool(self):
        from concurrent.futures import ProcessPoolExecutor
        return ProcessPoolExecutor(self.workers, mp_context=self.ctx, initializer=_pool_init,
                                   initargs=(self.queue, self.threads, os.getpid()))

    def _drain(self, progress) -> None:
        import queue as _q
        while True:
            try:
                event = self.queue.get_nowait()
            except (_q.Empty, OSError, ValueError):
                return
            if progress is not None:
                progress(*event)

    def imap(self, tasks: list[dict], progress=None, claim=None):
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool
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
        import ray
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


def _check_data(pops: list[Population], data_dir: str | None, inline: bool, device: str) -> None:
    """Fail before any work, with one DataError naming the file, when a data set is
    missing or corrupt; in-process runs load it once here, for all populations.  For
    worker processes the files are verified here (checksums and IDX headers) without
    keeping the arrays (the data set's registry ``verify``): otherwise every worker would
    fail on its own, once per population."""
    from ..data import REGISTRY
    seen = set()
    for p in pops:
        cfg = p.config.replace(device=device, data_dir=data_dir if data_dir is not None else p.config.data_dir)
        verify = REGISTRY[cfg.dataset].verify
        if inline:
            _data(cfg)
        elif verify is not None and (cfg.dataset, cfg.data_dir) not in seen:
            seen.add((cfg.dataset, cfg.data_dir))
            verify(cfg.data_dir)


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


# ------------------------------------------------------------------------------ the sweep
@dataclass
class SweepResult:
    spec: Spec
    cells: list[Cell]
    invocation: int
    ran: int  # runs computed by this invocation
    skipped: int  # runs already finished before
    failed: int
    seconds: float
    populations: int
    busy: int = 0  # runs left alone because another live runner was training them
    member_epochs: int = 0  # epochs trained by this invocation, summed over members
    workers: int = 1
    threads: int = 1

    @property
    def throughput(self) -> float:
        """Member-epochs per second of wall time: one member trained for one epoch is
        the unit of work of every spec, whatever the packing."""
        return self.member_epochs / self.seconds if self.seconds > 0 else 0.0


def resolve_device(device: str) -> str:
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return "cpu"
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise SpecError(f"--device: {device!r} was asked for but CUDA is not available here "
                            f"(torch {torch.__version__}); use --device cpu")
        return device
    raise SpecError(f"--device: {device!r} is not accepted; expected auto, cpu, cuda or cuda:N")


def run_sweep(spec: Spec, db: str | os.PathLike = DEFAULT_DB, *, executor: str = "local",
              workers: int | None = None, overrides: Overrides | None = None, device: str = "auto",
              data_dir: str | None = None, packed: bool = True, pack_variants: bool = True,
              alignment: bool | None = None,
              progress: bool = True, ray_address: str | None = None, command: str = "",
              checkpoints: str | os.PathLike | None = None, where: dict | None = None,
              max_members: int | None = None, malloc_tuning: bool | None = None, log=print,
              lease_ttl: float = DEFAULT_LEASE_TTL, owner: str | None = None) -> SweepResult:
    """Run every pending run of ``spec`` and store the results in ``db`` (see module doc).

    executor: ``local`` (a process pool with ``workers`` processes; ``workers=1`` runs
        in this process) or ``ray``.
    workers: populations trained at once (default: CPU cores, capped by the number of
        populations; 1 on CUDA).
    packed: train runs that differ only in seed as one population (default) or one by one.
    pack_variants: with ``packed``, also train the cells that differ only in the learning
        rate or the feedback distribution as one population (:func:`pack`).
    alignment: record alignment angles per epoch (default: the spec's ``[alignment]``).
    where: run only the cells matching ``{axis: [labels]}`` (e.g. one row of Table 1).
    max_members: at most this many seeds per population (memory limits).
    malloc_tuning: apply :func:`tune_malloc` where populations train (default: in worker
        processes, not in this process; the CLI turns it on everywhere).
    lease_ttl: seconds a runner's lease on its runs outlives its last heartbeat (see
        module doc, step 5); ``owner`` names this runner in the leases (default
        ``host:pid:random``; tests inject their own to play several runners).
    """
    if executor not in EXECUTORS:
        raise SpecError(f"--executor: {executor!r} is not accepted; expected one of {list(EXECUTORS)}")
    if workers is not None and not (isinstance(workers, int) and workers >= 1):
        raise SpecError(f"--workers: {workers!r} is not accepted; expected an integer >= 1")
    if max_members is not None and not (isinstance(max_members, int) and max_members >= 1):
        raise SpecError(f"--max-members: {max_members!r} is not accepted; expected an integer >= 1")
    if not (isinstance(lease_ttl, (int, float)) and math.isfinite(lease_ttl) and lease_ttl > 0):
        raise SpecError(f"--lease-ttl: {lease_ttl!r} is not accepted; expected a number of seconds > 0")
    overrides = (overrides or Overrides()).validate()
    device = resolve_device(device)
    cells = spec.cells(overrides, where)
    memory = str(db) == ":memory:"
    if not memory:  # before any work: a typo must not cost an epoch of training
        writable_file(db, "--db", "a results database file")
    ckroot = Path(checkpoints) if checkpoints else checkpoint_dir(db)
    if not memory:
        writable_dir(ckroot, "--checkpoints")
    owner = owner or owner_id()
    t_start = time.perf_counter()
    store = ResultsStore(db)
    beat = None
    try:
        store.register(spec.name, cells)
        if not memory:
            remove_finished_checkpoints(ckroot, store)
        all_ids = sorted({run_id(c.key, s) for c in cells for s in c.config.seeds})
        status = store.status(all_ids)
        pending = {r for r in all_ids if status.get(r) not in FINISHED}
        skipped = len(all_ids) - len(pending)
        others = store.leased_by_others(sorted(pending), owner)
        pops = cap_members(pack(cells, pending, packed, pack_variants), max_members)
        ex = None
        if executor == "ray":
            ex = RayExecutor(workers, ray_address)
            cores = ex.cpus()
        else:
            cores = os.cpu_count() or 1
        if workers is None:
            workers = 1 if device.startswith("cuda") else max(1, min(cores, len(pops)))
        threads = max(1, cores // workers)
        if packed:
            pops = split_for_workers(pops, workers)
        pops.sort(key=lambda p: -p.cost())
        inline = executor == "local" and workers == 1
        try:
            _check_data(pops, data_dir, inline=inline, device=device)
        except BaseException:
            if ex is not None:
                ex.close()
            raise
        if inline:  # this process trains with the threads it has ($OMP_NUM_THREADS or torch's default)
            threads = torch.get_num_threads()
        if ex is None:
            ex = InlineExecutor() if inline else PoolExecutor(workers, threads)
        else:
            ex.configure(workers, threads)
            threads = ex.threads
        inv = store.start_invocation(spec.name, command, overrides.to_dict(), executor, workers, device)
        align = spec.alignment
        use_align = align.enabled if alignment is None else bool(alignment)
        tasks = []
        def placed(c: TrainConfig) -> TrainConfig:
            return c.replace(device=device, data_dir=data_dir if data_dir is not None else c.data_dir)

        for i, p in enumerate(pops):
            cfg = placed(p.config)
            extra = {"parts": [{"key": k, "config": placed(c).to_dict()} for k, c in p.parts]} if p.parts else {}
            tasks.append({"id": i, "config": cfg.to_dict(), "checkpoint": str(checkpoint_path(ckroot, p)), **extra,
                          "alignment": {"enabled": use_align, "probe": align.probe, "every": align.every},
                          "threads": None if inline else threads, "key": p.key, "title": p.title,
                          "tune_malloc": (not inline) if malloc_tuning is None else bool(malloc_tuning)})
        n_pending = sum(len(p.members) for p in pops)
        if progress:
            log(f"{spec.name}: {len(cells)} cells, {len(all_ids)} runs ({skipped} already finished, {n_pending} to run "
                f"in {len(pops)} population{'s' if len(pops) != 1 else ''}), executor {executor}, {workers} "
                f"worker{'s' if workers != 1 else ''} x {threads} thread{'s' if threads != 1 else ''}, {device} -> {db}")
            if others:
                log(f"{len(others)} runs are being trained by another runner; this one leaves them alone "
                    f"(and takes over any whose runner stops for {lease_ttl:g} s)")
        ran = failed = member_epochs = 0
        bar = None
        if progress and tasks:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(all_ids), initial=skipped, desc=spec.name, unit="run", dynamic_ncols=True,
                       file=sys.stderr)
        titles = {t["id"]: t["title"] for t in tasks}
        busy: set[str] = set()

        def claim(task: dict) -> dict | None:
            """Lease the task's runs; train only the members this runner got."""
            t = _claim(task)
            if t is not None and not memory:
                ck = Path(t["checkpoint"])
                ck.parent.mkdir(parents=True, exist_ok=True)
                _members_file(ck).write_text(json.dumps([run_id(k, s) for k, s in task_members(t)]))
            return t

        def _claim(task: dict) -> dict | None:
            members = task_members(task)
            ids = [run_id(k, s) for k, s in members]
            got, taken = store.claim(ids, owner, lease_ttl, inv)
            busy.update(taken)
            if len(got) == len(ids):
                return task
            if not got:
                return None
            keep = [m for m, r in zip(members, ids) if r in got]
            if task.get("parts"):
                parts = [(p["key"], TrainConfig.from_dict(p["config"])) for p in task["parts"]]
                pop = Population(parts[0][1], [], parts).sub(keep)
            else:
                pop = Population(TrainConfig.from_dict(task["config"])).sub(keep)
            extra = {"parts": [{"key": k, "config": c.to_dict()} for k, c in pop.parts]} if pop.parts else {}
            base = {k: v for k, v in task.items() if k != "parts"}
            return {**base, "config": pop.config.to_dict(), "key": pop.key, **extra,
                    "checkpoint": str(checkpoint_path(ckroot, pop))}

        if not memory:
            beat = Heartbeat(db, owner, lease_ttl)

        gone: dict = {}  # population id -> [(seed, cause)] of its members that diverged

        def on_progress(pid, epoch, epochs, acc, diverged=()):
            if bar is not None:
                title = titles.get(pid, pid)
                for s, cause in diverged:  # a line that stays above the bar
                    bar.write(f"{title}: seed {s} diverged at {divergence_text(cause)}", file=sys.stderr)
                gone.setdefault(pid, []).extend(diverged)
                acc_s = "" if acc is None or math.isnan(acc) else f" test {100 * acc:.2f}%"
                div_s = f", diverged: {divergence_summary(gone[pid])}" if gone[pid] else ""
                bar.set_postfix_str(f"{title}: epoch {epoch}/{epochs}{acc_s}{div_s}", refresh=True)

        try:
            for task, res in ex.imap(tasks, on_progress, claim):
                members = task_members(task)
                seeds = [s for _, s in members]
                if "error" in res:
                    failed += len(seeds)
                    for key in dict.fromkeys(k for k, _ in members):
                        store.write_failure(key, [s for k, s in members if k == key], res["error"], inv)
                    if progress:
                        log(f"\n{task['title']} (seeds {seeds}) failed:\n{res['error'].rstrip()}")
                    continue
                statuses = store.write_population(task["key"], res, inv, device, keys=res.get("keys"))
                ran += len(seeds)
                member_epochs += int(res.get("member_epochs", 0))
                _remove_checkpoint(Path(task["checkpoint"]))
                if bar is not None:
                    bar.update(len(seeds))
                    accs = [a for a in res["history"]["metrics"]["test_acc"][-1]] if res["history"]["epochs"] else []
                    live = [a for a, s in zip(accs, statuses) if s == "done"]
                    div = divergence_summary((s, c) for _, s, c in History.from_dict(res["history"]).diverged())
                    note = f" test {100 * sum(live) / len(live):.2f}%" if live else ""
                    if div:  # which seeds diverged, when, and the first non-finite quantity
                        note += f"{',' if live else ''} diverged: {div}"
                    elif not live:
                        note = " diverged"
                    bar.set_postfix_str(f"done {task['title']}{note}", refresh=True)
        finally:
            ex.close()
            if bar is not None:
                bar.close()
        store.finish_invocation(inv)
    finally:
        if beat is not None:
            beat.close()
        try:  # an interrupted runner hands its runs back at once instead of after the TTL
            store.release(owner)
        finally:
            store.close()
    return SweepResult(spec, cells, inv, ran, skipped, failed, time.perf_counter() - t_start, len(pops), len(busy),
                       member_epochs, workers, threads)
