"""Figures people can read: markers, epoch 0, one look per algorithm, legends outside the
axes, captions naming the options, readable alignment labels, and awkward inputs."""

import io
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_rgba

from lchannel.channels import ALGORITHMS, REGISTRY
from lchannel.run.config import TrainConfig
from lchannel.experiments import ResultsStore, load_spec, run_sweep
from lchannel.experiments.figures import level_text, report_figures
from lchannel.experiments.results import collect
from lchannel.report.plots import accuracy_figure, coinciding_runs, describe_runs, plot_accuracy, zoom_range, zoom_start
from lchannel.report.style import ALGORITHM_COLORS, ALGORITHM_MARKERS, algorithm_key, algorithm_style, styles_for_labels
from lchannel.engine.train import METRICS, History

pytestmark = pytest.mark.usefixtures("one_thread")


def history(acc, initial=None, diverged=None) -> History:
    """A History whose train and test accuracy are ``acc[epoch][member]``."""
    h = History(list(range(len(acc[0]))))
    for i, row in enumerate(acc):
        h.append(i + 1, {m: list(row) for m in METRICS}, 0.1, 0.0)
    if initial is not None:
        h.initial = {m: list(initial) for m in METRICS}
    if diverged is not None:
        h.diverged_at = diverged
    return h


def lines_by_label(ax) -> dict:
    return {ln.get_label(): ln for ln in ax.get_lines() if not ln.get_label().startswith("_")}


def rendered(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")  # parses every mathtext label
    plt.close(fig)
    return buf.getvalue()


# ------------------------------------------------------------------------------ accuracy figure
def test_a_single_epoch_is_drawn_with_markers():
    fig = accuracy_figure({"RBP": history([[0.3, 0.4]])})
    for ax in fig.axes:
        (line,) = lines_by_label(ax).values()
        assert list(line.get_xdata()) == [1.0]
        assert line.get_marker() not in (None, "", "None", " ") and line.get_markersize() > 0
    plt.close(fig)


def test_curves_start_at_epoch_0_when_the_untrained_network_was_recorded():
    fig = accuracy_figure({"BP": history([[0.5, 0.7]], initial=[0.1, 0.2]), "SRBP": history([[0.4, 0.4]])})
    train = lines_by_label(fig.axes[0])
    assert list(train["BP"].get_xdata()) == [0.0, 1.0]
    assert train["BP"].get_ydata()[0] == pytest.approx(15.0)  # mean of 10% and 20%
    assert train["BP"].get_ydata()[1] == pytest.approx(60.0)
    assert list(train["SRBP"].get_xdata()) == [1.0]  # no initial recorded: starts at epoch 1
    plt.close(fig)


def test_the_legend_lies_outside_every_axes_even_with_many_lines():
    curves = {f"run {i}": history([[0.1 * i, 0.1 * i + 0.01]] * 3, initial=[0.1, 0.1]) for i in range(12)}
    fig = accuracy_figure(curves, title="t", caption="c")
    fig.canvas.draw()
    (legend,) = fig.legends
    box = legend.get_window_extent()
    assert len(legend.get_texts()) == 1 + 12  # a header row, then a row per line
    for ax in fig.axes:
        assert not box.overlaps(ax.get_window_extent())
    colors = {to_rgba(ln.get_color()) for ln in fig.axes[0].get_lines()}
    assert len(colors) == 12  # not algorithms: one sequential colour per line
    rendered(fig)


def test_the_caption_names_the_options_that_define_the_comparison(tmp_path):
    cfgs = [TrainConfig(algorithm=a, architecture=[784, 100, 100, 100, 100, 10], seeds=[0, 1, 2, 3, 4], epochs=5,
                        subset=2000, channel={"quantize_bits": 3}) for a in ("bp", "rbp", "srbp")]
    text = describe_runs(cfgs)
    assert text == "mnist, A[784,100,100,100,100,10], 5 seeds, 5 epochs, subset 2000, quantize_bits=3"
    # settings that differ between the lines are not "common"; defaults are not repeated
    mixed = describe_runs([cfgs[0], cfgs[1].replace(channel={"quantize_bits": 5}, lr=0.05)])
    assert "quantize_bits" not in mixed and "lr" not in mixed and "5 seeds" in mixed
    fig = accuracy_figure({"BP": history([[0.5]])}, title="MNIST", caption=text)
    assert text in fig.get_supxlabel().replace("\n", " ")
    assert fig.get_suptitle() == "MNIST"
    plt.close(fig)
    assert plot_accuracy({"BP": history([[0.5]])}, tmp_path / "a.png", caption=text).stat().st_size > 5000


def test_one_seed_a_diverged_member_and_an_all_nan_line_still_render():
    nan = math.nan
    curves = {
        "BP": history([[0.5], [0.6]], initial=[0.1]),                            # one seed: no band
        "RBP": history([[0.3, 0.5], [nan, 0.7]], initial=[0.1, 0.1], diverged=[2, None]),
        "SRBP": history([[nan, nan]], diverged=[1, 1]),                          # nothing finite
    }
    fig = accuracy_figure(curves)
    train = lines_by_label(fig.axes[0])
    assert set(train) == {"BP", "RBP (1/2 diverged)"}
    assert train["RBP (1/2 diverged)"].get_ydata()[-1] == pytest.approx(70.0)  # mean over the survivor
    assert "Left out (no finite values): SRBP" in fig.get_supxlabel().replace("\n", " ")
    # one band (RBP's, two seeds at epochs 0-1) per axes, none for the one-seed BP line;
    # the same in the zoom on epochs 1-2 (axes 2 and 3)
    assert [len(ax.collections) for ax in fig.axes] == [1, 1, 1, 1]
    assert len(rendered(fig)) > 5000


FIGURE1_FINALS = {"BP": 0.972, "SBP": 0.9725, "RBP": 0.951, "SRBP": 0.959, "BP (no f')": 0.93,
                  "SBP (no f')": 0.93, "RBP (no f')": 0.924, "SRBP (no f')": 0.927, "Top layer only": 0.12}


def figure1_curves(finals=FIGURE1_FINALS, epochs=8, seeds=3) -> dict[str, History]:
    """Nine lines ending close together (and one far below), like a short paper 1 Figure 1."""
    out = {}
    for lab, f in finals.items():  # members f - 0.001, f, f + 0.001 at the last epoch
        acc = [[f - 0.3 * (0.5 ** e - 0.5 ** epochs) + 0.001 * (m - 1) for m in range(seeds)]
               for e in range(1, epochs + 1)]
        out[lab] = history(acc, initial=[0.1] * seeds)
    return out


def caption_of(fig) -> str:
    return fig.get_supxlabel().replace("\n", " ")


def test_a_zoomed_panel_shows_the_final_epochs_with_a_fitted_range_and_the_legend_is_a_table():
    """Paper 1 Figure 1's lines end within a few percent of each other: a second column
    zooms on the final epochs with its y-range fitted to the lines there (a line far
    below is named, not squeezed in), and the legend gives every line's final numbers."""
    curves = figure1_curves()
    fig = accuracy_figure(curves, title="t", caption="c")
    assert len(fig.axes) == 4
    train, test, ztrain, ztest = fig.axes
    assert train.get_ylim()[1] - train.get_ylim()[0] > 80          # the full panels: 10-97%
    assert zoom_start(range(9)) == 6 and ztrain.get_xlim()[0] > 5.5  # the last quarter: epochs 6-8
    for zax in (ztrain, ztest):
        lo, hi = zax.get_ylim()
        assert 90 < lo < 92.3 and 97.3 < hi < 98.5, (lo, hi)       # fitted to the eight lines at 92-97%
        assert set(lines_by_label(zax)) == set(curves)               # every line is there
        (note,) = [t.get_text() for t in zax.texts]
        assert note.startswith("below this range: Top layer only (")
    assert "final epochs 6-8" in caption_of(fig)
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts[0].split() == ["final", "mean", "%", "train", "test"]
    bp = next(t for t in texts if t.startswith("BP "))
    assert bp.split()[-2:] == ["97.20", "97.20"]  # mean over the members at the last epoch
    fig.canvas.draw()
    box = fig.legends[0].get_window_extent()
    assert not any(box.overlaps(ax.get_window_extent()) for ax in fig.axes)
    rendered(fig)
    # no zoom for one or two points per line
    short = accuracy_figure({"BP": history([[0.5]], initial=[0.1])})
    assert len(short.axes) == 2
    plt.close(short)


def test_zoom_range_names_only_a_line_far_below_the_others():
    near = {"a": np.array([97.0, 97.2]), "b": np.array([96.0, 96.1]), "c": np.array([93.0, 92.9])}
    lo, hi, below = zoom_range({**near, "d": np.array([88.0, 88.5])})  # 4.4 below a 4.3 span: kept
    assert below == [] and lo < 88.0 and hi > 97.2
    lo, hi, below = zoom_range({**near, "d": np.array([12.0, 12.0])})
    assert below == ["d"] and 92 < lo < 92.9 and 97.2 < hi < 98


def test_lines_that_coincide_by_construction_are_said_and_both_visible(tmp_path):
    """BP (no f') equals SBP (no f') exactly: the caption says so (declared by the
    registry, checked on the numbers) and the covered line is drawn wider underneath."""
    cfgs = {TrainConfig(algorithm=a).label: TrainConfig(algorithm=a)
            for a in ("bp", "sbp", "rbp", "srbp", "bp-nof", "sbp-nof", "rbp-nof", "srbp-nof", "top")}
    coincide = coinciding_runs(cfgs)
    assert [labs for labs, _ in coincide] == [["BP (no f')", "SBP (no f')"]]
    assert coinciding_runs({"a": cfgs["BP (no f')"], "b": cfgs["SBP (no f')"].replace(lr=0.05)}) == []
    curves = figure1_curves()
    fig = accuracy_figure(curves, caption="c", coincide=coincide)
    assert "BP (no f') and SBP (no f') coincide by construction (with no f' anywhere" in caption_of(fig)
    for ax in fig.axes:
        lines = lines_by_label(ax)
        assert lines["BP (no f')"].get_linewidth() > 2 * lines["SBP (no f')"].get_linewidth()
        assert list(lines["BP (no f')"].get_ydata()) == list(lines["SBP (no f')"].get_ydata())
    plt.close(fig)
    # declared but not identical in the numbers (e.g. runs on a non-deterministic device): not said
    curves["SBP (no f')"] = figure1_curves({"x": 0.931})["x"]
    fig = accuracy_figure(curves, caption="c", coincide=coincide)
    assert "coincide" not in caption_of(fig)
    assert len({ln.get_linewidth() for ln in lines_by_label(fig.axes[0]).values()}) == 1
    plt.close(fig)


# ------------------------------------------------------------------------------ styles
def test_a_no_f_variant_keeps_its_base_colour_with_a_dashed_line():
    rbp, nof = algorithm_style("rbp"), algorithm_style("rbp-nof")
    assert rbp.color == nof.color == ALGORITHM_COLORS["rbp"] and rbp.linestyle == "-" and nof.linestyle == "--"
    assert algorithm_key("rbp", {"adaptive": True}) == "arbp"
    assert algorithm_key("srbp", {"derivative": "none"}) == "srbp-nof"
    assert styles_for_labels(["RBP (no f')", "BP"])["RBP (no f')"] == nof
    # every registered algorithm (engine or converter) has a look of its own, from its entry
    assert set(ALGORITHM_COLORS) == set(ALGORITHM_MARKERS) == set(REGISTRY) >= set(ALGORITHMS)
    assert len(set(ALGORITHM_COLORS.values())) == len(ALGORITHM_COLORS)
    assert all(ALGORITHM_COLORS[n] == a.color and ALGORITHM_MARKERS[n] == a.marker for n, a in REGISTRY.items())
    assert algorithm_style("fa") == rbp and algorithm_style("kp").color == REGISTRY["kp"].color


def test_an_entry_without_a_look_gets_one_derived_from_its_name(monkeypatch):
    from dataclasses import replace
    from lchannel.channels import REGISTRY as reg
    from lchannel.report.style import FALLBACK_COLORS, FALLBACK_MARKERS

    monkeypatch.setitem(reg, "myrule", replace(reg["rbp"], name="myrule", label="My rule", color=None, marker=None,
                                               aliases=()))
    style = algorithm_style("myrule")
    assert style.color in FALLBACK_COLORS and style.marker in FALLBACK_MARKERS
    assert algorithm_style("myrule") == style  # stable


def test_numeric_levels_are_named_by_their_axis():
    assert level_text("n", "2") == "n = 2"
    assert level_text("bits", "3") == "bits = 3"
    assert level_text("bits", "10 bits") == "10 bits"


# ------------------------------------------------------------------------------ report figures
LOOK = """
name = "{name}"
description = "plot looks"
[base]
dataset = "synthetic"
synthetic_k = 0
n_train = 200
n_test = 100
architecture = [2, 8, 8, 1]
lr = 0.5
batch_size = 20
epochs = 1
seeds = [0, 1]
[alignment]
probe = 50
[[axes]]
name = "p"
levels = [
  {{ label = "0", value = 0 }},
  {{ label = "0.2", value = 0.2, set = {{ channel = {{ lc_dropout = 0.2 }} }} }},
]
[[axes]]
name = "algorithm"
levels = [
  {{ label = "BP", set = {{ algorithm = "bp" }} }},
  {{ label = "RBP", set = {{ algorithm = "rbp" }} }},
  {{ label = "RBP (no f')", set = {{ algorithm = "rbp", channel = {{ derivative = "none" }} }} }},
]
[report]
{report}
"""
LAYOUTS = {"look": 'layout = "curves"\npanels = "p"\nlines = "algorithm"',
           "look-levels": 'layout = "curves"\npanels = "algorithm"\nlines = "p"',
           "look-final": 'layout = "final"\nx = "p"\nlines = "algorithm"'}


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    """``{spec name: {file stem: Figure}}`` of a tiny one-epoch sweep under three layouts."""
    tmp = tmp_path_factory.mktemp("look")
    db = tmp / "look.db"
    out = {}
    for name, report in LAYOUTS.items():
        p = tmp / f"{name}.toml"
        p.write_text(LOOK.format(name=name, report=report))
        spec = load_spec(p)
        run_sweep(spec, db, workers=1, progress=False, log=lambda *a, **k: None)
        with ResultsStore(db) as store:
            out[name] = {f.stem: f.figure for f in report_figures(spec, collect(spec, store))}
    yield out
    plt.close("all")


def colour(fig, label) -> tuple:
    return to_rgba(lines_by_label(fig.axes[0])[label].get_color())


def test_an_algorithm_has_the_same_colour_in_every_figure(figures):
    assert sorted(figures["look"]) == ["look-0", "look-0-2", "look-0-2-alignment", "look-0-alignment"]
    assert sorted(figures["look-final"]) == ["look-final-alignment", "look-final-final"]
    compare = accuracy_figure({"RBP": history([[0.2]]), "BP": history([[0.3]]), "RBP (no f')": history([[0.1]])})
    for lab in ("BP", "RBP", "RBP (no f')"):
        expected = to_rgba(ALGORITHM_COLORS[lab.split()[0].lower()])
        assert colour(compare, lab) == expected
        assert colour(figures["look"]["look-0"], lab) == expected            # curves, accuracy
        assert colour(figures["look"]["look-0-2"], lab) == expected
        assert colour(figures["look"]["look-0-alignment"], lab) == expected  # alignment
        assert colour(figures["look-final"]["look-final-final"], lab) == expected  # final accuracy
    nof = lines_by_label(figures["look"]["look-0"].axes[0])["RBP (no f')"]
    assert nof.get_linestyle() == "--"
    plt.close(compare)


def test_report_lines_that_are_levels_get_one_sequential_colour_per_level(figures):
    bp, rbp = figures["look-levels"]["look-levels-bp"], figures["look-levels"]["look-levels-rbp"]
    assert set(lines_by_label(bp.axes[0])) == {"p = 0", "p = 0.2"}
    assert colour(bp, "p = 0.2") == colour(rbp, "p = 0.2") != colour(bp, "p = 0")
    algorithm_colours = {to_rgba(c) for c in ALGORITHM_COLORS.values()}
    assert colour(bp, "p = 0") not in algorithm_colours
    # one figure mixing algorithms and levels: algorithm colour, level named by its axis
    mixed = lines_by_label(figures["look-final"]["look-final-alignment"].axes[0])
    assert to_rgba(mixed["p = 0.2 / RBP"].get_color()) == to_rgba(ALGORITHM_COLORS["rbp"])
    assert mixed["p = 0.2 / RBP"].get_marker() != mixed["p = 0 / RBP"].get_marker()


def test_report_figures_have_markers_legends_outside_and_captions(figures):
    for name, figs in figures.items():
        for stem, fig in figs.items():
            fig.canvas.draw()
            assert fig.legends, stem
            box = fig.legends[0].get_window_extent()
            assert not any(box.overlaps(ax.get_window_extent()) for ax in fig.axes), stem
            for ax in fig.axes:
                for ln in lines_by_label(ax).values():
                    assert ln.get_marker() not in (None, "", "None", " "), stem
            caption = fig.get_supxlabel().replace("\n", " ")
            assert "2 seeds, 1 epoch" in caption and "A[2,8,8,1]" in caption, stem
    assert "lc_dropout=0.2" in figures["look"]["look-0-2"].get_supxlabel().replace("\n", " ")
    assert "lc_dropout" not in figures["look"]["look-0"].get_supxlabel()


def test_alignment_rows_use_readable_angle_labels(figures):
    fig = figures["look"]["look-0-alignment"]
    ylabels = " ".join(ax.get_ylabel() for ax in fig.axes)
    assert r"\angle(I^h, B^h)" in ylabels
    assert r"\angle(\Delta W^h, \Delta W^h_{\mathrm{BP}})" in ylabels
    assert r"\angle(C^h, (W^{h+1})^\top)" in ylabels  # chained RBP: feedback against the next layer
    assert "signal" not in ylabels and "update" not in ylabels
    assert {ax.get_title() for ax in fig.axes} >= {"hidden layer h = 1", "hidden layer h = 2"}
    assert len(rendered(fig)) > 5000


# ------------------------------------------------------------------------------ STDP looks (issue 25)
def test_the_hebbian_and_stdp_forms_of_an_adaptive_channel_look_different():
    from lchannel.channels import algorithm_names
    from lchannel.report.style import STDP_LINESTYLE, key_base, key_label

    for name in ("arbp", "asrbp"):
        hebb_key, stdp_key = algorithm_key(name, {}), algorithm_key(name, {"rule": "stdp"})
        assert hebb_key == name and stdp_key != hebb_key
        assert algorithm_key(name[1:], {"adaptive": True, "rule": "stdp"}) == stdp_key  # every spelling
        assert algorithm_key(name, {"rule": "hebbian"}) == hebb_key  # the default rule
        assert key_base(stdp_key) == name and key_label(stdp_key) == f"{name.upper()} (STDP)"
        hebb, stdp = algorithm_style(hebb_key), algorithm_style(stdp_key)
        assert stdp.color == hebb.color == ALGORITHM_COLORS[name]  # one algorithm, one colour
        assert stdp.linestyle == STDP_LINESTYLE != hebb.linestyle and stdp.marker != hebb.marker
        assert styles_for_labels([f"{name.upper()} (STDP)", name.upper()])[f"{name.upper()} (STDP)"] == stdp
    # no other line shares an STDP form's look (line style and marker), no-f' variants included
    looks = [(s.color, s.linestyle, s.marker) for s in map(algorithm_style, [*algorithm_names(), "arbp+stdp",
                                                                              "asrbp+stdp"])]
    assert len(set(looks)) == len(looks)
    assert len({(s.linestyle, s.marker) for s in map(algorithm_style, ("arbp+stdp", "asrbp+stdp"))}
               | {(s.linestyle, s.marker) for s in map(algorithm_style, algorithm_names())}) == len(looks)


FIGURE11_LOOK = """
name = "{name}"
description = "p2-figure11's lines on a tiny task"
[base]
dataset = "synthetic"
synthetic_k = 0
n_train = 200
n_test = 100
architecture = [2, 8, 8, 1]
lr = 0.5
batch_size = 20
epochs = 1
seeds = [0]
[alignment]
probe = 50
[[axes]]
name = "{axis}"
levels = [
{levels}
]
[report]
{report}
"""


def test_report_draws_the_hebbian_and_stdp_forms_of_one_algorithm_apart(tmp_path):
    """p2-figure11's four lines: ARBP and ASRBP, each Hebbian and STDP.  An algorithm's two
    forms share its colour and differ in line style and marker; a figure of STDP runs only
    (final layout) is named after its algorithm."""
    algos = ('  { label = "ARBP (Hebbian)", set = { algorithm = "arbp", channel = { adapt_rate = 1.0 } } },\n'
             '  { label = "ASRBP (Hebbian)", set = { algorithm = "asrbp" } },\n'
             '  { label = "ARBP (STDP)", set = { algorithm = "arbp", channel = { adapt_rate = 1.0, rule = "stdp" } } },\n'
             '  { label = "ASRBP (STDP)", set = { algorithm = "asrbp", channel = { rule = "stdp" } } },')
    eps = ('  { label = "0.1", value = 0.1, set = { algorithm = "asrbp", channel = { rule = "stdp" } } },\n'
           '  { label = "0.05", value = 0.05, set = { algorithm = "asrbp", channel = { rule = "stdp", '
           'stdp_scale = 0.05 } } },')
    specs = {"f11-look": ("algorithm", algos, 'layout = "curves"\nlines = "algorithm"'),
             "f11-eps": ("eps", eps, 'layout = "final"\nx = "eps"')}
    figs = {}
    for name, (axis, levels, report) in specs.items():
        p = tmp_path / f"{name}.toml"
        p.write_text(FIGURE11_LOOK.format(name=name, axis=axis, levels=levels, report=report))
        spec = load_spec(p)
        run_sweep(spec, tmp_path / "f11.db", workers=1, progress=False, log=lambda *a, **k: None)
        with ResultsStore(tmp_path / "f11.db") as store:
            figs[name] = {f.stem: f.figure for f in report_figures(spec, collect(spec, store))}
    assert sorted(figs["f11-look"]) == ["f11-look", "f11-look-alignment"]
    for stem in ("f11-look", "f11-look-alignment"):
        lines = lines_by_label(figs["f11-look"][stem].axes[0])
        for algo in ("ARBP", "ASRBP"):
            hebb, stdp = lines[f"{algo} (Hebbian)"], lines[f"{algo} (STDP)"]
            assert to_rgba(hebb.get_color()) == to_rgba(stdp.get_color()) == to_rgba(ALGORITHM_COLORS[algo.lower()])
            assert hebb.get_linestyle() == "-" and stdp.get_linestyle() == "-." and hebb.get_marker() != stdp.get_marker()
        assert len({(ln.get_color(), ln.get_linestyle(), ln.get_marker()) for ln in lines.values()}) == 4
    final = figs["f11-eps"]["f11-eps-final"]
    assert set(lines_by_label(final.axes[0])) == {"ASRBP (STDP)"}
    assert lines_by_label(final.axes[0])["ASRBP (STDP)"].get_linestyle() == "-."
    for f in (*figs["f11-look"].values(), *figs["f11-eps"].values()):
        assert len(rendered(f)) > 5000
