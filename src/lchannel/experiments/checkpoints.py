"""Where populations checkpoint (a folder next to the database), the run ids each
checkpoint holds, and their removal once every run is stored."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .planning import Population
from .store import FINISHED, ResultsStore


def checkpoint_dir(db: str | os.PathLike) -> Path:
    """Where populations checkpoint: ``results/lchannel.db`` -> ``results/lchannel.checkpoints``."""
    p = Path(db)
    return p.with_name(p.stem + ".checkpoints")


def checkpoint_path(root: Path, pop: Population) -> Path:
    seeds = "-".join(str(s) for s in pop.seeds)
    if len(seeds) > 60:
        seeds = hashlib.sha256(seeds.encode()).hexdigest()[:16]
    return root / f"{pop.key}-s{seeds}.pt"


def members_file(ckpt: Path) -> Path:
    """The run ids a checkpoint holds, written beside it before its population trains."""
    return ckpt.with_suffix(".members.json")


def remove_checkpoint(ckpt: Path) -> None:
    for stale in [ckpt, members_file(ckpt), *ckpt.parent.glob(f"{ckpt.stem}.*.tmp")]:  # tmp: writers killed mid-save
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
            remove_checkpoint(f.with_name(f.name.removesuffix(".members.json") + ".pt"))
            removed += 1
    return removed
