"""Figures: the vector field of paper 1 Figure 11, trajectories against time, error along trajectories.

Matplotlib runs with the Agg backend here (files only, no display needed); every
function returns the :class:`matplotlib.figure.Figure` and draws into ``ax`` when given.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import SymLogNorm  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from .base import Trajectory  # noqa: E402
from .chain import LinearChain  # noqa: E402

__all__ = ["plot_vector_field", "plot_trajectory", "plot_product", "plot_error", "plot_summary", "plot_phase", "save"]


def _figure(ax, size=(7.0, 6.0)):
    if ax is None:
        fig, ax = plt.subplots(figsize=size, layout="constrained")
        return fig, ax
    return ax.figure, ax


DEFAULT_WINDOW = (-3.0, 3.0)


def trajectory_points(system: LinearChain, starts: Sequence[Sequence[float]], t_max: float):
    """``[(start, trajectory, predicted fixed point or None)]`` for each start."""
    out = []
    for s in starts:
        y0 = np.asarray(s, dtype=float)
        traj = system.integrate(y0, t_max)
        try:
            pred = np.asarray(system.predicted_fixed_point(y0), dtype=float)
        except (ArithmeticError, ValueError):
            pred = None
        out.append((y0, traj, pred))
    return out


def landmarks(runs) -> list[np.ndarray]:
    """The points a reader must see: each start, the point each trajectory reached (unless
    it diverged or failed) and each predicted fixed point; finite ones only."""
    points = []
    for y0, traj, pred in runs:
        points.append(y0)
        if traj.status not in ("diverged", "failed"):
            points.append(np.asarray(traj.final, dtype=float))
        if pred is not None:
            points.append(pred)
    return [p for p in points if np.all(np.isfinite(p))]


def fit_window(points, base: tuple[float, float] = DEFAULT_WINDOW, margin: float = 0.06, step: float = 0.5):
    """``(a1_range, a2_range)``: ``base`` on each axis, widened on each side where a point of
    ``points`` lies beyond it or on its edge (within 2% of it), by a margin (a fraction of
    the widened span) and rounded outward to a multiple of ``step``."""
    ranges = []
    for axis in (0, 1):
        values = [float(p[axis]) for p in points]
        lo, hi = base
        if not values:
            ranges.append((lo, hi))
            continue
        vmin, vmax = min(values), max(values)
        edge = 0.02 * (hi - lo)
        pad = margin * (max(hi, vmax) - min(lo, vmin))
        if vmin < lo + edge:
            lo = min(lo, float(np.floor((vmin - pad) / step) * step))
        if vmax > hi - edge:
            hi = max(hi, float(np.ceil((vmax + pad) / step) * step))
        ranges.append((lo, hi))
    return ranges[0], ranges[1]


def outside(points, a1_range, a2_range) -> int:
    """How many of ``points`` lie outside the window."""
    return sum(not (a1_range[0] <= p[0] <= a1_range[1] and a2_range[0] <= p[1] <= a2_range[1]) for p in points)


def plot_vector_field(
    system: LinearChain,
    *,
    a1_range: tuple[float, float] | None = None,
    a2_range: tuple[float, float] | None = None,
    grid: int = 25,
    starts: Sequence[Sequence[float]] = (),
    t_max: float = 200.0,
    ax=None,
):
    """The (a_1, a_2) plane of A[1,1,1] under RBP/SRBP, as in paper 1 Figure 11.

    Arrows show the direction of (da_1/dt, da_2/dt) (eq. 23), coloured by dP/dt
    (eq. 24; red: P grows, blue: P shrinks).  The critical hyperbolas a_1a_2 = α/β
    (eq. 27) are drawn solid where they attract and dotted where they are unstable,
    i.e. inside the parabola a_2 = −a_1²/c_1 (eq. 28, dashed), on which dP/dt = 0.
    Trajectories from ``starts`` are integrated up to ``t_max``: hollow circle = start,
    dot = point reached, cross = fixed point predicted by the cubic of eq. 31.

    A range left out (None) is [-3, 3], widened where needed so that every start, every
    point reached (of a trajectory that did not diverge) and every predicted fixed point
    is in view (:func:`fit_window`); a range given is used as it is.
    """
    _check_field_options(system, a1_range, a2_range, grid)
    runs = trajectory_points(system, starts, t_max)
    fitted = fit_window(landmarks(runs))
    a1_range = fitted[0] if a1_range is None else tuple(a1_range)
    a2_range = fitted[1] if a2_range is None else tuple(a2_range)
    fig, ax = _figure(ax)
    _draw_arrows(fig, ax, system, a1_range, a2_range, grid)
    _draw_critical_curves(ax, system, a1_range)
    for y0, traj, pred in runs:
        ax.plot(traj["a1"], traj["a2"], color="black", lw=1.3)
        ax.plot(*y0, "o", mfc="white", mec="black", ms=6)
        ax.plot(*traj.final, "o", color="black", ms=5)
        if pred is not None:
            ax.plot(*pred, "x", color="magenta", ms=9, mew=2)
    _field_axes(ax, system, a1_range, a2_range)
    return fig


def _check_field_options(system: LinearChain, a1_range, a2_range, grid: int) -> None:
    """Refuse what :func:`plot_vector_field` cannot draw, before integrating anything."""
    if not isinstance(system, LinearChain) or system.depth != 2 or not system.rule_spec.fixed_channel:
        raise ValueError("plot_vector_field draws A[1,1,1] with a fixed channel: LinearChain(alpha, beta, c=[c1]) with rule 'srbp' or 'rbp'")
    for name, rng_ in (("a1_range", a1_range), ("a2_range", a2_range)):
        if rng_ is not None and not rng_[0] < rng_[1]:
            raise ValueError(f"{name} must be (low, high) with low < high; got {tuple(rng_)}")
    if grid < 2:
        raise ValueError(f"grid must be >= 2; got {grid}")


def _draw_arrows(fig, ax, system: LinearChain, a1_range, a2_range, grid: int) -> None:
    """Unit arrows along (da_1/dt, da_2/dt) (eq. 23) on a ``grid`` × ``grid`` lattice, coloured
    by dP/dt = g(a)(α − βP) (eq. 24) on a symmetric log scale (dP/dt spans decades)."""
    x, y = np.meshgrid(np.linspace(*a1_range, grid), np.linspace(*a2_range, grid))
    u = np.empty_like(x)
    v = np.empty_like(x)
    dp = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        state = np.array([x[idx], y[idx]])
        u[idx], v[idx] = system.rhs(0.0, state)
        dp[idx] = system.dP_factor(state) * (system.alpha - system.beta * x[idx] * y[idx])
    norm = np.hypot(u, v)
    norm[norm == 0] = 1.0
    lim = float(np.max(np.abs(dp))) or 1.0
    quiv = ax.quiver(
        x, y, u / norm, v / norm, dp, cmap="coolwarm",
        norm=SymLogNorm(linthresh=max(1e-3 * lim, 1e-6), vmin=-lim, vmax=lim),
        angles="xy", pivot="mid", scale=1.15 * grid, width=0.0035, alpha=0.9,
    )
    fig.colorbar(quiv, ax=ax, label="dP/dt  (red: P increases, blue: P decreases)", shrink=0.85)


def _draw_critical_curves(ax, system: LinearChain, a1_range) -> None:
    """The critical hyperbolas a_1a_2 = α/β (eq. 27), solid where they attract and dotted where
    unstable, split by the sign of the transverse eigenvalue (eq. 33); and the parabola
    a_2 = −a_1²/c_1 (eq. 28, dashed) on which dP/dt = 0."""
    c1, r = float(system.c[0]), system.alpha / system.beta
    for branch in (np.linspace(a1_range[0], -1e-3, 800), np.linspace(1e-3, a1_range[1], 800)):
        branch = branch[(branch != 0)]
        a2 = r / branch
        stable = c1 * a2 + branch**2 > 0
        for mask, style in ((stable, "-"), (~stable, ":")):
            xs, ys = np.where(mask, branch, np.nan), np.where(mask, a2, np.nan)
            ax.plot(xs, ys, style, color="darkgreen" if style == "-" else "darkorange", lw=2.6)
    a1s = np.linspace(*a1_range, 400)
    ax.plot(a1s, -a1s**2 / c1, "--", color="black", lw=1.4)


def _field_axes(ax, system: LinearChain, a1_range, a2_range) -> None:
    """Limits, labels, title and the legend of the vector field (below the axes, two columns)."""
    c1 = float(system.c[0])
    ax.set_xlim(*a1_range)
    ax.set_ylim(*a2_range)
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel("$a_1$")
    ax.set_ylabel("$a_2$")
    ax.set_title(f"A[1,1,1] {system.rule.upper()}: $c_1$={c1:g}, α={system.alpha:g}, β={system.beta:g}")
    handles = [
        Line2D([], [], color="darkgreen", lw=2.6, label="critical hyperbola $a_1a_2=α/β$ (attracting)"),
        Line2D([], [], color="darkorange", lw=2.6, ls=":", label="critical hyperbola (unstable)"),
        Line2D([], [], color="black", ls="--", label="parabola $a_2=-a_1^2/c_1$ (dP/dt = 0)"),
        Line2D([], [], color="black", lw=1.3, marker="o", mfc="white", label="trajectory (start)"),
        Line2D([], [], color="magenta", ls="", marker="x", mew=2, label="predicted fixed point (eq. 31)"),
    ]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=2, fontsize=8, frameon=False)


def plot_trajectory(
    traj: Trajectory,
    *,
    discrete: Trajectory | None = None,
    predicted: Sequence[float] | None = None,
    components: Sequence[str] | None = None,
    max_components: int = 10,
    ax=None,
):
    """The state components against time: ODE solid, discrete learning dotted, prediction dashed."""
    fig, ax = _figure(ax, (7.0, 4.5))
    names = list(components) if components is not None else list(traj.names[:max_components])
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, name in enumerate(names):
        col = colors[k % len(colors)]
        ax.plot(traj.t, traj[name], color=col, lw=1.8, label=name)
        if discrete is not None:
            ax.plot(discrete.t, discrete[name], ":", color=col, lw=2.2)
        if predicted is not None:
            ax.axhline(float(predicted[traj.names.index(name)]), color=col, ls="--", lw=0.9, alpha=0.8)
    ax.set_xlabel("t  (= η · steps for the discrete learning)")
    ax.set_ylabel("weights")
    _line_legend(ax, discrete is not None, "predicted fixed point" if predicted is not None else None)
    if len(names) < len(traj.names):
        ax.set_title(f"first {len(names)} of {len(traj.names)} components")
    return fig


def plot_error(traj: Trajectory, *, discrete: Trajectory | None = None, reference: float | None = None, ax=None):
    """Excess error E − min E along the trajectory (log scale).

    ``reference``: the excess error of the limit when that limit is not a global minimum
    (a bottleneck, a trivial fixed point); the panel then shows |E − E(limit)|, which goes
    to 0 as the trajectory converges, instead of E − min E, which would stay flat.
    """
    fig, ax = _figure(ax, (7.0, 4.0))

    def curve(t: Trajectory) -> np.ndarray:
        err = t.error()
        return err if reference is None else np.abs(err - reference)

    err = curve(traj)
    # Below ~1e-16 of the initial error only round-off is left: clip there.
    floor = max(float(np.max(err)), 1e-300) * 1e-16
    ax.semilogy(traj.t, np.maximum(err, floor), color="black", lw=1.8, label="ODE")
    if discrete is not None:
        ax.semilogy(discrete.t, np.maximum(curve(discrete), floor), ":", color="tab:red", lw=2.0, label="minibatch learning")
    ax.set_ylim(bottom=floor / 3)
    ax.set_xlabel("t")
    ax.set_ylabel("E − min E" if reference is None else "|E − E(limit)|")
    if reference is not None:
        ax.set_title(f"the limit is not a global minimum: E(limit) − min E = {reference:.4g}", fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def plot_product(traj: Trajectory, *, discrete: Trajectory | None = None, target: np.ndarray | None = None, max_entries: int = 12, ax=None):
    """The entries of the input-output map P = A_L⋯A_1 against time (ODE solid, minibatch
    learning dotted) and, dashed, ``target`` (e.g. the least-squares map Σ_TIΣ_II⁻¹ that
    C_1P approaches by paper 1 Theorem 8)."""
    fig, ax = _figure(ax, (7.0, 4.5))
    p = traj.product()
    shape = np.shape(traj.system.product(traj.y[0]))
    names = [f"P[{i},{j}]" for i in range(shape[0]) for j in range(shape[1])][:max_entries]
    disc = discrete.product() if discrete is not None else None
    flat_target = None if target is None else np.ravel(target)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, name in enumerate(names):
        col = colors[k % len(colors)]
        ax.plot(traj.t, p[:, k], color=col, lw=1.8, label=name)
        if disc is not None:
            ax.plot(discrete.t, disc[:, k], ":", color=col, lw=2.2)
        if flat_target is not None:
            ax.axhline(float(flat_target[k]), color=col, ls="--", lw=0.9, alpha=0.8)
    ax.set_xlabel("t  (= η · steps for the discrete learning)")
    ax.set_ylabel(r"entries of P = $A_L \cdots A_1$")
    _line_legend(ax, disc is not None, "$P^* = Σ_{TI}Σ_{II}^{-1}$" if flat_target is not None else None)
    return fig


def plot_summary(
    traj: Trajectory,
    *,
    discrete: Trajectory | None = None,
    predicted: Sequence[float] | None = None,
    title: str = "",
    reference: float | None = None,
    product_target: np.ndarray | None = None,
):
    """Two panels: :func:`plot_trajectory` (or, given ``product_target``, :func:`plot_product`)
    above :func:`plot_error` (``reference`` as there)."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9.0, 8.0), layout="constrained", height_ratios=(3, 2))
    if product_target is not None:
        plot_product(traj, discrete=discrete, target=product_target, ax=top)
    else:
        plot_trajectory(traj, discrete=discrete, predicted=predicted, ax=top)
    plot_error(traj, discrete=discrete, reference=reference, ax=bottom)
    if title:
        fig.suptitle(title)
    return fig


def plot_phase(
    trajectories: Sequence[Trajectory],
    x: str,
    y: str,
    *,
    predicted: Sequence[Sequence[float] | None] | None = None,
    title: str = "",
    ax=None,
):
    """Trajectories of one system projected on the plane of components ``x`` and ``y``.

    Hollow circle: start; dot: the state reached; magenta cross: the predicted fixed point
    (``None`` where the theory gives none).  When ``(x, y)`` is ``(a1, a2)`` of a system
    whose product is P = a1·a2 (A[1,1,1] in every rule, STDP included), the critical
    hyperbolas a1a2 = α/β are drawn in green.
    """
    if not trajectories:
        raise ValueError("plot_phase needs at least one trajectory")
    system = trajectories[0].system
    for name in (x, y):
        if name not in trajectories[0].names:
            raise ValueError(f"no component {name!r}; components are {', '.join(trajectories[0].names)}")
    fig, ax = _figure(ax)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    i, j = trajectories[0].names.index(x), trajectories[0].names.index(y)
    for k, traj in enumerate(trajectories):
        col = colors[k % len(colors)]
        ax.plot(traj.y[:, i], traj.y[:, j], color=col, lw=1.4)
        ax.plot(traj.y[0, i], traj.y[0, j], "o", mfc="white", mec=col, ms=6)
        ax.plot(traj.final[i], traj.final[j], "o", color=col, ms=5)
        if predicted is not None and predicted[k] is not None:
            ax.plot(predicted[k][i], predicted[k][j], "x", color="magenta", ms=9, mew=2)
    if (x, y) == ("a1", "a2") and hasattr(system, "alpha") and getattr(system, "sizes", None) == (1, 1, 1):
        r = system.alpha / system.beta
        (lo, hi), ylim = ax.get_xlim(), ax.get_ylim()  # keep the view of the trajectories
        for branch in (np.linspace(lo, -1e-3, 400), np.linspace(1e-3, hi, 400)):
            if branch[0] < branch[-1]:
                ax.plot(branch, r / branch, color="darkgreen", lw=1.0, alpha=0.6)
        ax.set_xlim(lo, hi)
        ax.set_ylim(*ylim)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    handles = [
        Line2D([], [], color="black", lw=1.4, marker="o", mfc="white", label="trajectory (start)"),
        Line2D([], [], color="black", ls="", marker="o", label="state reached"),
        Line2D([], [], color="magenta", ls="", marker="x", mew=2, label="predicted fixed point"),
    ]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def save(fig, path: str | Path, *, dpi: int = 120) -> Path:
    """Write ``fig`` as PNG (creating parent folders) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _line_legend(ax, discrete: bool, target: str | None) -> None:
    """The weight panel's legend: each curve's colour, then the line styles (ODE solid,
    minibatch learning dotted, the predicted limit dashed); outside the axes, where with
    many weights an inside legend would hide curves."""
    extra = [Line2D([], [], color="black", lw=1.8, label="ODE")]
    if discrete:
        extra.append(Line2D([], [], color="black", ls=":", lw=2.2, label="minibatch learning"))
    if target is not None:
        extra.append(Line2D([], [], color="black", ls="--", lw=0.9, label=target))
    ax.legend(handles=ax.get_legend_handles_labels()[0] + extra, fontsize=8, loc="upper left",
              bbox_to_anchor=(1.01, 1.0), frameon=False)
