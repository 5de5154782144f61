"""Populations across variants: runs whose configs differ only in what does not change
shapes, trained as one population.

A population's members normally differ only in the seed.  Members may also differ in

- ``lr``, the initial learning rate η_0 (:class:`~lchannel.engine.plasticity.SGD` with one rate
  per member: each group of members with one rate is updated by the single run's fused
  product on its slice, so the arithmetic is that of the single run);
- ``channel.feedback``, the distribution of the random feedback matrices (Sparse-8/2/1,
  normal, uniform, ±1; :class:`~lchannel.channels.feedback.MemberFeedback`: member e
  draws from its own distribution with its own generator), for the random-feedback
  channels (RBP, SRBP and their adaptive, resampled, averaged forms) when members agree
  on ``congruent`` (and, resampled, on zero mean);
- ``channel.lc_dropout``, the learning-channel dropout probability p (paper 1 section 6.1;
  :func:`lchannel.engine.rng.dropout_mask` with one p per member), among cells that all have it;
- ``dropout``, the forward-channel dropout probability p (paper 2, section 4.1.2;
  :class:`~lchannel.engine.nets.Network` with one p per member), among cells that all have it;
- ``channel.adapt_rate``, the adaptation rate of ARBP/ASRBP's feedback (Hebbian, not
  derivative-modulated; :meth:`~lchannel.channels.adaptive.Adaptive.set_member_rates`);
- ``channel.quantize_bits``, the bits of the quantized error signal (section 5.1, eq. 16-19;
  :meth:`~lchannel.channels.transforms.Quantize.set_member_bits`), among cells that all have it;
- ``update_bits``, the bits of the quantized per-example updates (section 5.2,
  :class:`~lchannel.engine.quantize.MemberQuantizer`), among dense cells that all quantize
  their updates and differ in nothing else;

the others for dense nets with the Hebbian rule on per-neuron signals and no quantized updates
(:func:`variant_packable`; other configs pack seeds only).

Member e of a packed population is bit-identical to the member at its place in a
population of the same size whose members all have its settings (tests/test_packing.py
checks metrics, weights and feedback with ``torch.equal``); against its run alone it
agrees within float rounding, as any population member does (docs/experiments.md, "What
is exact").  Conv nets, per-synapse feedback, derivative-modulated adaptation and the
STDP rule pack seeds only: see docs/performance.md, "Populations across variants".
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..channels import build_channel
from ..channels.adaptive import Adaptive
from ..channels.algorithms import RandomFeedback
from ..channels.feedback import FeedbackInit
from ..run.config import TrainConfig
from ..run.single import build_trainer


def _channel_class(cfg: TrainConfig):
    return type(build_channel(cfg.algorithm, **cfg.channel))


def variant_packable(cfg: TrainConfig) -> bool:
    """Whether ``cfg``'s runs may share a population with other variants: the exact
    per-member update (:meth:`~lchannel.engine.plasticity.SGD._step_groups`) serves dense nets,
    the Hebbian rule on per-neuron signals and no quantized updates."""
    alg, opts = cfg.named()
    return (not cfg.is_conv and cfg.update_bits is None and opts.get("rule", "hebbian") == "hebbian"
            and not opts.get("per_synapse", False))


def adapt_rate(cfg: TrainConfig) -> float | None:
    """The Hebbian adaptation rate of ``cfg``'s channel (ARBP/ASRBP, not modulated by the
    derivative), or None when it has no such adaptation (then it cannot vary per member)."""
    source = getattr(build_channel(cfg.algorithm, **cfg.channel), "source", None)
    piece = source.find(Adaptive) if source is not None else None
    if type(piece) is not Adaptive or piece.derivative:  # a subclass (STDP) has its own rule
        return None
    return piece.rate


def feedback_packable(cfg: TrainConfig) -> bool:
    """Whether members of ``cfg``'s population may draw from their own feedback distributions."""
    return variant_packable(cfg) and issubclass(_channel_class(cfg), RandomFeedback)


def pack_key(cfg: TrainConfig) -> str:
    """A hash of everything members of one population must share: :meth:`TrainConfig.key`
    with the packable fields left out where this config allows them to differ."""
    if cfg.update_bits is not None and not cfg.is_conv:
        # Quantized per-example updates: members may differ in the bits only.
        return "q" + cfg.key(("update_bits",))[:15]
    if not variant_packable(cfg):
        return cfg.key()
    alg, opts = cfg.named()
    opts = dict(opts)
    # Forward dropout: its presence is shared (a run without it draws no masks), its p may differ.
    d = {"key": cfg.key(("lr", "algorithm", "channel", "dropout")), "algorithm": alg, "dropout": cfg.dropout > 0}
    if feedback_packable(cfg):
        opts.pop("feedback", None)
        d["congruent"] = _feedback(cfg).congruent
        if opts.get("resample"):  # a resampled channel refuses non-zero-mean draws: keep them apart
            d["zero_mean"] = _feedback(cfg).zero_mean
    if opts.get("lc_dropout"):  # its presence (a transform) is shared, its p may differ
        opts["lc_dropout"] = "per member"
    if opts.get("quantize_bits") is not None:  # likewise the error quantizer's bits
        opts["quantize_bits"] = "per member"
    if adapt_rate(cfg) is not None:  # Hebbian adaptation: its rate may differ
        opts["adapt_rate"] = "per member"
    d["channel"] = opts
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _feedback(cfg: TrainConfig):
    return FeedbackInit.from_options(cfg.named()[1].get("feedback"))


@dataclass(frozen=True)
class PerMember:
    """One option the members of a population may differ in (the per-member protocol):
    ``value(cfg)`` reads it from a run's config; :func:`~lchannel.run.single.build_trainer`
    takes one value per member under ``keyword`` (None: every member has the first
    config's), and the component that owns the option applies it per member."""

    field: str
    keyword: str
    value: Callable[[TrainConfig], Any]
    always: bool = False  # pass the list even when all members agree


#: Every option members of one population may differ in (besides the seed), in this order.
PER_MEMBER = (
    PerMember("lr", "lr", lambda c: c.lr, always=True),
    PerMember("dropout", "dropout", lambda c: c.dropout),
    PerMember("channel.feedback", "feedback", _feedback),
    PerMember("channel.lc_dropout", "lc_dropout", lambda c: c.named()[1].get("lc_dropout")),
    PerMember("channel.adapt_rate", "adapt_rate", adapt_rate),
    PerMember("channel.quantize_bits", "quantize_bits", lambda c: c.named()[1].get("quantize_bits")),
    PerMember("update_bits", "update_bits", lambda c: c.update_bits),
)
PACKABLE = tuple(p.field for p in PER_MEMBER)


def build_packed_trainer(parts: list[TrainConfig], progress: bool = False, desc: str = "train"):
    """One :class:`~lchannel.engine.train.Trainer` for ``parts`` (configs with one :func:`pack_key`),
    whose members are every part's seeds in order: part by part, seed by seed.  Seeds may
    repeat across parts (Sparse-8 seed 0 and Sparse-2 seed 0 are two members)."""
    if not parts:
        raise ValueError("build_packed_trainer: no configs")
    keys = {pack_key(c) for c in parts}
    if len(keys) > 1:
        raise ValueError("build_packed_trainer: the configs differ in more than " + ", ".join(PACKABLE)
                         + " and the seeds; they cannot share one population")
    for c in parts:
        c.validate()
    base = parts[0]
    seeds = [s for c in parts for s in c.seeds]

    def per_member(option: PerMember) -> list | None:  # value(part) once per part, repeated for its seeds
        values = [v for c in parts for v in [option.value(c)] * len(c.seeds)]
        return values if option.always or len(set(values)) > 1 else None

    # The first part's config with every member's seed (repeats allowed: no validation).
    cfg = dataclasses.replace(base, seeds=seeds)
    return build_trainer(cfg, progress, desc, **{o.keyword: per_member(o) for o in PER_MEMBER}, validate=False)
