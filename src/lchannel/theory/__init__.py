"""lchannel.theory: the learning dynamics of linear networks, simulated and checked.

The averaged (batch) learning equations that RBP, SRBP and their adaptive forms ARBP,
ASRBP induce in small linear networks (paper 1 §7, paper 2 §5), integrated with SciPy,
set beside the discrete minibatch learning of the actual networks, and compared with
the fixed points, conserved quantities and stability that the theorems predict.

Systems: :class:`LinearChain` (A[1,...,1]), :class:`ExpansiveNet` (A[1,N,1]),
:class:`CompressiveNet` (A[N,1,N]), :class:`GeneralLinear` (A[N_0,...,N_L]),
:class:`PowerChain` (A[1,1,1] with O¹ = (S¹)^μ), :class:`AdaptivePowerChain` (the same
with an adaptive channel), :class:`STDPChain` (A[1,1,1] under the STDP-like rule).  The learning rules are one table,
:data:`RULE_TABLE` in :mod:`lchannel.theory.rules`.  Plots live in
:mod:`lchannel.theory.plots` (imports matplotlib), the command line in
:mod:`lchannel.theory.cli`.  See docs/theory.md.
"""

from .base import ADAPTIVE_RULES, NON_ADAPTIVE_RULES, RULE_TABLE, RULES, LearningSystem, Rule, Stability, Trajectory
from .chain import LinearChain, Reduction, adaptive_pair_limit
from .compressive import CompressiveNet
from .discrete import LinearNetwork, PowerNetwork, STDPNetwork, minibatch_learning
from .expansive import ExpansiveNet
from .general import GeneralLinear
from .onedim import always_converges, blowup_time, classify_root, real_roots, theorem1_limit
from .power import AdaptivePowerChain, NoFixedPointError, PowerChain, power_statistics
from .rules import ALL_RULES, STDP_RULES
from .stdp import STDPChain
from .samples import Dataset, linear_teacher

__all__ = [
    "ADAPTIVE_RULES",
    "ALL_RULES",
    "STDP_RULES",
    "AdaptivePowerChain",
    "Reduction",
    "STDPChain",
    "STDPNetwork",
    "always_converges",
    "blowup_time",
    "classify_root",
    "NON_ADAPTIVE_RULES",
    "RULES",
    "RULE_TABLE",
    "Rule",
    "CompressiveNet",
    "Dataset",
    "ExpansiveNet",
    "GeneralLinear",
    "LearningSystem",
    "LinearChain",
    "LinearNetwork",
    "NoFixedPointError",
    "PowerChain",
    "PowerNetwork",
    "Stability",
    "Trajectory",
    "adaptive_pair_limit",
    "linear_teacher",
    "minibatch_learning",
    "power_statistics",
    "real_roots",
    "theorem1_limit",
]
