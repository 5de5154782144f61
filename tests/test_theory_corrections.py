"""Six errors of the papers' text (issue 3), each checked against an independent truth:
the discrete learner (which never uses an ODE right-hand side), an integration of the
ODE, or the paper's own definitions.  docs/theory.md lists them under "Corrections".

The learner's full-batch step on a set with exact statistics is the average of the
paper's discrete rule, so Δw/η *is* the averaged derivative the equations describe.
"""

from __future__ import annotations

import numpy as np
import pytest

from lchannel.theory import CompressiveNet, GeneralLinear, LinearChain, LinearNetwork
from lchannel.theory.power import AdaptivePowerChain
from lchannel.theory.samples import correlated_teacher, scalar_teacher, whitened_autoencoder


def _learner_rate(system, y, data, eta=1e-3):
    """dy/dt of the actual network: one full-batch step of the discrete learner, divided by eta."""
    As, Cs = system.to_matrices(y)
    net = LinearNetwork(As, Cs, system.rule)
    net.step(data.inputs, data.targets, eta)
    return (system.from_matrices(net.As, net.Cs) - y) / eta


def test_paper1_theorem8_limit_is_c1_sigma_ti_sigma_ii_inverse_not_sigma_ii():
    """Paper 1 Theorem 8 prints C1A2A1 -> C1 Σ_II Σ_II⁻¹; its proof (U, eq. 106; V after eq. 108)
    uses Σ_TI, and the integration reaches C1 Σ_TI Σ_II⁻¹.  The printed limit is C1 itself
    (and has no meaning when N0 != N2)."""
    rng = np.random.default_rng(3)
    sigma = np.array([[1.5, 0.4], [0.4, 0.6]])
    data = correlated_teacher(2000, rng.normal(size=(2, 2)), sigma, seed=3)
    c1 = rng.normal(size=(3, 2))
    system = GeneralLinear((2, 3, 2), data.sigma_TI, data.sigma_II, [c1])
    traj = system.integrate(rng.normal(size=12) * 0.5, 2000.0)
    assert traj.status == "converged"
    c1p = c1 @ system.product(traj.final)
    np.testing.assert_allclose(c1p, c1 @ data.sigma_TI @ np.linalg.inv(data.sigma_II), atol=1e-8)
    printed = c1 @ data.sigma_II @ np.linalg.inv(data.sigma_II)
    assert np.max(np.abs(c1p - printed)) > 0.3
    with pytest.raises(ValueError):  # A[3,4,2]: C1 is 4 x 2, Σ_II Σ_II⁻¹ is 3 x 3
        rng.normal(size=(4, 2)) @ np.eye(3)


def test_paper1_eq45_product_runs_from_k_equal_1():
    """Paper 1 eq. 45 prints da_i/dt = c_i ∏_{k=-1}^{i-1} a_k (α − βP); there are no a_{-1}, a_0:
    the product is a_1⋯a_{i-1} (k from 1), as eq. 44 and the learner's update say."""
    alpha, beta, c = 0.8, 1.3, np.array([0.7, -1.2, 0.5])
    system = LinearChain(alpha, beta, c, depth=4)
    data = scalar_teacher(alpha, beta, 500, seed=1)
    rng = np.random.default_rng(4)
    for _ in range(5):
        a = rng.uniform(-1.5, 1.5, 4)
        err = alpha - beta * np.prod(a)
        eq45 = np.array([np.append(c, 1.0)[i] * np.prod(a[:i]) * err for i in range(4)])  # k = 1..i-1
        np.testing.assert_allclose(_learner_rate(system, a, data), eq45, rtol=1e-9, atol=1e-12)


def test_paper1_theorem6_constant_is_a_root_of_eq77_not_the_statistic_beta():
    """Paper 1 Theorem 6 writes A -> βC with "β a positive root of a particular cubic", reusing the
    name of β = E(I²).  The constant is the positive root λ of eq. 77, 1 − (½λ²‖C‖² + K)λ = 0: the
    integration reaches λC, the same λ for Σ_II = Id (where E(I_k²) = 1) and for Σ_II = diag(2, 0.5, 1),
    and λ is not 1."""
    c = np.array([0.9, -0.4, 0.6])
    y0 = np.array([0.3, 0.2, -0.5, 0.4, -0.1, 0.7])
    k = c @ y0[3:] - 0.5 * y0[:3] @ y0[:3]  # Lemma 1
    lam = max(r.real for r in np.roots([-0.5 * c @ c, 0.0, -k, 1.0]) if abs(r.imag) < 1e-12 and r.real > 0)
    for d in (np.ones(3), np.array([2.0, 0.5, 1.0])):
        traj = CompressiveNet(np.diag(d), np.diag(d), c).integrate(y0, 2000.0)
        assert traj.status == "converged"
        np.testing.assert_allclose(traj.final[:3], lam * c, atol=1e-8)
    assert whitened_autoencoder(500, 3).sigma_II[0, 0] == pytest.approx(1.0)  # the data's β = E(I_k²)
    assert abs(lam - 1.0) > 0.1


def test_paper2_eq52_factor_is_a_i_plus_1_plus_k_i():
    """Paper 2 eq. 52 prints a_i da_i/dt = c_i da_{i+1}/dt = (a_i + K_i) da_{i+1}/dt; with
    c_i = a_{i+1} + K_i (eq. 51) the factor is (a_{i+1} + K_i), which gives eq. 53.  Checked on
    the ARBP chain A[1,1,1,1] with derivatives from the learner, and eq. 53 along the ODE."""
    alpha, beta = 0.9, 1.1
    system = LinearChain(alpha, beta, depth=3, rule="arbp")
    data = scalar_teacher(alpha, beta, 500, seed=2)
    y0 = np.array([0.6, -0.8, 1.1, 0.3, 1.4])  # a1 a2 a3 c1 c2
    k = y0[3:] - y0[1:3]  # K_i = c_i(0) − a_{i+1}(0)
    traj = system.integrate(y0, 50.0)
    printed_miss = 0.0
    for y in traj.y[:: len(traj.y) // 8]:
        a, c = y[:3], y[3:]
        np.testing.assert_allclose(c - a[1:], k, atol=1e-8)  # eq. 51 along the ODE
        da = _learner_rate(system, y, data)[:3]
        for i in range(2):
            assert a[i] * da[i] == pytest.approx((a[i + 1] + k[i]) * da[i + 1], rel=1e-9, abs=1e-12)
            printed_miss = max(printed_miss, abs(a[i] * da[i] - (a[i] + k[i]) * da[i + 1]))
    assert printed_miss > 0.1
    j = traj.y[:, :2] ** 2 - (traj.y[:, 1:3] + k) ** 2  # eq. 53: a_i² − (a_{i+1} + K_i)² = J_i
    assert np.max(np.abs(j - j[0])) < 1e-8


def test_paper2_eq17_is_the_phase_t_equal_2():
    """Paper 2 eq. 17 labels the clamped phase O(t = 1), the label of eq. 16.  Both cannot hold
    (they differ by f(S + CT) − f(S + CO)); with eq. 17 at t = 2, eq. 18's ΔO = O(t=2) − O(t=1)
    is the SRBP signal f'(S)C(T − O): exactly for a linear f, and to first order in C for tanh
    (the relative error halves when C halves)."""
    rng = np.random.default_rng(5)
    w, c = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    x, t = rng.normal(size=(3, 6)), rng.normal(size=(2, 6))
    s = w @ x
    out = rng.normal(size=(2, 6))  # the output O^L of phase 0
    for f, df in ((lambda z: z, lambda z: np.ones_like(z)), (np.tanh, lambda z: 1 - np.tanh(z) ** 2)):
        misses = []
        for scale in (0.02, 0.01):
            o1 = f(s + scale * c @ out)  # eq. 16, t = 1
            o2 = f(s + scale * c @ t)  # eq. 17: the clamped target fed back
            assert np.max(np.abs(o2 - o1)) > 1e-3  # eq. 17 cannot also be O(t = 1)
            signal = df(s) * (scale * c @ (t - out))  # R^h of eq. 18
            misses.append(np.max(np.abs(o2 - o1 - signal)) / np.max(np.abs(signal)))
        if f is np.tanh:
            assert 1.8 < misses[0] / misses[1] < 2.2  # first order in C
        else:
            assert max(misses) < 1e-12


def test_paper2_section_5_9_theorem7_invariant_is_mu_c1_squared_minus_a1_squared():
    """Paper 2 §5.9 Theorem 7 states its condition with K = μc1² − a2i ("a_i²"); eq. 134 defines
    K = μc1² − a1², which the integration keeps constant, while μc1² − a2² changes by O(1)."""
    mu = 2.0
    system = AdaptivePowerChain(mu, 1.0, 1.0)
    y0 = np.array([0.8, 0.2, 1.1])  # a1 a2 c1: K = μc1² − a1² > 0, the theorem's case
    traj = system.integrate(y0, 200.0)
    assert traj.status == "converged"
    a1, a2, c1 = traj.y.T
    k1 = mu * c1**2 - a1**2
    k2 = mu * c1**2 - a2**2
    assert np.max(np.abs(k1 - k1[0])) < 1e-8
    assert np.max(np.abs(k2 - k2[0])) > 0.1
    np.testing.assert_allclose(c1, np.sqrt((a1**2 + k1[0]) / mu), rtol=1e-8)  # eq. 135 with this K
