"""A training run as one validated, serialisable configuration.

:class:`TrainConfig` names everything a run depends on (data, architecture, learning
channel and its options, optimizer and schedule, epochs, seeds); the same config and
seed give the same numbers.

Every field is declared once, with :func:`param`: its default, the constraints it must
meet (:mod:`lchannel.run.params`), its help text, its command-line flag, whether it defines
the run (part of the cache key) and whether it is about the data.  From that one
declaration come the ``lchannel train``/``compare`` options and their ``--help``
(:func:`lchannel.run.options_cli.add_run_options`), the experiment-spec schema (the accepted keys of
``[base]`` and ``set``), the validation messages, and the cache keys (:meth:`key`).
(About 400 lines on purpose: the declarations are one table a reader scans whole.)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Callable

from ..channels import (
    algorithm_names,
    build_channel,
    engine_refusal,
    is_engine_name,
    label,
    named_form,
    split_name,
)
from ..data import REGISTRY, dataset_entry, dataset_names, is_dataset_name
from ..engine.activations import ACTIVATIONS
from ..engine.architecture import conv_layer_sizes, parse_blocks
from ..engine.init import INITS
from ..engine.outputs import OUTPUTS
from ..engine.quantize import (
    BELOW,
    DEFAULT_READING,
    LEGACY_READING,
    LR_PLACES,
    REDUCTIONS,
    UPDATE_ALPHA,
    Reading,
)
from ..engine.train import BATCH_ORDERS
from .params import Device, Interval, IntList, Names, Options, Type, check


SEED_RANGE = Interval(int, 0, 2 ** 63 - 1)  # torch generators and SQLite integers are 64-bit signed
TRAIN_METRICS = ("running", "full")


@dataclass(frozen=True)
class Param:
    """The declaration of one field (kept in the dataclass field's metadata)."""

    constraints: tuple
    help: str
    group: str
    cli: str | None = None  # the command-line flag; None: not a train/compare option
    key: bool = True  # part of the cache key (False: where/how it runs, or the seeds)
    data: bool = False  # changes the data rather than the model
    metavar: str | None = None
    default_text: str | None = None  # how --help states a default that depends on others
    # (predicate(cfg), phrase): the field applies only when the predicate holds; otherwise
    # it must keep its default (and the CLI refuses the flag).
    applies: tuple[Callable[["TrainConfig"], bool], str] | None = None
    # A field added after results were stored: left out of the cache key while it keeps
    # the value runs had before it existed (``legacy``, else its default), so that the
    # keys of earlier runs (stores, run folders) do not move, even if the default changes.
    key_if_set: bool = False
    legacy: Any = None


def param(default: Any = None, *constraints, help: str, group: str, cli: str | None = None, key: bool = True,
          data: bool = False, metavar: str | None = None, default_text: str | None = None,
          applies=None, factory: Callable | None = None, key_if_set: bool = False, legacy: Any = None):
    """A dataclass field carrying its :class:`Param` declaration."""
    meta = {"param": Param(tuple(constraints), help, group, cli, key, data, metavar, default_text, applies,
                           key_if_set, legacy)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _dataset_option(cfg: "TrainConfig", name: str) -> bool:
    return name in REGISTRY[cfg.dataset].options


def _only_for_datasets(name: str):
    takers = [d for d, e in REGISTRY.items() if name in e.options]
    return (lambda cfg: _dataset_option(cfg, name), f"only data set {' or '.join(takers)} takes it, "
                                                   f"not this run's")


_needs_update_bits = (lambda cfg: cfg.update_bits is not None, "it needs update_bits (--update-bits)")


def _arch_text(arch) -> str:
    return arch if isinstance(arch, str) else ",".join(map(str, arch))


@dataclass
class TrainConfig:
    """Everything a run depends on.  Defaults follow paper 1's MNIST protocol (section 4.1)."""

    # -- data -------------------------------------------------------------------------
    dataset: str = param("mnist", Names(is_dataset_name, dataset_names), group="data", cli="--dataset", data=True,
                         help="data set: " + "; ".join(f"{n} ({e.description})" for n, e in REGISTRY.items()))
    data_dir: str | None = param(None, None, Type(str, "a folder path"), group="data", cli="--data-dir",
                                 key=False, data=True, default_text="$LCHANNEL_DATA_DIR, else ~/.cache/lchannel",
                                 help="folder with the data files")
    synthetic_k: int = param(1, Interval(int, 0), group="data", cli="--k", data=True,
                             applies=_only_for_datasets("synthetic_k"), help="synthetic: k of f_k (difficulty)")
    n_train: int = param(4000, Interval(int, 1), group="data", cli="--n-train", data=True,
                         applies=_only_for_datasets("n_train"), help="synthetic: training examples")
    n_test: int = param(1000, Interval(int, 1), group="data", cli="--n-test", data=True,
                        applies=_only_for_datasets("n_test"), help="synthetic: test examples")
    higgs_features: str = param("low", Options(("low", "high", "all")), group="data", cli="--features", data=True,
                                applies=_only_for_datasets("higgs_features"), key_if_set=True,
                                help="HIGGS inputs: low (the 21 low-level, paper 2), high (the 7 high-level) or all (28)")
    standardize: bool = param(False, Type(bool, "true or false"), group="data", cli="--standardize", data=True,
                              applies=_only_for_datasets("standardize"), key_if_set=True,
                              help="HIGGS: standardise each feature with the training rows' mean and std")
    subset: int | None = param(None, None, Interval(int, 1), group="data", cli="--subset", data=True,
                               default_text="all", help="use only the first N training examples")
    normalize: bool = param(False, Type(bool, "true or false"), group="data", cli="--normalize", data=True,
                            applies=_only_for_datasets("normalize"), key_if_set=True,
                            help="images: per-channel (x - mean_c) / std_c with the training set's statistics")
    augment: bool = param(False, Type(bool, "true or false"), group="data", cli="--augment",
                          applies=_only_for_datasets("augment"), key_if_set=True,
                          help="images: random translation by up to a tenth of the image each way and horizontal flip "
                               "(p = 0.5) of every training minibatch (paper 1, section 4.3)")
    # -- network ----------------------------------------------------------------------
    architecture: list[int] | str | None = param(
        None, None, IntList(Interval(int, 1), min_len=2), Type(str, "a conv architecture string like "
                                                                   "'conv64k5-pool3s2-dense1024-dense10'"),
        group="network", cli="--arch", metavar="N0,N1,...|CONV",
        default_text="per data set: " + "; ".join(f"{n} {_arch_text(e.architecture)}" for n, e in REGISTRY.items()),
        help="layer sizes A[N0,...,NL], e.g. 784,100,100,100,100,10, or, for an image data set, a conv "
             "architecture: pieces conv<C>k<K>[s<S>][p<P>], pool<K>[s<S>][p<P>], flatten, dense<N> joined by '-' "
             "(docs/experiments.md)")
    hidden: str = param("tanh", Options(tuple(sorted(ACTIVATIONS))), group="network", cli="--hidden",
                        help="transfer function of the hidden layers")
    output: str | None = param(None, None, Options(tuple(sorted(OUTPUTS))), group="network", cli="--output",
                               default_text="per data set: " + "; ".join(f"{n} {e.output}" for n, e in REGISTRY.items()),
                               help="output pair (softmax + cross-entropy, logistic + binary cross-entropy, "
                                    "identity + squared error)")
    init: str = param("glorot_normal", Options(tuple(INITS)), group="network", cli="--init",
                      help="forward initialisation (glorot_normal: the papers' scaled normal)")
    dropout: float = param(0.0, Interval(float, 0, 1, closed="left"), group="network", cli="--dropout",
                           help="forward-channel dropout probability")
    # -- learning channel -------------------------------------------------------------
    algorithm: str = param("bp", Names(is_engine_name, algorithm_names, engine_refusal), group="learning channel",
                           help="learning channel (`lchannel algorithms` lists them, aliases included)")
    channel: dict = param(None, Type(dict, "a table of channel options"), group="learning channel", factory=dict,
                          help="channel options (feedback, derivative, transforms, ...; docs/channels.md)")
    # -- optimisation -----------------------------------------------------------------
    lr: float = param(0.1, Interval(float, 0, None, closed="neither"), group="optimisation", cli="--lr",
                      help="initial learning rate η_0")
    decay: float = param(1e-6, Interval(float, 0), group="optimisation", cli="--decay",
                         help="schedule η_t = η_0 / (1 + decay·t), t counting updates")
    momentum: float = param(0.0, Interval(float, 0, 1, closed="left"), group="optimisation", cli="--momentum",
                            help="momentum μ")
    batch_size: int = param(100, Interval(int, 1), group="optimisation", cli="--batch-size",
                            help="minibatch size")
    epochs: int = param(100, Interval(int, 1), group="optimisation", cli="--epochs",
                        help="epochs to train (a rerun with more epochs resumes)")
    epoch_iterations: int | None = param(
        None, None, Interval(int, 1), group="optimisation", cli="--epoch-iterations", default_text="off", key_if_set=True,
        help="train by iterations: an epoch is N updates on streamed minibatches (f_k: fresh points; other data "
             "sets: examples drawn with replacement); the budget is epochs x N (docs/experiments.md)")
    early_stop: float | None = param(
        None, None, Interval(float, 0, 1), group="optimisation", cli="--early-stop", default_text="off", key_if_set=True,
        applies=(lambda cfg: cfg.epoch_iterations is not None and REGISTRY[cfg.dataset].stream is not None,
                 "it needs epoch_iterations and a streamed data set (synthetic), whose fixed training split is "
                 "then the validation sample"),
        help="stop a member when its validation error rate rose by more than this over one epoch, keeping its "
             "best weights (paper 2 sec. 4.2: 0.01)")
    frozen: list[int] = param(None, IntList(Interval(int, 1)), group="optimisation", cli="--frozen",
                              factory=list, metavar="H1,H2,...", default_text="none",
                              help="layers (1-based) that never change (paper 1, section 4.2 item 4)")
    update_bits: int | None = param(None, None, Interval(int, 1), group="optimisation", cli="--update-bits",
                                    default_text="off",
                                    help="quantize each example's weight update to this many bits (eq. 19, sec. 5.2)")
    update_alpha: float = param(UPDATE_ALPHA, Interval(float, 0, None, closed="neither"), group="optimisation",
                                cli="--update-alpha", default_text="2^-6, the paper's",
                                applies=_needs_update_bits,
                                help="scale α of the weight-update quantizer")
    # Section 5.2's open points (docs/channels.md, "Quantized weight updates"); runs stored
    # before these existed used inside/floor/mean, their legacy values.
    update_lr: str = param(DEFAULT_READING.lr, Options(LR_PLACES), group="optimisation", cli="--update-lr",
                           applies=_needs_update_bits, key_if_set=True, legacy=LEGACY_READING.lr,
                           help="where η enters eq. 19: inside (Quantize(η·I·Oᵀ)) or outside (η·Quantize(I·Oᵀ))")
    update_below: str = param(DEFAULT_READING.below, Options(BELOW), group="optimisation", cli="--update-below",
                              applies=_needs_update_bits, key_if_set=True, legacy=LEGACY_READING.below,
                              help="what a per-example update below eq. 19's lowest level becomes: floor (that "
                                   "level, eq. 19 as printed) or zero (a zero level, as in the log quantizer of Miyashita et al. 2016)")
    update_reduce: str = param(DEFAULT_READING.reduce, Options(REDUCTIONS), group="optimisation",
                               cli="--update-reduce", applies=_needs_update_bits, key_if_set=True,
                               legacy=LEGACY_READING.reduce,
                               help="how the quantized per-example updates combine over the minibatch: mean or sum")
    # -- seeds and bookkeeping --------------------------------------------------------
    seeds: list[int] = param(None, IntList(SEED_RANGE, min_len=1, distinct=True), group="seeds and output",
                             cli="--seeds", key=False, factory=lambda: [0], metavar="S1,S2,...",
                             default_text="0..N-1 from --num-seeds", help="one member per seed")
    data_seed: int = param(0, SEED_RANGE, group="seeds and output", cli="--data-seed", data=True,
                           help="seed of the minibatch order (and of generated data)")
    batch_order: str = param("shared", Options(BATCH_ORDERS), group="seeds and output", cli="--batch-order",
                             help="shared: every member sees the same minibatches; per_member: each its own")
    train_metrics: str = param("running", Options(TRAIN_METRICS), group="seeds and output",
                               cli="--train-metrics",
                               help="running: mean over the epoch's minibatches; full: a separate pass after it")
    device: str = param("cpu", Device(), group="seeds and output", cli="--device", key=False,
                        help="where to train")

    # -- construction ---------------------------------------------------------------
    @classmethod
    def fields(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def params(cls) -> dict[str, tuple[dataclasses.Field, Param]]:
        """``{name: (dataclass field, Param)}`` in declaration order."""
        return {f.name: (f, f.metadata["param"]) for f in dataclasses.fields(cls)}

    def data_key(self) -> tuple:
        """The values of the fields declared ``data=True`` (and the device): two configs
        with the same data key train on the same tensors, so loaded data can be shared."""
        return (*(getattr(self, n) for n, (_, p) in self.params().items() if p.data), self.device)

    @classmethod
    def default(cls, name: str) -> Any:
        f = cls.params()[name][0]
        return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default

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

    def key(self, exclude: tuple[str, ...] = ()) -> str:
        """A short hash of the fields that define the run (not seeds, data folder or device,
        nor ``exclude``): runs with the same key differ only in seed."""
        skip = set(exclude) | {n for n, (_, p) in self.params().items() if not p.key or self._unkeyed(n, p)}
        d = {k: v for k, v in self.to_dict().items() if k not in skip}
        if "algorithm" in d:
            # Every spelling of one run (rbp-nof, rbp with derivative "none"; arbp, rbp with
            # adaptive=true at rate 0.1) has one named form, hence one key.
            d["algorithm"], d["channel"] = self.named()
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def _unkeyed(self, name: str, p: Param) -> bool:
        """A ``key_if_set`` field stays out of the key while it holds the value runs had
        before it existed, or while it does not apply (it then holds its default and says
        nothing about the run, whatever that default is now)."""
        if not p.key_if_set:
            return False
        if p.applies is not None and not p.applies[0](self):
            return True
        return getattr(self, name) == (self.default(name) if p.legacy is None else p.legacy)

    # -- resolved defaults ------------------------------------------------------------
    @property
    def update_reading(self) -> Reading:
        """The reading of section 5.2 the quantized updates follow (:class:`~lchannel.engine.quantize.Reading`)."""
        return Reading(self.update_lr, self.update_below, self.update_reduce)

    def named(self) -> tuple[str, dict]:
        """The run's learning channel as ``(algorithm, channel options)`` in the registry's
        named form (:func:`lchannel.channels.named_form`)."""
        return named_form(self.algorithm, self.channel)

    @property
    def label(self) -> str:
        """The papers' label of the learning channel, the same for every spelling."""
        return label(*self.named())

    @property
    def arch(self) -> list[int] | str:
        """The architecture the run trains: ``architecture``, else the data set's default
        (layer sizes, or a conv architecture string)."""
        a = self.architecture if self.architecture is not None else \
            REGISTRY[self.dataset].default_architecture(self.to_dict())
        return a if isinstance(a, str) else list(a)

    @property
    def is_conv(self) -> bool:
        """Whether the run trains a conv architecture (a string of block pieces)."""
        return isinstance(self.arch, str)

    @property
    def input_shape(self) -> tuple[int, int, int] | None:
        """(C, H, W) of the data set's images (None: not an image data set)."""
        return REGISTRY[self.dataset].input_shape

    @property
    def sizes(self) -> list[int]:
        """Units per layer ``[N_0, ..., N_L]``; for a conv net, the units at each weighted
        block's output (:func:`lchannel.engine.architecture.conv_layer_sizes`)."""
        arch = self.arch
        if isinstance(arch, str):

            return conv_layer_sizes(arch, self.input_shape)
        return arch

    @property
    def arch_text(self) -> str:
        """The architecture as a reader sees it: ``A[784, 100, 10]`` or the conv string."""
        return self.arch if self.is_conv else f"A{self.sizes}"

    @property
    def output_pair(self) -> str:
        return self.output or REGISTRY[self.dataset].output

    @property
    def train_size(self) -> int:
        """Training examples the run uses (the data set's size, or ``subset``)."""
        n = REGISTRY[self.dataset].train_size(self.to_dict())
        return n if self.subset is None else self.subset

    # -- validation -------------------------------------------------------------------
    def validate(self) -> "TrainConfig":
        """Raise ValueError, naming the field and what is accepted, for any bad value or
        any combination that cannot run or would be silently ignored."""
        params = self.params()
        for name, (_, p) in params.items():
            check(name, getattr(self, name), p.constraints)
        for name, (_, p) in params.items():
            if p.applies is not None and not p.applies[0](self) and getattr(self, name) != self.default(name):
                raise ValueError(f"{name}: {getattr(self, name)!r} does not apply here: {p.applies[1]}")
        entry = dataset_entry(self.dataset)
        if self.subset is not None and self.subset > entry.train_size(self.to_dict()):
            raise ValueError(f"subset: {self.subset} is larger than {self.dataset}'s "
                             f"{entry.train_size(self.to_dict())} training examples")
        full = entry.train_size(self.to_dict())
        if self.batch_size > full:
            raise ValueError(f"batch_size: {self.batch_size} is larger than {self.dataset}'s {full} training examples")
        self._check_conv_architecture(entry)
        sizes = self.sizes
        n_in = entry.inputs(self.to_dict())
        if sizes[0] != n_in or sizes[-1] != entry.n_outputs:
            raise ValueError(f"architecture: {self.dataset} needs {n_in} inputs and {entry.n_outputs} outputs, got "
                             f"{self.arch_text}" + (f" ({sizes[0]} inputs, {sizes[-1]} outputs)" if self.is_conv else ""))
        L = len(sizes) - 1
        if not all(1 <= h <= L for h in self.frozen):
            raise ValueError(f"frozen: {self.frozen!r} is not accepted; expected layer numbers in 1..{L}")
        self._check_channel_options()
        # Raises on bad channel options, and on options that do not fit these layer sizes.
        channel = build_channel(self.algorithm, **self.channel)
        channel.check(sizes)
        trainable = {L} | {h for h, ks in channel.routes(L).items() if ks}
        if trainable <= set(self.frozen):
            raise ValueError(f"frozen: {self.frozen!r} freezes every layer that {self.algorithm} trains "
                             f"({sorted(trainable)}): nothing would learn")
        return self

    def _check_conv_architecture(self, entry) -> None:
        """A conv architecture needs an image data set, and every piece must parse and fit
        the shape that reaches it (the parser's message names the piece)."""
        if not self.is_conv:
            return
        if entry.input_shape is None:
            images = [n for n, e in REGISTRY.items() if e.input_shape is not None]
            raise ValueError(f"architecture: a conv architecture needs an image data set ({' or '.join(images)}); "
                             f"{self.dataset} has no image shape: give layer sizes N0,N1,... instead")

        try:
            parse_blocks(self.arch, entry.input_shape)
        except ValueError as err:
            msg = str(err)  # the parser's message names the piece ("architecture piece 3 'x' ...")
            raise ValueError(f"architecture: {msg.removeprefix('architecture').lstrip()}") from None

    def _check_channel_options(self) -> None:
        """A channel option the chosen algorithm would silently ignore (the channel's
        constructor cannot tell an ``adapt_rate`` given from its default)."""
        base, _ = split_name(self.algorithm)
        adaptive = base in ("arbp", "asrbp") or self.channel.get("adaptive") is True
        for key in ("adapt_rate", "rule", "adapt_derivative"):
            if key in self.channel and not adaptive:
                raise ValueError(f"channel: {key} applies only to adaptive channels (arbp, asrbp, or adaptive=true); "
                                 f"{self.algorithm!r} keeps its feedback fixed")
        stdp = self.channel.get("rule") == "stdp"
        for key in ("stdp_form", "stdp_scale"):
            if key in self.channel and not stdp:
                raise ValueError(f"channel: {key} applies only with rule='stdp' (paper 2 section 3.6)")
        if stdp and self.dropout > 0:
            raise ValueError("dropout: rule='stdp' reads the change of every forward neuron between two feedback "
                             "phases, which forward dropout does not define; use dropout = 0")
