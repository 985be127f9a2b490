"""The output of eval/learning_curve.py: the markdown tables and the PNG plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curve_results import MEMORYLESS, METRICS

LABELS = {"length": "Len", "total_reward": "R_traj"}
LOOP_COLUMNS = (
    ("reflection_retrieval_rate", "refl."),
    ("hint_rate", "hints"),
    ("hint_follow_rate", "follow"),
    ("critic_reuse_rate", "V reuse"),
    ("minority_advantage_share", "A minority"),
    ("critic_spearman", "V~G rho"),
)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _cell(interval: dict[str, Any]) -> str:
    mean, low, high = interval["mean"], interval["ci_low"], interval["ci_high"]
    if mean is None:
        return "-"
    if low is None or high is None:
        return f"{mean:.2f}"
    return f"{mean:.2f} [{low:.2f}, {high:.2f}]"


def _loop_header() -> str:
    return " | ".join(label for _, label in LOOP_COLUMNS) + " |"


def _loop_cells(loop: dict[str, Any]) -> str:
    return " | ".join(_fmt(loop.get(key)) for key, _ in LOOP_COLUMNS) + " |"


TITLE = "Learning curves (test phase vs train users seen)"


def markdown(
    results: list[dict[str, Any]],
    caption: str,
    comparisons: list[dict[str, Any]] | None = None,
    figures: dict[str, dict[str, Any]] | None = None,
) -> str:
    """The tables of a learning-curve result (the provenance header comes before them); a
    variant column when the curves have variants."""
    varied = any(r.get("variant") for r in results)
    head = "| world | variant | agent | seed |" if varied else "| world | agent | seed |"
    align = "|---|---|---|---:|" if varied else "|---|---|---:|"

    def key(result: dict[str, Any]) -> str:
        variant = f" {result.get('variant', '')} |" if varied else ""
        return f"| {result['world']} |{variant} {result['agent']} | {result['seed']} |"

    lines = [
        caption,
        "",
        "## Test Len and R_traj after N train users (mean [95 % CI] over the same test users)",
        "",
        f"{head} N | Len | R_traj | " + _loop_header(),
        f"{align}---:|---:|---:|" + "---:|" * len(LOOP_COLUMNS),
    ]
    for result in results:
        for point, entry in result["points"].items():
            loop = entry["loop"]
            lines.append(
                f"{key(result)} {point} | "
                f"{_cell(entry['length'])} | {_cell(entry['total_reward'])} | " + _loop_cells(loop)
            )
    lines += [
        "",
        "## Paired difference N_max - 0 over the same test users",
        "",
        f"{head} users | ΔLen [95 % CI] | p | ΔR_traj [95 % CI] | p |",
        f"{align}---:|---:|---:|---:|---:|",
    ]
    for result in results:
        gain = result["gain"]
        if not gain:
            continue
        lines.append(f"{key(result)} {gain['length']['pairs']} | {_diff_cells(gain)} |")
    if comparisons:
        lines += [
            "",
            "## Paired difference between agents at their last points, over the same test users",
            "",
            f"{head} N | other agent | N | users | ΔLen [95 % CI] | p | ΔR_traj [95 % CI] | p |",
            f"{align}---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        for c in comparisons:
            lines.append(
                f"{key(c)} {c['point']} | {c['other']} | {c['other_point']} | "
                f"{c['length']['pairs']} | {_diff_cells(c)} |"
            )
    if figures and len({r["seed"] for r in results}) > 1:
        lines += [
            "",
            "## Seeds pooled (each seed's users paired within it)",
            "",
            "| figure | seeds | users | ΔLen [95 % CI] | p | ΔR_traj [95 % CI] | p |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for name, entry in figures.items():
            seeds = ", ".join(map(str, entry["seeds"]))
            rows = [(f"{name}: N_max - 0", entry.get("gain"))]
            rows += [(f"{name} - {other}", d) for other, d in entry.get("vs", {}).items()]
            for label, diffs in rows:
                if diffs:
                    lines.append(
                        f"| {label} | {seeds} | {diffs['length']['pairs']} | {_diff_cells(diffs)} |"
                    )
    lines += [
        "",
        "## The learning loop during each train pass",
        "",
        f"{head} episodes | steps | " + _loop_header(),
        f"{align}---:|---:|" + "---:|" * len(LOOP_COLUMNS),
    ]
    for result in results:
        loop = result["train_loop"]
        if loop:
            lines.append(
                f"{key(result)} {loop.get('episodes')} | {loop.get('steps')} | " + _loop_cells(loop)
            )
    lines += [
        "",
        "Loop columns: refl. = share of episodes whose Planner saw a reflection; hints = share "
        "of steps with an actor-memory hint; follow = share of hinted steps whose choice was "
        "an encouraged item; V reuse = share of V(s) taken from critic memory; A minority = "
        "share of the rarer advantage sign; V~G rho = Spearman of V(s) with the realised "
        "discounted-average return.",
        "",
    ]
    return "\n".join(lines)


def _diff_cells(diffs: dict[str, Any]) -> str:
    """Each metric's paired difference with its interval and p-value."""
    cells = []
    for metric in METRICS:
        g = diffs[metric]
        cells.append(
            f"{_fmt(g['diff'])} [{_fmt(g['diff_ci_low'])}, {_fmt(g['diff_ci_high'])}] | "
            f"{_fmt(g['p_value'], 3)}"
        )
    return " | ".join(cells)


def _label(result: dict[str, Any]) -> str:
    variant = f" {result['variant']}" if result.get("variant") else ""
    return f"{result['agent']}{variant} (seed {result['seed']})"


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    worlds = sorted({r["world"] for r in results})
    fig, axes = plt.subplots(
        len(worlds), 2, figsize=(11, 4 * len(worlds)), squeeze=False, constrained_layout=True
    )
    for row, world in enumerate(worlds):
        for col, metric in enumerate(METRICS):
            ax = axes[row][col]
            for result in (r for r in results if r["world"] == world):
                points = sorted(result["points"])
                means = [result["points"][p][metric]["mean"] for p in points]
                lows = [
                    _or(result["points"][p][metric]["ci_low"], m)
                    for p, m in zip(points, means, strict=True)
                ]
                highs = [
                    _or(result["points"][p][metric]["ci_high"], m)
                    for p, m in zip(points, means, strict=True)
                ]
                yerr = [
                    [m - lo for m, lo in zip(means, lows, strict=True)],
                    [hi - m for m, hi in zip(means, highs, strict=True)],
                ]
                style = "--" if result["agent"] in MEMORYLESS else "-"
                ax.errorbar(
                    points,
                    means,
                    yerr=yerr,
                    fmt=style + "o",
                    capsize=3,
                    label=_label(result),
                )
            ax.set_title(f"{world}: test {LABELS[metric]}")
            ax.set_xlabel("train users seen (N)")
            ax.set_ylabel(LABELS[metric])
            ax.grid(alpha=0.3)
        axes[row][0].legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
