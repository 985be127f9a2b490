"""PNG plots of an evaluation (matplotlib, Agg canvas; no display needed).

Figures are built with :class:`matplotlib.figure.Figure` directly, never through pyplot,
so nothing depends on a global backend or state.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from billp.evaluation.series import SeriesResult

PLOT_DPI = 110
FIG_WIDTH_IN = 7.5
FIG_HEIGHT_IN = 4.2
PANEL_HEIGHT_IN = 2.6
MAX_GENRE_PANELS = 12
"""At most this many series get a genre-mix panel (the first ones, in table order)."""
NORMAL_95 = 1.96
"""Half-width of a 95 % normal interval in standard errors (reward-per-step band)."""
BAND_ALPHA = 0.2
GENRE_COLORMAP = "tab20"

PLOT_FILES: dict[str, str] = {
    "reward_per_step": "reward_per_step.png",
    "survival": "survival.png",
    "length_histogram": "length_histogram.png",
    "genre_mix": "genre_mix.png",
}


def _figure(height: float = FIG_HEIGHT_IN) -> Figure:
    fig = Figure(figsize=(FIG_WIDTH_IN, height), dpi=PLOT_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def step_rewards(series: SeriesResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per step t = 1..T: mean reward, standard error and episodes still running at t."""
    rewards = [ep.rewards for ep in series.table.episodes]
    horizon = max((len(r) for r in rewards), default=0)
    grid = np.full((len(rewards), horizon), np.nan)
    for row, r in enumerate(rewards):
        grid[row, : len(r)] = r
    present = np.isfinite(grid)
    counts = present.sum(axis=0)
    filled = np.where(present, grid, 0.0)
    mean = filled.sum(axis=0) / np.maximum(counts, 1)
    squares = (np.where(present, grid - mean[None, :], 0.0) ** 2).sum(axis=0)
    variance = np.divide(squares, counts - 1, out=np.full(horizon, np.nan), where=counts > 1)
    se = np.sqrt(variance) / np.sqrt(np.maximum(counts, 1))
    return mean, se, counts


def reward_per_step(series: Sequence[SeriesResult]) -> Figure:
    fig = _figure()
    ax = fig.add_subplot()
    for s in series:
        mean, se, _counts = step_rewards(s)
        t = np.arange(1, len(mean) + 1)
        line = ax.plot(t, mean, marker=".", label=s.label)[0]
        ok = np.isfinite(se)
        ax.fill_between(
            t[ok],
            (mean - NORMAL_95 * se)[ok],
            (mean + NORMAL_95 * se)[ok],
            color=line.get_color(),
            alpha=BAND_ALPHA,
            linewidth=0,
        )
    ax.set_xlabel("step t")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("mean reward at step t")
    ax.set_title("Reward per step (episodes still running at t; band: 95% normal CI)")
    _legend(ax, series)
    return fig


def survival(series: Sequence[SeriesResult]) -> Figure:
    fig = _figure()
    ax = fig.add_subplot()
    for s in series:
        c = s.survival
        line = ax.step(c.times, c.survival, where="post", label=s.label)[0]
        ax.fill_between(
            c.times,
            s.survival_low,
            s.survival_high,
            step="post",
            color=line.get_color(),
            alpha=BAND_ALPHA,
            linewidth=0,
        )
    ax.set_xlabel("recommendations t")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("S(t): share still engaged after t")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Kaplan-Meier survival (step cap = censoring; band: 95% bootstrap)")
    _legend(ax, series)
    return fig


def length_histogram(series: Sequence[SeriesResult]) -> Figure:
    fig = _figure()
    ax = fig.add_subplot()
    cap = max((s.cap for s in series), default=1)
    bins = [b - 0.5 for b in range(cap + 2)]
    for s in series:
        ax.hist(
            s.table.per_episode["len"], bins=bins, histtype="step", linewidth=1.6, label=s.label
        )
    ax.set_xlabel("Len (accepted recommendations)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("episodes")
    ax.set_title("Episode length")
    _legend(ax, series)
    return fig


def genre_shares(series: SeriesResult) -> np.ndarray:
    """``[T, n_genres]``: the genre mix of the items recommended at each step t = 1..T."""
    features = series.table.features
    weights = features.genre_weights()
    horizon = max((len(ep.items) for ep in series.table.episodes), default=0)
    mass = np.zeros((horizon, len(features.genres)))
    for ep in series.table.episodes:
        if ep.items:
            mass[: len(ep.items)] += weights[np.asarray(ep.items, dtype=np.int64)]
    totals = mass.sum(axis=1, keepdims=True)
    return np.divide(mass, totals, out=np.zeros_like(mass), where=totals > 0)


def genre_mix(series: Sequence[SeriesResult]) -> Figure:
    shown = list(series)[:MAX_GENRE_PANELS]
    fig = _figure(max(PANEL_HEIGHT_IN * max(len(shown), 1), FIG_HEIGHT_IN))
    if not shown:
        return fig
    genres = shown[0].table.features.genres
    axes = fig.subplots(len(shown), 1, squeeze=False, sharex=True)[:, 0]
    colors = _colors(len(genres))
    used: dict[int, Artist] = {}
    for ax, s in zip(axes, shown, strict=True):
        shares = genre_shares(s)
        t = np.arange(1, shares.shape[0] + 1)
        bottom = np.zeros(shares.shape[0])
        for j in range(len(genres)):
            if shares.shape[0] and shares[:, j].any():
                bars = ax.bar(t, shares[:, j], bottom=bottom, width=1.0, color=colors[j])
                used[j] = bars.patches[0]
                bottom = bottom + shares[:, j]
        ax.set_ylim(0, 1)
        ax.set_ylabel("genre share")
        ax.set_title(s.label, fontsize="small", loc="left")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1].set_xlabel("step t")
    order = sorted(used)
    fig.legend(
        [used[j] for j in order],
        [genres[j] for j in order],
        loc="outside right upper",
        fontsize="x-small",
        frameon=False,
    )
    fig.suptitle("Genre mix of the recommendations at each step")
    return fig


def _colors(n: int) -> list[tuple[float, float, float, float]]:
    from matplotlib import colormaps

    cmap = colormaps[GENRE_COLORMAP]
    return [cmap(j % cmap.N) for j in range(n)]


def _legend(ax: object, series: Sequence[SeriesResult]) -> None:
    if series:
        ax.legend(fontsize="small")  # type: ignore[attr-defined]


def all_figures(series: Sequence[SeriesResult]) -> dict[str, Figure]:
    """Every plot, by name (see :data:`PLOT_FILES`)."""
    return {
        "reward_per_step": reward_per_step(series),
        "survival": survival(series),
        "length_histogram": length_histogram(series),
        "genre_mix": genre_mix(series),
    }


def png_bytes(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def write_plots(series: Sequence[SeriesResult], out_dir: Path) -> dict[str, Path]:
    """Write every plot as PNG into ``out_dir``; returns name -> path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, fig in all_figures(series).items():
        path = out_dir / PLOT_FILES[name]
        fig.savefig(path, format="png")
        paths[name] = path
    return paths
