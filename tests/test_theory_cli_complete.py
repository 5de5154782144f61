"""``lchannel theory trajectory`` on the systems added for issue 14 (through ``register``)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from test_theory_cli import PNG_MAGIC, _line, _run, _values


@pytest.mark.parametrize("rule", ["stdp", "stdp-t"])
def test_stdp_trajectory_reaches_the_hyperbola(tmp_path, capsys, rule):
    out = tmp_path / "stdp.png"
    argv = ["theory", "trajectory", "--system", "stdp-a111", "--rule", rule, "--y0", "0.4", "-0.3", "--c", "0.6"]
    assert _run([*argv, "--t-max", "20", "--eta", "0.02", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC
    text = capsys.readouterr().out
    assert "no closed-form limit" in _line(text, "predicted fixed point")
    reached = _values(_line(text, "reached fixed point" if rule == "stdp" else "state reached").split("):", 1)[1])
    assert reached["a1"] * reached["a2"] == pytest.approx(1.0, abs=1e-4)  # alpha = beta = 1; 6 printed digits
    assert ("converged" in text) == (rule == "stdp" or "not converged" in text)
    if rule == "stdp-t":
        assert reached["c1"] > 5  # the T-form channel keeps growing


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--system", "stdp-a111", "--rule", "arbp"], "--rule: --system stdp-a111 accepts stdp, stdp-t"),
        (["--system", "stdp-a111", "--c", "1", "2"], "--c"),
        (["--system", "stdp-a111", "--y0", "1"], "--y0"),
        (["--system", "asrbp-chain", "--rule", "arbp"], "--rule: --system asrbp-chain accepts asrbp"),
        (["--system", "adaptive-power", "--y0", "-1", "1"], "--y0: a1 must be > 0"),
        (["--system", "adaptive-power", "--alpha", "1"], "--alpha: does not apply"),
    ],
)
def test_new_systems_reject_bad_options(tmp_path, capsys, argv, needle):
    assert _run(["theory", "trajectory", *argv, "--out", str(tmp_path / "x.png")]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    "extra",
    [
        ["--system", "arbp-chain", "--depth", "4", "--seed", "1"],
        ["--system", "asrbp-chain", "--depth", "4", "--seed", "2"],
        ["--system", "adaptive-power", "--mu", "2"],
        ["--system", "adaptive-power", "--mu", "2", "--y0", "0.5", "-0.5", "--c", "-1"],  # the trivial line a1 = 0
    ],
)
def test_new_systems_print_predicted_equal_to_reached(tmp_path, capsys, extra):
    out = tmp_path / "traj.png"
    assert _run(["theory", "trajectory", *extra, "--t-max", "40", "--eta", "0.05", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC
    lines = capsys.readouterr().out.splitlines()
    pred, reached = (_values(next(l for l in lines if l.startswith(p)).split(sep, 1)[1]) for p, sep in (("predicted", ":"), ("reached", "):")))
    assert list(pred) == list(reached) and len(pred) >= 3
    np.testing.assert_allclose(list(pred.values()), list(reached.values()), atol=1e-4)  # 6 printed digits


def test_a222_trajectory_reaches_ba_equal_identity(tmp_path, capsys):
    out = tmp_path / "a222.png"
    assert _run(["theory", "trajectory", "--system", "a222", "--t-max", "30", "--eta", "0.05", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC
    text = capsys.readouterr().out
    line = _line(text, "reached fixed point").split("):", 1)[1]
    vals = [float(v) for v in re.findall(r"=([-+0-9.eE]+)", line)]
    a, b = np.array(vals[:4]).reshape(2, 2), np.array(vals[4:]).reshape(2, 2)
    np.testing.assert_allclose(b @ a, np.eye(2), atol=1e-4)  # Theorem 10 (6 printed digits)


def test_phase_portrait_shows_the_arbp_closed_orbit_and_the_stdp_limits(tmp_path, capsys):
    out = tmp_path / "phase.png"
    argv = ["theory", "trajectory", "--system", "arbp-chain", "--depth", "3", "--alpha", "0.7", "--beta", "0.9"]
    argv += ["--c", "1.15", "-0.35", "--y0", "-0.8", "-0.45", "-1.05", "--phase", "a1", "c2", "--phase-starts", "3"]
    assert _run([*argv, "--t-max", "40", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC
    text = capsys.readouterr().out
    assert text.count("start ") == 3
    first = text.split("start ")[1]
    assert "sign pattern" in first and "t_max" in first  # the closed orbit: no prediction, no convergence
    assert _run(["theory", "trajectory", "--system", "stdp-a111", "--phase", "a1", "a2", "--t-max", "200", "--out", str(out)]) == 0
    reached = [_values(l.split("):", 1)[1]) for l in capsys.readouterr().out.splitlines() if l.strip().startswith("reached")]
    assert len(reached) == 6
    for r in reached:
        assert r["a1"] * r["a2"] == pytest.approx(1.0, abs=1e-4)
    assert _run(["theory", "trajectory", "--phase", "a1", "b7", "--out", str(out)]) == 2
    assert "--phase: 'b7' is not a component" in capsys.readouterr().err
