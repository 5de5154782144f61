"""Planning a sweep: runs packed into populations (:class:`Population`, :func:`pack`), split
for the workers, and the cost model that orders them and estimates a command's time."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

from ..population.packing import pack_key
from ..run.config import TrainConfig
from .spec import Cell
from .store import run_id


@dataclass
class Population:
    """Runs trained together as one population: the seeds of one cell (``config``), or,
    packed across variants, the seeds of several cells whose configs differ only in
    :data:`lchannel.population.packing.PACKABLE` fields (``parts``: ``(cell key, config with that
    cell's seeds)`` in member order; :func:`lchannel.population.packing.build_packed_trainer`)."""

    config: TrainConfig  # seeds = the members (the first part's config when packed across variants)
    labels: list[str] = field(default_factory=list)  # the cells (titles) that use it
    parts: list[tuple[str, TrainConfig]] | None = None

    @property
    def key(self) -> str:
        if not self.parts or len(self.parts) == 1:
            return self.parts[0][0] if self.parts else self.config.key()
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
    :func:`lchannel.population.packing.pack_key` (they differ only in the learning rate or the
    feedback distribution) become one population across variants."""

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
