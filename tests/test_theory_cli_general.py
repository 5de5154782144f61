"""``lchannel theory`` for issue 3: the general system A[N0,...,NL] with an input covariance
(``--system general --sizes --sigma``, every rule, matrix ARBP/ASRBP of paper 2 Theorem 7), the
automatic horizon, and defaults that converge with panels that show it.

The independent truths: the discrete learner's full-batch step (the average of the papers'
rule, which never uses an ODE), least squares solved on the samples, a separate gradient
descent run, and the rank-1 optimum of the whitened autoencoder.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from lchannel.theory import LinearNetwork
from lchannel.theory.build import build_system

from test_theory_cli import PNG_MAGIC, _line, _parser, _run


def _build(argv):
    """(system, y0, data, title) exactly as ``trajectory`` builds them from ``argv``."""
    return build_system(_parser().parse_args(["theory", "trajectory", *argv]))


def _number(text: str, prefix: str, pattern: str) -> float:
    return float(re.search(pattern, _line(text, prefix)).group(1))


def _learner_rate(system, y, data, eta=1e-3):
    As, Cs = system.to_matrices(y)
    net = LinearNetwork(As, Cs, system.rule)
    net.step(data.inputs, data.targets, eta)
    return (system.from_matrices(net.As, net.Cs) - y) / eta


@pytest.mark.parametrize("rule", ["srbp", "rbp", "arbp", "asrbp", "gd"])
def test_general_equations_with_a_given_sigma_are_the_average_of_the_learner(rule):
    sigma = "2,0.3,0,0.3,1,-0.2,0,-0.2,0.5"
    system, y0, data, title = _build(["--system", "general", "--sizes", "3,4,4,2", "--sigma", sigma, "--rule", rule])
    np.testing.assert_allclose(data.sigma_II, np.array(sigma.split(","), float).reshape(3, 3), atol=1e-12)
    assert system.sizes == (3, 4, 4, 2) and title.startswith("A[3,4,4,2] " + rule.upper())
    np.testing.assert_allclose(system.rhs(0, y0), _learner_rate(system, y0, data), rtol=1e-8, atol=1e-10)


def test_general_default_is_a342_with_a_seeded_non_identity_sigma_and_reaches_least_squares(tmp_path, capsys):
    system, _, data, _ = _build(["--system", "general"])
    assert system.sizes == (3, 4, 2) and system.rule == "srbp"
    assert np.max(np.abs(data.sigma_II - np.eye(3))) > 0.3  # not the identity
    assert not np.allclose(_build(["--system", "general", "--seed", "1"])[2].sigma_II, data.sigma_II)  # seeded
    lstsq = np.linalg.lstsq(data.inputs, data.targets, rcond=None)[0].T  # least squares on the samples
    np.testing.assert_allclose(system.optimal_product(), lstsq, atol=1e-10)
    out = tmp_path / "g.png"
    assert _run(["theory", "trajectory", "--system", "general", "--eta", "0.05", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC
    text = capsys.readouterr().out
    assert "converged" in _line(text, "reached fixed point")
    assert _number(text, "product P", r"max \|P - P\*\| = (\S+)") < 1e-8
    assert _number(text, "paper 1 Theorem 8: max", r"= (\S+)$") < 1e-8
    assert _number(text, "paper 1 Theorem 8: its matrix V", r"ODE: (\S+)$") < 1e-10  # V never increases
    assert _number(text, "discrete vs ODE", r"at the end (\S+)") < 0.1


def test_matrix_arbp_keeps_c_minus_a_transpose_and_with_k_zero_is_gradient_descent(monkeypatch, capsys):
    """Paper 2 Theorem 7 (§5.7): dC1/dt = dA2ᵀ/dt, so C1 − A2ᵀ is constant, and with C1(0) = A2(0)ᵀ
    ARBP is gradient descent: the CLI's ARBP run ends where a separate GD run ends."""
    from lchannel.theory import plots

    for rule in ("arbp", "asrbp"):  # ASRBP: the same for the top layer (C_{L-1} − A_Lᵀ)
        system, y0, data, _ = _build(["--system", "general", "--sizes", "2,3,2", "--rule", rule])
        rate = _learner_rate(system, y0, data)
        np.testing.assert_allclose(rate[12:].reshape(3, 2), rate[6:12].reshape(2, 3).T, rtol=1e-10)
    monkeypatch.setattr(plots, "save", lambda fig, path, **kw: (plots.plt.close(fig), path)[1])
    a = [0.4, -0.3, 0.2, 0.5, 0.1, -0.6, 0.3, -0.2, 0.7, 0.2, 0.6, -0.4]  # A1 (3x2), A2 (2x3)
    a2t = [str(v) for v in np.array(a[6:]).reshape(2, 3).T.ravel()]
    base = ["theory", "trajectory", "--system", "general", "--sizes", "2,3,2", "--y0", *map(str, a), "--no-discrete", "--out", "unused.png"]
    ends = {}
    for rule, extra in (("arbp", ["--c", *a2t]), ("gd", [])):
        assert _run([*base, "--rule", rule, *extra]) == 0
        text = capsys.readouterr().out
        ends[rule] = [float(v) for v in re.findall(r"=([-+0-9.eE]+)", _line(text, "reached fixed point").split("):", 1)[1])][:12]
        if rule == "arbp":
            assert _number(text, "conserved quantities", r"C1 - A2\^T: ([^;]+)") < 1e-8
    np.testing.assert_allclose(ends["arbp"], ends["gd"], atol=2e-6)  # 6 printed digits


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--system", "general", "--sizes", "3"], "--sizes: expected comma-separated layer sizes"),
        (["--system", "general", "--sizes", "3,0,2"], "--sizes"),
        (["--system", "general", "--sizes", "3,x,2"], "--sizes"),
        (["--system", "general", "--sizes", "3,11,2"], "--sizes"),
        (["--system", "general", "--sizes", "2,2,2,2,2,2,2,2"], "--sizes"),
        (["--system", "general", "--sigma", "1,2"], "--sigma: N0 = 3 here, so expected random, identity, 3 comma-separated values"),
        (["--system", "general", "--sigma", "diag"], "--sigma: expected random, identity"),
        (["--system", "general", "--sigma", "1,-1,1"], "--sigma: Sigma_II = E(I I^T) must be positive definite"),
        (["--system", "general", "--sigma", "1,0.5,0,0,1,0,0,0,1"], "--sigma: Sigma_II = E(I I^T) must be symmetric"),
        (["--system", "general", "--sigma", "nan,1,1"], "--sigma: the values must be finite"),
        (["--system", "general", "--c", "1", "2"], "--c: --system needs 8 value(s) here (the entries of C1 4x2"),
        (["--system", "general", "--y0", "1"], "--y0: --system needs 20 value(s) here (the entries of A1 4x3, A2 2x4"),
        (["--system", "general", "--rule", "gd", "--c", "1"], "--c: gradient descent"),
        (["--system", "general", "--rule", "stdp"], "--rule: --system general accepts srbp, rbp, arbp, asrbp, gd"),
        (["--system", "general", "--depth", "3"], "--depth: does not apply to --system general"),
        (["--system", "chain", "--sizes", "3,4,2"], "--sizes: only --system general takes it"),
        (["--system", "compressive", "--sigma", "identity"], "--sigma: only --system general takes it"),
        (["--system", "arbp-chain", "--depth", "1"], "--depth: must be an integer in 2..12"),
    ],
)
def test_general_bad_options_exit_2_naming_the_option_and_what_it_accepts(tmp_path, capsys, argv, needle):
    assert _run(["theory", "trajectory", *argv, "--out", str(tmp_path / "x.png")]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("option", ["--t-max", "--depth"])
def test_auto_options_refuse_other_words(capsys, option):
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(["theory", "trajectory", option, "soon"])
    assert exc.value.code == 2
    assert f"argument {option}: expected a" in capsys.readouterr().err
    assert getattr(_parser().parse_args(["theory", "trajectory", option, "auto"]), option[2:].replace("-", "_")) is None


def test_sigma_forms_give_that_covariance_exactly():
    for spec, want in (("identity", np.eye(3)), ("2,1,0.5", np.diag([2.0, 1.0, 0.5]))):
        np.testing.assert_allclose(_build(["--system", "general", "--sigma", spec])[2].sigma_II, want, atol=1e-12)
    sigma = _build(["--system", "general", "--sizes", "1,2,1", "--sigma", "0.7"])[2].sigma_II
    np.testing.assert_allclose(sigma, [[0.7]], atol=1e-12)
    from lchannel.theory.samples import correlated_teacher

    with pytest.raises(ValueError, match="sigma_II must be 2 x 2"):
        correlated_teacher(100, np.ones((1, 2)), np.eye(3))
    with pytest.raises(ValueError, match="positive definite"):
        correlated_teacher(100, np.ones((1, 2)), np.diag([1.0, -1.0]))


DEFAULT_SYSTEMS = ["chain", "adaptive-chain", "expansive", "compressive", "power", "stdp-a111", "arbp-chain", "asrbp-chain", "adaptive-power", "a222", "general"]


@pytest.mark.parametrize("system", DEFAULT_SYSTEMS)
def test_every_default_converges_and_its_panel_shows_the_approach(monkeypatch, capsys, system):
    """Issue 3: with no option but --system, the ODE converges within the horizon, the prediction
    (where there is one) is the point reached, the convergence takes most of the panel's time axis,
    and the lower panel falls by many decades instead of staying flat."""
    from lchannel.theory import plots

    drawn = {}
    monkeypatch.setattr(plots, "plot_summary", lambda traj, **kw: drawn.update(traj=traj, **kw) or plots.plt.figure())
    monkeypatch.setattr(plots, "save", lambda fig, path, **kw: (plots.plt.close(fig), path)[1])
    assert _run(["theory", "trajectory", "--system", system, "--no-discrete", "--out", "unused.png"]) == 0
    text = capsys.readouterr().out
    horizon = _number(text, "t_max = ", r"t_max = (\S+) \(auto")
    reached = _line(text, "reached fixed point")
    t_conv = float(re.search(r"t = ([0-9.e+]+), converged", reached).group(1))
    assert horizon / 2.5 <= t_conv <= horizon
    pred = _line(text, "predicted fixed point")
    if "not available" not in pred:
        assert _number(text, "|reached - predicted|", r"= (\S+)") < 1e-8
    traj, reference = drawn["traj"], drawn["reference"]
    curve = traj.error() if reference is None else np.abs(traj.error() - reference)
    assert curve[-1] < 1e-6 * curve[0]
    if system == "compressive":  # rank 1 against P* = Id (3 x 3): the best rank-1 map misses by (N - 1)/2
        assert reference == pytest.approx(1.0, rel=1e-8)
    if system in ("arbp-chain", "asrbp-chain"):
        assert "A[1,1,1,1]" in text.splitlines()[0]  # depth 3 by default, not A[1,1,1]


def test_vector_field_prints_the_largest_gap_between_predicted_and_reached(tmp_path, capsys):
    assert _run(["theory", "vector-field", "--grid", "5", "--n-random", "3", "--out", str(tmp_path / "v.png")]) == 0
    text = capsys.readouterr().out
    gaps = [float(l.split("=")[1]) for l in text.splitlines() if l.strip().startswith("|reached - predicted|")]
    assert len(gaps) == 3
    assert _number(text, "largest |reached - predicted|", r": (\S+)$") == pytest.approx(max(gaps), rel=1e-3) and max(gaps) < 1e-8
