"""The ``lchannel theory`` command (through ``register``, as the main CLI wires it) and the plots."""

from __future__ import annotations

import argparse
import re

import numpy as np
import pytest

from lchannel.theory import LinearChain, minibatch_learning
from lchannel.theory import cli as theory_cli
from lchannel.theory.samples import scalar_teacher

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _parser() -> argparse.ArgumentParser:
    # the main lchannel CLI does exactly this
    parser = argparse.ArgumentParser(prog="lchannel")
    subparsers = parser.add_subparsers(dest="command")
    theory_cli.register(subparsers)
    return parser


def _run(argv):
    args = _parser().parse_args(argv)
    return args.func(args)


def _values(line: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"(\w+)=([-+0-9.eE]+)", line)}


def _line(out: str, prefix: str) -> str:
    return next(l for l in out.splitlines() if l.strip().startswith(prefix))


def test_vector_field_writes_png_and_prints_predicted_and_reached(tmp_path, capsys):
    out = tmp_path / "field.png"
    rc = _run(["theory", "vector-field", "--c1", "0.8", "--start", "-0.5", "-2.5", "--start", "2", "-1", "--n-random", "2", "--grid", "12", "--out", str(out)])
    assert rc == 0
    assert out.read_bytes()[:8] == PNG_MAGIC
    text = capsys.readouterr().out
    predicted = [_values(l) for l in text.splitlines() if "predicted fixed point" in l]
    reached = [_values(l.split(":", 1)[1]) for l in text.splitlines() if "reached fixed point" in l]
    assert len(predicted) == len(reached) == 4
    for p, r in zip(predicted, reached):
        assert p["a1"] == pytest.approx(r["a1"], abs=1e-4) and p["a2"] == pytest.approx(r["a2"], abs=1e-4)
        assert p["a1"] * p["a2"] == pytest.approx(1.0, rel=1e-4)  # on the hyperbola a1 a2 = α/β


@pytest.mark.parametrize(
    "extra",
    [
        ["--system", "chain", "--depth", "3", "--c", "0.8", "-0.5", "--y0", "0.5", "-1", "0.3"],
        ["--system", "chain", "--rule", "rbp", "--depth", "2"],
        ["--system", "adaptive-chain", "--rule", "asrbp", "--alpha", "0.7", "--beta", "1.3"],
        ["--system", "expansive", "--width", "2"],
        ["--system", "expansive", "--width", "2", "--rule", "arbp"],
        ["--system", "compressive", "--width", "3"],
        ["--system", "power", "--mu", "2", "--derivative", "yes"],
        ["--system", "power", "--mu", "0.5", "--derivative", "gradient"],
    ],
)
def test_trajectory_prints_predicted_equal_to_reached(tmp_path, capsys, extra):
    out = tmp_path / "traj.png"
    rc = _run(["theory", "trajectory", *extra, "--t-max", "100", "--eta", "0.05", "--out", str(out)])
    assert rc == 0
    assert out.read_bytes()[:8] == PNG_MAGIC
    text = capsys.readouterr().out
    pred = _values(_line(text, "predicted fixed point").split(":", 1)[1])
    reached = _values(_line(text, "reached fixed point").split("):", 1)[1])
    assert pred.keys() == reached.keys() and pred
    for k in pred:
        assert pred[k] == pytest.approx(reached[k], abs=1e-4)
    assert "discrete minibatch learning" in text


def test_trajectory_power_without_derivative_reports_no_fixed_point(tmp_path, capsys):
    rc = _run(["theory", "trajectory", "--system", "power", "--derivative", "no", "--t-max", "30", "--no-discrete", "--out", str(tmp_path / "p.png")])
    assert rc == 0
    text = capsys.readouterr().out
    assert "predicted fixed point: none" in text
    assert "not converged" in text


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["trajectory", "--depth", "1"], "--depth"),
        (["trajectory", "--system", "chain", "--rule", "arbp"], "--rule: --system chain accepts srbp, rbp, gd"),
        (["trajectory", "--system", "expansive", "--width", "2", "--y0", "1", "2"], "--y0"),
        (["trajectory", "--c", "1", "2", "3"], "--c"),
        (["trajectory", "--rule", "gd", "--c", "1"], "--c"),
        (["trajectory", "--out", "x.jpg"], "--out"),
        (["trajectory", "--system", "power", "--alpha", "2"], "--alpha"),
        (["trajectory", "--system", "power", "--y0", "-1", "1"], "--y0"),
        (["trajectory", "--beta", "0"], "--beta"),
        (["trajectory", "--eta", "-1"], "--eta"),
        (["trajectory", "--t-max", "0"], "--t-max"),
        (["vector-field", "--c1", "0"], "--c1"),
        (["vector-field", "--a1-range", "2", "1"], "--a1-range"),
        (["vector-field", "--grid", "1"], "--grid"),
    ],
)
def test_bad_options_exit_2_naming_the_option(tmp_path, capsys, argv, needle):
    if "--out" not in argv:
        argv = [*argv, "--out", str(tmp_path / "x.png")]
    assert _run(["theory", *argv]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_argparse_rejects_unknown_choices():
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(["theory", "trajectory", "--system", "spiral"])
    assert exc.value.code == 2


def test_theory_without_command_shows_help(capsys):
    assert _run(["theory"]) == 2
    assert "vector-field or trajectory" in capsys.readouterr().err


def test_module_entry_point(tmp_path, capsys):
    assert theory_cli.main(["vector-field", "--n-random", "1", "--grid", "8", "--out", str(tmp_path / "v.png")]) == 0
    assert (tmp_path / "v.png").exists()


def test_plots_render(tmp_path):
    from lchannel.theory import plots

    system = LinearChain(1.0, 1.0, [1.0])
    fig = plots.plot_vector_field(system, starts=[(-0.5, -2.0)], grid=10)
    assert plots.save(fig, tmp_path / "a.png").read_bytes()[:8] == PNG_MAGIC
    data = scalar_teacher(1.0, 1.0, 500)
    traj = system.integrate([0.2, -0.5], 10)
    disc = minibatch_learning(system, [0.2, -0.5], data, eta=0.01, t_max=10)
    fig = plots.plot_summary(traj, discrete=disc, predicted=system.predicted_fixed_point([0.2, -0.5]), title="t")
    assert plots.save(fig, tmp_path / "b.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="A\\[1,1,1\\]"):
        plots.plot_vector_field(LinearChain(1.0, 1.0, [1.0, 1.0]))
    with pytest.raises(ValueError, match="a1_range"):
        plots.plot_vector_field(system, a1_range=(1.0, 0.0))
    assert np.isfinite(traj.error()).all()


def test_vector_field_keeps_every_end_and_fixed_point_in_view(tmp_path, capsys, monkeypatch):
    """Issue 25: with the default window (-3..3) two of the six default trajectories end at
    a1 = -3.58 and 3.19, and their fixed points were cut off.  Without --a1-range/--a2-range
    the window widens to hold every start, point reached and predicted fixed point; a
    range given is kept, with a note saying how many points fall outside it."""
    from lchannel.theory import plots

    axes = []
    real = plots.plot_vector_field
    monkeypatch.setattr(plots, "plot_vector_field", lambda *a, **k: axes.append(real(*a, **k).axes[0]) or axes[-1].figure)
    assert _run(["theory", "vector-field", "--grid", "8", "--out", str(tmp_path / "v.png")]) == 0
    text = capsys.readouterr().out
    predicted = [_values(l) for l in text.splitlines() if "predicted fixed point" in l]
    reached = [_values(l.split(":", 1)[1]) for l in text.splitlines() if "reached fixed point" in l]
    starts = [_values(l) for l in text.splitlines() if l.startswith("start ")]
    assert len(predicted) == len(reached) == len(starts) == 6
    assert max(abs(p["a1"]) for p in predicted) > 3  # the case of the issue: beyond the old window
    (x0, x1), (y0, y1) = axes[0].get_xlim(), axes[0].get_ylim()
    for p in [*predicted, *reached, *starts]:
        assert x0 < p["a1"] < x1 and y0 < p["a2"] < y1, (p, (x0, x1), (y0, y1))
    assert x0 <= -3 and x1 >= 3 and y0 <= -3 and y1 >= 3  # never narrower than the default
    assert "note:" not in text and f"a1 {x0:g}..{x1:g}" in text
    # A range given is the user's: kept, and the points outside it are counted.
    assert _run(["theory", "vector-field", "--grid", "8", "--a1-range", "-3", "3", "--out", str(tmp_path / "w.png")]) == 0
    text = capsys.readouterr().out
    assert axes[1].get_xlim() == (-3, 3) and "note: 4 of the starts, ends and predicted fixed points" in text
    assert plots.fit_window([]) == ((-3.0, 3.0), (-3.0, 3.0))
    assert plots.fit_window([(0.5, -0.5)]) == ((-3.0, 3.0), (-3.0, 3.0))
