"""The compressive network A[N, 1, N] (paper 1 §7.6, paper 2 §5.6).

A (1×N) maps the input to the single hidden unit, B (N×1) maps it to the outputs,
C (1×N) is the learning channel, P = BA, Σ_TI = E(TIᵀ), Σ_II = E(IIᵀ):

* RBP/SRBP (paper 1 eq. 65): dA/dt = C(Σ_TI − BAΣ_II), dB/dt = (Σ_TI − BAΣ_II)Aᵀ;
* ARBP/ASRBP (paper 2 eq. 120): the same with dC/dt = A(Σ_TI − BAΣ_II)ᵀ;
* GD: dA/dt = Bᵀ(Σ_TI − BAΣ_II).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.polynomial import Polynomial

from .base import RULES, LearningSystem, PairedLayers, check_rule, fixed_channel
from .onedim import real_roots

__all__ = ["CompressiveNet", "check_statistics"]


def check_statistics(sigma_TI: np.ndarray, sigma_II: np.ndarray, n_out: int | None = None, n_in: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validate the data statistics Σ_TI (N_L × N_0) and Σ_II (N_0 × N_0, symmetric, positive semi-definite)."""
    sti = np.atleast_2d(np.asarray(sigma_TI, dtype=float))
    sii = np.atleast_2d(np.asarray(sigma_II, dtype=float))
    if sii.shape[0] != sii.shape[1]:
        raise ValueError(f"sigma_II must be square (N0 x N0); got shape {sii.shape}")
    if sti.shape[1] != sii.shape[0]:
        raise ValueError(f"sigma_TI must have N0 = {sii.shape[0]} columns to match sigma_II; got shape {sti.shape}")
    if n_in is not None and sii.shape[0] != n_in:
        raise ValueError(f"sigma_II must be {n_in} x {n_in}; got shape {sii.shape}")
    if n_out is not None and sti.shape[0] != n_out:
        raise ValueError(f"sigma_TI must have {n_out} rows; got shape {sti.shape}")
    if not (np.all(np.isfinite(sti)) and np.all(np.isfinite(sii))):
        raise ValueError("sigma_TI and sigma_II must be finite")
    if not np.allclose(sii, sii.T, atol=1e-12 * max(1.0, np.abs(sii).max())):
        raise ValueError("sigma_II = E(I I^T) must be symmetric")
    if np.linalg.eigvalsh(sii).min() < -1e-10 * max(1.0, np.abs(sii).max()):
        raise ValueError("sigma_II = E(I I^T) must be positive semi-definite")
    return sti, sii


def excess_error(p: np.ndarray, sigma_TI: np.ndarray, sigma_II: np.ndarray) -> float:
    """E(P) − E(P*) = ½ tr((P − P*)Σ_II(P − P*)ᵀ), P* = Σ_TI Σ_II⁻¹ the least-squares map."""
    p_star = sigma_TI @ np.linalg.pinv(sigma_II)
    d = p - p_star
    return 0.5 * float(np.trace(d @ sigma_II @ d.T))


class CompressiveNet(PairedLayers, LearningSystem):
    """Averaged learning dynamics of A[N, 1, N] with N = Σ_II.shape[0].

    ``c`` (the fixed channel row C, N values) is required for ``rbp``/``srbp`` and must
    be omitted otherwise.  State: ``(a_1..a_N, b_1..b_N)`` then ``(c_1..c_N)`` if adaptive.
    """

    def __init__(self, sigma_TI: np.ndarray, sigma_II: np.ndarray, c: Sequence[float] | None = None, *, rule: str = "srbp") -> None:
        self.rule = check_rule(rule, RULES)
        self.sigma_TI, self.sigma_II = check_statistics(sigma_TI, sigma_II)
        n = self.sigma_II.shape[0]
        if self.sigma_TI.shape != (n, n):
            raise ValueError(f"A[N,1,N] needs square sigma_TI ({n} x {n}); got {self.sigma_TI.shape}")
        self.width = n
        self.c = fixed_channel(self.rule, c, n, f"N = {n}")
        self.names = self._pair_names()
        self.sizes = (n, 1, n)

    def product(self, y: np.ndarray) -> np.ndarray:
        """P = BA (N×N, rank one)."""
        a, b, _ = self.split(y)
        return np.outer(b, a)

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        """Paper 1 eq. 65 / paper 2 eq. 120."""
        a, b, c = self.split(y)
        m = self.sigma_TI - np.outer(b, a) @ self.sigma_II
        ma = m @ a
        parts = [c @ m, ma]
        if self.adaptive:
            parts.append(ma)  # dC/dt = A Mᵀ = (M Aᵀ)ᵀ = (dB/dt)ᵀ: paper 2 Theorem 6
        return np.concatenate(parts)

    def error(self, y: np.ndarray) -> float:
        """Excess error over the least-squares map, ½ tr((P − P*)Σ_II(P − P*)ᵀ)."""
        return excess_error(self.product(y), self.sigma_TI, self.sigma_II)

    def conserved(self, y: np.ndarray) -> dict[str, float]:
        """Constants of motion.

        * RBP/SRBP: CB − ½‖A‖² (Lemma 1, eq. 66);
        * ARBP/ASRBP: c_i − b_i (paper 2 Theorem 6, eq. 121) and ‖A‖² + ‖B‖² − 2CB;
        * GD: ‖B‖² − ‖A‖².
        """
        a, b, c = self.split(y)
        if self.rule_spec.fixed_channel:
            return {"C.B - |A|^2/2": float(c @ b - 0.5 * a @ a)}
        if self.rule == "gd":
            return {"|B|^2 - |A|^2": float(b @ b - a @ a)}
        out = {f"c{i+1} - b{i+1}": float(c[i] - b[i]) for i in range(self.width)}
        out["|A|^2 + |B|^2 - 2*C.B"] = float(a @ a + b @ b - 2 * c @ b)
        return out

    def predicted_fixed_point(self, y0: Sequence[float]) -> np.ndarray:
        """Theorem 6 (autoencoder with Σ_TI = Σ_II = Id, RBP/SRBP): A → λC, B → Cᵀ/(λ‖C‖²).

        Also for Σ_TI = Σ_II = D diagonal (the case the proof says it extends to):
        A → λC, B → DCᵀ/(λCDCᵀ), P → DCᵀC/(CDCᵀ), with the same λ.

        λ is the positive root of the cubic 1 − (½λ²‖C‖² + K)λ = 0 (eq. 77), with
        K = CB(0) − ½‖A(0)‖² the constant of Lemma 1.  The cubic has exactly one
        positive root: it is −1 at 0 and, for λ > 0, decreases then increases at most once.
        """
        y0 = self.as_state(y0)
        d = self.sigma_II
        diagonal = np.allclose(d, np.diag(np.diag(d))) and np.all(np.diag(d) > 0)
        if not self.rule_spec.fixed_channel or not (diagonal and np.allclose(self.sigma_TI, d)):
            raise NotImplementedError(
                "the reached fixed point of A[N,1,N] is known for the RBP/SRBP autoencoder with sigma_TI = sigma_II diagonal "
                "(Theorem 6, and the diagonal case its proof mentions) only"
            )
        a, b, c = self.split(y0)
        cc = float(c @ c)
        if cc == 0:
            raise ValueError("Theorem 6 needs a non-zero channel C")
        k = float(c @ b - 0.5 * a @ a)
        cubic = Polynomial([1.0, -k, 0.0, -0.5 * cc])
        lam = max(r for r in real_roots(cubic) if r > 0)
        # With Σ_TI = Σ_II = D diagonal: dA/dt = (C − (CB)A)D = 0 gives A = C/(CB) = λC and
        # dB/dt = (I − BA)DAᵀ = 0 gives B = DCᵀ/(λ CDCᵀ); Lemma 1 still gives CB = 1/λ on the cubic.
        dc = np.diag(d) * c
        return np.concatenate([lam * c, dc / (lam * float(c @ dc))])
