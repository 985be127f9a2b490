"""Calibrate the quit rule's similarity part on real behaviour of train users.

    python eval/quit_calibration.py [--max-items 20] [--goal 0.80] [--markdown FILE]

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
"""

from __future__ import annotations

import argparse
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from billp.config import DataConfig, EnvConfig
from billp.data import load_dataset
from billp.envs.replay import heldout_sequence, similarity_acceptance

WINDOWS = (1, 2, 3, 4, 5)
THRESHOLDS = (1 / 3, 1 / 2, 3 / 5, 2 / 3, 3 / 4, 4 / 5, 1.0)
"""Candidate genre-Jaccard thresholds: the values Jaccard takes on small genre sets (1.0: the
same genre set, BiLLP's rule)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-items", type=int, default=20, help="Held-out items per user.")
    parser.add_argument("--goal", type=float, default=0.80, help="Overall acceptance goal.")
    parser.add_argument("--markdown", type=Path, default=None, help="Also write this file.")
    args = parser.parse_args(argv)
    if not 0 < args.goal <= 1 or args.max_items < 2:
        print("error: --goal must be in (0, 1] and --max-items >= 2", file=sys.stderr)
        return 2
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
    command = "python eval/quit_calibration.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    lines = [
        "# Quit-rule calibration on real behaviour (train users)",
        "",
        f"Produced {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `{command.strip()}`.",
        "",
        f"{len(users)} train users, their first {args.max_items} held-out items in real order: "
        f"{judged} real next items judged. Share of these items rated at or above the "
        f"low-reward threshold ({env.quit_reward_threshold:g}): {rated_ok:.3f}.",
        "",
        "Share of real next items that pass the too-similar check (genre Jaccard with any of "
        "the last W items below the threshold):",
        "",
        "| W | " + " | ".join(f">= {t:.3g}" for t in THRESHOLDS) + " |",
        "|---|" + "---:|" * len(THRESHOLDS),
    ]
    for window in WINDOWS:
        cells = [f"{grid[(window, t)]:.3f}" for t in THRESHOLDS]
        lines.append(f"| {window} | " + " | ".join(cells) + " |")
    lines.append("")
    if not meeting:
        lines.append(f"No rule reaches the goal {args.goal:.2f}.")
    else:
        _, window, threshold = max(meeting, key=lambda m: (m[0], m[1]))
        expected = grid[(window, threshold)] * rated_ok
        lines += [
            f"Chosen: W = {window}, threshold = {threshold:.3g}: it passes "
            f"{grid[(window, threshold)]:.3f} of real next items, so about {expected:.3f} "
            f"overall with the low-reward part (goal {args.goal:.2f}). BiLLP's rule (W = 4, "
            f"the same genre set) passes {grid[(4, 1.0)]:.3f}, about "
            f"{grid[(4, 1.0)] * rated_ok:.3f} overall.",
        ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown is not None:
        args.markdown.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
