"""Seeded training sets for the discrete learning, and their statistics.

The ODEs are written from the statistics of the training set (α = E(IT), β = E(I²),
Σ_TI = E(TIᵀ), Σ_II = E(IIᵀ), averages over the set, not centred), so the discrete
minibatch learning on the same set follows them as the learning rate goes to zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Dataset", "correlated_teacher", "linear_teacher", "scalar_teacher", "whitened_autoencoder"]


@dataclass(frozen=True)
class Dataset:
    """A training set: ``inputs`` (M × N_0) and ``targets`` (M × N_L)."""

    inputs: np.ndarray
    targets: np.ndarray

    @property
    def sigma_TI(self) -> np.ndarray:
        """Σ_TI = E(TIᵀ) (N_L × N_0)."""
        return self.targets.T @ self.inputs / len(self.inputs)

    @property
    def sigma_II(self) -> np.ndarray:
        """Σ_II = E(IIᵀ) (N_0 × N_0)."""
        return self.inputs.T @ self.inputs / len(self.inputs)

    @property
    def alpha(self) -> float:
        """α = E(IT) for one input and one target."""
        self._require_scalar()
        return float(self.sigma_TI[0, 0])

    @property
    def beta(self) -> float:
        """β = E(I²) for one input."""
        self._require_scalar()
        return float(self.sigma_II[0, 0])

    def _require_scalar(self) -> None:
        if self.inputs.shape[1] != 1 or self.targets.shape[1] != 1:
            raise ValueError(f"alpha and beta are defined for one input and one target; this set has {self.inputs.shape[1]} inputs and {self.targets.shape[1]} targets (use sigma_TI, sigma_II)")


def linear_teacher(n_samples: int, weight: float | np.ndarray, *, noise: float = 0.1, input_scale: float = 1.0, positive_inputs: bool = False, seed: int = 0) -> Dataset:
    """Samples T = W I + noise with seeded inputs.

    ``weight`` is a scalar (one input, one target) or an N_L × N_0 matrix.  Inputs are
    Gaussian with standard deviation ``input_scale``, or uniform on
    [0.5, 1.5]·``input_scale`` when ``positive_inputs`` (needed by non-integer powers).
    """
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}")
    if noise < 0 or input_scale <= 0:
        raise ValueError(f"noise must be >= 0 and input_scale > 0; got noise={noise}, input_scale={input_scale}")
    w = np.atleast_2d(np.asarray(weight, dtype=float))
    rng = np.random.default_rng(seed)
    n_in = w.shape[1]
    if positive_inputs:
        inputs = rng.uniform(0.5, 1.5, size=(n_samples, n_in)) * input_scale
    else:
        inputs = rng.normal(0.0, input_scale, size=(n_samples, n_in))
    targets = inputs @ w.T + noise * rng.normal(size=(n_samples, w.shape[0]))
    return Dataset(inputs=inputs, targets=targets)


def scalar_teacher(alpha: float, beta: float, n_samples: int = 5000, *, noise: float = 0.1, seed: int = 0) -> Dataset:
    """One input, one target, with statistics exactly E(IT) = α and E(I²) = β.

    T = (α/β)I + ε, where the Gaussian inputs are rescaled so that E(I²) = β and the
    noise ε is made orthogonal to I over the set, so that E(IT) = α exactly; the ODE
    with these α, β is then the exact average of the discrete updates.
    """
    if not beta > 0:
        raise ValueError(f"beta = E(I^2) must be > 0; got {beta}")
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 2:
        raise ValueError(f"n_samples must be an integer >= 2; got {n_samples!r}")
    rng = np.random.default_rng(seed)
    i = rng.normal(size=n_samples)
    i *= np.sqrt(beta / np.mean(i * i))
    eps = rng.normal(size=n_samples)
    eps -= (eps @ i) / (i @ i) * i
    t = alpha / beta * i + noise * eps
    return Dataset(inputs=i[:, None], targets=t[:, None])


def whitened_autoencoder(n_samples: int, width: int, *, seed: int = 0) -> Dataset:
    """An autoencoder set (T = I) with Σ_TI = Σ_II = Id exactly (the setting of Theorem 6, eq. 68)."""
    if not isinstance(width, (int, np.integer)) or width < 1 or n_samples < width + 1:
        raise ValueError(f"need width >= 1 and n_samples > width; got width={width!r}, n_samples={n_samples!r}")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_samples, width))
    evals, evecs = np.linalg.eigh(x.T @ x / n_samples)
    x = x @ evecs @ np.diag(evals**-0.5) @ evecs.T
    return Dataset(inputs=x, targets=x.copy())


def correlated_teacher(n_samples: int, weight: np.ndarray, sigma_II: np.ndarray, *, noise: float = 0.1, seed: int = 0) -> Dataset:
    """Samples T = WI + ε with statistics exactly Σ_II = E(IIᵀ) and Σ_TI = E(TIᵀ) = WΣ_II.

    The inputs are whitened over the set (E(ZZᵀ) = Id exactly) and then coloured,
    I = Σ_II^{1/2}Z; the noise is made orthogonal to the inputs over the set, so the
    least-squares map Σ_TIΣ_II⁻¹ is W itself.  The general linear system
    (paper 1 eq. 81, 84, 87; paper 2 eq. 125-126, 129-130) written from these Σ is then the
    exact average of the discrete updates on this set.
    """
    w = np.atleast_2d(np.asarray(weight, dtype=float))
    sii = np.atleast_2d(np.asarray(sigma_II, dtype=float))
    n_in = w.shape[1]
    if sii.shape != (n_in, n_in):
        raise ValueError(f"sigma_II must be {n_in} x {n_in} to match the {w.shape[0]} x {n_in} weight; got shape {sii.shape}")
    evals, evecs = np.linalg.eigh(0.5 * (sii + sii.T))
    if evals.min() <= 0:
        raise ValueError(f"sigma_II must be positive definite; its smallest eigenvalue is {evals.min():.3g}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0; got {noise}")
    z = whitened_autoencoder(n_samples, n_in, seed=seed).inputs
    inputs = z @ (evecs * np.sqrt(evals)) @ evecs.T  # rows: (Σ^{1/2} z)ᵀ
    eps = np.random.default_rng(seed + 1).normal(size=(n_samples, w.shape[0]))
    eps -= inputs @ np.linalg.solve(inputs.T @ inputs, inputs.T @ eps)
    return Dataset(inputs=inputs, targets=inputs @ w.T + noise * eps)
