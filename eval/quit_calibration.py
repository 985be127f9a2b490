"""Calibrate the quit rule's similarity part on real behaviour of train users.

    python eval/quit_calibration.py [--max-items 20] [--goal 0.80] [--json FILE [--markdown FILE]]

A simulated user quits after an item too similar to one of the last W recommendations
(genre-set Jaccard >= threshold) or after a low reward. A faithful world lets most real
behaviour through, so this script replays the held-out sequences of the *train* users (never
test users) and measures, for each (W, threshold), the share of real next items that pass the
similarity check. The low-reward part rejects, in a perfect world, the real items rated below
``env.quit_reward_threshold``; an item passes both parts with probability about
``similarity acceptance x share rated at or above the threshold``.

Choice: the strictest rule (the one rejecting most real next items) whose expected overall
acceptance still meets ``--goal``; ties go to the longer window. The fidelity report then checks
the chosen rule on the test users with each world's own rewards.

``--json`` writes the numbers with their provenance block (:mod:`pipeline.provenance`);
``--markdown`` writes the report rendered from that JSON alone (:func:`render`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from pipeline.provenance import Provenance, collect, command_line, header_markdown, write_results

from billp.config import DataConfig, EnvConfig
from billp.data import load_dataset
from billp.envs.replay import heldout_sequence, similarity_acceptance

WINDOWS = (1, 2, 3, 4, 5)
THRESHOLDS = (1 / 3, 1 / 2, 3 / 5, 2 / 3, 3 / 4, 4 / 5, 1.0)
"""Candidate genre-Jaccard thresholds: the values Jaccard takes on small genre sets (1.0: the
same genre set, BiLLP's rule)."""


def render(data: dict[str, Any]) -> str:
    """The markdown report, from the results JSON alone."""
    prov = Provenance.model_validate(data["provenance"])
    thresholds, rated_ok = data["thresholds"], data["rated_ok"]
    goal = data["settings"]["goal"]
    lines = [
        header_markdown("Quit-rule calibration on real behaviour (train users)", prov),
        f"{data['users']} train users, their first {data['settings']['max_items']} held-out "
        f"items in real order: {data['judged']} real next items judged. Share of these items "
        f"rated at or above the low-reward threshold ({data['quit_reward_threshold']:g}): "
        f"{rated_ok:.3f}.",
        "",
        "Share of real next items that pass the too-similar check (genre Jaccard with any of "
        "the last W items below the threshold):",
        "",
        "| W | " + " | ".join(f">= {t:.3g}" for t in thresholds) + " |",
        "|---|" + "---:|" * len(thresholds),
    ]
    for row in data["acceptance"]:
        cells = [f"{a:.3f}" for a in row["shares"]]
        lines.append(f"| {row['window']} | " + " | ".join(cells) + " |")
    lines.append("")
    chosen, billp = data["chosen"], data["billp_rule"]
    if chosen is None:
        lines.append(f"No rule reaches the goal {goal:.2f}.")
    else:
        lines.append(
            f"Chosen: W = {chosen['window']}, threshold = {chosen['threshold']:.3g}: it passes "
            f"{chosen['share']:.3f} of real next items, so about {chosen['share'] * rated_ok:.3f} "
            f"overall with the low-reward part (goal {goal:.2f}). BiLLP's rule (W = "
            f"{billp['window']}, the same genre set) passes {billp['share']:.3f}, about "
            f"{billp['share'] * rated_ok:.3f} overall."
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-items", type=int, default=20, help="Held-out items per user.")
    parser.add_argument("--goal", type=float, default=0.80, help="Overall acceptance goal.")
    parser.add_argument("--markdown", type=Path, default=None, help="Also write this file.")
    parser.add_argument("--json", type=Path, default=None, help="Write the numbers here.")
    args = parser.parse_args(argv)
    if not 0 < args.goal <= 1 or args.max_items < 2:
        print("error: --goal must be in (0, 1] and --max-items >= 2", file=sys.stderr)
        return 2
    if args.markdown is not None and args.json is None:
        print("error: --markdown is rendered from the JSON: give --json too", file=sys.stderr)
        return 2
    start = time.monotonic()
    dataset = load_dataset(DataConfig())
    env = EnvConfig()
    users = [int(u) for u in dataset.split.train_users]
    ratings = np.concatenate(
        [heldout_sequence(dataset, u, args.max_items)[1] for u in users]
    ).astype(np.float64)
    rated_ok = float(np.mean(ratings >= env.quit_reward_threshold))
    grid: dict[tuple[int, float], float] = {}
    judged = 0
    for window in WINDOWS:
        for threshold in THRESHOLDS:
            accepted, judged = similarity_acceptance(
                dataset, users, window, threshold, args.max_items
            )
            grid[(window, threshold)] = accepted / judged
    meeting = [(1 - acc, w, t) for (w, t), acc in grid.items() if acc * rated_ok >= args.goal]
    chosen = None
    if meeting:
        _, window, threshold = max(meeting, key=lambda m: (m[0], m[1]))
        chosen = {"window": window, "threshold": threshold, "share": grid[(window, threshold)]}
    command = command_line("quit_calibration.py", argv)
    data: dict[str, Any] = {
        "provenance": collect(
            command,
            time.monotonic() - start,
            model="none (no LLM)",
            users="all train users",
        ).model_dump(),
        "settings": {"max_items": args.max_items, "goal": args.goal},
        "users": len(users),
        "judged": judged,
        "quit_reward_threshold": env.quit_reward_threshold,
        "rated_ok": rated_ok,
        "thresholds": list(THRESHOLDS),
        "acceptance": [
            {"window": w, "shares": [grid[(w, t)] for t in THRESHOLDS]} for w in WINDOWS
        ],
        "chosen": chosen,
        "billp_rule": {"window": 4, "threshold": 1.0, "share": grid[(4, 1.0)]},
    }
    if args.json is not None:
        write_results(args.json, args.markdown, data, render)
    print(render(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
