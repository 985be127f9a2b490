"""Paired comparison of two runs, for prompt probing.

Two runs are comparable episode by episode when they played the same users with the same
episode seeds (same ``seed``, ``split_seed`` and user counts): then the simulated user and
the starting history of each pair are identical, and what differs is the policy (for
instance a prompt edit). Each metric's difference ``B - A`` gets a paired bootstrap
interval and a paired permutation p-value (:func:`billp.evaluation.bootstrap.paired_comparison`).
The template and config differences come from the runs' manifests and ``config.toml``.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from billp.evaluation.bootstrap import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    PairedResult,
    paired_comparison,
)
from billp.evaluation.metrics import METRICS, EpisodeTable, run_features, statistic_for
from billp.records import EpisodeRecord
from billp.records.read import RunData, flatten

SIGNIFICANCE = 0.05
"""p-values below this are highlighted."""
DIFF_CONTEXT_LINES = 2
"""Unchanged lines shown around each template change."""
PATH_FIELDS: frozenset[str] = frozenset({"output_dir", "memory.dir", "progress", "llm.cache_dir"})
"""Config fields left out of the config diff: where a run wrote, not what it did."""


class PairingError(ValueError):
    """The two runs cannot be compared pair by pair (the message says why)."""


@dataclass
class TemplateDiff:
    name: str
    hash_a: str | None
    hash_b: str | None
    diff: str


@dataclass
class Comparison:
    """Everything ``compare`` reports."""

    run_a: RunData
    run_b: RunData
    phase: str
    pairs: int
    results: dict[str, PairedResult]
    templates: list[TemplateDiff]
    config: list[tuple[str, Any, Any]]
    manifest: list[tuple[str, Any, Any]]
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_a": str(self.run_a.path),
            "run_b": str(self.run_b.path),
            "phase": self.phase,
            "pairs": self.pairs,
            "difference": "B - A",
            "metrics": {name: r.as_dict() for name, r in self.results.items()},
            "templates": [
                {"name": t.name, "hash_a": t.hash_a, "hash_b": t.hash_b, "diff": t.diff}
                for t in self.templates
            ],
            "config": [{"key": k, "a": a, "b": b} for k, a, b in self.config],
            "manifest": [{"key": k, "a": a, "b": b} for k, a, b in self.manifest],
            "warnings": self.warnings,
        }


def pair_episodes(
    a: list[EpisodeRecord], b: list[EpisodeRecord], allow_seed_mismatch: bool
) -> tuple[list[EpisodeRecord], list[EpisodeRecord], list[str]]:
    """Episodes of ``a`` and ``b`` matched by (phase, user), with warnings.

    Raises:
        PairingError: no user in common, or paired episodes have different seeds (unless
            ``allow_seed_mismatch``).
    """
    by_a = {(e.phase, e.user_id): e for e in a}
    by_b = {(e.phase, e.user_id): e for e in b}
    shared = sorted(set(by_a) & set(by_b), key=lambda k: (k[0], by_a[k].index))
    warnings: list[str] = []
    if not shared:
        raise PairingError(
            f"the runs share no user: A played {len(by_a)} episodes, B {len(by_b)}, "
            "none for the same user (same data.split_seed and user counts are needed)"
        )
    only_a, only_b = len(by_a) - len(shared), len(by_b) - len(shared)
    if only_a or only_b:
        warnings.append(
            f"users differ: {only_a} only in A, {only_b} only in B; "
            f"comparing the {len(shared)} shared users"
        )
    mismatched = [k for k in shared if by_a[k].seed != by_b[k].seed]
    if mismatched:
        message = (
            f"{len(mismatched)} of {len(shared)} paired episodes have different seeds "
            f"(e.g. user {mismatched[0][1]}: {by_a[mismatched[0]].seed} vs "
            f"{by_b[mismatched[0]].seed}); run both with the same --seed"
        )
        if not allow_seed_mismatch:
            raise PairingError(message + ", or pass --allow-seed-mismatch")
        warnings.append(message + "; pairing by user anyway (--allow-seed-mismatch)")
    return [by_a[k] for k in shared], [by_b[k] for k in shared], warnings


def diff_templates(a: RunData, b: RunData) -> list[TemplateDiff]:
    """Templates whose hash differs, with a unified diff of their sources."""
    hashes_a, hashes_b = a.templates(), b.templates()
    sources_a, sources_b = a.template_sources(), b.template_sources()
    out = []
    for name in sorted(set(hashes_a) | set(hashes_b)):
        ha, hb = hashes_a.get(name), hashes_b.get(name)
        if ha == hb:
            continue
        lines = difflib.unified_diff(
            sources_a.get(name, "").splitlines(keepends=True),
            sources_b.get(name, "").splitlines(keepends=True),
            fromfile=f"A/{name}",
            tofile=f"B/{name}",
            n=DIFF_CONTEXT_LINES,
        )
        out.append(TemplateDiff(name, ha, hb, "".join(lines)))
    return out


def diff_mappings(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Dotted keys whose values differ (a missing key shows as ``None``)."""
    fa, fb = flatten(a), flatten(b)
    return [(k, fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]


def _manifest_view(run: RunData) -> dict[str, Any]:
    m = run.manifest
    return {
        "llm": m.get("llm", {}),
        "git_commit": m.get("git_commit"),
        "versions": m.get("versions", {}),
    }


def compare_runs(
    a: RunData,
    b: RunData,
    *,
    phase: str = "test",
    allow_seed_mismatch: bool = False,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Comparison:
    """Paired metric differences ``B - A`` and what differs between the two runs.

    Raises:
        PairingError: the runs use different datasets, share no user or (unless allowed)
            differ in episode seeds.
    """
    if a.config.data != b.config.data:
        raise PairingError(
            "the runs use different data configs, so their users and items differ: "
            + "; ".join(
                f"data.{k}: {x!r} vs {y!r}"
                for k, x, y in diff_mappings(
                    a.config.data.model_dump(mode="json"), b.config.data.model_dump(mode="json")
                )
            )
        )
    eps_a, eps_b, warnings = pair_episodes(
        a.phase_episodes(phase), b.phase_episodes(phase), allow_seed_mismatch
    )
    if a.cap != b.cap:
        warnings.append(f"step caps differ: env.max_steps {a.cap} vs {b.cap}")
    joint = EpisodeTable(eps_a + eps_b, run_features(a))
    pairs = len(eps_a)
    results = {
        spec.name: paired_comparison(
            statistic_for(joint, spec),
            pairs,
            resamples=resamples,
            permutations=resamples,
            seed=seed,
        )
        for spec in METRICS
    }
    return Comparison(
        run_a=a,
        run_b=b,
        phase=phase,
        pairs=pairs,
        results=results,
        templates=diff_templates(a, b),
        config=[
            row
            for row in diff_mappings(a.config_dict(), b.config_dict())
            if row[0] not in PATH_FIELDS
        ],
        manifest=diff_mappings(_manifest_view(a), _manifest_view(b)),
        warnings=warnings,
    )


def _fmt(value: float | None, digits: int) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}f}"


def print_comparison(result: Comparison, console: Console | None = None) -> None:
    """The paired metric table, then the template and config differences."""
    console = console or Console()
    console.print(f"A: {result.run_a.path}\nB: {result.run_b.path}")
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    table = Table(
        title=f"paired difference B - A over {result.pairs} episode pairs "
        f"(phase {result.phase}; 95% paired bootstrap CI; permutation p-value)",
        title_justify="left",
    )
    for column in ("metric", "A", "B", "B - A", "95% CI", "p"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for spec in METRICS:
        r = result.results[spec.name]
        d = spec.digits
        ci = (
            f"[{r.difference.low:+.{d}f}, {r.difference.high:+.{d}f}]"
            if math.isfinite(r.difference.low)
            else "-"
        )
        diff = f"{r.difference.mean:+.{d}f}" if math.isfinite(r.difference.mean) else "-"
        p = f"{r.p_value:.3f}" if math.isfinite(r.p_value) else "-"
        if math.isfinite(r.p_value) and r.p_value < SIGNIFICANCE:
            p = f"[bold]{p}[/bold]"
        table.add_row(spec.label, _fmt(r.a, d), _fmt(r.b, d), diff, ci, p)
    console.print(table)
    if result.templates:
        console.print("[bold]templates that differ[/bold]")
        for t in result.templates:
            console.print(f"{t.name}: {t.hash_a} -> {t.hash_b}")
            if t.diff:
                console.print(Syntax(t.diff, "diff", word_wrap=True))
    else:
        console.print("templates: identical")
    console.print(f"(not compared: {', '.join(sorted(PATH_FIELDS))})")
    for title, rows in (("config", result.config), ("manifest", result.manifest)):
        if not rows:
            console.print(f"{title}: identical")
            continue
        diff_table = Table(title=f"{title} differences", title_justify="left")
        for column in ("key", "A", "B"):
            diff_table.add_column(column, overflow="fold")
        for key, va, vb in rows:
            diff_table.add_row(key, json.dumps(va), json.dumps(vb))
        console.print(diff_table)


def write_comparison(result: Comparison, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.as_dict(), indent=2) + "\n", encoding="utf-8")
