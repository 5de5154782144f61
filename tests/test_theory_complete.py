"""Checks of the parts of the papers' analyses added for issue 14: the STDP rule (paper 2
§3.6, §5.2), adaptive chains of any depth (paper 2 §5.3-5.4), the adaptive power chain
(paper 2 §5.9), the general three-layer system (paper 1 Theorems 7-10), the A[1,N,1]
aggregates (paper 2 eq. 104-118), Theorem 1 and the trivial cases.

Every check integrates, simulates or solves independently, and compares with the
prediction or the claimed invariant; the tolerances are stated where they are used.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from numpy.polynomial import Polynomial
from scipy.integrate import solve_ivp

from lchannel.theory import CompressiveNet, ExpansiveNet, GeneralLinear, LinearChain, NoFixedPointError, linear_teacher, minibatch_learning
from lchannel.theory.onedim import always_converges, blowup_time, classify_root, real_roots, theorem1_limit
from lchannel.theory.power import AdaptivePowerChain
from lchannel.theory.samples import scalar_teacher
from lchannel.theory.stdp import STDPChain

LONG = 5000.0


def _reach(system, y0):
    traj = system.integrate(y0, LONG)
    assert traj.status == "converged", (y0, traj.status)
    return traj.final


def _integral(y, t):
    """The running integral of samples ``y`` at times ``t`` (Simpson's rule)."""
    from scipy.integrate import cumulative_simpson

    return cumulative_simpson(y, x=t, initial=0.0)


# ---------------------------------------------------------------------------- STDP (paper 2 §3.6, §5.2)
def test_stdp_right_hand_side_is_eq33_and_satisfies_the_proof_identities():
    rng = np.random.default_rng(1)
    for rule in ("stdp", "stdp-t"):
        s = STDPChain(0.9, 1.3, 1.0, rule=rule)
        for _ in range(20):
            a1, a2, c1 = rng.uniform(-2, 2, 3)
            e = 0.9 - 1.3 * a1 * a2
            f = s.rhs(0, np.array([a1, a2, c1]))
            dc1 = c1 * a1 * a2 * e if rule == "stdp" else c1 * (1.0 - 0.9 * a1 * a2)
            np.testing.assert_allclose(f, [c1 * e, (a1 + c1 * a1 * a2) * e, dc1], rtol=1e-13, atol=1e-13)
            np.testing.assert_allclose(f[1], a1 * (1 + c1 * a2) * e, atol=1e-12)  # eq. 46
            if rule == "stdp":
                np.testing.assert_allclose(f[1] - f[2], a1 * e, atol=1e-12)  # eq. 37
                np.testing.assert_allclose(0.9 * f[0] - 1.3 * f[2], c1 * e**2, atol=1e-12)  # eq. 44


def test_stdp_theorem2prime_random_starts_reach_the_hyperbola_as_the_proof_says():
    # Theorem 2': convergence to alpha - beta a1 a2 = 0; along the way c1 keeps its sign (eq. 36),
    # sign(c1)(alpha a1 - beta c1) never decreases (eq. 44), alpha - beta P keeps its sign, and
    # a2 - c1 moves by the integral of a1(alpha - beta P) (eq. 37).
    rng = np.random.default_rng(2)
    for _ in range(25):
        s = STDPChain(rng.uniform(-1.5, 1.5), rng.uniform(0.5, 2.0))
        y0 = rng.uniform(-2.5, 2.5, 3)
        traj = s.integrate(y0, LONG, n_points=4000)
        assert traj.status == "converged", y0
        assert abs(s.alpha - s.beta * s.product(traj.final)) < 1e-9
        q = {k: np.array([s.proof_quantities(y)[k] for y in traj.y]) for k in s.proof_quantities(y0)}
        assert np.all(np.sign(q["c1"]) == np.sign(y0[2]))
        e = q["alpha - beta*P"]
        away = np.abs(e) > 1e-8  # near the limit the interpolated error is round-off
        assert np.all(np.sign(e[away]) == np.sign(e[0]))
        mono = q["sign(c1)*(alpha*a1 - beta*c1)"]
        assert np.min(np.diff(mono)) > -1e-9 * max(1.0, np.max(np.abs(mono)))
        p = traj.product()[:, 0]
        # eq. 36, eq. 37 against Simpson's rule on 4000 points: 1e-4 (the first steps are steep)
        np.testing.assert_allclose(np.log(q["c1"] / y0[2]), _integral(p * e, traj.t), atol=1e-4)
        np.testing.assert_allclose(q["a2 - c1"] - q["a2 - c1"][0], _integral(traj["a1"] * e, traj.t), atol=1e-4)


@pytest.mark.parametrize("rule", ["stdp", "stdp-t"])
def test_stdp_three_phase_learner_follows_the_ode(rule):
    # the discrete learner runs the phases of eq. 15-18 on the network, never eq. 33
    data = scalar_teacher(1.0, 1.2, 4000, noise=0.3, seed=1)
    system = STDPChain.from_data(data, rule=rule)
    y0 = np.array([0.4, -0.3, 0.6])
    disc = minibatch_learning(system, y0, data, eta=1e-3, t_max=6.0, seed=3, n_points=40)
    ode = system.integrate(y0, 6.0, t_eval=disc.t, stop_when_converged=False)
    assert np.max(np.abs(disc.y - ode.y)) < 0.02  # measured 3e-3 (O-form), 4e-3 (T-form)
    assert np.max(np.abs(disc.y - disc.y[0])) > 0.5
    other = STDPChain.from_data(data, rule="stdp-t" if rule == "stdp" else "stdp")
    wrong = other.integrate(y0, 6.0, t_eval=disc.t, stop_when_converged=False)
    assert np.max(np.abs(disc.y - wrong.y)) > 0.5  # the two channel rules are told apart


def test_stdp_t_form_channel_keeps_growing_unless_target_proportional_to_input():
    y0 = np.array([0.5, 0.2, 0.7])
    noisy = scalar_teacher(1.0, 1.0, 2000, noise=0.5, seed=4)
    t_form = STDPChain.from_data(noisy, rule="stdp-t")
    rate = t_form.channel_growth_rate()  # gamma - alpha^2/beta = 0.25 here
    assert rate > 0.2
    traj = t_form.integrate(y0, 40.0, stop_when_converged=False)
    assert abs(t_form.alpha - t_form.beta * t_form.product(traj.final)) < 1e-6  # the forward weights settle
    late = traj.t > 30
    slope = np.polyfit(traj.t[late], np.log(np.abs(traj["c1"][late])), 1)[0]
    assert slope == pytest.approx(rate, rel=1e-3)  # |c1| ~ exp((gamma - alpha^2/beta) t)
    assert abs(traj["c1"][-1]) > 1e3
    # the O-form on the same data, and the T-form with T = (alpha/beta) I exactly, converge
    assert STDPChain.from_data(noisy).integrate(y0, LONG).status == "converged"
    exact = STDPChain.from_data(scalar_teacher(1.0, 1.0, 2000, noise=0.0, seed=4), rule="stdp-t")
    assert exact.channel_growth_rate() == pytest.approx(0.0, abs=1e-12)
    done = exact.integrate(y0, LONG)
    assert done.status == "converged" and abs(done["c1"][-1]) < 10


def test_stdp_bad_input_names_the_parameter():
    with pytest.raises(ValueError, match="gamma = E.T.2. is required"):
        STDPChain(1.0, 1.0, rule="stdp-t")
    with pytest.raises(ValueError, match="gamma = E.T.2. must be >="):
        STDPChain(1.0, 1.0, 0.5, rule="stdp-t")
    with pytest.raises(ValueError, match="rule must be one of 'stdp', 'stdp-t'"):
        STDPChain(1.0, 1.0, rule="arbp")
    with pytest.raises(NotImplementedError, match="no closed-form limit"):
        STDPChain(1.0, 1.0).predicted_fixed_point([1.0, 1.0, 1.0])


# ---------------------------------------------------------------------------- adaptive chains (paper 2 §5.3-5.4)
def _adaptive_chain(rng, depth, rule):
    return LinearChain(rng.choice([-1.0, 1.0]) * rng.uniform(0.4, 1.5), rng.uniform(0.5, 2.0), depth=depth, rule=rule)


@pytest.mark.parametrize("depth", [3, 4, 5])
def test_asrbp_chain_reaches_the_point_of_the_exponential_reduction(depth):
    # paper 2 eq. 57-70, 83-96: K = c1^2 - a1^2, mu, nu, J reduce the chain to one variable
    rng = np.random.default_rng(200 + depth)
    params = {"a1": 0, "c1": 0}
    for _ in range(10):
        system = _adaptive_chain(rng, depth, "asrbp")
        y0 = rng.uniform(-1.3, 1.3, system.dim)
        red = system.adaptive_reduction(y0)
        np.testing.assert_allclose(red.state(red.x0), y0, atol=1e-12)  # the curve passes through the start
        params[red.parameter] += 1
        pred = system.predicted_fixed_point(y0)
        np.testing.assert_allclose(_reach(system, y0), pred, atol=1e-6)  # measured <= 1e-9
        assert system.product(pred) == pytest.approx(system.alpha / system.beta, rel=1e-9)
    assert min(params.values()) >= 2  # both cases K > 0 (x = a1) and K < 0 (x = c1)


@pytest.mark.parametrize("depth", [3, 4])
def test_arbp_chain_reaches_the_point_of_its_reduction_where_it_exists(depth):
    # paper 2 eq. 76-78: c_i = a_{i+1} + K_i, a_i^2 - c_i^2 = J_i; reduction in a_m when J_1..J_{m-1} > 0 > J_m..
    rng = np.random.default_rng(210 + depth)
    done = 0
    while done < 8:
        system = _adaptive_chain(rng, depth, "arbp")
        y0 = rng.uniform(-1.3, 1.3, system.dim)
        try:
            red = system.adaptive_reduction(y0)
        except NotImplementedError:
            continue
        np.testing.assert_allclose(red.state(red.x0), y0, atol=1e-12)
        np.testing.assert_allclose(_reach(system, y0), system.predicted_fixed_point(y0), atol=1e-6)
        done += 1


def test_arbp_chain_closed_orbit_contradicts_theorem3():
    # J1 < 0 < J2 and sign(c1) != sign(a2): |c1| + |a2| = |K1| makes the invariant curve an oval.
    # If alpha - beta P has no zero on it, the trajectory is periodic: no convergence (against
    # paper 2 Theorem 3, "starting from any initial conditions the system converges").
    from scipy.integrate import solve_ivp

    system = LinearChain(0.7, 0.9, depth=3, rule="arbp")
    y0 = np.array([-0.8, -0.45, -1.05, 1.15, -0.35])  # a1 a2 a3 c1 c2
    (j1, j2), (k1, k2) = y0[:2] ** 2 - y0[3:] ** 2, y0[3:] - y0[1:3]
    assert j1 < 0 < j2 and np.sign(y0[3]) != np.sign(y0[1])
    with pytest.raises(NotImplementedError, match="sign pattern"):
        system.predicted_fixed_point(y0)
    # Theorem 3 also says every fixed point has alpha = beta P: a1 = c2 = 0 stops every equation (eq. 49) with P = 0
    spurious = np.array([0.0, 0.3, 0.8, 0.5, 0.0])
    assert np.all(system.rhs(0, spurious) == 0) and system.error(spurious) > 0.2
    # the oval, independently of any integration: u = |c1| from sqrt(-J1) to |K1| - sqrt(J2)
    u = np.linspace(math.sqrt(-j1), abs(k1) - math.sqrt(j2), 20001)
    a2 = np.sign(y0[1]) * (abs(k1) - u)
    oval_p = [sa * np.sqrt(np.maximum(u**2 + j1, 0)) * a2 * (sc * np.sqrt(np.maximum(a2**2 - j2, 0)) - k2) for sa in (1, -1) for sc in (1, -1)]
    err = 0.7 - 0.9 * np.concatenate(oval_p)
    assert err.min() > 0.3  # alpha - beta P never vanishes on the oval: no critical point
    # the integration returns to the start (three integrators, period 16.408)
    def back(t, y):
        return y[0] - y0[0]

    back.direction = float(np.sign(system.rhs(0, y0)[0]))
    sol = solve_ivp(system.rhs, (0, 40), y0, method="DOP853", rtol=1e-12, atol=1e-13, events=back, dense_output=True)
    periods = sol.t_events[0][sol.t_events[0] > 1.0]
    assert len(periods) == 2 and periods[0] == pytest.approx(16.408, abs=1e-3)
    assert np.max(np.abs(sol.sol(periods[0]) - y0)) < 1e-9  # measured 6e-14
    t = np.linspace(0, periods[0], 4000)
    along = 0.7 - 0.9 * np.prod(sol.sol(t)[:3], axis=0)
    # the trajectory sweeps the whole oval: the same range of alpha - beta P (grid 1e-4)
    assert along.min() == pytest.approx(err.min(), abs=1e-3) and along.max() == pytest.approx(err.max(), abs=1e-3)


def test_arbp_chains_without_reduction_converge_or_cycle():
    # random starts with no one-dimensional reduction: each one either converges to
    # alpha - beta P = 0 or comes back to its start (a closed orbit, as above)
    from scipy.integrate import solve_ivp

    rng = np.random.default_rng(220)
    outcomes = {"converged": 0, "periodic": 0}
    tried = 0
    while tried < 6:
        system = _adaptive_chain(rng, 3, "arbp")
        y0 = rng.uniform(-1.3, 1.3, system.dim)
        try:
            system.adaptive_reduction(y0)
            continue
        except NotImplementedError:
            tried += 1
        traj = system.integrate(y0, 300)
        if traj.status == "converged":
            assert abs(system.alpha - system.beta * system.product(traj.final)) < 1e-9
            outcomes["converged"] += 1
            continue

        def back(t, y):
            return y[0] - y0[0]

        back.direction = float(np.sign(system.rhs(0, y0)[0]))
        sol = solve_ivp(system.rhs, (0, 300), y0, method="DOP853", rtol=1e-11, atol=1e-12, events=back)
        assert min(np.max(np.abs(y - y0)) for y in sol.y_events[0][sol.t_events[0] > 1e-3]) < 1e-7, y0
        outcomes["periodic"] += 1
    assert min(outcomes.values()) >= 1


def test_eq84_exceptional_start_diverges_as_the_scalar_equation_says():
    # paper 2 eq. 84: c1 = a1 = f, a2 = e^{-f}, c2 = a3 = -e^{-f} solves ASRBP A[1,1,1,1] (alpha = beta = 1)
    # when f' = f(1 + f e^{-2f}); there K1 = c1^2 - a1^2 = 0 and mu1 = a2 + c2 = 0, and f(0) > 0 runs off.
    from scipy.integrate import solve_ivp

    system = LinearChain(1.0, 1.0, depth=3, rule="asrbp")
    f0 = 0.5
    y0 = np.array([f0, math.exp(-f0), -math.exp(-f0), f0, -math.exp(-f0)])
    red = system.adaptive_reduction(y0)
    assert red.exceptional and red.parameter == "a1"
    xs = np.array([0.3, 1.0, 4.0, 20.0])
    np.testing.assert_allclose(red.q(xs), xs * (1 + xs * np.exp(-2 * xs)), rtol=1e-12)  # the reduction is eq. 84
    with pytest.raises(NoFixedPointError, match="eq. 84"):
        system.predicted_fixed_point(y0)
    # the integration follows f while round-off in mu1 (amplified by e^{c1}) stays small ...
    t = np.linspace(0, 2.5, 50)
    traj = system.integrate(y0, 2.5, t_eval=t, stop_when_converged=False)
    f = solve_ivp(lambda t, f: f * (1 + f * np.exp(-2 * f)), (0, 2.5), [f0], t_eval=t, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(traj["a1"], f.y[0], rtol=1e-8)  # measured 1e-10
    np.testing.assert_allclose(traj["a2"], np.exp(-traj["a1"]), rtol=1e-8)
    assert f.y[0, -1] > 5
    # ... but the divergent solution is unstable: with mu1 = 1e-6 instead of 0 (K1 = 0 still) the
    # reduction has a root, and the integration reaches it
    moved = y0 + np.array([0.0, 1e-6, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(_reach(system, moved), system.predicted_fixed_point(moved), atol=1e-6)


def _local_exponent(q, x):
    return math.log(abs(q(2 * x) / q(x))) / math.log(2.0)


@pytest.mark.parametrize("depth", [3, 5])
def test_arbp_q_grows_like_degree_2L_minus_1_and_is_not_a_polynomial(depth):
    # Theorem 3 says degree 7 for L = 3 and Theorem 4 says 2^{L-1} - 1; Q(a_L) ~ -beta a_L^{2L-1}
    rng = np.random.default_rng(230 + depth)
    system = LinearChain(0.8, 1.3, depth=depth, rule="arbp")
    y0 = np.concatenate([rng.uniform(0.8, 1.2, depth), rng.uniform(-0.4, 0.4, depth - 1)])  # every J_i > 0
    red = system.adaptive_reduction(y0)
    assert red.parameter == f"a{depth}"
    q = lambda x: float(red.q(x))  # noqa: E731
    assert _local_exponent(q, 1e6) == pytest.approx(2 * depth - 1, abs=1e-3)
    assert q(1e6) / 1e6 ** (2 * depth - 1) == pytest.approx(-1.3, rel=1e-3)
    claimed = 7 if depth == 3 else 2 ** (depth - 1) - 1
    assert abs(_local_exponent(q, 1e6) - claimed) > 1.5
    # not a polynomial: the degree-(2L-1) interpolant through 2L Chebyshev points misses Q in between
    # (the control, the RBP chain's Q of degree 2^L - 1, is reproduced to round-off)
    def miss(f, degree):
        nodes = 2 * np.cos(np.pi * (np.arange(degree + 1) + 0.5) / (degree + 1))
        fit = np.polynomial.Chebyshev.fit(nodes, [f(x) for x in nodes], degree)
        xs = np.linspace(-1.9, 1.9, 97)
        return max(abs(fit(x) - f(x)) for x in xs) / max(abs(f(x)) for x in xs)

    assert miss(q, 2 * depth - 1) > 1e-4
    rbp = LinearChain(0.8, 1.3, rng.uniform(0.5, 1.0, depth - 1), rule="rbp")
    _, q_rbp = rbp.reduced_polynomials(rng.uniform(0.5, 1.0, depth))
    assert miss(q_rbp, 2**depth - 1) < 1e-9


def test_asrbp_q_outgrows_every_polynomial():
    # Theorem 3'/4' call Q a polynomial of degree 7 / 2^{L-1} - 1: its local degree keeps growing
    system = LinearChain(0.8, 1.3, depth=3, rule="asrbp")
    red = system.adaptive_reduction([0.3, 0.9, 1.1, 1.0, 0.8])  # K = c1^2 - a1^2 > 0: x = a1
    q = lambda x: float(red.q(x))  # noqa: E731
    exponents = [_local_exponent(q, x) for x in (2.0, 4.0, 8.0)]
    assert exponents[0] < exponents[1] < exponents[2] and exponents[2] > 20


# ---------------------------------------------------------------------------- adaptive non-linear case (paper 2 §5.9)
@pytest.mark.parametrize("mu", [0.5, 1.5, 2.0, 3.0])
def test_adaptive_power_chain_reaches_the_point_theorem1_picks(mu):
    # eq. 132-137: K1 = c1 - a2 and H = a1^2 - mu c1^2 reduce the system to one variable.
    # H > 0: always a global minimum.  H < 0 and c1*alpha < 0: possibly the trivial line a1 = 0.
    rng = np.random.default_rng(int(300 + 10 * mu))
    kinds = {"minimum": 0, "trivial": 0}
    for _ in range(12):
        system = AdaptivePowerChain(mu, rng.uniform(-1.5, 1.5), rng.uniform(0.5, 2.0))
        y0 = np.array([rng.uniform(0.2, 2.0), rng.uniform(-2.0, 2.0), rng.uniform(-2.0, 2.0)])
        h = y0[0] ** 2 - mu * y0[2] ** 2
        try:
            pred = system.predicted_fixed_point(y0)
        except NoFixedPointError:  # mu <= 1: a1 reaches 0 in finite time and leaves the domain
            assert mu <= 1 and h < 0 and y0[2] * system.alpha < 0
            assert system.integrate(y0, 100.0).status == "failed"
            continue
        traj = system.integrate(y0, LONG)
        if pred[0] > 0:
            kinds["minimum"] += 1
            assert traj.status == "converged"
            np.testing.assert_allclose(traj.final, pred, atol=1e-6)  # measured <= 6e-10
            assert system.error(pred) < 1e-20
            continue
        kinds["trivial"] += 1
        assert h < 0 and y0[2] * system.alpha < 0  # the only starts that can reach a1 = 0
        assert system.error(pred) > 1e-3  # not a minimum
        if mu < 2:  # a1^{mu-1} is not Lipschitz: a1 hits 0 in finite time and the solver stops
            assert traj.status == "failed"
        else:  # mu = 3: a1 ~ 1/t, so after t = 5000 a1 < 1e-3 and the rest within 1e-5
            assert traj["a1"][-1] < 1e-3
            np.testing.assert_allclose(traj.final[1:], pred[1:], atol=1e-5)
    assert kinds["minimum"] >= 6
    if mu in (1.5, 3.0):
        assert kinds["trivial"] >= 1  # seen with these seeds: the trivial line is really reached


def test_adaptive_power_chain_trivial_line_for_mu_2_and_conserved_quantities():
    system = AdaptivePowerChain(2.0, 1.0, 1.0)
    y0 = np.array([0.5, -0.5, -1.0])  # H = -1.75 < 0, c1 alpha < 0, and a2 = c1 + 0.5 < 0 on the whole branch
    pred = system.predicted_fixed_point(y0)
    assert pred[0] == 0.0 and pred[2] == pytest.approx(-math.sqrt(1.75 / 2))
    traj = system.integrate(y0, LONG)
    assert traj.status == "converged"  # mu = 2: a1 decays exponentially
    np.testing.assert_allclose(traj.final, pred, atol=1e-9)
    assert system.error(traj.final) == pytest.approx(0.5, rel=1e-6)  # (alpha - 0)^2/(2 beta): not a minimum
    moving = system.integrate([0.8, 0.3, 1.1], 20, stop_when_converged=False)
    series = moving.conserved()
    assert set(series) == {"c1 - a2", "a1^2 - mu*c1^2"}
    assert np.max(np.abs(moving.y - moving.y[0])) > 0.3
    for values in series.values():
        assert np.ptp(values) < 1e-8


def test_adaptive_power_discrete_learning_follows_the_ode():
    data = linear_teacher(4000, 1.5, noise=0.1, positive_inputs=True, seed=7)
    system = AdaptivePowerChain.from_data(data.inputs, data.targets, 2.0)
    y0 = [0.6, 0.4, 0.7]
    disc = minibatch_learning(system, y0, data, eta=1e-3, t_max=6.0, seed=3, n_points=40)
    ode = system.integrate(y0, 6.0, t_eval=disc.t, stop_when_converged=False)
    assert np.max(np.abs(disc.y - ode.y)) < 0.05  # measured ~4e-3
    assert np.max(np.abs(disc.y - disc.y[0])) > 0.1
    np.testing.assert_allclose(disc["c1"] - disc["a2"], 0.3, atol=1e-12)  # c1 - a2 holds step by step


# ---------------------------------------------------------------------------- paper 1 Theorems 7-10 (general three-layer system)
def _three_layer(rng, c1, sizes=(3, 3, 3)):
    data = linear_teacher(500, rng.normal(size=(sizes[2], sizes[0])), noise=0.3, seed=2)
    return GeneralLinear(sizes, data.sigma_TI, data.sigma_II, [c1])


def test_theorems7_8_bounds_and_lyapunov_matrix_along_the_flow():
    # Theorem 7: |A1| bounded, |A2| <= |A2(0)| + |Sigma_TI| sup|A1| t (eq. 101-104, with Sigma_TI where
    # eq. 101 prints Sigma_II).  Theorem 8: V never increases, dV/dt = -2 U Sigma_II U^T, C1 P -> C1 P*.
    rng = np.random.default_rng(400)
    for c1 in (rng.normal(size=(4, 2)), np.outer(rng.normal(size=4), rng.normal(size=2))):  # full rank, rank 1
        system = _three_layer(rng, c1, (3, 4, 2))
        for _ in range(3):
            y0 = system.pack([rng.normal(size=(4, 3)), rng.normal(size=(2, 4))])
            traj = system.integrate(y0, 300.0, n_points=600, stop_when_converged=False)
            mats = [system.unpack(y)[0] for y in traj.y]
            n1 = np.array([np.linalg.norm(a1) for a1, _ in mats])
            n2 = np.array([np.linalg.norm(a2) for _, a2 in mats])
            assert np.all(n2 <= n2[0] + np.linalg.norm(system.sigma_TI, 2) * n1.max() * traj.t + 1e-9)
            # dh/dt = Tr(Sigma_TI A1^T A2^T) - Tr(A2 A1 Sigma_II A1^T A2^T) (eq. 101 corrected), from the right-hand side
            for y, (a1, a2) in list(zip(traj.y, mats))[::60]:
                da2 = system.unpack(system.rhs(0, y))[0][1]
                dh = float(np.sum(a2 * da2))
                expect = np.trace(system.sigma_TI @ a1.T @ a2.T) - np.trace(a2 @ a1 @ system.sigma_II @ a1.T @ a2.T)
                assert dh == pytest.approx(expect, rel=1e-10, abs=1e-12)
                # dV/dt along the flow (directional derivative) equals -2 U Sigma_II U^T
                eps = 1e-6
                dv = (system.lyapunov_matrix(y + eps * system.rhs(0, y)) - system.lyapunov_matrix(y - eps * system.rhs(0, y))) / (2 * eps)
                np.testing.assert_allclose(dv, system.lyapunov_rate(y), atol=1e-6 * max(1.0, np.abs(dv).max()))
            vs = [system.lyapunov_matrix(y) for y in traj.y]
            steps = [np.linalg.eigvalsh(b - a).max() for a, b in zip(vs, vs[1:])]
            assert max(steps) < 1e-8  # V(t) is non-increasing in the Loewner order
            assert np.linalg.eigvalsh(vs[0] - vs[-1]).max() > 1e-2  # and it does decrease
            final = traj.final
            np.testing.assert_allclose(c1 @ system.product(final), c1 @ system.optimal_product(), atol=1e-6)
            assert np.linalg.norm(system.unpack(system.rhs(0, final))[0][0]) < 1e-6  # dA1/dt = C1 E -> 0: A1 settles
            assert n1[-1] <= n1.max() < 10 * max(1.0, n1[0])


def test_rank_deficient_channel_moves_a1_inside_its_range_and_still_learns():
    # C1 of rank 1 on A[3,3,3]: dA1/dt = C1 E keeps A1 - A1(0) in range(C1) (so A1 cannot fix the error
    # by itself); C1 P -> C1 P* (Theorem 8) and, when the limit A1 is invertible, A2 finishes the job: P -> P*
    rng = np.random.default_rng(1)
    c1 = np.outer(rng.normal(size=3), rng.normal(size=3))
    system = _three_layer(rng, c1)
    off_range = np.eye(3) - np.outer(c1[:, 0], c1[:, 0]) / (c1[:, 0] @ c1[:, 0])
    reached = 0
    for _ in range(3):
        y0 = system.pack([0.5 * rng.normal(size=(3, 3)), 0.5 * rng.normal(size=(3, 3))])
        traj = system.integrate(y0, 2000.0)
        a1_0 = system.unpack(y0)[0][0]
        for y in traj.y[::40]:
            assert np.abs(off_range @ (system.unpack(y)[0][0] - a1_0)).max() < 1e-9
        final = traj.final
        np.testing.assert_allclose(c1 @ system.product(final), c1 @ system.optimal_product(), atol=1e-8)
        if traj.status == "converged":
            reached += 1
            np.testing.assert_allclose(system.product(final), system.optimal_product(), atol=1e-8)
    assert reached >= 2  # the third start ends with a nearly singular A1: A2 converges, but slowly


def test_theorem10_a222_converges_to_an_isolated_point_of_eq112():
    # Sigma_II = Sigma_TI = C1 = I (eq. 111): B + B^T - A A^T = K is conserved, L(t) = A + A^T - B B^T never
    # decreases (it is -V), BA -> I, and the limit is an isolated solution of eq. 112 (Jacobian rank 8)
    eye = np.eye(2)
    system = GeneralLinear((2, 2, 2), eye, eye, [eye])
    rng = np.random.default_rng(4)

    def eq112(z, k, l):
        a, b = z[:4].reshape(2, 2), z[4:].reshape(2, 2)
        g1, g2 = b + b.T - a @ a.T - k, a + a.T - b @ b.T - l
        return np.concatenate([g1[np.triu_indices(2)], g2[np.triu_indices(2)], (a @ b - eye).ravel()])

    for _ in range(6):
        y0 = rng.normal(size=8)
        traj = system.integrate(y0, LONG, n_points=200)
        assert traj.status == "converged"
        a, b = system.unpack(traj.final)[0]
        np.testing.assert_allclose(b @ a, eye, atol=1e-10)
        a0, b0 = system.unpack(y0)[0]
        k = b0 + b0.T - a0 @ a0.T
        np.testing.assert_allclose(b + b.T - a @ a.T, k, atol=1e-8)
        l_series = [-system.lyapunov_matrix(y) for y in traj.y]
        assert max(np.linalg.eigvalsh(p - q).max() for p, q in zip(l_series, l_series[1:])) < 1e-8
        assert np.linalg.eigvalsh(l_series[-1] - l_series[0]).max() > 1e-2
        z = traj.final
        l = a + a.T - b @ b.T
        assert np.abs(eq112(z, k, l)).max() < 1e-9
        jac = np.array([(eq112(z + 1e-6 * e, k, l) - eq112(z - 1e-6 * e, k, l)) / 2e-6 for e in np.eye(8)]).T
        assert np.linalg.svd(jac, compute_uv=False).min() > 1e-3  # full column rank: an isolated solution


# ---------------------------------------------------------------------------- A[1,N,1] adaptive extras (paper 2 eq. 104-118)
def test_expansive_aggregates_solve_the_five_variable_system_eq104_108():
    rng = np.random.default_rng(500)
    system = ExpansiveNet(0.9, 1.3, width=4, rule="arbp")
    y0 = rng.uniform(-1, 1, system.dim)
    t = np.linspace(0, 6, 61)
    full = system.integrate(y0, 6, t_eval=t, stop_when_converged=False)
    agg0 = system.aggregates(y0)
    z0 = np.array([agg0[k] for k in ("P", "Sa", "Sb", "Ua", "Ub")])
    from scipy.integrate import solve_ivp

    five = solve_ivp(lambda t, z: system.aggregate_rhs(z, agg0["K"]), (0, 6), z0, t_eval=t, rtol=1e-11, atol=1e-12)
    got = np.array([[system.aggregates(y)[k] for k in ("P", "Sa", "Sb", "Ua", "Ub")] for y in full.y])
    np.testing.assert_allclose(got, five.y.T, atol=1e-8)  # measured ~1e-10
    assert np.ptp(got[:, 0]) > 0.3
    # eq. 105 as printed, 2(alpha - beta)(P + Ua), is not dSa/dt
    z = z0
    printed = 2 * (0.9 - 1.3) * (z[0] + z[3])
    assert abs(system.aggregate_rhs(z, agg0["K"])[1] - printed) > 0.05


def test_expansive_symmetric_start_eq109_111():
    # K = 0 (c = b): P^2 - (Sb + J/2)^2 is conserved, J = Sa - Sb (eq. 110 corrected: the paper's
    # "P dP/dt = Sb dSb/dt + PJ" drops the factor alpha - beta P).  With J = 0 too (a_i = +-b_i),
    # P solves eq. 111, dP/dt = 2(alpha - beta P) sqrt(P^2 + H), H = Sb^2 - P^2.
    from scipy.integrate import solve_ivp

    rng = np.random.default_rng(501)
    system = ExpansiveNet(0.8, 1.1, width=3, rule="arbp")
    a, b = rng.uniform(-1, 1, 3), rng.uniform(-1, 1, 3)
    y0 = np.concatenate([a, b, b])
    traj = system.integrate(y0, 8, stop_when_converged=False)
    aggs = [system.aggregates(y) for y in traj.y]
    j = aggs[0]["Sa"] - aggs[0]["Sb"]
    inv = np.array([g["P"] ** 2 - (g["Sb"] + j / 2) ** 2 for g in aggs])
    assert np.ptp(inv) < 1e-8 and np.ptp([g["P"] for g in aggs]) > 0.1
    f = system.rhs(0, y0)
    dp, dsb = float(f[:3] @ b + f[3:6] @ a), float(2 * f[3:6] @ b)
    p = aggs[0]["P"]
    assert p * dp == pytest.approx(aggs[0]["Sb"] * dsb + j / 2 * dsb, rel=1e-12)
    assert abs(p * dp - (aggs[0]["Sb"] * dsb + p * j)) > 1e-3  # the printed eq. 110
    signs = np.array([1.0, -1.0, 1.0])  # mixed: H > 0 (equal signs give H = 0, a(0) = +-b(0))
    y0 = np.concatenate([signs * b, b, b])  # J = 0
    t = np.linspace(0, 8, 81)
    traj = system.integrate(y0, 8, t_eval=t, stop_when_converged=False)
    g0 = system.aggregates(y0)
    h = g0["Sb"] ** 2 - g0["P"] ** 2
    assert h > 0
    one = solve_ivp(lambda t, p: 2 * (0.8 - 1.1 * p) * np.sqrt(p**2 + h), (0, 8), [g0["P"]], t_eval=t, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(traj.product()[:, 0], one.y[0], atol=1e-8)
    assert one.y[0, -1] == pytest.approx(0.8 / 1.1, abs=1e-6)


@pytest.mark.parametrize("rule", ["arbp", "gd"])
def test_expansive_r0_or_s0_zero_reaches_the_predicted_point_trivial_or_not(rule):
    # R0 = 0 (A = -C) or S0 = 0 (A = C): the paper says "NOT convergent" after eq. 118; the
    # trajectory converges, to the trivial point A = C = 0, B = -D, or to a minimum, as predicted
    rng = np.random.default_rng(502)
    seen = set()
    for case in ("R0", "S0"):
        for alpha in (1.0, -1.0):
            system = ExpansiveNet(alpha, 1.2, width=3, rule=rule)
            a, b = rng.uniform(-1, 1, 3), rng.uniform(-1, 1, 3)
            other = -a if case == "R0" else a.copy()
            y0 = np.concatenate([a, b, other]) if rule == "arbp" else np.concatenate([a, other])
            pred = system.predicted_fixed_point(y0)
            np.testing.assert_allclose(_reach(system, y0), pred, atol=1e-6)  # measured <= 7e-12
            trivial = bool(np.allclose(pred[:3], 0.0))
            seen.add(trivial)
            if trivial:
                assert system.error(pred) == pytest.approx(alpha**2 / (2 * 1.2))  # P = 0: not a minimum
                assert (case == "R0") == (alpha > 0)
            else:
                assert system.error(pred) < 1e-20
    assert seen == {True, False}


# ---------------------------------------------------------------------------- Theorem 1 and paper 1's small claims
def test_theorem1_sign_patterns_classify_roots_as_the_integration_finds():
    # paper 2 Theorem 1: +- attractor, -+ unstable, ++ attractor on the left / unstable on the right, -- the mirror
    base = Polynomial.fromroots([-2.0, 1.0, 1.0, 3.0, 3.0, 5.0]) * -1.0
    seen = set()
    for q in (base, -base):
        for r in (-2.0, 1.0, 3.0, 5.0):
            kind = classify_root(q, r)
            seen.add(kind)
            for side, label in ((-1, "left"), (1, "right")):
                def away(t, x):
                    return abs(x[0] - r) - 0.5

                away.terminal = True
                sol = solve_ivp(lambda t, x: q(x), (0, 200), [r + side * 1e-2], method="LSODA", rtol=1e-10, atol=1e-13, events=away)
                came_back = abs(sol.y[0, -1] - r) < 5e-3
                if kind in ("attractor", "unstable"):
                    assert came_back == (kind == "attractor"), (r, kind, side)
                else:
                    part = dict(zip(("left", "right"), kind.split(", ")))[label]
                    assert came_back == part.startswith("attractor"), (r, kind, side)
    assert len(seen) == 4


def test_theorem1_blowup_in_finite_time_and_the_iff():
    # paper 1 Theorem 1: with no root in the direction of the flow, x reaches infinity in finite time;
    # every start converges iff the degree is odd and the leading coefficient negative
    cases = [
        (Polynomial([0.0, 0.0, 1.0]), 1.0),  # x' = x^2 from 1: T = 1 (even degree)
        (Polynomial([-1.0, 0.0, 0.0, 1.0]), 2.0),  # x' = x^3 - 1 (positive leading coefficient)
        (Polynomial([1.0, 0.0, -1.0]), -2.0),  # x' = 1 - x^2 from -2 runs to -inf
    ]
    for poly, x0 in cases:
        assert not always_converges(poly)
        t_star = blowup_time(poly, x0, real_roots(poly))
        assert 0 < t_star < math.inf
        # integrate to |x| = 1e4, then add the remaining (analytic, tiny) time from there to infinity
        def escaped(t, x):
            return abs(x[0]) - 1e4

        escaped.terminal = True
        sol = solve_ivp(lambda t, x: poly(x), (0, 100), [x0], method="LSODA", rtol=1e-12, atol=1e-12, events=escaped)
        assert sol.status == 1  # it got there before t = 100
        t_end = sol.t_events[0][0] + blowup_time(poly, float(sol.y_events[0][0][0]), real_roots(poly))
        assert t_end == pytest.approx(t_star, rel=1e-6)  # measured ~1e-9
    assert blowup_time(Polynomial([0.0, 0.0, 1.0]), 1.0, [0.0]) == pytest.approx(1.0, rel=1e-9)
    # odd degree, negative leading coefficient: every start converges (Theorem 1's sufficiency)
    rng = np.random.default_rng(600)
    for _ in range(5):
        poly = Polynomial.fromroots(rng.uniform(-3, 3, 3)) * -rng.uniform(0.5, 2)
        assert always_converges(poly)
        for x0 in rng.uniform(-10, 10, 4):
            target = theorem1_limit(poly, real_roots(poly), x0)
            sol = solve_ivp(lambda t, x: poly(x), (0, 1e4), [x0], method="LSODA", rtol=1e-10, atol=1e-12)
            assert sol.y[0, -1] == pytest.approx(target, abs=1e-5)


def test_paper1_trivial_cases_and_symmetries_of_a111():
    # trivial case 1, beta = 0: I = 0, so the network never moves (the discrete learner, no ODE)
    from lchannel.theory import LinearNetwork

    net = LinearNetwork([np.array([[0.7]]), np.array([[-0.4]])], [np.array([[0.9]])], "srbp")
    for _ in range(50):
        net.step(np.zeros((16, 1)), np.random.default_rng(0).normal(size=(16, 1)), 0.1)
    assert net.As[0][0, 0] == 0.7 and net.As[1][0, 0] == -0.4
    with pytest.raises(ValueError, match="beta = E.I.2. must be > 0"):
        LinearChain(0.0, 0.0, [1.0])
    # trivial case 2, c1 = 0: a1 frozen, a2 = alpha/(beta a1) + (a2(0) - alpha/(beta a1)) e^{-beta a1^2 t}
    system = LinearChain(0.8, 1.3, [0.0])
    t = np.linspace(0, 5, 26)
    traj = system.integrate([0.6, -1.0], 5, t_eval=t, stop_when_converged=False)
    star = 0.8 / (1.3 * 0.6)
    np.testing.assert_allclose(traj["a1"], 0.6, atol=0)
    np.testing.assert_allclose(traj["a2"], star + (-1.0 - star) * np.exp(-1.3 * 0.36 * t), atol=1e-9)
    np.testing.assert_allclose(_reach(system, [0.6, -1.0]), system.predicted_fixed_point([0.6, -1.0]), atol=1e-8)
    np.testing.assert_allclose(system.predicted_fixed_point([0.0, -1.0]), [0.0, -1.0])  # a1(0) = 0: nothing moves
    # symmetries: alpha -> -alpha is (a1, a2) -> (-a1, a2); c1 -> -c1 is (a1, a2) -> (-a1, -a2)
    y0 = np.array([0.3, -1.7])
    base = LinearChain(0.9, 1.1, [0.7]).integrate(y0, 4, t_eval=t * 0.8, stop_when_converged=False).y
    flip_alpha = LinearChain(-0.9, 1.1, [0.7]).integrate(y0 * [-1, 1], 4, t_eval=t * 0.8, stop_when_converged=False).y
    flip_c = LinearChain(0.9, 1.1, [-0.7]).integrate(-y0, 4, t_eval=t * 0.8, stop_when_converged=False).y
    np.testing.assert_allclose(flip_alpha, base * [-1, 1], atol=1e-9)
    np.testing.assert_allclose(flip_c, -base, atol=1e-9)
    assert np.ptp(base[:, 0]) > 0.3


def test_dP_dt_changes_sign_twice_against_paper1_section_7_2():
    # paper 1 (end of §7.2): "dP/dt changes sign ... only once".  dP/dt = (a1^2 + c1 a2)(alpha - beta P) and
    # a1 is monotone, so each crossing of the parabola a2 = -a1^2/c1 flips it: here twice.
    system = LinearChain(5.0, 1.0, [1.0])
    traj = system.integrate([-3.0, 1.5], LONG, n_points=4000)
    assert traj.status == "converged"
    dp = np.array([system.dP_factor(y) * (5.0 - system.product(y)) for y in traj.y[:-1]])
    big = np.abs(dp) > 1e-6
    changes = int(np.sum(np.diff(np.sign(dp[big])) != 0))
    assert changes == 2
    # crossings at a1 = -+sqrt(-2 c1 K / 3) = -+sqrt(2) (K = a2(0) - a1(0)^2/(2 c1) = -3)
    g = np.array([system.dP_factor(y) for y in traj.y])
    crossings = traj["a1"][np.flatnonzero(np.diff(np.sign(g)) != 0)]
    np.testing.assert_allclose(crossings, [-math.sqrt(2), math.sqrt(2)], atol=5e-3)


def test_paper1_eq50_leading_coefficients_and_eq25_error():
    # eq. 50 as printed ends with (c3/2c2)^{2^{i-1}}; the leading coefficient of a_i(a1) is
    # prod_{j=2..i} (b_j / 2b_{j-1})^{2^{i-j}} (b_j the effective channel, b_L = 1), and Q's is negative
    rng = np.random.default_rng(700)
    for _ in range(5):
        c = rng.uniform(0.4, 1.5, 4) * rng.choice([-1.0, 1.0], 4)
        system = LinearChain(1.0, 1.2, c)
        y0 = rng.uniform(-1, 1, 5)
        polys, q = system.reduced_polynomials(y0)
        b = system.feedback(y0)
        for i in range(2, 6):
            lead = np.prod([(b[j - 1] / (2 * b[j - 2])) ** (2 ** (i - j)) for j in range(2, i + 1)])
            assert polys[i - 1].coef[-1] == pytest.approx(lead, rel=1e-10)
            if i >= 3:  # as printed: the factors j = i..4 with exponents 2^{i-j}, then (b3/2b2)^{2^{i-1}}
                printed = np.prod([(b[j - 1] / (2 * b[j - 2])) ** (2 ** (i - j)) for j in range(4, i + 1)]) * (b[2] / (2 * b[1])) ** (2 ** (i - 1))
                assert printed != pytest.approx(lead, rel=1e-6)
        assert q.coef[-1] < 0
    # eq. 25 prints (alpha - beta P)^3/(2 beta); the error is 1/2 E(T^2) + (alpha - beta P)^2/(2 beta) - alpha^2/(2 beta)
    data = scalar_teacher(0.7, 1.3, 3000, noise=0.4, seed=8)
    t2 = float(np.mean(data.targets**2))
    for p in (-1.0, 0.2, 1.5):
        direct = 0.5 * float(np.mean((data.targets - p * data.inputs) ** 2))
        assert direct == pytest.approx(0.5 * t2 + (0.7 - 1.3 * p) ** 2 / 2.6 - 0.49 / 2.6, rel=1e-10)
        assert direct != pytest.approx(0.5 * t2 + (0.7 - 1.3 * p) ** 3 / 2.6 - 0.49 / 2.6, rel=1e-3)


def test_theorem6_with_diagonal_sigma_ii():
    # the proof of Theorem 6 says it adapts to Sigma_II diagonal: A -> lambda C, B -> D C^T/(lambda C D C^T)
    rng = np.random.default_rng(800)
    for _ in range(5):
        n = int(rng.integers(2, 5))
        d = np.diag(rng.uniform(0.3, 2.0, n))
        c = rng.uniform(0.3, 1.5, n) * rng.choice([-1.0, 1.0], n)
        system = CompressiveNet(d, d, c)
        y0 = rng.uniform(-1, 1, 2 * n)
        pred = system.predicted_fixed_point(y0)
        np.testing.assert_allclose(_reach(system, y0), pred, atol=1e-6)  # measured ~1e-11
        np.testing.assert_allclose(system.product(pred), d @ np.outer(c, c) / (c @ d @ c), atol=1e-12)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: AdaptivePowerChain(-1.0, 1.0, 1.0), "mu must be > 0"),
        (lambda: AdaptivePowerChain(2.0, 1.0, 0.0), "beta"),
        (lambda: AdaptivePowerChain(2.0, 1.0, 1.0).predicted_fixed_point([-0.5, 1.0, 1.0]), "a1.0. > 0"),
        (lambda: AdaptivePowerChain(2.0, 1.0, 1.0).predicted_fixed_point([math.sqrt(2.0), 1.0, 1.0]), "degenerate"),
        (lambda: LinearChain(1.0, 1.0, depth=2, rule="arbp").adaptive_reduction([1.0, 1.0, 1.0]), "depth >= 3"),
        (lambda: STDPChain(1.0, float("inf")), "beta"),
        (lambda: STDPChain(1.0, 1.0, float("nan"), rule="stdp-t"), "gamma"),
    ],
)
def test_new_systems_reject_bad_input_naming_the_parameter(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_plot_phase_draws_and_checks_its_components(tmp_path):
    from lchannel.theory import plots

    system = STDPChain(1.0, 1.0)
    trajs = [system.integrate(y0, 50.0) for y0 in ([0.4, -0.3, 0.6], [-0.6, -1.3, 0.9])]
    fig = plots.plot_phase(trajs, "a1", "a2", predicted=[None, None], title="stdp")
    assert plots.save(fig, tmp_path / "p.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="no component 'b1'"):
        plots.plot_phase(trajs, "a1", "b1")
    with pytest.raises(ValueError, match="at least one trajectory"):
        plots.plot_phase([], "a1", "a2")
