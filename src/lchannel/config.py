"""A training run as one validated, serialisable configuration.

:class:`TrainConfig` names everything a run depends on (data, architecture, learning
channel and its options, optimizer and schedule, epochs, seeds); the same config and
seed give the same numbers.  ``TrainConfig.from_dict`` rejects unknown keys and
``validate`` rejects bad values, both with messages naming the field and the accepted
values, before any work starts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from .activations import ACTIVATIONS
from .channels import algorithm_names, build_channel
from .data import DATASETS
from .init import INITS
from .outputs import OUTPUTS
from .train import BATCH_ORDERS

DEFAULTS = {
    # dataset -> (architecture, output): paper 1 section 4.1 for MNIST; a small net for f_k.
    "mnist": ([784, 100, 100, 100, 100, 10], "softmax"),
    "synthetic": ([2, 50, 50, 1], "logistic"),
}


@dataclass
class TrainConfig:
    """Everything a run depends on.  Defaults follow paper 1's MNIST protocol."""

    dataset: str = "mnist"
    data_dir: str | None = None
    synthetic_k: int = 1
    n_train: int = 4000
    n_test: int = 1000
    subset: int | None = None
    architecture: list[int] | None = None
    hidden: str = "tanh"
    output: str | None = None
    init: str = "glorot_normal"
    algorithm: str = "bp"
    channel: dict = field(default_factory=dict)
    lr: float = 0.1
    decay: float = 1e-6
    momentum: float = 0.0
    batch_size: int = 100
    epochs: int = 100
    seeds: list[int] = field(default_factory=lambda: [0])
    data_seed: int = 0
    batch_order: str = "shared"
    dropout: float = 0.0
    frozen: list[int] = field(default_factory=list)
    update_bits: int | None = None
    update_alpha: float = 2.0 ** -6
    train_metrics: str = "running"
    device: str = "cpu"

    # -- construction ---------------------------------------------------------------
    @classmethod
    def fields(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        unknown = sorted(set(d) - set(cls.fields()))
        if unknown:
            raise ValueError(f"unknown config key(s) {unknown}; accepted keys: {cls.fields()}")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def replace(self, **changes) -> "TrainConfig":
        cfg = dataclasses.replace(self, **changes)
        cfg.validate()
        return cfg

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def key(self, exclude=("seeds", "data_dir", "device")) -> str:
        """A short hash of the config (seeds and paths excluded): runs with the same key
        differ only in seed."""
        d = {k: v for k, v in self.to_dict().items() if k not in exclude}
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    # -- resolved defaults ------------------------------------------------------------
    @property
    def sizes(self) -> list[int]:
        return list(self.architecture) if self.architecture else list(DEFAULTS[self.dataset][0])

    @property
    def output_pair(self) -> str:
        return self.output or DEFAULTS[self.dataset][1]

    # -- validation -------------------------------------------------------------------
    def validate(self) -> "TrainConfig":
        def need(cond: bool, name: str, accepted: str) -> None:
            if not cond:
                raise ValueError(f"{name}: {getattr(self, name)!r} is not accepted; expected {accepted}")

        need(self.dataset in DATASETS, "dataset", f"one of {list(DATASETS)}")
        need(self.hidden in ACTIVATIONS, "hidden", f"one of {sorted(ACTIVATIONS)}")
        need(self.output is None or self.output in OUTPUTS, "output", f"one of {sorted(OUTPUTS)}")
        need(self.init in INITS, "init", f"one of {list(INITS)}")
        need(self.algorithm in algorithm_names(), "algorithm", f"one of {algorithm_names()}")
        need(isinstance(self.channel, dict), "channel", "a table of channel options")
        need(_num(self.lr) and self.lr > 0, "lr", "a number > 0")
        need(_num(self.decay) and self.decay >= 0, "decay", "a number >= 0")
        need(_num(self.momentum) and 0 <= self.momentum < 1, "momentum", "a number in [0, 1)")
        need(_int(self.batch_size) and self.batch_size >= 1, "batch_size", "an integer >= 1")
        need(_int(self.epochs) and self.epochs >= 0, "epochs", "an integer >= 0")
        need(isinstance(self.seeds, (list, tuple)) and len(self.seeds) >= 1 and all(_int(s) for s in self.seeds)
             and len(set(self.seeds)) == len(self.seeds), "seeds", "a non-empty list of distinct integers")
        need(_int(self.data_seed), "data_seed", "an integer")
        need(self.batch_order in BATCH_ORDERS, "batch_order", f"one of {list(BATCH_ORDERS)}")
        need(_num(self.dropout) and 0 <= self.dropout < 1, "dropout", "a number in [0, 1)")
        need(self.subset is None or (_int(self.subset) and self.subset >= 1), "subset", "an integer >= 1 or null")
        need(_int(self.synthetic_k) and self.synthetic_k >= 0, "synthetic_k", "an integer >= 0")
        need(_int(self.n_train) and self.n_train >= 1, "n_train", "an integer >= 1")
        need(_int(self.n_test) and self.n_test >= 1, "n_test", "an integer >= 1")
        need(self.update_bits is None or (_int(self.update_bits) and self.update_bits >= 1),
             "update_bits", "an integer >= 1 or null")
        need(_num(self.update_alpha) and self.update_alpha > 0, "update_alpha", "a number > 0")
        need(self.train_metrics in ("running", "full"), "train_metrics", "'running' or 'full'")
        need(self.device == "cpu" or self.device.startswith("cuda"), "device", "'cpu' or 'cuda[:N]'")
        if self.architecture is not None:
            need(isinstance(self.architecture, (list, tuple)) and len(self.architecture) >= 2
                 and all(_int(n) and n >= 1 for n in self.architecture),
                 "architecture", "a list of at least two layer sizes >= 1")
        sizes = self.sizes
        n_in, n_out = {"mnist": (784, 10), "synthetic": (2, 1)}[self.dataset]
        if sizes[0] != n_in or sizes[-1] != n_out:
            raise ValueError(f"architecture: {self.dataset} needs {n_in} inputs and {n_out} outputs, got A{sizes}")
        L = len(sizes) - 1
        need(all(_int(h) and 1 <= h <= L for h in self.frozen), "frozen", f"layer numbers in 1..{L}")
        # Raises on bad channel options, and on options that do not fit these layer sizes.
        build_channel(self.algorithm, **self.channel).check(sizes)
        return self


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)
