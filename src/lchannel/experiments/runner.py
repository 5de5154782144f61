"""The sweep runner: a spec's grid -> runs -> populations -> executors -> the results store.

Its pieces, one module each: :mod:`.planning` (populations, the cost model),
:mod:`.checkpoints`, :mod:`.worker` (what trains one population), :mod:`.executors`
(inline, process pool, Ray), :mod:`.heartbeat` (renewing the leases); this module is the
sweep itself (:func:`run_sweep`).

1. **Plan.**  The spec's cells (with ``--epochs/--seeds/--subset`` overrides) are
   registered in the store; each (cell config, seed) is a run with a pending row.
2. **Pack.**  Pending runs whose configs differ only in the seed (same
   :meth:`TrainConfig.key`) become one population: one :class:`Trainer` with one member
   per seed, trained in one batched pass (member e equals the single run with seed e up
   to float rounding).  Cells whose configs differ only in :data:`lchannel.population.packing.PACKABLE`
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
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

import torch

from ..data import REGISTRY
from ..engine.divergence import divergence_summary, divergence_text
from ..engine.train import History
from ..run.cliutil import writable_dir, writable_file
from ..run.config import TrainConfig
from .checkpoints import (
    checkpoint_dir,
    checkpoint_path,
    members_file,
    remove_checkpoint,
    remove_finished_checkpoints,
)
from .executors import InlineExecutor, PoolExecutor, RayExecutor
from .heartbeat import Heartbeat
from .owners import owner_id
from .planning import Population, cap_members, pack, split_for_workers
from .spec import Cell, Overrides, Spec, SpecError
from .store import FINISHED, ResultsStore, run_id
from .worker import population_data, task_members


EXECUTORS = ("local", "ray")
DEFAULT_DB = "results/lchannel.db"
# How long a runner's claim on its runs outlives its last heartbeat.  Long enough that a
# busy machine (or a slow network file system) never lets a live runner's lease lapse,
# short enough that a dead runner's work is taken over within minutes.
DEFAULT_LEASE_TTL = 300.0


def _check_data(pops: list[Population], data_dir: str | None, inline: bool, device: str) -> None:
    """Fail before any work, with one DataError naming the file, when a data set is
    missing or corrupt; in-process runs load it once here, for all populations.  For
    worker processes the files are verified here (checksums and IDX headers) without
    keeping the arrays (the data set's registry ``verify``): otherwise every worker would
    fail on its own, once per population."""
    seen = set()
    for p in pops:
        cfg = p.config.replace(device=device, data_dir=data_dir if data_dir is not None else p.config.data_dir)
        verify = REGISTRY[cfg.dataset].verify
        if inline:
            population_data(cfg)
        elif verify is not None and (cfg.dataset, cfg.data_dir) not in seen:
            seen.add((cfg.dataset, cfg.data_dir))
            verify(cfg.data_dir)


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
    _check_options(executor, workers, max_members, lease_ttl)
    overrides = (overrides or Overrides()).validate()
    device = resolve_device(device)
    cells = spec.cells(overrides, where)
    memory = str(db) == ":memory:"
    if not memory:  # before any work: a typo must not cost an epoch of training
        writable_file(db, "--db", "a results database file")
    ckroot = Path(checkpoints) if checkpoints else checkpoint_dir(db)
    if not memory:
        writable_dir(ckroot, "--checkpoints")
    sweep = _Sweep(spec, db, cells, ckroot, memory, owner or owner_id(), lease_ttl, log)
    try:
        sweep.plan(packed, pack_variants, max_members)
        sweep.start(executor, workers, device, data_dir, ray_address, packed)
        sweep.make_tasks(command, overrides, executor, alignment, malloc_tuning)
        sweep.run(progress)
    finally:
        sweep.close()
    return sweep.result()


def _check_options(executor, workers, max_members, lease_ttl) -> None:
    """The runner's own options, checked before anything is read or written."""
    if executor not in EXECUTORS:
        raise SpecError(f"--executor: {executor!r} is not accepted; expected one of {list(EXECUTORS)}")
    if workers is not None and not (isinstance(workers, int) and workers >= 1):
        raise SpecError(f"--workers: {workers!r} is not accepted; expected an integer >= 1")
    if max_members is not None and not (isinstance(max_members, int) and max_members >= 1):
        raise SpecError(f"--max-members: {max_members!r} is not accepted; expected an integer >= 1")
    if not (isinstance(lease_ttl, (int, float)) and math.isfinite(lease_ttl) and lease_ttl > 0):
        raise SpecError(f"--lease-ttl: {lease_ttl!r} is not accepted; expected a number of seconds > 0")


class _Sweep:
    """One invocation of :func:`run_sweep`, in its phases: plan (which runs are pending,
    packed into populations), start (the executor, workers and threads), make_tasks, run
    (claim each population's runs, train, store the results), close."""

    def __init__(self, spec: Spec, db, cells: list[Cell], ckroot: Path, memory: bool, owner: str,
                 lease_ttl: float, log):
        self.spec, self.db, self.cells, self.ckroot, self.memory = spec, db, cells, ckroot, memory
        self.owner, self.lease_ttl, self.log = owner, lease_ttl, log
        self.t_start = time.perf_counter()
        self.store = ResultsStore(db)
        self.beat = self.ex = self.bar = None
        self.inv = None
        self.tasks: list[dict] = []
        self.pops: list[Population] = []
        self.busy: set[str] = set()
        self.gone: dict = {}  # population id -> [(seed, cause)] of its members that diverged
        self.ran = self.failed = self.member_epochs = 0
        self.workers = self.threads = 0

    # -- plan ---------------------------------------------------------------------------------
    def plan(self, packed: bool, pack_variants: bool, max_members: int | None) -> None:
        self.store.register(self.spec.name, self.cells)
        if not self.memory:
            remove_finished_checkpoints(self.ckroot, self.store)
        self.all_ids = sorted({run_id(c.key, s) for c in self.cells for s in c.config.seeds})
        status = self.store.status(self.all_ids)
        pending = {r for r in self.all_ids if status.get(r) not in FINISHED}
        self.skipped = len(self.all_ids) - len(pending)
        self.others = self.store.leased_by_others(sorted(pending), self.owner)
        self.pops = cap_members(pack(self.cells, pending, packed, pack_variants), max_members)

    # -- start --------------------------------------------------------------------------------
    def start(self, executor: str, workers: int | None, device: str, data_dir: str | None,
              ray_address: str | None, packed: bool) -> None:
        """Choose workers and threads, check the data, start the executor."""
        self.executor, self.device, self.data_dir = executor, device, data_dir
        ex = None
        if executor == "ray":
            ex = RayExecutor(workers, ray_address)
            cores = ex.cpus()
        else:
            cores = os.cpu_count() or 1
        if workers is None:
            workers = 1 if device.startswith("cuda") else max(1, min(cores, len(self.pops)))
        threads = max(1, cores // workers)
        if packed:
            self.pops = split_for_workers(self.pops, workers)
        self.pops.sort(key=lambda p: -p.cost())
        self.inline = executor == "local" and workers == 1
        try:
            _check_data(self.pops, data_dir, inline=self.inline, device=device)
        except BaseException:
            if ex is not None:
                ex.close()
            raise
        if self.inline:  # this process trains with the threads it has ($OMP_NUM_THREADS or torch's default)
            threads = torch.get_num_threads()
        if ex is None:
            ex = InlineExecutor() if self.inline else PoolExecutor(workers, threads)
        else:
            ex.configure(workers, threads)
            threads = ex.threads
        self.ex, self.workers, self.threads = ex, workers, threads

    # -- tasks --------------------------------------------------------------------------------
    def _placed(self, c: TrainConfig) -> TrainConfig:
        return c.replace(device=self.device, data_dir=self.data_dir if self.data_dir is not None else c.data_dir)

    def make_tasks(self, command: str, overrides: Overrides, executor: str, alignment: bool | None,
                   malloc_tuning: bool | None) -> None:
        self.inv = self.store.start_invocation(self.spec.name, command, overrides.to_dict(), executor,
                                               self.workers, self.device)
        align = self.spec.alignment
        use_align = align.enabled if alignment is None else bool(alignment)
        for i, p in enumerate(self.pops):
            extra = ({"parts": [{"key": k, "config": self._placed(c).to_dict()} for k, c in p.parts]}
                     if p.parts else {})
            self.tasks.append({"id": i, "config": self._placed(p.config).to_dict(),
                               "checkpoint": str(checkpoint_path(self.ckroot, p)), **extra,
                               "alignment": {"enabled": use_align, "probe": align.probe, "every": align.every},
                               "threads": None if self.inline else self.threads, "key": p.key, "title": p.title,
                               "tune_malloc": (not self.inline) if malloc_tuning is None else bool(malloc_tuning)})

    # -- claims -------------------------------------------------------------------------------
    def claim(self, task: dict) -> dict | None:
        """Lease the task's runs; train only the members this runner got (and name them
        beside the checkpoint, so that a later runner knows what it holds)."""
        t = self._claim(task)
        if t is not None and not self.memory:
            ck = Path(t["checkpoint"])
            ck.parent.mkdir(parents=True, exist_ok=True)
            members_file(ck).write_text(json.dumps([run_id(k, s) for k, s in task_members(t)]))
        return t

    def _claim(self, task: dict) -> dict | None:
        members = task_members(task)
        ids = [run_id(k, s) for k, s in members]
        got, taken = self.store.claim(ids, self.owner, self.lease_ttl, self.inv)
        self.busy.update(taken)
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
                "checkpoint": str(checkpoint_path(self.ckroot, pop))}

    # -- progress -----------------------------------------------------------------------------
    def _announce(self) -> None:
        n_pending = sum(len(p.members) for p in self.pops)
        w, t, n = self.workers, self.threads, len(self.pops)
        self.log(f"{self.spec.name}: {len(self.cells)} cells, {len(self.all_ids)} runs ({self.skipped} already "
                 f"finished, {n_pending} to run in {n} population{'s' if n != 1 else ''}), executor {self.executor}, "
                 f"{w} worker{'s' if w != 1 else ''} x {t} thread{'s' if t != 1 else ''}, {self.device} -> {self.db}")
        if self.others:
            self.log(f"{len(self.others)} runs are being trained by another runner; this one leaves them alone "
                     f"(and takes over any whose runner stops for {self.lease_ttl:g} s)")

    def on_progress(self, pid, epoch, epochs, acc, diverged=()) -> None:
        """An epoch of population ``pid`` ended: its mean test accuracy and any member that
        diverged (a line above the bar: seed, epoch and the first non-finite quantity)."""
        if self.bar is None:
            return
        title = self.titles.get(pid, pid)
        for s, cause in diverged:
            self.bar.write(f"{title}: seed {s} diverged at {divergence_text(cause)}", file=sys.stderr)
        self.gone.setdefault(pid, []).extend(diverged)
        acc_s = "" if acc is None or math.isnan(acc) else f" test {100 * acc:.2f}%"
        div_s = f", diverged: {divergence_summary(self.gone[pid])}" if self.gone[pid] else ""
        self.bar.set_postfix_str(f"{title}: epoch {epoch}/{epochs}{acc_s}{div_s}", refresh=True)

    # -- run ----------------------------------------------------------------------------------
    def run(self, progress: bool) -> None:
        if progress:
            self._announce()
        if progress and self.tasks:
            self.bar = tqdm(total=len(self.all_ids), initial=self.skipped, desc=self.spec.name, unit="run",
                            dynamic_ncols=True, file=sys.stderr)
        self.titles = {t["id"]: t["title"] for t in self.tasks}
        if not self.memory:
            self.beat = Heartbeat(self.db, self.owner, self.lease_ttl)
        try:
            for task, res in self.ex.imap(self.tasks, self.on_progress, self.claim):
                self._store(task, res, progress)
        finally:
            self.ex.close()
            self.ex = None
            if self.bar is not None:
                self.bar.close()
        self.store.finish_invocation(self.inv)

    def _store(self, task: dict, res: dict, progress: bool) -> None:
        """Write one finished (or failed) population and drop its checkpoint."""
        members = task_members(task)
        seeds = [s for _, s in members]
        if "error" in res:
            self.failed += len(seeds)
            for key in dict.fromkeys(k for k, _ in members):
                self.store.write_failure(key, [s for k, s in members if k == key], res["error"], self.inv)
            if progress:
                self.log(f"\n{task['title']} (seeds {seeds}) failed:\n{res['error'].rstrip()}")
            return
        statuses = self.store.write_population(task["key"], res, self.inv, self.device, keys=res.get("keys"))
        self.ran += len(seeds)
        self.member_epochs += int(res.get("member_epochs", 0))
        remove_checkpoint(Path(task["checkpoint"]))
        if self.bar is not None:
            self.bar.update(len(seeds))
            accs = [a for a in res["history"]["metrics"]["test_acc"][-1]] if res["history"]["epochs"] else []
            live = [a for a, s in zip(accs, statuses) if s == "done"]
            div = divergence_summary((s, c) for _, s, c in History.from_dict(res["history"]).diverged())
            note = f" test {100 * sum(live) / len(live):.2f}%" if live else ""
            if div:  # which seeds diverged, when, and the first non-finite quantity
                note += f"{',' if live else ''} diverged: {div}"
            elif not live:
                note = " diverged"
            self.bar.set_postfix_str(f"done {task['title']}{note}", refresh=True)

    # -- end ----------------------------------------------------------------------------------
    def close(self) -> None:
        if self.ex is not None:  # started, but the run never began (e.g. the store refused the invocation)
            self.ex.close()
        if self.beat is not None:
            self.beat.close()
        try:  # an interrupted runner hands its runs back at once instead of after the TTL
            self.store.release(self.owner)
        finally:
            self.store.close()

    def result(self) -> SweepResult:
        return SweepResult(self.spec, self.cells, self.inv, self.ran, self.skipped, self.failed,
                           time.perf_counter() - self.t_start, len(self.pops), len(self.busy), self.member_epochs,
                           self.workers, self.threads)
