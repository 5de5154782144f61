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

from lchannel.theory import minibatch_learning
from lchannel.theory.samples import scalar_teacher
from lchannel.theory.stdp import STDPChain

LONG = 5000.0


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
