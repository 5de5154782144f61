"""The general linear network A[N_0, N_1, ..., N_L] in matrix form (paper 1 §7.7-7.8, paper 2 §5.7-5.8).

Forward matrices A_i (N_i × N_{i-1}), P = A_L ... A_1, Σ_TI = E(TIᵀ) (N_L × N_0),
Σ_II = E(IIᵀ) (N_0 × N_0), E = Σ_TI − PΣ_II.  Channel matrices C_i, i = 1..L-1:
N_i × N_{i+1} for RBP/ARBP (errors pass through every layer) and N_i × N_L for
SRBP/ASRBP (skipped, straight from the output).  With C_L = Id:

* SRBP (eq. 81):  dA_i/dt = C_i E A_1ᵀ...A_{i-1}ᵀ;
* RBP (eq. 87):   dA_i/dt = C_i...C_{L-1} E A_1ᵀ...A_{i-1}ᵀ;
* ARBP (paper 2 eq. 125-126): RBP and dC_i/dt = A_i...A_1 Eᵀ C_{L-1}ᵀ...C_{i+1}ᵀ;
* ASRBP (paper 2 eq. 129-130): SRBP and dC_i/dt = A_i...A_1 Eᵀ;
* GD (eq. 84):    dA_i/dt = A_{i+1}ᵀ...A_Lᵀ E A_1ᵀ...A_{i-1}ᵀ.

The OCR'd eq. 124, 126 and 130 print A_{i-1}...A_1 in dC_i/dt; the product must be
A_i...A_1 (the presynaptic activity of C_i is the output of layer i, paper 2 §3.4,
and only then is C_i of size N_i × ·), which is what the chain equations (paper 2
eq. 73, 80) say.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce

import numpy as np

from .base import RULES, LearningSystem, MatrixLayout, channel_shapes, check_rule
from .compressive import check_statistics, excess_error

__all__ = ["GeneralLinear", "channel_shapes"]


def _chain(mats: Sequence[np.ndarray], n: int) -> np.ndarray:
    """Product mats[0] @ mats[1] @ ..., the identity of size n when empty."""
    return reduce(np.matmul, mats, np.eye(n))


class GeneralLinear(MatrixLayout, LearningSystem):
    """Averaged learning dynamics of A[N_0, ..., N_L] in matrix form.

    Parameters
    ----------
    sizes:
        Layer sizes (N_0, ..., N_L), L >= 2.
    sigma_TI, sigma_II:
        Data statistics E(TIᵀ) (N_L × N_0) and E(IIᵀ) (N_0 × N_0).
    C:
        Fixed channel matrices C_1..C_{L-1} for ``rbp``/``srbp`` (shapes in
        :func:`channel_shapes`); omit for ``arbp``/``asrbp`` (they are state) and ``gd``.
    rule:
        ``"srbp"`` (default; ``skipped`` in the issue's terms), ``"rbp"``, ``"arbp"``,
        ``"asrbp"`` or ``"gd"``.

    The state vector is A_1, ..., A_L (each flattened row-major), then C_1..C_{L-1} if
    adaptive; :meth:`pack` and :meth:`unpack` convert (the layout of every linear system,
    :class:`~lchannel.theory.base.MatrixLayout`).
    """

    def __init__(self, sizes: Sequence[int], sigma_TI: np.ndarray, sigma_II: np.ndarray, C: Sequence[np.ndarray] | None = None, *, rule: str = "srbp") -> None:
        self.rule = check_rule(rule, RULES)
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < 3 or min(sizes) < 1:
            raise ValueError(f"sizes must list at least 3 positive layer sizes (N0, ..., NL with L >= 2); got {sizes}")
        self.sizes = sizes
        self.depth = len(sizes) - 1
        self.sigma_TI, self.sigma_II = check_statistics(sigma_TI, sigma_II, n_out=sizes[-1], n_in=sizes[0])
        if self.rule_spec.fixed_channel:
            if C is None or len(C) != self.depth - 1:
                raise ValueError(f"rule {self.rule!r} needs C, a list of {self.depth - 1} channel matrices with shapes {self.c_shapes}")
            self.C = [np.asarray(c, dtype=float) for c in C]
            for i, (c, shape) in enumerate(zip(self.C, self.c_shapes), start=1):
                if c.shape != shape:
                    raise ValueError(f"C{i} must have shape {shape} for rule {self.rule!r}; got {c.shape}")
        elif C is not None:
            raise ValueError(f"C must be None for rule {self.rule!r} (adaptive channel matrices go in y0; gd has none)")
        else:
            self.C = None
        names = [f"A{k}[{i},{j}]" for k, (r, s) in enumerate(self.a_shapes, 1) for i in range(r) for j in range(s)]
        if self.adaptive:
            names += [f"C{k}[{i},{j}]" for k, (r, s) in enumerate(self.c_shapes, 1) for i in range(r) for j in range(s)]
        self.names = tuple(names)

    # ------------------------------------------------------------------ channel
    def fixed_channels(self) -> list[np.ndarray]:
        """The fixed channel matrices C_1..C_{L-1} given to the constructor (none for ARBP/ASRBP/GD)."""
        return [] if self.C is None else list(self.C)

    # ------------------------------------------------------------------ dynamics
    def product(self, y: np.ndarray) -> np.ndarray:
        """P = A_L ... A_1 (N_L × N_0)."""
        As, _ = self.unpack(y)
        return _chain(As[::-1], self.sizes[-1])

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        """The matrix equations of the module docstring."""
        As, Cs = self.unpack(y)
        L, n = self.depth, self.sizes
        e = self.sigma_TI - self.product(y) @ self.sigma_II
        below = [np.eye(n[0])]  # below[i] = A_i ... A_1
        for a in As:
            below.append(a @ below[-1])
        # back[i] (i = 1..L) is the matrix carrying the output error to layer i.
        spec = self.rule_spec
        back = spec.signals(As, Cs, np.eye(n[L]))
        dA = [back[i] @ e @ below[i - 1].T for i in range(1, L + 1)]
        parts = [d.ravel() for d in dA]
        if spec.adaptive:  # dC_i/dt = A_i...A_1 Eᵀ back[source(i)]ᵀ (paper 2 eq. 126, 130)
            parts += [(below[i] @ e.T @ back[spec.source(i, L)].T).ravel() for i in range(1, L)]
        return np.concatenate(parts)

    def error(self, y: np.ndarray) -> float:
        """Excess error over the least-squares map P* = Σ_TI Σ_II⁻¹."""
        return excess_error(self.product(y), self.sigma_TI, self.sigma_II)

    def predicted_fixed_point(self, y0: Sequence[float]) -> np.ndarray:
        """Not known in closed form: the papers give the limit of the product, not of the weights."""
        raise NotImplementedError(
            "the weights' limit of A[N0,...,NL] has no closed form; the theory gives the limit of the product: "
            "C1 P -> C1 Sigma_TI Sigma_II^-1 (paper 1 Theorem 8, three layers with a fixed channel), see optimal_product()"
        )

    def optimal_product(self) -> np.ndarray:
        """P* = Σ_TI Σ_II⁻¹: C_1P converges to C_1P* (Theorem 8), hence P → P* if C_1 has full column rank."""
        return self.sigma_TI @ np.linalg.pinv(self.sigma_II)

    def conserved(self, y: np.ndarray) -> dict[str, np.ndarray]:
        """Matrix constants of motion.

        * ARBP: C_i − A_{i+1}ᵀ (paper 2 Theorem 7);
        * ASRBP: C_iC_iᵀ − A_iA_iᵀ (paper 2 §5.7) and C_{L-1} − A_Lᵀ;
        * RBP: C_iA_{i+1} + (C_iA_{i+1})ᵀ − A_iA_iᵀ, i = 1..L-1 (eq. 89-92, since
          C_i dA_{i+1}/dt = dA_i/dt A_iᵀ for every i);
        * SRBP: the same for i = L-1 only (C_L = Id);
        * GD: A_{i+1}ᵀA_{i+1} − A_iA_iᵀ (eq. 85).
        """
        As, Cs = self.unpack(y)
        L = self.depth
        out: dict[str, np.ndarray] = {}
        for i in range(1, L):
            a_i, a_n = As[i - 1], As[i]
            if self.rule == "arbp":
                out[f"C{i} - A{i+1}^T"] = Cs[i - 1] - a_n.T
            elif self.rule == "asrbp":
                out[f"C{i} C{i}^T - A{i} A{i}^T"] = Cs[i - 1] @ Cs[i - 1].T - a_i @ a_i.T
            elif self.rule == "gd":
                out[f"A{i+1}^T A{i+1} - A{i} A{i}^T"] = a_n.T @ a_n - a_i @ a_i.T
            elif self.rule == "rbp" or i == L - 1:
                m = Cs[i - 1] @ a_n
                out[f"C{i} A{i+1} + (C{i} A{i+1})^T - A{i} A{i}^T"] = m + m.T - a_i @ a_i.T
        if self.rule == "asrbp":
            out[f"C{L-1} - A{L}^T"] = Cs[L - 2] - As[L - 1].T
        return out

    # ------------------------------------------------------------------ paper 1 Theorems 7-8 (three layers)
    def _three_layer(self) -> tuple[np.ndarray, np.ndarray]:
        if self.depth != 2 or not self.rule_spec.fixed_channel:
            raise ValueError(f"Theorems 7-8 are about the three-layer system A[N0,N1,N2] with a fixed channel (eq. 88); this one has depth {self.depth} and rule {self.rule!r}")
        return self.C[0], self.sigma_TI @ np.linalg.pinv(self.sigma_II)

    def lyapunov_matrix(self, y: np.ndarray) -> np.ndarray:
        """V = (C_1A_2)(C_1A_2)ᵀ − A_1Mᵀ − MA_1ᵀ with M = C_1Σ_TIΣ_II⁻¹ (paper 1 proof of Theorem 8, after eq. 108).

        Along the flow dV/dt = −2UΣ_IIUᵀ <= 0 (:meth:`lyapunov_rate`): V never increases (in the
        order of symmetric matrices), which bounds C_1A_2 and gives C_1P → C_1Σ_TIΣ_II⁻¹.
        """
        c1, p_star = self._three_layer()
        (a1, a2), _ = self.unpack(y)
        ca, m = c1 @ a2, c1 @ p_star
        return ca @ ca.T - a1 @ m.T - m @ a1.T

    def lyapunov_rate(self, y: np.ndarray) -> np.ndarray:
        """dV/dt = −2UΣ_IIUᵀ with U = C_1(Σ_TI − A_2A_1Σ_II)Σ_II⁻¹ (eq. 106-108; the paper writes one of the two equal halves)."""
        c1, _ = self._three_layer()
        u = c1 @ (self.sigma_TI - self.product(y) @ self.sigma_II) @ np.linalg.pinv(self.sigma_II)
        return -2.0 * u @ self.sigma_II @ u.T
