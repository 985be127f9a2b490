"""Calibrate the memory thresholds on the real similarity of memory keys.

    python eval/memory_similarity.py [--users 200] [--pairs 300] [--embedder minilm]
        [--json FILE [--markdown FILE]]

BiLLP's memories are keyed by the text of a state, "The user's recent movies are
[t1; ...; t10]", embedded by the run's embedder; the actor-memory hints and the critic
memory fire when a stored key is at least a threshold (cosine) away from the current
state. Whether a threshold means "the same situation" depends on the embedder, so this
script measures it: from the *train* users' logs (never test users) it builds pairs of
states that share exactly k of their 10 items (one window, with 10 - k items replaced
by items of another train user's window) and prints, for each k, the distribution of
their cosine similarity, and the share of pairs above each candidate threshold.

A threshold is then read off the table: the critic reuses a stored value only when
states are nearly the same (most pairs sharing >= 8 of 10 items pass, few sharing
<= 6 do); hints come from states that share about half their items or more.

``--json`` writes the table with its provenance block (:mod:`pipeline.provenance`) and, for
each memory threshold's default (``billp.config.memory``), the share of pairs that pass it
at each k; ``--markdown`` writes the report rendered from that JSON alone (:func:`render`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from pipeline.provenance import Provenance, collect, command_line, header_markdown, write_results

from billp.config import DataConfig, MemoryConfig
from billp.data import load_dataset
from billp.memory import make_embedder

WINDOW = 10
THRESHOLDS = (0.7, 0.75, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.99)
PERCENTILES = (5, 25, 50, 75, 95)
DEFAULTS = ("critic_reuse_similarity", "critic_hint_similarity", "actor_min_similarity")
"""The ``memory`` thresholds whose defaults this table calibrates."""


def state_text(labels: list[str]) -> str:
    """The memory key of a state, as ``BiLLPPolicy.state_text`` writes it (10 = the default
    ``agent.state_window``)."""
    return f"The user's recent movies are [{'; '.join(labels)}]"


def render(data: dict[str, Any]) -> str:
    """The markdown report, from the results JSON alone."""
    prov = Provenance.model_validate(data["provenance"])
    settings, thresholds = data["settings"], data["thresholds"]
    lines = [
        header_markdown(
            "Memory thresholds, calibrated on the similarity of real memory keys", prov
        ),
        'Memory keys are state texts, "The user\'s recent movies are [t1; ...; t10]" (10 = the '
        f"default `agent.state_window`). For {data['users']} sampled **train** users, each pair "
        "below takes one user's last 10 items and replaces 10 - k of them with items of another "
        "train user, so that the two states share exactly k items; the table gives the cosine "
        f"similarity of the two keys (embedder `{settings['embedder']}`, up to "
        f"{settings['pairs']} pairs per k, seed {settings['seed']}).",
        "",
        "| shared items k/10 | pairs | "
        + " | ".join(f"p{p}" if p != 50 else "median" for p in data["percentiles"])
        + " | "
        + " | ".join(f">= {t:g}" for t in thresholds)
        + " |",
        "|---:|---:|" + "---:|" * (len(data["percentiles"]) + len(thresholds)),
    ]
    for row in data["rows"]:
        lines.append(
            f"| {row['shared']} | {row['pairs']} | "
            + " | ".join(f"{v:.3f}" for v in row["quantiles"])
            + " | "
            + " | ".join(f"{100 * a:.0f} %" for a in row["above"])
            + " |"
        )
    lines += [
        "",
        "## Today's defaults on this table",
        "",
        "Share of pairs at or above each `memory` threshold's default, by shared items k:",
        "",
        "| field | default | " + " | ".join(f"k = {r['shared']}" for r in data["rows"]) + " |",
        "|---|---:|" + "---:|" * len(data["rows"]),
    ]
    for field, entry in data["defaults"].items():
        shares = [entry["share_by_shared"][str(r["shared"])] for r in data["rows"]]
        lines.append(
            f"| `memory.{field}` | {entry['threshold']:g} | "
            + " | ".join(f"{100 * v:.0f} %" for v in shares)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200, help="Train users sampled.")
    parser.add_argument("--pairs", type=int, default=300, help="Pairs per overlap k.")
    parser.add_argument("--embedder", default="minilm", choices=["minilm", "hash"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="Write the numbers here.")
    parser.add_argument("--markdown", type=Path, default=None, help="Write the report here.")
    args = parser.parse_args(argv)
    if args.markdown is not None and args.json is None:
        print("error: --markdown is rendered from the JSON: give --json too", file=sys.stderr)
        return 2
    start = time.monotonic()
    dataset = load_dataset(DataConfig())
    catalogue = dataset.catalogue
    rng = np.random.default_rng(args.seed)
    users = [int(u) for u in dataset.split.train_users]
    users = [u for u in users if len(dataset.starting_history(u)) >= WINDOW]
    if len(users) < 2:
        print("error: fewer than two train users with a full window", file=sys.stderr)
        return 2
    users = list(rng.choice(users, size=min(args.users, len(users)), replace=False))
    windows = {u: dataset.starting_history(u)[-WINDOW:] for u in users}
    embedder = make_embedder(args.embedder)
    memory = MemoryConfig()
    rows: list[dict[str, Any]] = []
    at_defaults: dict[str, dict[str, float]] = {field: {} for field in DEFAULTS}
    for shared in range(WINDOW, -1, -1):
        left, right = [], []
        for _ in range(args.pairs):
            a, b = rng.choice(users, size=2, replace=False)
            base = list(windows[a])
            other = [i for i in windows[b] if i not in base]
            if len(other) < WINDOW - shared:
                continue
            keep = sorted(rng.choice(WINDOW, size=shared, replace=False).tolist())
            fill = iter(rng.permutation(other)[: WINDOW - shared].tolist())
            mixed = [base[i] if i in keep else next(fill) for i in range(WINDOW)]
            left.append(state_text([catalogue[i].label for i in base]))
            right.append(state_text([catalogue[i].label for i in mixed]))
        if not left:
            continue
        sims = np.sum(embedder.embed(left) * embedder.embed(right), axis=1)
        rows.append(
            {
                "shared": shared,
                "pairs": len(left),
                "quantiles": [float(v) for v in np.percentile(sims, PERCENTILES)],
                "above": [float(np.mean(sims >= t)) for t in THRESHOLDS],
            }
        )
        for field in DEFAULTS:
            at_defaults[field][str(shared)] = float(np.mean(sims >= getattr(memory, field)))
    command = command_line("memory_similarity.py", argv)
    data: dict[str, Any] = {
        "provenance": collect(
            command,
            time.monotonic() - start,
            model=f"embedder {args.embedder} (no LLM)",
            users=f"{len(users)} sampled train users",
        ).model_dump(),
        "settings": {
            "users": args.users,
            "pairs": args.pairs,
            "embedder": args.embedder,
            "seed": args.seed,
        },
        "users": len(users),
        "percentiles": list(PERCENTILES),
        "thresholds": list(THRESHOLDS),
        "rows": rows,
        "defaults": {
            field: {"threshold": getattr(memory, field), "share_by_shared": at_defaults[field]}
            for field in DEFAULTS
        },
    }
    if args.json is not None:
        write_results(args.json, args.markdown, data, render)
    print(render(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
