"""Calibrate the memory thresholds on the real similarity of memory keys.

    python eval/memory_similarity.py [--users 200] [--pairs 400] [--embedder minilm]

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
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from billp.config import DataConfig
from billp.data import load_dataset
from billp.memory import make_embedder

WINDOW = 10
THRESHOLDS = (0.7, 0.75, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.99)


def state_text(labels: list[str]) -> str:
    """The memory key of a state, as ``BiLLPPolicy.state_text`` writes it (10 = the default
    ``agent.state_window``)."""
    return f"The user's recent movies are [{'; '.join(labels)}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200, help="Train users sampled.")
    parser.add_argument("--pairs", type=int, default=300, help="Pairs per overlap k.")
    parser.add_argument("--embedder", default="minilm", choices=["minilm", "hash"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
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
    print(f"embedder {args.embedder}; {len(users)} train users; {args.pairs} pairs per k\n")
    print(
        "| shared items k/10 | p5 | p25 | median | p75 | p95 | "
        + " | ".join(f">= {t}" for t in THRESHOLDS)
        + " |"
    )
    print("|---:|---:|---:|---:|---:|---:|" + "---:|" * len(THRESHOLDS))
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
        q = np.percentile(sims, [5, 25, 50, 75, 95])
        above = [float(np.mean(sims >= t)) for t in THRESHOLDS]
        print(
            f"| {shared} | "
            + " | ".join(f"{v:.3f}" for v in q)
            + " | "
            + " | ".join(f"{100 * a:.0f} %" for a in above)
            + " |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
