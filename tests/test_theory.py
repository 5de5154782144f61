"""Checks of lchannel.theory against independent truth: closed forms, long integrations,
conserved quantities, Jacobian signs, and the discrete learning of the actual networks.

Papers: "Random backpropagation and the deep learning channel" (paper 1, §7) and
"Symmetries of the deep learning channel" (paper 2, §5).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.polynomial import Polynomial

from lchannel.theory import (
    ADAPTIVE_RULES,
    NON_ADAPTIVE_RULES,
    RULE_TABLE,
    RULES,
    CompressiveNet,
    ExpansiveNet,
    GeneralLinear,
    LinearChain,
    LinearNetwork,
    NoFixedPointError,
    PowerChain,
    linear_teacher,
    minibatch_learning,
    real_roots,
    theorem1_limit,
)
from lchannel.theory.general import channel_shapes
from lchannel.theory.samples import scalar_teacher, whitened_autoencoder

LONG = 5000.0  # horizon for "long integration"; integration stops at convergence
PRED_TOL = 1e-6


def _channel(rng, n):
    return rng.uniform(0.3, 1.5, n) * rng.choice([-1.0, 1.0], n)


def _reach(system, y0):
    traj = system.integrate(y0, LONG)
    assert traj.status == "converged", (y0, traj.status)
    return traj.final


# ---------------------------------------------------------------------------- Theorem 1
def test_theorem1_goes_to_adjacent_root_in_direction_of_q():
    q = Polynomial.fromroots([-2.0, 1.0, 3.0]) * -1.0  # odd degree, negative leading coefficient
    roots = real_roots(q)
    np.testing.assert_allclose(roots, [-2.0, 1.0, 3.0], atol=1e-12)
    # between -2 and 1, -(x+2)(x-1)(x-3) < 0: flows down to -2; between 1 and 3 q > 0: up to 3
    assert theorem1_limit(q, roots, 0.0) == pytest.approx(-2.0)
    assert theorem1_limit(q, roots, 2.0) == pytest.approx(3.0)
    assert theorem1_limit(q, roots, 10.0) == pytest.approx(3.0)
    assert theorem1_limit(q, roots, -10.0) == pytest.approx(-2.0)
    assert theorem1_limit(q, roots, 1.0) == pytest.approx(1.0)
    assert theorem1_limit(lambda x: x, [0.0], 1.0) == math.inf  # dx/dt = x diverges


# ---------------------------------------------------------------------------- A[1,1,1]
def test_eq31_cubic_closed_form():
    c1, a10, a20, alpha, beta = 0.7, -1.3, 0.4, 1.2, 0.9
    system = LinearChain(alpha, beta, [c1])
    poly = system.fixed_point_polynomial([a10, a20])
    expected = [-2 * c1 * alpha / beta, 2 * c1 * a20 - a10**2, 0.0, 1.0]
    np.testing.assert_allclose(poly.coef, expected, rtol=1e-12)


def test_a111_random_starts_reach_the_root_the_cubic_predicts():
    rng = np.random.default_rng(11)
    three_roots = 0
    for _ in range(40):
        c1 = _channel(rng, 1)
        alpha, beta = rng.uniform(0.3, 2.0), rng.uniform(0.5, 2.0)
        system = LinearChain(alpha, beta, c1)
        y0 = rng.uniform(-3, 3, 2)
        pred = system.predicted_fixed_point(y0)
        reached = _reach(system, y0)
        np.testing.assert_allclose(reached, pred, atol=PRED_TOL)
        assert pred[0] * pred[1] == pytest.approx(alpha / beta)
        three_roots += len(real_roots(system.fixed_point_polynomial(y0))) == 3
    assert three_roots >= 5  # the choice among several roots was really exercised


@pytest.mark.parametrize("rule", ["srbp", "rbp"])
def test_a1111_degree_seven_polynomial_and_convergence(rule):
    rng = np.random.default_rng(7)
    for _ in range(15):
        c = _channel(rng, 2)
        system = LinearChain(1.0, 1.3, c, rule=rule)
        y0 = rng.uniform(-1.8, 1.8, 3)
        _, q = system.reduced_polynomials(y0)
        assert q.degree() == 7  # Theorem 3
        # leading coefficient: −βc2²/(16c1²) for SRBP (proof of Theorem 3); −β/(16c1²) for RBP
        lead = -1.3 * c[1] ** 2 / (16 * c[0] ** 2) if rule == "srbp" else -1.3 / (16 * c[0] ** 2)
        assert q.coef[-1] == pytest.approx(lead, rel=1e-12)
        np.testing.assert_allclose(_reach(system, y0), system.predicted_fixed_point(y0), atol=PRED_TOL)


@pytest.mark.parametrize("depth", [4, 8])
def test_deep_chain_degree_and_convergence(depth):
    # depth 4: roots of the degree-15 polynomial; depth 8 (degree 255): first sign change of Q
    rng = np.random.default_rng(depth)
    for _ in range(8):
        system = LinearChain(0.8, 1.0, _channel(rng, depth - 1))
        y0 = rng.uniform(-1.1, 1.1, depth)
        assert system.reduced_polynomials(y0)[1].degree() == 2**depth - 1  # eq. 51
        pred = system.predicted_fixed_point(y0)
        assert np.prod(pred) == pytest.approx(0.8, rel=1e-8)
        np.testing.assert_allclose(_reach(system, y0), pred, atol=1e-5)


# ---------------------------------------------------------------------------- adaptive A[1,1,1]
@pytest.mark.parametrize("rule", ["arbp", "asrbp", "gd"])
def test_adaptive_a111_reaches_the_predicted_root(rule):
    rng = np.random.default_rng({"arbp": 21, "asrbp": 22, "gd": 23}[rule])
    branches = {1: 0, -1: 0}
    several = 0
    for _ in range(40):
        system = LinearChain(rng.uniform(-1.5, 1.5), rng.uniform(0.5, 2.0), depth=2, rule=rule)
        y0 = rng.uniform(-2.5, 2.5, system.dim)
        pred = system.predicted_fixed_point(y0)
        np.testing.assert_allclose(_reach(system, y0), pred, atol=PRED_TOL)
        c1 = y0[2] if rule != "gd" else y0[1]
        branches[int(np.sign(y0[0] ** 2 - c1**2))] += 1
        several += len(real_roots(system.fixed_point_polynomial(y0))) >= 2
    assert min(branches.values()) >= 5  # both kinds of invariant hyperbola a1² − c1² = H
    assert several >= 10


def test_adaptive_fixed_point_polynomial_is_the_quartic_of_theorem_2():
    system = LinearChain(1.1, 0.8, depth=2, rule="arbp")
    a1, a2, c1 = 0.4, -1.2, 0.9
    k1 = c1 - a2
    j1 = a1**2 - a2**2 - 2 * k1 * a2
    poly = system.fixed_point_polynomial([a1, a2, c1])
    np.testing.assert_allclose(poly.coef, [-(1.1 / 0.8) ** 2, 0.0, j1, 2 * k1, 1.0])
    x = system.predicted_fixed_point([a1, a2, c1])
    assert poly(x[1]) == pytest.approx(0.0, abs=1e-10)


def test_arbp_with_c1_equal_a2_is_gradient_descent():
    # paper 2 Theorem 7: K = 0 makes the adaptive system gradient descent
    adaptive = LinearChain(0.9, 1.2, depth=2, rule="arbp")
    gd = LinearChain(0.9, 1.2, depth=2, rule="gd")
    t = np.linspace(0, 5, 30)
    ya = adaptive.integrate([0.3, -0.7, -0.7], 5, t_eval=t, stop_when_converged=False).y
    yg = gd.integrate([0.3, -0.7], 5, t_eval=t, stop_when_converged=False).y
    np.testing.assert_allclose(ya[:, :2], yg, atol=1e-8)
    np.testing.assert_allclose(ya[:, 2], ya[:, 1], atol=1e-8)


# ---------------------------------------------------------------------------- width
@pytest.mark.parametrize("rule", ["srbp", "arbp", "gd"])
def test_expansive_reaches_the_predicted_root(rule):
    rng = np.random.default_rng(31)
    for _ in range(15):
        n = int(rng.integers(1, 5))
        system = ExpansiveNet(rng.uniform(-1.5, 1.5), rng.uniform(0.5, 2), _channel(rng, n) if rule == "srbp" else None, width=n, rule=rule)
        y0 = rng.uniform(-1.5, 1.5, system.dim)
        np.testing.assert_allclose(_reach(system, y0), system.predicted_fixed_point(y0), atol=PRED_TOL)


def test_expansive_cubic_leading_coefficient_eq63():
    c = np.array([0.5, -1.2, 0.8])
    system = ExpansiveNet(1.0, 1.7, c)
    # Q(a1) = c1(α − βP(a1)); leading term −(β/2)(Σc_i²)/c1² a1³ (eq. 63)
    rng = np.random.default_rng(0)
    y0 = rng.uniform(-1, 1, 6)
    xs = np.array([1e3, 2e3])
    qs = []
    for x in xs:
        a = c / c[0] * x + (y0[:3] - c / c[0] * y0[0])
        b = a**2 / (2 * c) + (y0[3:] - y0[:3] ** 2 / (2 * c))
        qs.append(system.rhs(0, np.concatenate([a, b]))[0] / x**3)
    assert qs[1] == pytest.approx(-1.7 / 2 * np.sum(c**2) / c[0] ** 2, rel=1e-2)


def test_compressive_autoencoder_theorem6():
    rng = np.random.default_rng(41)
    for _ in range(10):
        n = int(rng.integers(2, 5))
        c = _channel(rng, n)
        system = CompressiveNet(np.eye(n), np.eye(n), c)
        y0 = rng.uniform(-1, 1, 2 * n)
        reached = _reach(system, y0)
        pred = system.predicted_fixed_point(y0)
        np.testing.assert_allclose(reached, pred, atol=PRED_TOL)
        # A = λC with λ > 0, and P = BA = CᵀC/‖C‖² (Theorem 6)
        lam = reached[:n] @ c / (c @ c)
        assert lam > 0
        np.testing.assert_allclose(system.product(reached), np.outer(c, c) / (c @ c), atol=1e-6)


def test_general_srbp_product_converges_to_least_squares_theorem8():
    rng = np.random.default_rng(51)
    data = linear_teacher(500, rng.normal(size=(2, 3)), noise=0.3, seed=3)
    sizes = (3, 4, 2)
    system = GeneralLinear(sizes, data.sigma_TI, data.sigma_II, [rng.normal(size=(4, 2))])
    y0 = system.pack([0.3 * rng.normal(size=(4, 3)), 0.3 * rng.normal(size=(2, 4))])
    final = system.integrate(y0, LONG).final
    np.testing.assert_allclose(system.product(final), system.optimal_product(), atol=1e-6)
    assert system.error(final) < 1e-12


@pytest.mark.parametrize("rule", ["rbp", "srbp", "arbp", "asrbp", "gd"])
def test_matrix_equations_reduce_to_the_scalar_systems(rule):
    rng = np.random.default_rng(61)
    fixed = rule in ("rbp", "srbp")
    chain = LinearChain(0.7, 1.2, _channel(rng, 3) if fixed else None, depth=4, rule=rule)
    expansive = ExpansiveNet(0.7, 1.2, _channel(rng, 3) if fixed else None, width=3, rule=rule)
    sti, sii = rng.normal(size=(3, 3)), np.diag(rng.uniform(0.5, 2, 3))
    compressive = CompressiveNet(sti, sii, _channel(rng, 3) if fixed else None, rule=rule)
    for system, stats in ((chain, ([[0.7]], [[1.2]])), (expansive, ([[0.7]], [[1.2]])), (compressive, (sti, sii))):
        y = rng.uniform(-1, 1, system.dim)
        As, Cs = system.to_matrices(y)
        general = GeneralLinear(system.sizes, *stats, Cs if fixed else None, rule=rule)
        yg = general.pack(As, Cs if general.adaptive else None)
        np.testing.assert_allclose(general.rhs(0, yg), system.rhs(0, y), atol=1e-13)


def test_rule_table_says_how_each_rule_sends_the_error_back():
    # paper 1 eq. 4 (GD), eq. 7 (RBP); paper 2 eq. 11 (SRBP), §3.4 (ARBP), eq. 128 (ASRBP)
    rows = {name: (r.carrier, r.adaptive, r.fixed_channel) for name, r in RULE_TABLE.items()}
    assert rows == {
        "rbp": ("layered", False, True),
        "srbp": ("skipped", False, True),
        "arbp": ("layered", True, False),
        "asrbp": ("skipped", True, False),
        "gd": ("forward", False, False),
        "stdp": ("skipped", True, False),
        "stdp-t": ("skipped", True, False),
    }
    assert {n: r.stdp for n, r in RULE_TABLE.items() if r.stdp} == {"stdp": "output", "stdp-t": "target"}
    assert (NON_ADAPTIVE_RULES, ADAPTIVE_RULES, RULES) == (("rbp", "srbp"), ("arbp", "asrbp"), ("rbp", "srbp", "arbp", "asrbp", "gd"))
    assert [RULE_TABLE["rbp"].source(i, 4) for i in (1, 2, 3)] == [2, 3, 4]
    assert [RULE_TABLE["asrbp"].source(i, 4) for i in (1, 2, 3)] == [4, 4, 4]
    rng = np.random.default_rng(7)
    As = [rng.normal(size=(4, 3)), rng.normal(size=(5, 4)), rng.normal(size=(2, 5))]
    top = rng.normal(size=(2, 6))
    layered, skipped = [rng.normal(size=(4, 5)), rng.normal(size=(5, 2))], [rng.normal(size=(4, 2)), rng.normal(size=(5, 2))]
    r = RULE_TABLE["gd"].signals(As, [], top)
    np.testing.assert_allclose(r[1], As[1].T @ As[2].T @ top)
    r = RULE_TABLE["rbp"].signals(As, layered, top)
    np.testing.assert_allclose(r[1], layered[0] @ layered[1] @ top)
    r = RULE_TABLE["srbp"].signals(As, skipped, top)
    np.testing.assert_allclose(r[1], skipped[0] @ top)
    assert r[3] is top
    with pytest.raises(ValueError, match="rule must be one of"):
        LinearNetwork(As, [], "bp")


@pytest.mark.parametrize("rule", ["rbp", "srbp", "arbp", "asrbp", "gd"])
def test_matrices_of_every_linear_system_round_trip(rule):
    rng = np.random.default_rng(62)
    fixed = rule in ("rbp", "srbp")
    systems = [
        LinearChain(0.7, 1.2, _channel(rng, 2) if fixed else None, depth=3, rule=rule),
        ExpansiveNet(0.7, 1.2, _channel(rng, 3) if fixed else None, width=3, rule=rule),
        CompressiveNet(np.eye(2), np.eye(2), _channel(rng, 2) if fixed else None, rule=rule),
        GeneralLinear((2, 3, 4, 2), np.eye(2), np.eye(2), [rng.normal(size=s) for s in channel_shapes((2, 3, 4, 2), rule)] if fixed else None, rule=rule),
    ]
    for system in systems:
        y = rng.uniform(-1, 1, system.dim)
        As, Cs = system.to_matrices(y)
        assert [a.shape for a in As] == system.a_shapes
        assert [c.shape for c in Cs] == system.c_shapes == channel_shapes(system.sizes, rule)
        assert np.array_equal(system.from_matrices(As, Cs), y)
        As[0] += 1.0  # copies: the state is not touched
        assert np.array_equal(system.from_matrices(*system.to_matrices(y)), y)


def test_fixed_channel_is_checked_alike_everywhere():
    for make in (lambda c, r: LinearChain(1.0, 1.0, c, rule=r), lambda c, r: ExpansiveNet(1.0, 1.0, c, rule=r), lambda c, r: CompressiveNet(np.eye(2), np.eye(2), c, rule=r)):
        with pytest.raises(ValueError, match="c must be None for rule 'arbp' .the channel weights are state variables"):
            make([1.0, 2.0], "arbp")
        with pytest.raises(ValueError, match="not used by gradient descent"):
            make([1.0, 2.0], "gd")
        with pytest.raises(ValueError, match="c must be finite"):
            make([1.0, float("nan")], "srbp")


# ---------------------------------------------------------------------------- conserved quantities
def _drift(traj):
    out = 0.0
    for series in traj.conserved().values():
        s = series.reshape(len(series), -1)
        out = max(out, float(np.max(np.abs(s - s[0]) / np.maximum(1.0, np.abs(s[0])))))
    return out


def _moves(traj):
    """How far the state travels from its start (so that a check along it is not vacuous)."""
    return float(np.max(np.abs(traj.y - traj.y[0])))


@pytest.mark.parametrize("rule", ["srbp", "rbp", "arbp", "asrbp", "gd"])
def test_chain_conserved_quantities(rule):
    rng = np.random.default_rng(71)
    for depth in (2, 3, 4):
        system = LinearChain(1.0, 1.0, _channel(rng, depth - 1) if rule in ("rbp", "srbp") else None, depth=depth, rule=rule)
        traj = system.integrate(rng.uniform(-1.2, 1.2, system.dim), 20, stop_when_converged=False)
        assert len(traj.conserved()) >= depth - 1
        assert _moves(traj) > 0.05
        assert _drift(traj) < 1e-7


def test_parabola_eq30_holds_along_a111_trajectory():
    c1, y0 = 0.8, np.array([-1.5, -0.9])
    traj = LinearChain(1.0, 1.0, [c1]).integrate(y0, 30)
    parabola = traj["a1"] ** 2 / (2 * c1) + y0[1] - y0[0] ** 2 / (2 * c1)
    np.testing.assert_allclose(traj["a2"], parabola, atol=1e-8)


@pytest.mark.parametrize("rule", ["srbp", "arbp", "gd"])
def test_width_conserved_quantities(rule):
    rng = np.random.default_rng(72)
    fixed = rule == "srbp"
    sti, sii = rng.normal(size=(3, 3)), np.diag(rng.uniform(0.5, 2, 3))
    for system in (ExpansiveNet(2.0, 1.1, _channel(rng, 3) if fixed else None, width=3, rule=rule), CompressiveNet(sti, sii, _channel(rng, 3) if fixed else None, rule=rule)):
        traj = system.integrate(rng.uniform(-1, 1, system.dim), 20, stop_when_converged=False)
        assert _moves(traj) > 0.05
        assert _drift(traj) < 1e-7


@pytest.mark.parametrize("rule", ["rbp", "srbp", "arbp", "asrbp", "gd"])
def test_general_conserved_quantities_theorem7(rule):
    rng = np.random.default_rng(73)
    sizes = (3, 4, 3, 2)
    data = linear_teacher(300, rng.normal(size=(2, 3)), seed=1)
    shapes = channel_shapes(sizes, rule)
    Cs = [0.6 * rng.normal(size=s) for s in shapes]
    As = [0.6 * rng.normal(size=(sizes[i], sizes[i - 1])) for i in range(1, 4)]
    system = GeneralLinear(sizes, data.sigma_TI, data.sigma_II, Cs if rule in ("rbp", "srbp") else None, rule=rule)
    traj = system.integrate(system.pack(As, Cs if system.adaptive else None), 10, stop_when_converged=False)
    names = list(traj.conserved())
    if rule == "arbp":
        assert names == ["C1 - A2^T", "C2 - A3^T"]  # paper 2 Theorem 7
    assert _moves(traj) > 0.05
    assert _drift(traj) < 1e-7


def test_power_conserved_quantities():
    data = linear_teacher(1000, 1.3, positive_inputs=True, seed=2)
    for derivative, c1 in ((True, 0.6), ("gradient", None)):
        system = PowerChain.from_data(data.inputs, data.targets, 1.5, c1, derivative=derivative)
        traj = system.integrate([0.4, 0.2], 20, stop_when_converged=False)
        assert _moves(traj) > 0.05
        assert _drift(traj) < 1e-7


# ---------------------------------------------------------------------------- stability (eq. 32-33)
def test_points_inside_the_parabola_are_unstable_the_others_attract():
    c1, alpha, beta = 1.0, 1.0, 1.0
    system = LinearChain(alpha, beta, [c1])
    a1_cross = -((c1 * alpha / beta) ** (1 / 3))  # parabola ∩ hyperbola (proof of Theorem 2)
    kinds = {"unstable": 0, "attractor": 0}
    for a1 in np.concatenate([np.linspace(-2.5, -0.2, 12), np.linspace(0.3, 2.5, 5)]):
        if abs(a1 - a1_cross) < 0.05:
            continue
        point = np.array([a1, alpha / (beta * a1)])
        inside = c1 * point[1] + a1**2 < 0  # a2 < −a1²/c1
        st = system.stability(point)
        assert st.kind == ("unstable" if inside else "attractor")
        kinds[st.kind] += 1
        # the one non-zero eigenvalue is −β(c1a2 + a1²) (eq. 33); the other is 0
        eig = np.sort_complex(st.eigenvalues)
        lam = -beta * (c1 * point[1] + a1**2)
        assert np.min(np.abs(st.eigenvalues - lam)) < 1e-6
        assert np.min(np.abs(st.eigenvalues)) < 1e-6, eig
        assert system.transverse_eigenvalue(point) == pytest.approx(lam)
        # and the dynamics agrees: a small push off the hyperbola comes back or runs away
        pushed = point + 1e-3 * np.array([1.0, 1.0])
        final = system.integrate(pushed, 400).final
        assert (np.linalg.norm(final - point) > 0.05) == inside
    assert min(kinds.values()) >= 3


def test_stability_of_deeper_and_adaptive_critical_points():
    rng = np.random.default_rng(81)
    for rule in ("srbp", "arbp"):
        system = LinearChain(1.0, 1.0, _channel(rng, 2) if rule == "srbp" else None, depth=3, rule=rule)
        for _ in range(10):
            y = rng.uniform(-1.5, 1.5, system.dim)
            y[2] = 1.0 / (y[0] * y[1])  # on the critical surface P = α/β
            st = system.stability(y)
            lam = system.transverse_eigenvalue(y)
            assert np.min(np.abs(st.eigenvalues - lam)) < 1e-5
            assert st.kind == ("attractor" if lam < 0 else "unstable")
    assert LinearChain(1.0, 1.0, [1.0]).stability([1.0, 2.0]).kind == "not a critical point"


# ---------------------------------------------------------------------------- power non-linearity
def test_power_without_derivative_has_no_fixed_point_eq113():
    data = linear_teacher(2000, 1.5, noise=0.1, positive_inputs=True, seed=4)
    system = PowerChain.from_data(data.inputs, data.targets, 2.0, 0.8, derivative=False)
    assert not system.has_fixed_points()
    assert system.alpha / system.beta != pytest.approx(system.gamma / system.delta, rel=1e-3)
    with pytest.raises(NoFixedPointError):
        system.predicted_fixed_point([0.5, 0.5])
    traj = system.integrate([0.5, 0.5], 200)
    assert traj.status != "converged"
    # a1 keeps moving at a speed bounded away from zero: c1(γ − δα/β) (P → α/β)
    half = len(traj.t) // 2
    speeds = np.array([system.speed(y) for y in traj.y[half:]])
    assert speeds.min() > 0.5 * abs(0.8 * (system.gamma - system.delta * system.alpha / system.beta))
    assert traj["a1"][-1] - traj["a1"][half] > 1.0
    # fixed points exist only in the special case α/β = γ/δ
    special = PowerChain(2.0, 1.0, 2.0, 0.8, gamma=0.5, delta=1.0, derivative=False)
    assert special.has_fixed_points()


@pytest.mark.parametrize("mu", [1 / 3, 0.5, 1.5, 2.0, 3.0])
def test_power_with_derivative_converges_theorem12(mu):
    rng = np.random.default_rng(int(mu * 100))
    data = linear_teacher(2000, 1.5, noise=0.1, positive_inputs=True, seed=5)
    for _ in range(6):
        system = PowerChain.from_data(data.inputs, data.targets, mu, rng.uniform(0.2, 2.0))
        y0 = rng.uniform(0.1, 2.0, 2)
        pred = system.predicted_fixed_point(y0)
        # the positive root of eq. 117
        k = y0[1] - y0[0] ** 2 / (2 * system.c1 * mu)
        t = pred[0]
        assert system.alpha - system.beta * (t**2 / (2 * system.c1 * mu) + k) * t**mu == pytest.approx(0.0, abs=1e-9)
        np.testing.assert_allclose(_reach(system, y0), pred, atol=PRED_TOL)


def test_power_gradient_descent_converges():
    rng = np.random.default_rng(91)
    data = linear_teacher(2000, 1.5, noise=0.1, positive_inputs=True, seed=6)
    for mu in (0.5, 2.0):
        system = PowerChain.from_data(data.inputs, data.targets, mu, derivative="gradient")
        for _ in range(5):
            y0 = np.array([rng.uniform(0.2, 2.0), rng.uniform(0.1, 2.0)])
            np.testing.assert_allclose(_reach(system, y0), system.predicted_fixed_point(y0), atol=PRED_TOL)


# ---------------------------------------------------------------------------- discrete learning
def _agreement(system, y0, data, *, eta=1e-3, t_max=6.0, batch_size=32):
    disc = minibatch_learning(system, y0, data, eta=eta, t_max=t_max, batch_size=batch_size, seed=3, n_points=40)
    ode = system.integrate(y0, t_max, t_eval=disc.t, stop_when_converged=False)
    assert disc.y.shape == ode.y.shape
    return float(np.max(np.abs(disc.y - ode.y))), disc


DISCRETE_TOL = 0.05


@pytest.mark.parametrize("rule", ["srbp", "rbp", "arbp", "asrbp", "gd"])
def test_discrete_chain_learning_follows_the_ode(rule):
    rng = np.random.default_rng(101)
    data = scalar_teacher(1.0, 1.2, 4000, noise=0.2, seed=1)
    system = LinearChain(data.alpha, data.beta, [0.8, -0.6] if rule in ("srbp", "rbp") else None, depth=3, rule=rule)
    y0 = rng.uniform(-0.9, 0.9, system.dim)
    gap, disc = _agreement(system, y0, data)
    assert gap < DISCRETE_TOL
    assert _moves(disc) > 0.3  # the comparison is not trivial


def test_discrete_learning_of_other_systems_follows_the_ode():
    rng = np.random.default_rng(102)
    scalar = scalar_teacher(0.8, 1.0, 4000, noise=0.2, seed=2)
    auto = whitened_autoencoder(4000, 3, seed=2)
    gen_data = linear_teacher(4000, rng.normal(size=(2, 3)), noise=0.2, seed=2)
    sizes = (3, 4, 2)
    cases = [
        ExpansiveNet(scalar.alpha, scalar.beta, [0.5, -0.3, 0.9]),
        ExpansiveNet(scalar.alpha, scalar.beta, width=3, rule="arbp"),
        CompressiveNet(auto.sigma_TI, auto.sigma_II, [0.5, -0.3, 0.9]),
        CompressiveNet(auto.sigma_TI, auto.sigma_II, rule="asrbp"),
        GeneralLinear(sizes, gen_data.sigma_TI, gen_data.sigma_II, [0.7 * rng.normal(size=(4, 2))], rule="rbp"),
        GeneralLinear(sizes, gen_data.sigma_TI, gen_data.sigma_II, rule="arbp"),
    ]
    datasets = [scalar, scalar, auto, auto, gen_data, gen_data]
    for system, data in zip(cases, datasets):
        y0 = 0.7 * rng.uniform(-1, 1, system.dim)
        gap, disc = _agreement(system, y0, data)
        assert gap < DISCRETE_TOL, type(system).__name__
        assert _moves(disc) > 0.1


@pytest.mark.parametrize("derivative", [True, False, "gradient"])
def test_discrete_power_learning_follows_the_ode(derivative):
    data = linear_teacher(4000, 1.5, noise=0.1, positive_inputs=True, seed=7)
    system = PowerChain.from_data(data.inputs, data.targets, 2.0, None if derivative == "gradient" else 0.7, derivative=derivative)
    gap, disc = _agreement(system, [0.6, 0.4], data)
    assert gap < DISCRETE_TOL
    assert _moves(disc) > 0.1


def test_discrete_comparison_is_sensitive_to_the_rule():
    # the same discrete run is far from the ODE of another rule: the agreement above is informative
    data = scalar_teacher(1.0, 1.2, 4000, noise=0.2, seed=1)
    y0 = np.array([0.5, -0.4, 0.7])
    srbp = LinearChain(data.alpha, data.beta, [0.8, -0.6], rule="srbp")
    rbp = LinearChain(data.alpha, data.beta, [0.8, -0.6], rule="rbp")
    disc = minibatch_learning(srbp, y0, data, eta=1e-3, t_max=6.0, seed=3, n_points=40)
    wrong = rbp.integrate(y0, 6.0, t_eval=disc.t, stop_when_converged=False)
    assert np.max(np.abs(disc.y - wrong.y)) > 5 * DISCRETE_TOL


def test_full_batch_learning_is_euler_and_converges_with_eta():
    data = scalar_teacher(1.0, 1.0, 1000, seed=3)
    system = LinearChain(data.alpha, data.beta, [0.9])
    y0 = [0.2, -0.5]
    gaps = [_agreement(system, y0, data, eta=eta, t_max=3.0, batch_size=None)[0] for eta in (4e-3, 1e-3)]
    assert gaps[1] < gaps[0] / 2.5  # first order in η
    assert gaps[1] < 2e-3


# ---------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: LinearChain(1.0, 0.0, [1.0]), "beta"),
        (lambda: LinearChain(1.0, 1.0, [1.0], rule="bp"), "rule must be one of"),
        (lambda: LinearChain(1.0, 1.0, depth=3), "needs c with depth-1 = 2"),
        (lambda: LinearChain(1.0, 1.0, [1.0], rule="arbp"), "c must be None"),
        (lambda: LinearChain(1.0, 1.0, depth=1, rule="gd"), "depth must be an integer >= 2"),
        (lambda: LinearChain(float("nan"), 1.0, [1.0]), "alpha must be a finite"),
        (lambda: ExpansiveNet(1.0, 1.0, width=0, rule="gd"), "width"),
        (lambda: CompressiveNet(np.eye(2), np.eye(3), [1, 1, 1]), "sigma_TI"),
        (lambda: GeneralLinear((2, 2), np.eye(2), np.eye(2), rule="gd"), "sizes"),
        (lambda: GeneralLinear((2, 3, 2), np.eye(2), np.eye(2), [np.ones((2, 2))]), "C1 must have shape"),
        (lambda: PowerChain(2.0, 1.0, 1.0, 1.0, derivative="maybe"), "derivative must be one of"),
        (lambda: PowerChain(2.0, 1.0, 1.0, 1.0, derivative=False), "gamma"),
        (lambda: PowerChain(-1.0, 1.0, 1.0, 1.0), "mu must be > 0"),
        (lambda: LinearChain(1.0, 1.0, [1.0]).integrate([1.0], 10), "y0 must have 2 components"),
        (lambda: LinearChain(1.0, 1.0, [1.0]).integrate([1.0, 1.0], -1), "t_max"),
        (lambda: LinearChain(1.0, 1.0, [0.0, 1.0]).predicted_fixed_point([1.0, 1.0, 1.0]), "non-zero channel"),
        (lambda: PowerChain(2.0, 1.0, 1.0, 1.0).predicted_fixed_point([-1.0, 1.0]), "a1"),
    ],
)
def test_bad_input_raises_value_error_naming_it(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_unavailable_predictions_say_so():
    with pytest.raises(NotImplementedError, match="depth 2"):
        LinearChain(1.0, 1.0, depth=3, rule="gd").predicted_fixed_point(np.ones(3))
    with pytest.raises(NotImplementedError, match="sign pattern"):  # J_i = 0: no reduction
        LinearChain(1.0, 1.0, depth=3, rule="arbp").predicted_fixed_point(np.ones(5))
    with pytest.raises(NotImplementedError, match="Theorem 6"):
        CompressiveNet(np.eye(2), 2 * np.eye(2), [1.0, 0.5]).predicted_fixed_point(np.ones(4))


def test_asrbp_tracks_only_the_top_weight():
    # Paper 2 Theorem 3' states c_i = a_{i+1} + K_i for ASRBP; the equations (eq. 55) give it
    # only for i = L-1 (dc2/dt = da3/dt); for lower layers c_i² − a_i² is what is conserved (eq. 57).
    system = LinearChain(1.0, 1.0, depth=3, rule="asrbp")
    traj = system.integrate([0.5, -0.7, 0.9, 0.3, -0.4], 10, stop_when_converged=False)
    assert np.ptp(traj["c2"] - traj["a3"]) < 1e-8
    assert np.ptp(traj["c1"] ** 2 - traj["a1"] ** 2) < 1e-8
    assert np.ptp(traj["c1"] - traj["a2"]) > 0.5
