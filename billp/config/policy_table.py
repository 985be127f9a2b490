"""The README's agents table, generated from the policy registry:
``python -m billp.config.policy_table [--markdown | --write-readme]``.

The registry (:mod:`billp.policy_registry`) is pure data below the config; the table also
reads a config default (the number of reflections retrieved), so it lives here, above both.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from billp.config.memory import MemoryConfig
from billp.policy_registry import POLICIES, POLICY_NAMES, PolicySpec

README = Path(__file__).resolve().parents[2] / "README.md"
TABLE_HEADER = (
    "| name | Planner | reflections (macro) | Critic + actor memory (micro) | quit rule "
    "| genre hints | chooses from | simulator's user model | learns from |"
)


def _cells(spec: PolicySpec, reflections_top_k: int) -> tuple[str, ...]:
    preset = spec.preset
    macro = ""
    if preset.macro:
        macro = (
            "✓ most recent" if preset.retrieval == "recent" else f"✓ nearest K={reflections_top_k}"
        )
    return (
        "✓" if preset.planner else "",
        macro,
        "✓" if preset.micro else "",
        spec.quit_rule,
        "✓" if spec.genre_hints else "",
        spec.chooses_from,
        spec.user_model,
        spec.learns_from,
    )


def markdown_table() -> str:
    """The README's agents table: one row per set of policies with the same cells."""
    top_k = MemoryConfig().reflections_top_k
    rows: dict[tuple[str, ...], list[str]] = {}
    for spec in POLICIES.values():
        rows.setdefault(_cells(spec, top_k), []).append(f"`{spec.name}`")
    lines = [TABLE_HEADER, "|" + "---|" * TABLE_HEADER.count(" | ") + "---|"]
    for cells, members in rows.items():
        row = (", ".join(members), *cells)
        lines.append("|" + "|".join(f" {cell} " if cell else " " for cell in row) + "|")
    return "\n".join(lines) + "\n"


def readme_with_table(text: str) -> str:
    """``text`` (the README) with its agents table replaced by :func:`markdown_table`.

    Raises:
        ValueError: the README has no agents table.
    """
    lines = text.splitlines(keepends=True)
    try:
        start = lines.index(TABLE_HEADER + "\n")
    except ValueError:
        raise ValueError(f"no agents table (a line {TABLE_HEADER!r}) in the README") from None
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "".join([*lines[:start], markdown_table(), *lines[end:]])


def main(argv: list[str] | None = None) -> int:
    """List the policies, print the README table, or write it into README.md."""
    parser = argparse.ArgumentParser(
        prog="python -m billp.config.policy_table", description=__doc__
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--markdown", action="store_true", help="Print the README's agents table.")
    mode.add_argument(
        "--write-readme", action="store_true", help=f"Rewrite the agents table in {README}."
    )
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(markdown_table())
    elif args.write_readme:
        README.write_text(readme_with_table(README.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        width = max(len(name) for name in POLICY_NAMES)
        for spec in POLICIES.values():
            print(f"{spec.name:<{width}}  {spec.family:<8}  {spec.description}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
