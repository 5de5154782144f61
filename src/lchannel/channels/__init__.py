"""Learning channels: how the output error reaches the deep synapses.

Use :func:`build_channel` with an algorithm name, or the classes directly::

    from lchannel.channels import RandomBackprop, SkippedRandomBackprop
    ch = SkippedRandomBackprop()                 # SRBP = direct feedback alignment
    ch = RandomBackprop(derivative="none")       # RBP (no f') = feedback alignment without f'
    ch = build_channel("srbp", feedback={"distribution": "sparse", "n": 2}, lc_dropout=0.1)

Every variant of paper 1 (sections 3-6) is an option of :func:`build_channel`; see
docs/channels.md for the list, the equation each implements, and the CLI spelling.
"""

from __future__ import annotations

from .algorithms import RandomBackprop, RandomFeedback, SkippedRandomBackprop
from .exact import Backprop, SkippedBackprop, TopLayerOnly
from .sources import RESAMPLE
from .topology import TOPOLOGIES, mixed_topology, topology_sources
from .base import DERIVATIVES, LearningChannel
from .distinct import DistinctChannel, DistinctRandomBackprop, DistinctSkippedRandomBackprop
from .feedback import DISTRIBUTIONS, FeedbackInit
from .registry import (
    ALIASES,
    NOF_SUFFIX,
    REGISTRY,
    TRANSFORM_OPTIONS,
    Algorithm,
    algorithm_names,
    build_channel,
    converter_names,
    engine_refusal,
    is_engine_name,
    label,
    register,
    resolve,
    split_name,
    transforms_from_options,
)
from .canonical import canonicalize, named_form
from .routes import Adjoint, RandomMap, Route
from .adaptive import Adaptive
from .sources import Averaged, FeedbackSource, Fixed, PerSynapseFeedback, Resampled
from .synapse import SynapseSignal
from .transforms import (
    Chain,
    ChannelActivation,
    ChannelDropout,
    MagnitudeOnly,
    Quantize,
    SignalTransform,
    SignOnly,
    quantize,
)

# Views of the registry (one entry per name: lchannel.channels.registry.REGISTRY) kept for
# the modules that read them: name -> (class, fixed keyword arguments), name -> defaults,
# name -> label.
ALGORITHMS: dict[str, tuple[type, dict]] = {n: (a.cls, a.fixed) for n, a in REGISTRY.items() if a.cls is not None}
DEFAULT_OPTIONS: dict[str, dict] = {n: a.defaults for n, a in REGISTRY.items() if a.defaults}
LABELS: dict[str, str] = {n: a.label for n, a in REGISTRY.items()}


__all__ = [
    "ALGORITHMS", "ALIASES", "Adaptive", "ChannelActivation", "DistinctChannel", "DistinctRandomBackprop",
    "DistinctSkippedRandomBackprop", "Adjoint", "Algorithm", "Averaged", "Backprop", "FeedbackSource", "Fixed",
    "PerSynapseFeedback", "RandomMap", "Resampled", "Route", "Chain", "ChannelDropout", "DEFAULT_OPTIONS", "DERIVATIVES",
    "DISTRIBUTIONS", "FeedbackInit", "LearningChannel", "MagnitudeOnly", "Quantize", "RESAMPLE",
    "RandomBackprop", "RandomFeedback", "SignOnly", "SignalTransform", "SkippedBackprop",
    "SkippedRandomBackprop", "SynapseSignal", "TOPOLOGIES", "TopLayerOnly", "LABELS", "REGISTRY",
    "algorithm_names", "build_channel", "canonicalize", "converter_names", "engine_refusal", "is_engine_name",
    "register", "resolve", "label", "named_form", "mixed_topology", "quantize", "split_name", "topology_sources",
    "NOF_SUFFIX", "TRANSFORM_OPTIONS", "transforms_from_options",
]
