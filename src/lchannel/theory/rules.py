"""The learning rules as one table: how the error reaches each layer, and how the channel learns.

Every rule of this package sends the output error T − O back down a linear network
A[N_0, ..., N_L] and updates A_i by the signal R^i arriving at layer i times the
presynaptic activity (paper 1 eq. 21, 34, 43; paper 2 eq. 22, 48, 54).  The rules
differ in two things only, recorded here once:

* **how R^i is made** (``carrier``): R^L = T − O and, for i = L-1..1,

  - ``"forward"`` (GD, backpropagation, paper 1 eq. 4): R^i = A_{i+1}ᵀ R^{i+1};
  - ``"layered"`` (RBP, ARBP, paper 1 eq. 7): R^i = C_i R^{i+1};
  - ``"skipped"`` (SRBP, ASRBP, paper 2 eq. 11): R^i = C_i R^L;

  so C_i (or A_{i+1}ᵀ) carries the signal of layer :meth:`Rule.source` (i) = i+1, or L
  when skipped;
* **whether the channel learns** (``adaptive``): ARBP and ASRBP update C_i by the
  signal it carries times its presynaptic activity O^i, ΔC_i = η O^i (R^{source(i)})ᵀ:
  R^{i+1} for ARBP (paper 2 §3.4; the chain's eq. 75, the matrices' eq. 125-126) and
  the output error for ASRBP (paper 2 eq. 128; the chain's eq. 82, the matrices'
  eq. 129-130).

* **how the channel learns** (``stdp``): ``None`` for the Hebbian rules above; for the
  STDP-like rules of paper 2 §3.6 the channel learns from the *change* of the hidden
  activity between two feedback phases (eq. 13-18), ΔC_1 = η ΔO¹ × (presynaptic), where
  the presynaptic activity is the output O (``"output"``, eq. 32, the rule analysed in
  Theorem 2′) or the clamped target T (``"target"``, eq. 19).  The forward weights learn
  as in SRBP (eq. 18), except that the top layer sees the hidden activity of phase 1,
  O¹ + C_1O (eq. 32, second line).

The systems (chain, expansive, compressive, general matrices) and the discrete learner
read these properties instead of testing rule names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Rule", "RULE_TABLE", "rule_spec", "check_rule", "NON_ADAPTIVE_RULES", "ADAPTIVE_RULES", "RULES", "STDP_RULES", "ALL_RULES"]


@dataclass(frozen=True)
class Rule:
    """One learning rule: the carrier of the error signal and whether the channel adapts."""

    name: str
    #: ``"forward"`` (A_{i+1}ᵀ), ``"layered"`` (C_i from layer i+1) or ``"skipped"`` (C_i from the output).
    carrier: str
    #: Whether the channel matrices C_i are state variables that learn (ARBP, ASRBP).
    adaptive: bool
    #: Where the equations stand in the papers.
    equations: str
    #: STDP-like channel rule (paper 2 §3.6): presynaptic factor of ΔC_1, ``"output"`` (eq. 32)
    #: or ``"target"`` (eq. 19); ``None`` for the Hebbian rules.
    stdp: str | None = None

    @property
    def has_channel(self) -> bool:
        """Whether the rule uses channel weights C_i at all (every rule but GD)."""
        return self.carrier != "forward"

    @property
    def fixed_channel(self) -> bool:
        """Whether the channel is a fixed (random) parameter of the system (RBP, SRBP)."""
        return self.has_channel and not self.adaptive

    @property
    def skipped(self) -> bool:
        """Whether C_i carries the output error directly (SRBP, ASRBP)."""
        return self.carrier == "skipped"

    def source(self, i: int, depth: int) -> int:
        """The layer whose signal reaches layer i (1 <= i < L): L if skipped, else i+1."""
        return depth if self.skipped else i + 1

    def signals(self, As: Sequence[Any], Cs: Sequence[Any], top: Any) -> list[Any]:
        """R^1..R^L (index 0 unused) from R^L = ``top``, by the recursion of the module docstring.

        ``As`` = A_1..A_L and ``Cs`` = C_1..C_{L-1} (unused for GD) are matrices; ``top`` is
        the output error (discrete learning) or the identity (the matrix carrying it, in
        the averaged equations).
        """
        L = len(As)
        out: list[Any] = [None] * (L + 1)
        out[L] = top
        for i in range(L - 1, 0, -1):
            through = As[i].T if self.carrier == "forward" else Cs[i - 1]
            out[i] = through @ out[self.source(i, L)]
        return out


#: name -> :class:`Rule`, in the order of :data:`RULES`.
RULE_TABLE: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule("rbp", "layered", False, "paper 1 eq. 7; averaged: paper 1 eq. 87"),
        Rule("srbp", "skipped", False, "paper 2 eq. 11; averaged: paper 1 eq. 23, 36, 45 (chain), 81 (matrices)"),
        Rule("arbp", "layered", True, "paper 2 §3.4; averaged: paper 2 eq. 74-75 (chain), 125-126 (matrices)"),
        Rule("asrbp", "skipped", True, "paper 2 eq. 127-128; averaged: paper 2 eq. 81-82 (chain), 129-130 (matrices)"),
        Rule("gd", "forward", False, "backpropagation, paper 1 eq. 4; averaged: paper 1 eq. 52 (chain), 84 (matrices)"),
        Rule("stdp", "skipped", True, "paper 2 eq. 13-18, 32; averaged: paper 2 eq. 33 (A[1,1,1], Theorem 2')", stdp="output"),
        Rule("stdp-t", "skipped", True, "paper 2 eq. 13-19 (channel by eq. 19); averaged: dc1/dt = c1(gamma - alpha P)", stdp="target"),
    )
}

#: Learning rules for the channel.  ``rbp``/``srbp``: fixed random channel (paper 1),
#: ``arbp``/``asrbp``: adaptive channel (paper 2 section 5), ``gd``: gradient descent
#: (backpropagation), included for comparison (paper 1 eq. 52, 84).
NON_ADAPTIVE_RULES = tuple(n for n, r in RULE_TABLE.items() if r.fixed_channel)
ADAPTIVE_RULES = tuple(n for n, r in RULE_TABLE.items() if r.adaptive and r.stdp is None)
RULES = NON_ADAPTIVE_RULES + ADAPTIVE_RULES + ("gd",)
#: The STDP-like rules of paper 2 §3.6 (A[1,1,1] only: :class:`~lchannel.theory.stdp.STDPChain`).
STDP_RULES = tuple(n for n, r in RULE_TABLE.items() if r.stdp is not None)
#: Every rule of the table.
ALL_RULES = RULES + STDP_RULES


def check_rule(rule: str, accepted: Sequence[str] = RULES) -> str:
    """Return ``rule`` if it is one of ``accepted``, else raise a ValueError naming them."""
    if rule not in accepted:
        raise ValueError(f"rule must be one of {', '.join(repr(r) for r in accepted)}; got {rule!r}")
    return rule


def rule_spec(rule: str) -> Rule:
    """The :class:`Rule` named ``rule`` (checked against :data:`ALL_RULES`)."""
    return RULE_TABLE[check_rule(rule, ALL_RULES)]
