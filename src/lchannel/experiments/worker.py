"""What a worker does with one population task: load its data, train it (resuming from
its checkpoint, checkpointing every epoch), and return the results and alignment angles."""

from __future__ import annotations

import ctypes
import math
import os
import sys
import time
import traceback
from pathlib import Path

import torch

from ..data import REGISTRY
from ..population.packing import build_packed_trainer
from ..report.alignment import AlignmentProbe
from ..run.config import TrainConfig
from ..run.single import build_trainer, fit_options, load_data


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
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_top_pad, m_mmap_max = -1, -2, -4
        return bool(libc.mallopt(m_mmap_max, 0) and libc.mallopt(m_trim_threshold, 2 ** 31 - 1)
                    and libc.mallopt(m_top_pad, 256 * 2 ** 20))
    except (OSError, AttributeError):
        return False


_DATA: dict = {}
WORKER: dict = {"progress": None, "parent": None, "threads": None}


def population_data(cfg: TrainConfig):
    """Training and test data for ``cfg``, cached per process (workers serve many runs)."""
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

    if task.get("threads"):
        torch.set_num_threads(int(task["threads"]))
    if task.get("tune_malloc"):
        tune_malloc()
    cfg = TrainConfig.from_dict(task["config"])
    parts = [TrainConfig.from_dict(p["config"]) for p in task.get("parts") or []]
    train, test = population_data(cfg)
    trainer, ident, members = _build(task, cfg, parts)
    ckpt = Path(task["checkpoint"]) if task.get("checkpoint") else None
    align_opts = task.get("alignment") or {}
    # rows: (epoch, layer, metric, [value per member]); elapsed, cpu: seconds trained before
    rows, elapsed, cpu = _resume(ckpt, trainer, ident, members, cfg.device)
    start_epoch = trainer.epoch  # epochs trained before (a checkpoint), not counted in the throughput
    probe = AlignmentProbe(test, align_opts.get("probe", 1000)) if align_opts.get("enabled") else None
    every = int(align_opts.get("every", 1))

    def measure(epoch: int) -> None:
        rows.extend((epoch, h, m, v) for h, m, v in probe(trainer))

    if probe is not None and trainer.epoch == 0 and not rows:
        measure(0)
    t0, c0 = time.perf_counter(), time.process_time()
    parent = WORKER.get("parent")

    def on_epoch(t) -> None:
        if probe is not None and (t.epoch % every == 0 or t.epoch == cfg.epochs):
            measure(t.epoch)
        if ckpt is not None:
            _save_checkpoint(ckpt, {"config_hash": ident, "seeds": members, "trainer": t.state_dict(),
                                    "alignment": rows, "elapsed": elapsed + time.perf_counter() - t0,
                                    "cpu": cpu + time.process_time() - c0})
        if progress is not None:
            _report_epoch(progress, task["id"], t, cfg.epochs)
        if parent is not None and os.getppid() != parent:
            os._exit(3)  # the runner died: stop; the checkpoint lets the next run resume

    trainer.fit(train, test, epochs=cfg.epochs, on_epoch=on_epoch, **fit_options(cfg, train))
    arrays = _snapshot(trainer, cfg)
    out = {"id": task["id"], "seeds": members, "history": trainer.history.to_dict(), "alignment": rows,
           "arrays": arrays, "seconds": elapsed + time.perf_counter() - t0,
           "cpu_seconds": cpu + time.process_time() - c0, "member_epochs": len(members) * (trainer.epoch - start_epoch)}
    if parts:
        out["keys"] = [p["key"] for p, c in zip(task["parts"], parts) for _ in c.seeds]  # each member's cell
    return out


def _build(task: dict, cfg: TrainConfig, parts: list[TrainConfig]):
    """The trainer, the checkpoint's identity and the members (seeds): one config's
    population, or one across variants (``parts``: the cells and their seeds)."""

    if parts:
        return build_packed_trainer(parts), task["key"], [s for c in parts for s in c.seeds]
    return build_trainer(cfg, progress=False), cfg.key(), cfg.seeds


def _resume(ckpt: Path | None, trainer, ident: str, members: list[int], device: str) -> tuple[list, float, float]:
    """Load the checkpoint into ``trainer`` when it holds the same population; returns the
    alignment rows, wall and CPU seconds it had recorded (empty and zero otherwise)."""
    rows: list = []
    elapsed = cpu = 0.0
    if ckpt is not None and ckpt.exists():
        try:
            state = torch.load(ckpt, weights_only=False, map_location=device)
        except Exception:  # a damaged checkpoint only costs the time it saved
            state = None
        if state and state.get("config_hash") == ident and state.get("seeds") == members:
            trainer.load_state_dict(state["trainer"])
            rows = list(state.get("alignment", []))
            elapsed = float(state.get("elapsed", 0.0))
            cpu = float(state.get("cpu", 0.0))
    return rows, elapsed, cpu


def _save_checkpoint(ckpt: Path, state: dict) -> None:
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    tmp = ckpt.with_suffix(f".{os.getpid()}.tmp")  # per process: never two writers on one file
    torch.save(state, tmp)
    os.replace(tmp, ckpt)


def _report_epoch(progress, task_id, t, epochs: int) -> None:
    """``progress`` after an epoch: the live members' mean test accuracy, and the members
    that diverged in it (seed, cause)."""
    live = [a for a, d in zip(t.history.final("test_acc"), t.history.diverged_at) if d is None]
    newly = [(s, c) for e, s, c in t.history.diverged() if t.history.diverged_at[e] == t.epoch]
    progress(task_id, t.epoch, epochs, sum(live) / len(live) if live else math.nan, *([newly] if newly else []))


def _snapshot(trainer, cfg: TrainConfig) -> dict:
    """The arrays the data set keeps of a trained network (the f_k predictions), as numpy."""

    snapshot = REGISTRY[cfg.dataset].snapshot
    return {k: v.numpy() for k, v in snapshot(trainer.net).items()} if snapshot is not None else {}


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
