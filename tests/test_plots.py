"""Figures people can read: markers, epoch 0, one look per algorithm, legends outside the
axes, captions naming the options, readable alignment labels, and awkward inputs."""

import io
import math

import matplotlib.pyplot as plt
import pytest
from matplotlib.colors import to_rgba

from lchannel.channels import ALGORITHMS
from lchannel.config import TrainConfig
from lchannel.experiments import ResultsStore, load_spec, run_sweep
from lchannel.experiments.report import collect, level_text, report_figures
from lchannel.plots import accuracy_figure, describe_runs, plot_accuracy
from lchannel.style import ALGORITHM_COLORS, ALGORITHM_MARKERS, algorithm_key, algorithm_style, styles_for_labels
from lchannel.train import METRICS, History

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
    assert len(legend.get_texts()) == 12
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
    # one band (RBP's, two seeds at epochs 0-1) per axes, none for the one-seed BP line
    assert [len(ax.collections) for ax in fig.axes] == [1, 1]
    assert len(rendered(fig)) > 5000


# ------------------------------------------------------------------------------ styles
def test_a_no_f_variant_keeps_its_base_colour_with_a_dashed_line():
    rbp, nof = algorithm_style("rbp"), algorithm_style("rbp-nof")
    assert rbp.color == nof.color == ALGORITHM_COLORS["rbp"] and rbp.linestyle == "-" and nof.linestyle == "--"
    assert algorithm_key("rbp", {"adaptive": True}) == "arbp"
    assert algorithm_key("srbp", {"derivative": "none"}) == "srbp-nof"
    assert styles_for_labels(["RBP (no f')", "BP"])["RBP (no f')"] == nof
    assert set(ALGORITHM_COLORS) == set(ALGORITHM_MARKERS) == set(ALGORITHMS)  # every algorithm has a look
    assert len(set(ALGORITHM_COLORS.values())) == len(ALGORITHM_COLORS)


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
