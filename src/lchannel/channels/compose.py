"""The chain of feedback pieces that :class:`~lchannel.channels.RandomFeedback`'s options
name (:mod:`lchannel.channels.sources`: Fixed, Resampled, Averaged, PerSynapseFeedback,
Adaptive, TargetProjection; :mod:`lchannel.channels.stdp`: STDPPhases), each option
checked with the reason.  A module of its own so that the pieces' modules need not
import each other (stdp.py builds on sources.py, and this reads both).
"""

from __future__ import annotations

from .adaptive import RULE_NAMES, STDP_SCALE, Adaptive
from .feedback import FeedbackInit
from .sources import (
    PROJECTED,
    Averaged,
    FeedbackSource,
    Fixed,
    PerSynapseFeedback,
    Resampled,
    TargetProjection,
    _is_int,
)
from .stdp import STDPPhases


def compose(feedback=None, resample: str | None = None, feedback_samples: int = 1,
            per_synapse: bool = False, adaptive: bool = False, adapt_rate: float = 1.0,
            rule: str = "hebbian", stdp_form: str = "output", stdp_scale: float = STDP_SCALE,
            adapt_derivative: bool = False, projected: str = "error") -> FeedbackSource:
    """The chain of pieces that :class:`~lchannel.channels.RandomFeedback`'s options name."""
    if projected not in PROJECTED:
        raise ValueError(f"projected must be one of {PROJECTED} (what the skip channel sends down: the error, or the "
                         f"target as in DRTP), got {projected!r}")
    if projected == "target" and (adaptive or per_synapse):
        raise ValueError("projected='target' (DRTP) is defined for fixed per-neuron feedback: it cannot be adaptive "
                         "or per_synapse")
    if not isinstance(adaptive, bool) or not isinstance(per_synapse, bool):
        raise ValueError("adaptive and per_synapse must be true or false")
    if rule not in RULE_NAMES:
        raise ValueError(f"rule must be one of {RULE_NAMES} (the adaptation rule: Hebbian, paper 1 section 3, or "
                         f"the STDP-like rule, paper 2 section 3.6), got {rule!r}")
    if rule != "stdp" and (stdp_form != "output" or stdp_scale != STDP_SCALE):
        raise ValueError("stdp_form and stdp_scale apply only with rule='stdp'")
    if not adaptive and (rule != "hebbian" or adapt_derivative is not False):
        raise ValueError("rule and adapt_derivative apply only to adaptive channels (arbp, asrbp, or "
                         "adaptive=true; adapt_rate=0 keeps the feedback fixed)")
    source: FeedbackSource = Fixed(FeedbackInit.from_options(feedback))
    if resample in ("none", False):
        resample = None
    if resample is not None:
        source = Resampled(source, resample)
    if not _is_int(feedback_samples) or feedback_samples != 1:
        source = Averaged(source, feedback_samples)
    if per_synapse:
        source = PerSynapseFeedback(source)
    if adaptive and rule == "stdp":
        if adapt_derivative is not False:
            raise ValueError("adapt_derivative applies to the Hebbian rule; rule='stdp' feeds back through a linear "
                             "channel (its neurons' change already carries f')")
        source = STDPPhases(source, adapt_rate, stdp_scale, stdp_form)
    elif adaptive:
        source = Adaptive(source, adapt_rate, derivative=adapt_derivative)
    elif not isinstance(adapt_rate, (int, float)) or isinstance(adapt_rate, bool) or not adapt_rate >= 0:
        raise ValueError(f"adapt_rate must be a number >= 0, got {adapt_rate!r}")
    if projected == "target":
        source = TargetProjection(source)
    return source
